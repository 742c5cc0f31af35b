"""gdb supervision: one gdb driven over its machine interface (MI), so explain can attach, look at
every thread's stack, read the target's memory itself while gdb holds it stopped, let it run and
stop it again, and only then, if at all, make a call in it; every command bounded in time.

Calls are the only dangerous part. A call that sleeps on a lock at the timeout is undone: the
target gets INTERRUPT_SIGNAL, gdb stops on it and unwinds the call (unwindonsignal). A call that
is working (malloc_trim over a big heap) is left to finish, up to HARD_LIMIT x the timeout:
undoing it halfway would leave an arena lock held, and killing gdb in the middle of a call leaves
the target running code with a return address that no longer exists."""

import ctypes
import os
import re
import select
import signal
import subprocess
import time

from ..errors import ExplainError, ProcessGone
from ..execute import signal_process
from .procfs import parse_stat_state
from .ptrace import ptrace_hint
from .target import read_proc, state_of


DEFAULT_TIMEOUT_S = 60
INTERRUPT_SIGNAL = signal.SIGURG
INTERRUPT_GRACE_S = 10
HARD_LIMIT = 10
# How long gdb may take to start, attach (it reads the symbols of every mapped object: seconds
# for a big binary with debug info), detach, or answer a command that runs nothing in the target.
COMMAND_TIMEOUT_S = 120


# ---------------------------------------------------------------- MI output

def _cstring(s, i):
    """The C string starting at s[i] == '"' -> (text, index after the closing quote)."""
    out = []
    i += 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            return ''.join(out), i + 1
        if c == '\\' and i + 1 < n:
            e = s[i + 1]
            i += 2
            if e == 'n':
                out.append('\n')
            elif e == 't':
                out.append('\t')
            elif e in '01234567':
                j = i - 1
                while i < n and i - j < 3 and s[i] in '01234567':
                    i += 1
                out.append(chr(int(s[j:i], 8)))
            else:
                out.append(e)
            continue
        out.append(c)
        i += 1
    raise ValueError('unterminated string in MI output')


def _value(s, i):
    c = s[i]
    if c == '"':
        return _cstring(s, i)
    if c in '{[':
        close = '}' if c == '{' else ']'
        i += 1
        items = []
        named = {}
        while i < len(s) and s[i] != close:
            m = re.compile(r'[\w\-]+=').match(s, i)
            if m:
                key = m.group(0)[:-1]
                v, i = _value(s, m.end())
                items.append((key, v))
                named.setdefault(key, v)
            else:
                v, i = _value(s, i)
                items.append((None, v))
            if i < len(s) and s[i] == ',':
                i += 1
        i += 1
        if c == '{':
            return dict((k, v) for k, v in items), i
        # a list of values, or of key=value results (frame={...},frame={...}): their values
        return [v for _, v in items], i
    raise ValueError('unexpected %r in MI output' % c)


def parse_results(s):
    """'a="1",b={c="2"},d=[...]' -> dict (the first value of a key repeated)."""
    out = {}
    i = 0
    while i < len(s):
        m = re.compile(r'[\w\-]+=').match(s, i)
        if not m:
            break
        try:
            v, i = _value(s, m.end())
        except RecursionError:
            # nested deeper than the stack: as malformed as any other bad record, for the caller
            raise ValueError('MI output nested too deeply')
        out.setdefault(m.group(0)[:-1], v)
        if i < len(s) and s[i] == ',':
            i += 1
    return out


class Reply(object):
    """One MI command's answer: cls ('done', 'error', ...), results, console/log text."""

    def __init__(self, cls, results, console, log):
        self.cls = cls
        self.results = results
        self.console = console
        self.log = log

    @property
    def ok(self):
        return self.cls in ('done', 'running', 'connected')

    @property
    def msg(self):
        return self.results.get('msg', '') if isinstance(self.results, dict) else ''

    def text(self):
        return self.console + self.log + self.msg


# ---------------------------------------------------------------- the target's side

FUTEX_SYSCALL = {'x86_64': 202, 'i686': 240, 'i386': 240, 'aarch64': 98, 'armv7l': 240, 'ppc64le': 221,
                 'ppc64': 221, 's390x': 238, 'riscv64': 98}


