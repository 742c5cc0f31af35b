# A stand-in for a case program (the case CLI of notes/contracts.md), driven by FAKE_* variables
# that the fixture's case file sets through 'env ='. tests/helpers.py installs it with a shebang
# naming the test's own python.
import json
import os
import signal
import subprocess
import sys
import time

mode = os.environ.get('FAKE_MODE', 'retain')
args = sys.argv[1:]
trim = '--trim' in args
idle = None
if '--idle' in args:
    idle = int(args[args.index('--idle') + 1])
for a in args:
    if a.startswith('--') and a not in ('--trim', '--idle', '--count', '--hold', '--report-fd'):
        sys.stderr.write('fake: unknown option %s\n' % a)
        sys.exit(2)


def fig(name, default):
    return int(os.environ.get('FAKE_' + name.upper(), default))


live_objects = fig('live_objects', 100)
live_bytes = fig('live_bytes', 2400)
floor_kb = fig('floor_kb', 40000)


def emit(phase, rss, live=True, **extra):
    obj = {'rssprobe': 1, 'case': 'fake', 'phase': phase, 't_ms': int(time.monotonic() * 1000),
           'rss_kb': rss, 'rss_source': 'smaps_rollup', 'anon_kb': rss, 'anon_huge_kb': 0, 'thp': 'madvise',
           'floor_kb': floor_kb if live else -1, 'live_objects': live_objects if live else 0,
           'live_bytes': live_bytes if live else 0, 'pid': os.getpid()}
    obj.update(extra)
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


if mode == 'silent':
    sys.exit(0)
extra = {}
if mode == 'env':
    keys = os.environ.get('FAKE_ENV_KEYS', '').split()
    extra = {'env': dict((k, os.environ.get(k)) for k in keys), 'argv': args}
if mode == 'noise':
    print('starting up, not JSON')
    print('{"not": "a phase"}')
    print('{broken json')
emit('baseline', fig('baseline', 2700), live=False, **extra)
if mode == 'crash':
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGSEGV)
if mode == 'hang':
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
    with open(os.environ['FAKE_PIDFILE'], 'w') as f:
        f.write('%d\n' % child.pid)
    time.sleep(600)
if mode == 'exit3':
    sys.stderr.write('fake: first complaint\n')
    sys.stderr.write('fake: cannot map the page-floor table\n')
    sys.exit(3)
if mode == 'flat':
    emit('peak', fig('baseline', 2700), live=False)
else:
    emit('peak', fig('peak', 643000), live=False)
if mode == 'noise':
    print('{"hold": "peak", "pid": 1}')
if mode == 'twice':
    emit('peak', fig('peak', 643000), live=False)
emit('after_free', fig('after_free', 642000))
if trim and mode != 'notrim':
    emit('after_trim', fig('after_trim', 43000))
if idle is not None:
    for i in range(3):
        emit('idle', fig('after_idle', 44000) + 1000 * (2 - i))
    emit('after_idle', fig('after_idle', 44000))
sys.exit(0)
