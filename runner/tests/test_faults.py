"""The runner when things go wrong: outputs that cannot be written (before the run, and a full disk
after it), the runner interrupted (SIGTERM, SIGINT), a case killed from outside, valgrind or gdb
absent, /proc/self/smaps_rollup unreadable.

The runner runs as a separate process wherever a signal is sent, so that the test's own process is
never the one interrupted; every process a test starts is killed on every way out of it. The
tests with the real case programs (and the preload tests/no_smaps_rollup.c) are skipped where the
build tree lacks them ($RETENTION_BUILD_DIR, else <repo>/build)."""

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

from retentionlib import cli, paths, report
from retentionlib.errors import UsageError

from .helpers import GOOD_EXP, RUNNER, FixtureTest, call, case_text, table_row

SUMMARY_RE = r'^\d+ passed, \d+ failed(, \d+ skipped)?$'
BUILD = paths.build_dir()
REAL_CASES = paths.cases_dir()
REAL_EXPECTED = paths.expected_dir()
HAVE_BUILD = BUILD is not None and os.path.isfile(paths.case_program(BUILD, 'seed_std_list'))
NO_SMAPS = os.path.join(BUILD, 'runner', 'libno_smaps_rollup.so') if BUILD else ''

# A case program that reports only what statm gives (no smaps_rollup): RSS, no anonymous kB. Its
# RSS figures would pass the shim's bound (1.0x) if a bound on RSS growth were judged.
STATM_ONLY = r'''
import json, os, sys
args = sys.argv[1:]
statm = os.environ.get('FAKE_STATM', '1') == '1'
def emit(phase, rss):
    sys.stdout.write(json.dumps({'rssprobe': 1, 'phase': phase, 'rss_kb': rss,
                                 'rss_source': 'statm' if statm else 'smaps_rollup',
                                 'anon_kb': -1 if statm else rss - 1000, 'anon_huge_kb': -1,
                                 'floor_kb': 100, 'live_objects': 10, 'live_bytes': 240}) + '\n')
emit('baseline', 2000)
emit('peak', 600000)
emit('after_free', 590000)
if '--trim' in args:
    emit('after_trim', 2100)
if '--idle' in args:
    emit('after_idle', 2100)
'''