def call_state(pid, machine=None, tid=None):
    """What the thread gdb makes a call on is doing: 'gone'; 'stopped' (t/T: no call is running
    at this instant); 'lock-wait' (asleep in futex: a call waiting for a lock holds none of
    malloc's, so undoing it is safe); or 'working' (running, or in another syscall: a call there
    may hold an arena lock, and undoing it would leave the lock held for good)."""
    task = 'task/%d/' % (tid or pid)
    st = state_of(pid)
    if st in (None, 'Z', 'X'):
        return 'gone'
    try:
        st = parse_stat_state(read_proc(pid, task + 'stat'))
    except ExplainError:
        pass
    if st in ('t', 'T'):
        return 'stopped'
    if st != 'S':
        return 'working'
    try:
        if 'futex' in read_proc(pid, task + 'wchan'):
            return 'lock-wait'
    except ExplainError:
        pass
    try:
        nr = read_proc(pid, task + 'syscall').split()[:1]
    except ExplainError:
        nr = []
    want = FUTEX_SYSCALL.get(machine or os.uname().machine)
    if nr and want is not None and nr[0] == str(want):
        return 'lock-wait'
    return 'working'


def gdb_env(environ):
    env = dict((k, v) for k, v in environ.items()
               if k not in ('DEBUGINFOD_URLS', 'GDBHISTFILE', 'LD_PRELOAD') and not k.startswith('LC_'))
    env['LC_ALL'] = 'C'
    env['LANG'] = 'C'
    return env


class Thread(object):
    """A thread of the stopped target: gdb's number, the kernel's tid, its frames
    [(pc, function name or None, object path or None)], innermost first."""

    def __init__(self, num, tid, frames, name=None):
        self.num = num
        self.tid = tid
        self.frames = frames
        self.name = name

    def __repr__(self):
        return 'Thread(%s, tid %s, %r)' % (self.num, self.tid, self.frames[:3])


