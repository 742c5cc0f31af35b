"""Running one case program: its own process group, a hard timeout, and the JSON phase lines it
prints. The environment it gets is scrubbed first (scrubenv.py)."""

import contextlib
import errno
import functools
import json
import os
import re
import signal
import subprocess
import time
from collections import OrderedDict

try:
    import ctypes
except ImportError:  # a python built without ctypes: `thp = disable` is then a skip
    ctypes = None

_VALGRIND_LINE = re.compile(r'^==\d+==')

# prctl(2) options (Linux >= 3.15): a process with THP disabled gets no transparent hugepages,
# whatever /sys/kernel/mm/transparent_hugepage/enabled says, and its children (fork) and the
# programs it runs (exec) inherit that. The case file's `thp = disable` sets it in the child
# between fork and exec, so the case program, valgrind and everything they start run without THP.
PR_SET_THP_DISABLE = 41
PR_GET_THP_DISABLE = 42
_prctl = []


def _get_prctl():
    """libc's prctl via ctypes, or None. Looked up once, in the parent: a preexec_fn should only
    make the call."""
    if not _prctl:
        fn = None
        if ctypes is not None:
            try:
                fn = ctypes.CDLL(None, use_errno=True).prctl
                fn.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
                fn.restype = ctypes.c_int
            except (OSError, AttributeError):
                fn = None
        _prctl.append(fn)
    return _prctl[0]


def thp_disable_unsupported():
    """None when this system lets a process disable THP for itself and its children, else why not
    (a skip reason)."""
    fn = _get_prctl()
    if fn is None:
        return 'thp = disable: no prctl() in the C library (ctypes)'
    if fn(PR_GET_THP_DISABLE, 0, 0, 0, 0) < 0:
        return 'thp = disable: this kernel has no prctl(PR_SET_THP_DISABLE) (%s; Linux >= 3.15 has it)' % (
            os.strerror(ctypes.get_errno()))
    return None


