# A stand-in for gdb in batch mode (tests/test_explain.py): checks the options retention explain
# passes, reads its command file, and answers as gdb would, per FAKE_GDB_MODE:
#   glibc        malloc in glibc; writes FAKE_GDB_XML (a stored malloc_info sample) to the dump path
#   jemalloc     malloc resolves to libjemalloc.so.2: no call is made
#   eperm        ptrace: Operation not permitted.
#   nosuch       ptrace: No such process.
#   exit-target  kills the target while "attached"
#   stop-and-die stops the target (SIGSTOP) and dies (SIGKILL): the target is left stopped
#   hang         never finishes (ignores SIGINT and SIGTERM)
#   hang-stop    stops the target, then never finishes
# tests/test_explain.py installs it with a shebang naming the test's own python.
import os
import re
import shutil
import signal
import sys
import time

args = sys.argv[1:]
for need in ('-nx', '-batch', '-p', '-x'):
    if need not in args:
        sys.stderr.write('fake gdb: missing %s in %r\n' % (need, args))
        sys.exit(99)
pid = int(args[args.index('-p') + 1])
with open(args[args.index('-x') + 1]) as f:
    script = f.read()
if 'set unwindonsignal on' not in args:
    sys.stderr.write('fake gdb: unwindonsignal not set\n')
    sys.exit(98)
rng = re.search(r'^if \$rt_m >= (\d+) && \$rt_m < (\d+)', script, re.M)
dump = re.search(r'dump binary memory (\S+) ', script)
mode = os.environ.get('FAKE_GDB_MODE', 'glibc')
out = sys.stdout


def attached():
    out.write('0x00007f0000001234 in __GI___sigtimedwait () from /lib/x86_64-linux-gnu/libc.so.6\n')


if mode == 'eperm':
    sys.stderr.write('ptrace: Operation not permitted.\nNo symbol table is loaded.  Use the "file" command.\n')
    sys.exit(1)
if mode == 'nosuch':
    sys.stderr.write('ptrace: No such process.\nNo symbol table is loaded.  Use the "file" command.\n')
    sys.exit(1)
if mode in ('hang', 'hang-stop'):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == 'hang-stop':
        os.kill(pid, signal.SIGSTOP)
    while True:
        time.sleep(1)
if mode == 'stop-and-die':
    os.kill(pid, signal.SIGSTOP)
    os.kill(os.getpid(), signal.SIGKILL)
if mode == 'exit-target':
    attached()
    os.kill(pid, signal.SIGKILL)
    sys.stderr.write("Couldn't get registers: No such process.\n")
    sys.exit(1)
attached()
lo = int(rng.group(1))
if mode == 'jemalloc':
    out.write('@@rt malloc=1\n')
    out.write('malloc in section .text of /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n')
    out.write('@@rt malloc_info=%d\n' % (lo + 64))
    out.write('@@rt glibc=0\n@@rt done\n')
    out.write('[Inferior 1 (process %d) detached]\n' % pid)
    sys.exit(0)
out.write('@@rt malloc=%d\n' % (lo + 32))
out.write('malloc in section .text of /lib/x86_64-linux-gnu/libc.so.6\n')
out.write('@@rt malloc_info=%d\n@@rt glibc=1\n' % (lo + 64))
sample = os.environ['FAKE_GDB_XML']
shutil.copyfile(sample, dump.group(1))
out.write('@@rt info_rc=0 len=%d\n' % os.path.getsize(sample))
if 'malloc_trim' in script:
    out.write('@@rt trim=1\n')
out.write('@@rt done\n')
out.write('[Inferior 1 (process %d) detached]\n' % pid)
