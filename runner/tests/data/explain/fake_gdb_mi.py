# A stand-in for gdb's machine interface (tests/test_explain.py): checks the options retention
# explain starts it with, then answers MI commands on stdin as gdb would, per FAKE_GDB_MODE:
#   glibc        attach stops the target (SIGSTOP), detach resumes it; malloc resolves into the
#                target's libc; every thread sits in sigtimedwait; a call answers 1
#   in-malloc    as glibc, but thread 1 is inside malloc at every stop
#   other        malloc resolves into the dynamic loader (an allocator explain has no API for)
#   eperm        ptrace: Operation not permitted.
#   nosuch       ptrace: No such process.
#   exit-target  kills the target while attaching
#   stop-and-die stops the target (SIGSTOP) and dies (SIGKILL): the target is left stopped
#   call-stuck   a call never returns until SIGURG is pending for the target, then gdb says the
#                call was interrupted by a signal and undone
#   call-hang    a call never returns, not even after SIGURG (ignores SIGINT and SIGTERM)
# FAKE_GDB_LOG, if set, is a file that gets every command received.
# tests/test_explain.py installs it with a shebang naming the test's own python.
import os
import re
import signal
import sys
import time

args = sys.argv[1:]
for need in ('-nx', '--interpreter=mi2'):
    if need not in args:
        sys.stderr.write('fake gdb: missing %s in %r\n' % (need, args))
        sys.exit(99)
mode = os.environ.get('FAKE_GDB_MODE', 'glibc')
logf = os.environ.get('FAKE_GDB_LOG')
out = sys.stdout
pid = None
settings = {}


def emit(s):
    out.write(s + '\n')
    out.flush()


def prompt():
    emit('(gdb) ')


def done(tok, res=''):
    emit('%s^done%s' % (tok, (',' + res) if res else ''))
    prompt()


def error(tok, msg):
    emit('%s^error,msg="%s"' % (tok, msg.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')))
    prompt()


def state(p):
    try:
        with open('/proc/%d/stat' % p) as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except (IOError, OSError):
        return None


def mapping_start(p, name):
    with open('/proc/%d/maps' % p) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.basename(parts[5]).startswith(name):
                return int(parts[0].split('-')[0], 16)
    return None


def sigurg_pending(p):
    bit = 1 << (signal.SIGURG - 1)
    with open('/proc/%d/status' % p) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('SigPnd', 'ShdPnd') and int(v.strip(), 16) & bit:
                return True
    return False


def stop_target():
    os.kill(pid, signal.SIGSTOP)
    for _ in range(500):
        if state(pid) in ('t', 'T'):
            return
        time.sleep(0.01)


prompt()
for raw in sys.stdin:
    line = raw.strip()
    if logf:
        with open(logf, 'a') as f:
            f.write(line + '\n')
    m = re.match(r'^(\d+)(.*)$', line)
    if not m:
        continue
    tok, cmd = m.group(1), m.group(2)
    if cmd.startswith('-gdb-exit'):
        emit('%s^exit' % tok)
        sys.exit(0)
    if cmd.startswith('-gdb-set'):
        k = cmd.split()[1:]
        settings[k[0]] = k[1:] if len(k) > 1 else None
        done(tok)
        continue
    if cmd.startswith('-interpreter-exec console "handle'):
        done(tok)
        continue
    if cmd.startswith('-target-attach'):
        pid = int(cmd.split()[1])
        if 'unwindonsignal' not in settings:
            error(tok, 'fake gdb: unwindonsignal not set before attaching')
            continue
        if mode == 'eperm':
            error(tok, 'ptrace: Operation not permitted.')
            continue
        if mode == 'nosuch':
            error(tok, 'ptrace: No such process.')
            continue
        if mode == 'exit-target':
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            error(tok, "Couldn't get registers: No such process.")
            continue
        if mode == 'stop-and-die':
            os.kill(pid, signal.SIGSTOP)
            os.kill(os.getpid(), signal.SIGKILL)
        stop_target()
        emit('=thread-group-started,id="i1",pid="%d"' % pid)
        done(tok)
        emit('*stopped,frame={addr="0x00007f0000001234",func="sigtimedwait"},thread-id="1",stopped-threads="all"')
        continue
    if cmd.startswith('-target-detach'):
        if pid and state(pid) is not None:
            os.kill(pid, signal.SIGCONT)
        emit('~"[Inferior 1 (process %d) detached]\\n"' % pid)
        done(tok)
        continue
    if cmd.startswith('-thread-info'):
        tids = sorted(int(t) for t in os.listdir('/proc/%d/task' % pid))
        tids.remove(pid)
        tids.insert(0, pid)
        th = ','.join('{id="%d",target-id="Thread 0x7f00 (LWP %d)",name="x",state="stopped"}' % (i + 1, t)
                      for i, t in enumerate(tids))
        done(tok, 'threads=[%s],current-thread-id="1"' % th)
        continue
    if cmd.startswith('-stack-list-frames'):
        num = re.search(r'--thread (\d+)', cmd).group(1)
        frames = [('0x00007f0000001234', 'sigtimedwait', '/lib/x86_64-linux-gnu/libc.so.6'),
                  ('0x0000555500001234', 'main', '/usr/bin/python3')]
        if mode == 'in-malloc' and num == '1':
            frames.insert(0, ('0x00007f0000005678', 'malloc', '/lib/x86_64-linux-gnu/libc.so.6'))
        st = ','.join('frame={level="%d",addr="%s",func="%s",from="%s"}' % (i, a, fn, fr)
                      for i, (a, fn, fr) in enumerate(frames))
        done(tok, 'stack=[%s]' % st)
        continue
    if cmd.startswith('-thread-select'):
        done(tok)
        continue
    if cmd.startswith('-data-write-memory-bytes'):
        done(tok)
        continue
    if cmd.startswith('-interpreter-exec console "info symbol'):
        emit('~"No symbol matches %s.\\n"' % cmd.split()[-1].rstrip('"'))
        done(tok)
        continue
    if cmd.startswith('-data-evaluate-expression'):
        expr = cmd[len('-data-evaluate-expression'):].strip().strip('"')
        if expr == '(unsigned long)&malloc':
            lo = mapping_start(pid, 'ld-linux' if mode == 'other' else 'libc.so')
            done(tok, 'value="%d"' % (lo + 0x100))
            continue
        if ')(' not in expr:
            error(tok, 'No symbol in current context.')
            continue
        # a call
        if mode == 'call-hang':
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(1)
        if mode == 'call-stuck':
            while not sigurg_pending(pid):
                time.sleep(0.02)
            emit('~"\\nProgram received signal SIGURG, Urgent I/O condition.\\n"')
            error(tok, 'The program being debugged was signaled while in a function called from GDB.\n'
                       'GDB has restored the context to what it was before the call.')
            continue
        done(tok, 'value="1"')
        continue
    error(tok, 'fake gdb: unknown command %s' % cmd)