def proc_stat(pid):
    """(state, ppid, pgrp) of a process from /proc/PID/stat, or None when it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (IOError, OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2])


def live_processes():
    """{pid: (state, ppid, pgrp)} of every process but zombies (dead for our purpose)."""
    out = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None and st[0] != 'Z':
                out[int(entry)] = st
    return out


def group_members(pgrp):
    return sorted(pid for pid, st in live_processes().items() if st[2] == pgrp)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError('timed out after %g s waiting for %s' % (timeout, what))


def child_of(pid):
    """The pid of a live child of pid (the case program the runner runs), or None."""
    for p, st in live_processes().items():
        if st[1] == pid:
            return p
    return None


def kill_group(pgrp):
    try:
        os.killpg(pgrp, signal.SIGKILL)
    except OSError:
        pass


class Runner(object):
    """`retention ARGS` as a process of its own session (its own group, for the cleanup), its
    output in files."""

    def __init__(self, argv, env=None, cwd=None):
        self.dir = tempfile.mkdtemp(prefix='retention-faults-')
        self.out = open(os.path.join(self.dir, 'out'), 'w+')
        self.err = open(os.path.join(self.dir, 'err'), 'w+')
        self.groups = []
        self.proc = subprocess.Popen([sys.executable, RUNNER] + list(argv), stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)

    def watch_group(self, pgrp):
        """A group to kill on cleanup too (a case the runner should have killed)."""
        self.groups.append(pgrp)

    def wait(self, timeout=60):
        rc = self.proc.wait(timeout=timeout)
        self.out.seek(0)
        self.err.seek(0)
        return rc, self.out.read(), self.err.read()

    def cleanup(self):
        for g in [self.proc.pid] + self.groups:
            kill_group(g)
        if self.proc.returncode is None:
            self.proc.wait()
        self.out.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FaultTest(FixtureTest):
    def add(self, name, cells='native', env=None, **kw):
        self.fx.case(name, case_text(cells=cells, env=env, **kw))
        self.fx.exp(name, GOOD_EXP)

    def runner(self, argv, env=None):
        r = Runner(argv, env=env)
        self.addCleanup(r.cleanup)
        return r

    def one_line(self, err):
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith('retention: ') and err.endswith('\n'), err)
        return err.rstrip('\n')

    def row(self, out, case, cell):
        return table_row(self, out, case, cell)


class OutputsCheckedFirst(FaultTest):
    def setUp(self):
        FaultTest.setUp(self)
        # Would run for 60 s and leave a pid file, were the outputs not checked first.
        self.pidfile = os.path.join(self.fx.root, 'ran.pid')
        self.add('slow', env={'FAKE_MODE': 'hang', 'FAKE_PIDFILE': self.pidfile}, timeout='60')

    def assertRefusedAtOnce(self, argv, pattern):
        t0 = time.monotonic()
        rc, out, err = call(argv)
        self.assertEqual((rc, out), (2, ''), err)
        self.assertRegex(self.one_line(err), pattern)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertFalse(os.path.exists(self.pidfile), 'the case ran before the output was checked')

    def test_run_json_in_a_missing_directory(self):
        self.assertRefusedAtOnce(['run'] + self.fx.dirs() + ['--json', '/no/such/dir/x.json'],
                                 r'^retention: cannot write /no/such/dir/x\.json \(--json\): no such directory '
                                 r'/no/such/dir$')

    def test_run_outputs_that_are_no_file(self):
        fifo = os.path.join(self.fx.root, 'fifo')
        os.mkfifo(fifo)
        for option, path, why in (('--junit', self.fx.root, 'it is a directory'),
                                  ('--json', fifo, r'it is not a regular file \(a FIFO or a socket\)'),
                                  ('--junit', os.path.join(self.fx.root, 'file', 'x.xml'),
                                   '%s is not a directory' % os.path.join(self.fx.root, 'file'))):
            with self.subTest(path=path):
                open(os.path.join(self.fx.root, 'file'), 'w').close()
                self.assertRefusedAtOnce(['run'] + self.fx.dirs() + [option, path],
                                         r'^retention: cannot write %s \(%s\): %s' % (path, option, why))

    def test_a_device_is_refused_and_left_alone(self):
        # A device node of the test's own (the same as /dev/null), so that a runner that renamed
        # its output over it would replace nothing of the system's.
        dev = os.path.join(self.fx.root, 'null')
        try:
            os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except OSError as e:
            self.skipTest('cannot make a device node here: %s' % e.strerror)
        self.assertRefusedAtOnce(['run'] + self.fx.dirs() + ['--json', dev],
                                 r'^retention: cannot write %s \(--json\): it is a device, not a file$' % dev)
        with self.assertRaises(UsageError):
            report.write_file(dev, '{}\n')
        self.assertTrue(stat.S_ISCHR(os.stat(dev).st_mode))

    def test_one_file_for_two_outputs(self):
        path = os.path.join(self.fx.root, 'same')
        self.assertRefusedAtOnce(['run'] + self.fx.dirs() + ['--json', path, '--junit', path],
                                 r'^retention: --json and --junit name the same file %s$' % path)

    def test_every_command_checks_its_outputs_first(self):
        marker = os.path.join(self.fx.root, 'watched')
        results = os.path.join(self.fx.root, 'results.json')
        with open(results, 'w') as f:
            f.write('{}')
        dirs = ['--cases-dir', self.fx.cases, '--build-dir', self.fx.build]
        for argv, option in (
                (['compare', '--case', 'slow'] + dirs + ['--json', '/no/dir/c.json'], '--json'),
                (['demo', '--case', 'slow'] + dirs + ['--svg', '/no/dir/d.svg'], '--svg'),
                (['demo', '--case', 'slow'] + dirs + ['--html', '/no/dir/d.html'], '--html'),
                (['matrix', results, '--json', '/no/dir/m.json'], '--json'),
                (['watch', '--json', '/no/dir/w.json', '--', 'sh', '-c', 'touch %s' % marker], '--json'),
                (['watch', '--svg', '/no/dir/w.svg', '--', 'sh', '-c', 'touch %s' % marker], '--svg')):
            with self.subTest(command=argv[0], option=option):
                self.assertRefusedAtOnce(argv, r'^retention: cannot write /no/dir/\w\.\w+ \(%s\): no such '
                                               r'directory /no/dir$' % option)
                self.assertFalse(os.path.exists(marker))

    def test_the_output_options_of_each_command(self):
        parser = cli.make_parser()
        found = {}
        for argv in (['run', '--json', 'a', '--junit', 'b'], ['compare', '--json', 'a'],
                     ['matrix', 'x.json', '--json', 'a'], ['demo', '--svg', 'a', '--html', 'b'],
                     ['watch', '--json', 'a', '--svg', 'b', '--', 'true'], ['explain', '--json', '1'],
                     ['platform', '--json']):
            found[argv[0]] = sorted(o for o, _ in cli.output_files(parser, parser.parse_args(argv)))
        self.assertEqual(found, {'run': ['--json', '--junit'], 'compare': ['--json'], 'matrix': ['--json'],
                                 'demo': ['--html', '--svg'], 'watch': ['--json', '--svg'], 'explain': [],
                                 'platform': []})

    def test_every_file_option_is_checked(self):
        # A new option that writes a FILE under another name would otherwise escape the check.
        sub = [a for a in cli.make_parser()._actions if a.dest == 'command'][0]
        for name, p in sub.choices.items():
            for action in p._actions:
                if action.metavar == 'FILE':
                    self.assertTrue(set(action.option_strings) & set(cli.OUTPUT_OPTIONS),
                                    '%s %s' % (name, action.option_strings))


class FullDisk(FaultTest):
    """A write that fails at the end: a tmpfs of 64 kB mounted for the test, filled to the last
    page."""

    def setUp(self):
        FaultTest.setUp(self)
        self.mnt = os.path.join(self.fx.root, 'mnt')
        os.mkdir(self.mnt)
        p = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', self.mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if p.returncode != 0:
            self.skipTest('cannot mount a tmpfs here: %s' % p.stdout.strip())
        self.addCleanup(subprocess.call, ['umount', '-l', self.mnt])

    def fill(self):
        fd = os.open(os.path.join(self.mnt, 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b'\0' * 1024) > 0:
                pass
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)

    def test_the_table_is_complete_and_the_previous_file_kept(self):
        self.add('good', cells='native trim')
        json_path = os.path.join(self.mnt, 'out.json')
        junit_path = os.path.join(self.mnt, 'out.xml')
        with open(json_path, 'w') as f:
            f.write('{"previous": true}\n')
        self.fill()
        rc, out, err = call(['run'] + self.fx.dirs() + ['--json', json_path, '--junit', junit_path])
        self.assertEqual(rc, 2, out + err)
        line = self.one_line(err)
        self.assertIn('cannot write %s: No space left on device' % json_path, line)
        self.assertIn('cannot write %s: No space left on device' % junit_path, line)
        lines = out.splitlines()
        self.assertRegex(lines[-1], SUMMARY_RE)
        self.assertEqual(lines[-1], '2 passed, 0 failed')
        self.row(out, 'good', 'native')
        self.row(out, 'good', 'trim')
        with open(json_path) as f:
            self.assertEqual(f.read(), '{"previous": true}\n')
        self.assertEqual(sorted(os.listdir(self.mnt)), ['filler', 'out.json'])

    def test_a_write_that_fits_replaces_the_file(self):
        path = os.path.join(self.mnt, 'out.json')
        with open(path, 'w') as f:
            f.write('old')
        os.chmod(path, 0o640)
        report.write_file(path, '{"new": 1}\n')
        with open(path) as f:
            self.assertEqual(f.read(), '{"new": 1}\n')
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)


class Interrupted(FaultTest):
    def start_and_interrupt(self, sig):
        pidfile = os.path.join(self.fx.root, 'grandchild.pid')
        self.add('a_first')
        self.add('b_hang', env={'FAKE_MODE': 'hang', 'FAKE_PIDFILE': pidfile}, timeout='120')
        self.add('c_later', cells='native trim')
        json_path = os.path.join(self.fx.root, 'out.json')
        junit_path = os.path.join(self.fx.root, 'out.xml')
        r = self.runner(['run'] + self.fx.dirs() + ['--json', json_path, '--junit', junit_path])
        # b_hang's program is running (the runner's child) and has started its own child.
        wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile), 30, 'the hanging case')
        case_pid = wait_for(lambda: child_of(r.proc.pid), 10, 'the case program')
        pgrp = proc_stat(case_pid)[2]
        r.watch_group(pgrp)
        self.assertEqual(pgrp, case_pid, 'the case runs in a process group of its own')
        with open(pidfile) as f:
            grandchild = int(f.read())
        self.assertIn(grandchild, group_members(pgrp))
        os.kill(r.proc.pid, sig)
        rc, out, err = r.wait(30)
        # The runner reaps the case; its child is reparented and may linger a moment.
        wait_for(lambda: not group_members(pgrp), 5, 'the case group to be gone (left: %s)' % group_members(pgrp))
        return rc, out, err, json_path, junit_path

    def check_reports(self, sig, rc, out, err, json_path, junit_path):
        name = signal.Signals(sig).name
        self.assertEqual(rc, 128 + sig, out + err)
        with open(json_path) as f:
            doc = json.load(f)
        self.assertEqual(doc['interrupted'], {
            'signal': name, 'exit_status': 128 + sig, 'running': {'case': 'b_hang', 'cell': 'native'},
            'not_run': [{'case': 'c_later', 'cell': 'native'}, {'case': 'c_later', 'cell': 'trim'}]})
        self.assertEqual([(x['case'], x['cell'], x['status']) for x in doc['results']],
                         [('a_first', 'native', 'pass')])
        suite = ET.parse(junit_path).getroot().find('testsuite')
        self.assertEqual((suite.get('tests'), suite.get('errors'), suite.get('skipped')), ('4', '1', '2'))
        cases = dict(((t.get('classname'), t.get('name')), t) for t in suite.findall('testcase'))
        self.assertIn(name, cases[('b_hang', 'native')].find('error').get('message'))
        self.assertIn('interrupted', cases[('c_later', 'trim')].find('skipped').get('message'))
        props = dict((p.get('name'), p.get('value')) for p in suite.find('properties'))
        self.assertEqual(props['interrupted'], name)
        self.assertTrue(self.row(out, 'a_first', 'native').endswith('PASS'))
        lines = out.splitlines()
        self.assertEqual(lines[-2], 'interrupted by %s while b_hang native ran (killed, with its process group); '
                                    'not run: c_later (native trim)' % name)
        self.assertEqual(lines[-1], '1 passed, 0 failed; interrupted by %s: 1 cut short, 2 not run' % name)

    def test_sigterm(self):
        self.check_reports(signal.SIGTERM, *self.start_and_interrupt(signal.SIGTERM))

    def test_sigint(self):
        self.check_reports(signal.SIGINT, *self.start_and_interrupt(signal.SIGINT))

    def test_the_documented_statuses(self):
        documented = dict(cli.EXIT_STATUS)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self.assertIn(signal.Signals(sig).name, documented[128 + sig])

    @unittest.skipUnless(HAVE_BUILD and os.path.isfile('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'),
                         'no build tree with the case programs, or no jemalloc')
    def test_sigterm_on_a_real_case_leaves_no_process(self):
        # What was seen: seed_std_list of the jemalloc_bg cell (15 s of idle) still running after
        # the runner was gone.
        json_path = os.path.join(self.fx.root, 'real.json')
        r = self.runner(['run', '--build-dir', BUILD, '--case', 'seed_std_list', '--cell', 'jemalloc_bg',
                         '--json', json_path])
        case_pid = wait_for(lambda: child_of(r.proc.pid), 60, 'seed_std_list to start')
        pgrp = proc_stat(case_pid)[2]
        r.watch_group(pgrp)
        time.sleep(1.0)
        os.kill(r.proc.pid, signal.SIGTERM)
        rc, out, err = r.wait(30)
        self.assertEqual(rc, 143, out + err)
        wait_for(lambda: not group_members(pgrp), 5, 'the case group to be gone')
        with open(json_path) as f:
            doc = json.load(f)
        self.assertEqual(doc['interrupted']['running'], {'case': 'seed_std_list', 'cell': 'jemalloc_bg'})
        self.assertEqual(doc['results'], [])


class KilledFromOutside(FaultTest):
    def test_the_cell_fails_naming_the_signal_and_the_run_goes_on(self):
        pidfile = os.path.join(self.fx.root, 'grandchild.pid')
        self.add('a_victim', env={'FAKE_MODE': 'hang', 'FAKE_PIDFILE': pidfile}, timeout='120')
        self.add('b_after', cells='native trim')
        json_path = os.path.join(self.fx.root, 'out.json')
        r = self.runner(['run'] + self.fx.dirs() + ['--json', json_path])
        wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile), 30, 'the case mid-phase')
        case_pid = wait_for(lambda: child_of(r.proc.pid), 10, 'the case program')
        r.watch_group(case_pid)
        os.kill(case_pid, signal.SIGKILL)
        rc, out, err = r.wait(60)
        self.assertEqual(rc, 1, out + err)
        with open(json_path) as f:
            doc = json.load(f)
        by = dict(((x['case'], x['cell']), x) for x in doc['results'])
        victim = by[('a_victim', 'native')]
        self.assertEqual((victim['status'], victim['signal'], victim['timed_out']), ('fail', 'SIGKILL', False))
        self.assertEqual(victim['reason'], 'killed by signal SIGKILL')
        self.assertEqual(list(victim['phases']), ['baseline'])
        self.assertEqual((by[('b_after', 'native')]['status'], by[('b_after', 'trim')]['status']), ('pass', 'pass'))
        self.assertRegex(self.row(out, 'a_victim', 'native'), r'killed by signal SIGKILL\s+FAIL$')
        self.assertEqual(out.splitlines()[-1], '2 passed, 1 failed')
        # The program's own child went with its group.
        wait_for(lambda: not group_members(case_pid), 5, 'the case group to be gone')
        self.assertNotIn('Traceback', err)


def env_without(names, **extra):
    env = dict((k, v) for k, v in os.environ.items() if k not in names)
    env.update(extra)
    return env


class NoValgrind(FaultTest):
    def setUp(self):
        FaultTest.setUp(self)
        self.empty = os.path.join(self.fx.root, 'empty-bin')
        os.mkdir(self.empty)

    def check_skip(self, env, why):
        self.add('mc', cells='native memcheck')
        json_path = os.path.join(self.fx.root, 'out.json')
        rc, out, err = self.runner(['run'] + self.fx.dirs() + ['--json', json_path], env=env).wait(60)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(self.row(out, 'mc', 'memcheck'), r'skipped: %s\s+SKIP$' % why)
        self.assertEqual(out.splitlines()[-1], '1 passed, 0 failed, 1 skipped')
        with open(json_path) as f:
            mc = [x for x in json.load(f)['results'] if x['cell'] == 'memcheck'][0]
        self.assertEqual(mc['status'], 'skip')
        self.assertNotIn('Traceback', err)

    def test_no_valgrind_in_path(self):
        self.check_skip(env_without(('RETENTION_VALGRIND',), PATH=self.empty), 'valgrind not found')

    def test_valgrind_named_nowhere(self):
        self.check_skip(env_without((), RETENTION_VALGRIND='/no/such/valgrind'), 'valgrind not found: /no/such/valgrind')

    @unittest.skipUnless(HAVE_BUILD, 'no build tree with the case programs')
    def test_a_real_memcheck_cell_skips(self):
        rc, out, err = self.runner(['run', '--build-dir', BUILD, '--case', 'seed_std_list', '--cell', 'memcheck',
                                    '--skip-exit-code', '77'],
                                   env=env_without(('RETENTION_VALGRIND',), PATH=self.empty)).wait(60)
        self.assertEqual(rc, 77, out + err)
        self.assertRegex(self.row(out, 'seed_std_list', 'memcheck'), r'skipped: valgrind not found\s+SKIP$')


class NoGdb(FaultTest):
    def setUp(self):
        FaultTest.setUp(self)
        self.empty = os.path.join(self.fx.root, 'empty-bin')
        os.mkdir(self.empty)
        self.target = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
        self.addCleanup(self.target.wait)
        self.addCleanup(self.target.kill)

    def explain(self, env, *extra):
        return self.runner(['explain', str(self.target.pid)] + list(extra), env=env).wait(60)

    def check(self, result, line):
        rc, out, err = result
        self.assertEqual((rc, out), (1, ''), err)
        self.assertEqual(self.one_line(err), line)
        # Nothing attached: the target runs on, not stopped.
        self.assertEqual(proc_stat(self.target.pid)[0], 'S')

    def test_no_gdb_in_path(self):
        self.check(self.explain(env_without(('RETENTION_GDB',), PATH=self.empty)),
                   'retention: gdb not found in PATH: install it (ci/install-deps does; apt-get install gdb, '
                   'dnf install gdb) or name it with --gdb PATH')

    def test_gdb_named_nowhere(self):
        self.check(self.explain(env_without((), RETENTION_GDB='/no/such/gdb')), 'retention: gdb not found: /no/such/gdb')
        self.check(self.explain(env_without(('RETENTION_GDB',)), '--gdb', '/no/such/gdb'),
                   'retention: gdb not found: /no/such/gdb')


class StatmOnly(FaultTest):
    """No /proc/self/smaps_rollup: RSS from statm, no anonymous kB. The shim's bound is set on
    anonymous growth, so it is not judged: a skip saying why, not a pass on RSS."""

    def setUp(self):
        FaultTest.setUp(self)
        self.fx.write(os.path.join(self.fx.build, 'cases', 'statm_only'),
                      '#!%s -S\n%s' % (sys.executable, STATM_ONLY), 0o755)
        self.fx.shim()

    def run_shim(self, statm):
        self.fx.case('s', case_text(program='statm_only', cells='trim shim', env={'FAKE_STATM': statm}))
        self.fx.exp('s', GOOD_EXP)
        path = os.path.join(self.fx.root, 'out.json')
        rc, out, err = call(['run'] + self.fx.dirs() + ['--json', path, '--cell', 'shim', '-v'])
        with open(path) as f:
            doc = json.load(f)
        return rc, out, err, dict((x['cell'], x) for x in doc['results'])

    def test_the_shims_bound_is_not_judged_without_anonymous_kb(self):
        rc, out, err, by = self.run_shim('1')
        self.assertEqual(rc, 0, out + err)
        shim = by['shim']
        self.assertEqual(shim['status'], 'skip')
        self.assertIn('shim/trim not judged: needs anonymous kB from /proc/self/smaps_rollup, not reported for '
                      'shim baseline (rss_source statm)', shim['reason'])
        # The figure is still computed (from RSS) and reported, for information.
        self.assertAlmostEqual(shim['metrics']['shim_over_trim'], 1.0)
        c = shim['checks'][0]
        self.assertIsNone(c['ok'])
        self.assertIn('anonymous kB', c['na'])
        self.assertRegex(self.row(out, 's', 'shim'), r'skipped: shim/trim not judged: .*SKIP$')
        self.assertIn('    n/a   shim_over_trim <= 1.05', out)

    def test_with_anonymous_kb_the_same_figures_are_judged(self):
        rc, out, err, by = self.run_shim('0')
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(by['shim']['status'], 'pass')
        self.assertIs(by['shim']['checks'][0]['ok'], True)

    @unittest.skipUnless(HAVE_BUILD and os.path.isfile(NO_SMAPS),
                         'no build tree with the case programs and runner/libno_smaps_rollup.so')
    def test_real_programs_fall_back_to_statm(self):
        # The real array_control in its trim and shim cells with smaps_rollup unreadable
        # (tests/no_smaps_rollup.c, preloaded beside the shim in the shim cell).
        with open(os.path.join(REAL_CASES, 'array_control.case')) as f:
            text = f.read()
        shim_lib = paths.shim_library(BUILD)
        text += 'env.trim = LD_PRELOAD=%s\nenv.shim = LD_PRELOAD=%s:%s\n' % (NO_SMAPS, NO_SMAPS, shim_lib)
        self.fx.case('array_control', text)
        path = os.path.join(self.fx.root, 'real.json')
        rc, out, err = self.runner(['run', '--cases-dir', self.fx.cases, '--expected-dir', REAL_EXPECTED,
                                    '--build-dir', BUILD, '--cell', 'shim', '--json', path]).wait(300)
        self.assertIn(rc, (0, 1), out + err)
        self.assertNotIn('Traceback', err)
        with open(path) as f:
            by = dict((x['cell'], x) for x in json.load(f)['results'])
        for cell in ('trim', 'shim'):
            for name, ph in by[cell]['phases'].items():
                self.assertEqual((ph['rss_source'], ph['anon_kb']), ('statm', -1), (cell, name))
                self.assertGreater(ph['rss_kb'], 0)
        self.assertEqual(by['shim']['status'], 'skip', by['shim']['reason'])
        self.assertIn('needs anonymous kB', by['shim']['reason'])


if __name__ == '__main__':
    unittest.main()