def _disable_thp():
    """Runs in the child after fork, before exec."""
    if _get_prctl()(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
        raise OSError('prctl(PR_SET_THP_DISABLE) failed')


# The signals that end a run early (Ctrl-C, kill, a closed terminal). The runner turns each into
# Interrupted, so that every finally on the way out runs: the case's process group is killed, and
# `retention run` writes what it has. Exit status 128 + the signal's number, as a shell reports a
# program that signal ended (cli.EXIT_STATUS).
INTERRUPTING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# prctl(2): the child gets this signal when the runner dies. It covers what no handler can: the
# runner itself killed by SIGKILL (a CI job's hard timeout) must not leave a case running.
PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """One of INTERRUPTING arrived. A BaseException, like KeyboardInterrupt: an `except Exception`
    on the way must not swallow it."""

    def __init__(self, signum):
        BaseException.__init__(self, signum)
        self.signum = signum
        self.name = signal_name(signum)
        self.status = 128 + signum

    def __str__(self):
        return 'interrupted by %s' % self.name


@contextlib.contextmanager
def interruptible():
    """While in the block, INTERRUPTING signals raise Interrupted in the main thread: the first
    one only. Later ones are ignored while the first one's cleanup (killing a process group,
    writing the partial results) runs, so a second Ctrl-C cannot cut that short. The previous
    handlers come back on leaving. A signal the runner was started ignoring (nohup, a background
    job of a non-interactive shell) stays ignored. Outside the main thread (where Python delivers
    no signal) the block runs as it is."""
    seen = []

    def handler(signum, frame):
        if seen:
            return
        seen.append(signum)
        raise Interrupted(signum)
    previous = []
    try:
        for sig in INTERRUPTING:
            if signal.getsignal(sig) != signal.SIG_IGN:
                previous.append((sig, signal.signal(sig, handler)))
    except ValueError:  # not the main thread
        for sig, old in previous:
            signal.signal(sig, old)
        previous = []
    try:
        yield
    finally:
        for sig, old in previous:
            signal.signal(sig, old)


def _child_setup(mask, thp_disable):
    """The child's preexec_fn: runs after fork, before exec. It gets back the signal mask the
    runner had before it blocked INTERRUPTING around the fork, dies with the runner, and runs
    without THP when asked."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    fn = _get_prctl()
    if fn is not None:
        fn(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if thp_disable:
        _disable_thp()


class ProcResult(object):
    def __init__(self):
        self.returncode = None
        self.stdout = ''
        self.stderr = ''
        self.timed_out = False
        self.duration = 0.0
        self.start_error = None


def signal_process(pid, sig, group=False):
    """Sends sig to pid, or with group=True to the process group pid leads. A process already gone
    (ESRCH), or one not ours to signal (EPERM: a setuid program in the group, a pid reused by
    another user), is no error: there is nothing of ours left to stop."""
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except OSError as e:
        if e.errno not in (errno.ESRCH, errno.EPERM):
            raise


def read_output(path):
    """A child's output file as text ('' when unreadable)."""
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return ''


def run_process(argv, env, timeout, tmpdir, thp_disable=False, pass_fds=()):
    """Runs argv in a new session (its own process group) with cwd=tmpdir, output to files in
    tmpdir (so a straggling grandchild holding a pipe cannot block us). At the timeout the whole
    group is killed; after a normal exit any leftover member of the group is killed too, and so
    it is when the runner is interrupted (Interrupted, KeyboardInterrupt) meanwhile.
    thp_disable: the child runs with transparent hugepages disabled (PR_SET_THP_DISABLE); check
    thp_disable_unsupported() first. pass_fds: descriptors the child inherits (rssprobe_phase's
    report file)."""
    res = ProcResult()
    out_path = os.path.join(tmpdir, 'stdout')
    err_path = os.path.join(tmpdir, 'stderr')
    start = time.monotonic()
    # Looked up here, in the parent: the child between fork and exec should only make the call.
    _get_prctl()
    with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
        # An interrupting signal is held from before the fork until the child's pid is known and
        # the block that kills its group is entered: arriving in between, it would leave a case
        # running that nothing knows of.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTING)
        proc = None
        try:
            try:
                proc = subprocess.Popen(argv, env=dict(env), cwd=tmpdir, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, close_fds=True, start_new_session=True,
                                        preexec_fn=functools.partial(_child_setup, mask, thp_disable),
                                        pass_fds=tuple(pass_fds))
            except OSError as e:
                res.start_error = '%s: %s' % (argv[0], e.strerror or e)
            except subprocess.SubprocessError as e:
                # the preexec_fn failed (prctl refused)
                res.start_error = '%s: %s' % (argv[0], e)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if proc is not None:
                try:
                    res.returncode = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    res.timed_out = True
                    signal_process(proc.pid, signal.SIGKILL, group=True)
                    res.returncode = proc.wait()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            # Also when interrupted: never leave a case (or its children) running.
            if proc is not None:
                signal_process(proc.pid, signal.SIGKILL, group=True)
                if proc.returncode is None:
                    proc.wait()
    res.duration = time.monotonic() - start
    if res.start_error:
        return res
    res.stdout = read_output(out_path)
    res.stderr = read_output(err_path)
    return res


def parse_phases(stdout):
    """Phase lines: JSON objects with a "phase" key. Non-JSON lines and other JSON (e.g. the
    {"hold": ...} line) are ignored. 'idle' samples go to samples; a phase reported twice is a
    problem. Returns (phases, samples, problems)."""
    phases = OrderedDict()
    samples = []
    problems = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith('{'):
            continue
        try:
            obj = json.loads(line, object_pairs_hook=OrderedDict)
        except (ValueError, RecursionError):
            # RecursionError: JSON nested deeper than the interpreter's stack (no phase line is)
            continue
        if not isinstance(obj, dict) or 'phase' not in obj:
            continue
        name = obj['phase']
        if not isinstance(name, str):
            continue
        if name == 'idle':
            samples.append(obj)
            continue
        if name in phases:
            problems.append("phase '%s' reported twice" % name)
            continue
        phases[name] = obj
    return phases, samples, problems


def last_stderr_line(stderr):
    """The last meaningful stderr line (valgrind's '==PID==' lines are skipped)."""
    for line in reversed(stderr.splitlines()):
        s = line.strip()
        if not s:
            continue
        if _VALGRIND_LINE.match(s):
            continue
        return s
    return ''


def signal_name(num):
    try:
        return signal.Signals(num).name
    except (ValueError, AttributeError):
        return 'signal %d' % num