class GdbSession(object):
    """gdb -nx --interpreter=mi2, talked to over pipes. Every method raises ExplainError (or
    ProcessGone) with one line on failure; close() always leaves the target detached."""

    def __init__(self, gdb, pid, environ=None, timeout=DEFAULT_TIMEOUT_S, log=None, transcript=None):
        self.gdb = gdb
        self.pid = pid
        self.timeout = timeout
        self.log = log
        self.transcript = transcript  # a list: every command sent, for tests and --debug
        self.attached = False
        self.token = 0
        self.buf = b''
        self.calls = 0
        self.call_log = []  # the calls made in the target (the expressions)
        self.interrupted = False
        environ = os.environ if environ is None else environ
        argv = [gdb, '-nx', '-q', '--interpreter=mi2', '-iex', 'set auto-load off',
                '-iex', 'set debuginfod enabled off']
        try:
            self.proc = subprocess.Popen(argv, env=gdb_env(environ), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         close_fds=True, start_new_session=True, cwd='/')
        except OSError as e:
            raise ExplainError('cannot run %s: %s' % (gdb, e.strerror or e))
        self._read_until_prompt(COMMAND_TIMEOUT_S)
        for c in ('-gdb-set pagination off', '-gdb-set width 0', '-gdb-set confirm off',
                  '-gdb-set unwindonsignal on', '-gdb-set print frame-arguments none',
                  '-interpreter-exec console "handle %s stop print pass"' % INTERRUPT_SIGNAL.name):
            self.command(c)

    # -- plumbing

    def _readline(self, deadline):
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.25))
            if not r:
                if self.proc.poll() is not None:
                    raise ExplainError('gdb exited unexpectedly (status %s)' % self.proc.returncode)
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise ExplainError('gdb exited unexpectedly (status %s)' % self.proc.poll())
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b'\n')
        return line.decode('utf-8', 'replace').rstrip('\r')

    def _read_until_prompt(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(deadline)
            if line is None:
                raise ExplainError('gdb did not start within %g s' % timeout)
            if line.startswith('(gdb)'):
                return

    def _send(self, cmd):
        self.token += 1
        if self.transcript is not None:
            self.transcript.append(cmd)
        try:
            self.proc.stdin.write(('%d%s\n' % (self.token, cmd)).encode())
            self.proc.stdin.flush()
        except (IOError, OSError):
            raise ExplainError('gdb exited unexpectedly (status %s)' % self.proc.poll())
        return self.token

    def _reply(self, token, deadline, on_timeout=None):
        """Reads records up to the result record of `token` and the prompt after it. At the
        deadline, on_timeout() gives a new one, or None to give up."""
        console, log = [], []
        result = None
        while True:
            line = self._readline(deadline)
            if line is None:
                deadline = on_timeout() if on_timeout is not None else None
                if deadline is None:
                    raise ExplainError('gdb did not answer within %g s' % COMMAND_TIMEOUT_S)
                continue
            if line.startswith('~'):
                console.append(_cstring(line, 1)[0])
            elif line.startswith('&'):
                log.append(_cstring(line, 1)[0])
            elif line.startswith('@'):
                pass
            elif result is None and re.match(r'^%d\^' % token, line):
                rest = line[len(str(token)) + 1:]
                cls, _, res = rest.partition(',')
                try:
                    results = parse_results(res)
                except (ValueError, IndexError):
                    results = {}
                result = Reply(cls, results, ''.join(console), ''.join(log))
            elif line.startswith('(gdb)') and result is not None:
                return result

    def command(self, cmd, timeout=COMMAND_TIMEOUT_S):
        token = self._send(cmd)
        return self._reply(token, time.monotonic() + timeout)

    def console(self, text, timeout=COMMAND_TIMEOUT_S):
        return self.command('-interpreter-exec console "%s"' % text.replace('\\', '\\\\').replace('"', '\\"'),
                            timeout)

    # -- attaching

    def attach(self):
        r = self.command('-target-attach %d' % self.pid)
        text = r.text()
        if not r.ok:
            if 'Operation not permitted' in text or 'Could not attach' in text:
                raise ExplainError('cannot attach to process %d: ptrace: Operation not permitted (%s)'
                                   % (self.pid, ptrace_hint(self.pid)))
            if 'ptrace: No such process' in text:
                raise ProcessGone('process %d exited before gdb could attach' % self.pid)
            if 'No such process' in text:
                raise ProcessGone('process %d exited while gdb was attached' % self.pid)
            raise ExplainError('gdb cannot attach to process %d: %s' % (self.pid, _first_line(text)))
        self.attached = True

    def detach(self):
        if not self.attached:
            return
        self.attached = False
        r = self.command('-target-detach')
        if not r.ok and 'No such process' not in r.text() and 'exited' not in r.text():
            raise ExplainError('gdb could not detach from process %d: %s' % (self.pid, _first_line(r.text())))

    def threads(self, depth=32):
        """Every thread with its innermost `depth` frames."""
        r = self.command('-thread-info')
        if not r.ok:
            raise self._gone_or('gdb cannot list the threads of process %d: %s', r)
        out = []
        for t in r.results.get('threads', []):
            num = t.get('id')
            m = re.search(r'LWP (\d+)', t.get('target-id', '')) or re.search(r'process (\d+)', t.get('target-id', ''))
            tid = int(m.group(1)) if m else None
            f = self.command('-stack-list-frames --thread %s 0 %d' % (num, depth - 1))
            frames = []
            if f.ok:
                for fr in f.results.get('stack', []):
                    try:
                        pc = int(fr.get('addr', '0'), 16)
                    except ValueError:
                        continue
                    frames.append((pc, fr.get('func'), fr.get('from') or fr.get('fullname')))
            out.append(Thread(num, tid, frames, t.get('name')))
        return out

    def evaluate(self, expr, timeout=COMMAND_TIMEOUT_S):
        """An expression that calls nothing in the target (an address, a cast): its value text."""
        r = self.command('-data-evaluate-expression "%s"' % expr.replace('"', '\\"'), timeout)
        if not r.ok:
            return None
        return r.results.get('value')

    def info_symbol(self, addr):
        """gdb's name for an address ('vtable for Foo + 16 in section .data.rel.ro of /x'), or None."""
        r = self.console('info symbol 0x%x' % addr)
        text = r.console.strip()
        if not r.ok or not text or text.startswith('No symbol matches'):
            return None
        return text

    def write_memory(self, addr, data):
        r = self.command('-data-write-memory-bytes 0x%x %s' % (addr, data.hex() if hasattr(data, 'hex')
                                                                 else ''.join('%02x' % b for b in data)))
        if not r.ok:
            raise self._gone_or('gdb cannot write to process %d\'s memory: %s', r)

    def select_thread(self, num):
        r = self.command('-thread-select %s' % num)
        if not r.ok:
            raise self._gone_or('gdb cannot select a thread of process %d: %s', r)

    def call(self, expr, thread, tid):
        """A call in the target on gdb thread `thread` (kernel tid `tid`), the other threads held
        stopped (scheduler-locking). The caller has made sure no thread is inside the allocator.
        Returns the value text; ExplainError if the call failed or had to be undone."""
        self.select_thread(thread)
        self.command('-gdb-set scheduler-locking on')
        self.calls += 1
        self.call_log.append(expr)
        token = self._send('-data-evaluate-expression "%s"' % expr.replace('"', '\\"'))
        hard = time.monotonic() + HARD_LIMIT * self.timeout
        state = {'told': False, 'signalled': False, 'forced': False}

        def on_timeout():
            # Only a call asleep on a lock is undone at once; one that works is left to finish.
            if state['signalled']:
                return None
            st = call_state(self.pid, tid=tid)
            if st in ('lock-wait', 'gone') or time.monotonic() >= hard:
                self.interrupted = state['signalled'] = True
                state['forced'] = st not in ('lock-wait', 'gone')
                _signal_thread(self.pid, tid, INTERRUPT_SIGNAL)
                return time.monotonic() + INTERRUPT_GRACE_S
            if not state['told'] and self.log is not None:
                state['told'] = True
                self.log('gdb is still busy with process %d after %g s (a call working through a big heap?); '
                         'waiting up to %g s more: undoing a working call could leave malloc\'s lock held'
                         % (self.pid, self.timeout, (HARD_LIMIT - 1) * self.timeout))
            return time.monotonic() + 0.25
        try:
            r = self._reply(token, time.monotonic() + self.timeout, on_timeout)
        except ExplainError:
            if state['signalled']:
                self.kill()
                raise ExplainError('the call in process %d did not finish within %g s, and gdb did not stop on %s '
                                   'and was killed' % (self.pid, self.timeout, INTERRUPT_SIGNAL.name))
            raise
        if r.ok:
            return r.results.get('value')
        text = r.text()
        if state_of(self.pid) in (None, 'Z', 'X') or 'exited' in text:
            raise ProcessGone('process %d exited while gdb was attached' % self.pid)
        if 'signaled while in a function called from GDB' in text or \
                'stopped while in a function called from GDB' in text:
            if state['signalled']:
                how = ('gdb was still busy at %d x the timeout and was interrupted; if a call was running, '
                       'malloc\'s lock may stay held' % HARD_LIMIT) if state['forced'] else \
                    'the call was waiting for a lock and was undone'
                raise ExplainError('the call in process %d did not finish within %g s (%s)'
                                   % (self.pid, self.timeout, how))
            m = re.search(r'received signal (\w+)', text)
            raise ExplainError('process %d got %s during a call from gdb; gdb undid the call: try again'
                               % (self.pid, m.group(1) if m else 'a signal'))
        raise ExplainError('a call in process %d failed: %s' % (self.pid, _first_line(text)))

    def _gone_or(self, fmt, r):
        if state_of(self.pid) in (None, 'Z', 'X'):
            return ProcessGone('process %d exited while gdb was attached' % self.pid)
        return ExplainError(fmt % (self.pid, _first_line(r.text())))

    def kill(self):
        if self.proc.poll() is None:
            signal_process(self.proc.pid, signal.SIGKILL, group=True)
            self.proc.wait()

    def close(self):
        """Detach (if attached) and end gdb; never raises."""
        try:
            if self.proc.poll() is None:
                if self.attached:
                    try:
                        self.detach()
                    except ExplainError:
                        pass
                try:
                    self._send('-gdb-exit')
                except ExplainError:
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.kill()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except (IOError, OSError):
                    pass


def _first_line(text):
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith('warning:')]
    return lines[-1] if lines else 'no answer'


def _signal_thread(pid, tid, sig):
    """The signal to the one thread the call runs on (tgkill), else to the process."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if tid and hasattr(libc, 'tgkill') and libc.tgkill(pid, tid, int(sig)) == 0:
            return
    except (OSError, AttributeError):
        pass
    signal_process(pid, sig)
