"""ctest tests (label gdb) of `retention explain` on real processes: the project's cases held at a
phase (--hold after_free), explained through the real gdb, then released (SIGUSR1) and checked to
exit 0, i.e. to have carried on normally.

  python3 runner/tests/gdb_explain.py --build-dir BUILD [TestClass ...]

Exits 77 (ctest SKIP_RETURN_CODE) when every selected test was skipped: no gdb, or ptrace not
allowed here (Yama, a container without SYS_PTRACE). Not named test_*.py: runner_units (unit
tests, no gdb, no build) does not pick it up."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(RUNNER_DIR)
RUNNER = os.path.join(RUNNER_DIR, 'retention')
sys.path.insert(0, RUNNER_DIR)

from retentionlib import cells as cellmod  # noqa: E402
from retentionlib import explain, platforminfo, runner  # noqa: E402
from retentionlib.casefile import load_case  # noqa: E402

BUILD_DIR = os.environ.get('RETENTION_BUILD_DIR') or os.path.join(REPO, 'build')
SKIP_CODE = 77
HOLD_TIMEOUT_S = 120
EXPLAIN_TIMEOUT_S = 300


def _skip_reason():
    import shutil
    if not shutil.which('gdb'):
        return 'gdb not installed (ci/install-deps installs it)'
    return explain.attach_blocker()


class Held(object):
    """A case program run with --hold PHASE: waits for the hold line, releases on demand."""

    def __init__(self, argv, env=None, hold='after_free'):
        self.argv = list(argv) + ['--hold', hold]
        e = dict(os.environ)
        for k in list(e):
            if k.startswith(('MALLOC_', 'GLIBC_TUNABLES', 'LD_PRELOAD')):
                del e[k]
        e.update(env or {})
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        self.phases = {}
        self.pid = None
        deadline = time.monotonic() + HOLD_TIMEOUT_S
        for raw in self.proc.stdout:
            line = raw.decode('utf-8', 'replace').strip()
            if line.startswith('{'):
                obj = json.loads(line)
                if 'hold' in obj:
                    self.pid = obj['pid']
                    break
                if 'phase' in obj:
                    self.phases[obj['phase']] = obj
            if time.monotonic() > deadline:
                break
        if self.pid is None:
            self.kill()
            raise AssertionError('%s never printed its hold line' % ' '.join(self.argv))

    def release(self, timeout=60):
        """SIGUSR1; returns the exit status (the case exits 0 after its last phase)."""
        os.kill(self.proc.pid, signal.SIGUSR1)
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError('%s did not finish after SIGUSR1' % ' '.join(self.argv))
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()

    def state(self):
        with open('/proc/%d/stat' % self.proc.pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0]


def run_explain(pid, *args):
    p = subprocess.run([sys.executable, RUNNER, 'explain', str(pid)] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=EXPLAIN_TIMEOUT_S)
    return p.returncode, p.stdout, p.stderr


def case_program(name):
    path = os.path.join(BUILD_DIR, 'cases', name)
    if not os.path.isfile(path):
        raise AssertionError('not built: %s (cmake --build %s)' % (path, BUILD_DIR))
    return path


class GdbCase(unittest.TestCase):
    def setUp(self):
        why = _skip_reason()
        if why:
            self.skipTest(why)
        self.held = []

    def tearDown(self):
        for h in getattr(self, 'held', ()):
            h.kill()

    def hold(self, program, args, **kw):
        h = Held([case_program(program)] + list(args), **kw)
        self.held.append(h)
        return h

    def explain_json(self, h, *args):
        rc, out, err = run_explain(h.pid, '--json', *args)
        if rc != 0 and 'Operation not permitted' in err:
            self.skipTest('ptrace not permitted here: %s' % err.strip())
        self.assertEqual(rc, 0, err)
        self.assertNotIn('Traceback', err)
        self.assertNotIn(h.state(), ('t', 'T'), 'explain left the process stopped')
        return json.loads(out)

    def assertCarriesOn(self, h):
        self.assertNotIn(h.state(), ('t', 'T'))
        self.assertEqual(h.release(), 0, 'the case did not exit 0 after explain')


class Retention(GdbCase):
    """The founding report's process after free: retention, naming the ~655 MB it freed."""

    def test_seed_after_free(self):
        h = self.hold('seed_std_list', ['--count', '10000'])
        doc = self.explain_json(h)
        self.assertEqual(doc['verdict'], explain.VERDICT_RETENTION, doc['why'])
        self.assertTrue(doc['allocator']['glibc'])
        # 10,000 x 64 KiB blocks freed = 655 MB, kept resident by glibc.
        self.assertGreater(doc['free_bytes'], 600e6)
        self.assertLess(doc['free_bytes'], 700e6)
        self.assertGreater(doc['free_resident_bytes'], 600e6)
        self.assertLess(doc['free_resident_bytes'], 700e6)
        self.assertLess(doc['live_bytes'], 10e6)
        # The text report says it too, with the figure.
        rc, out, err = run_explain(h.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn('verdict: allocator retention', out)
        self.assertRegex(out, r'free bytes held by malloc +6[0-9]{2} MB')
        self.assertRegex(out, r'\n  6[0-9]{2} MB of the 6[0-9]{2} MB RSS')
        self.assertCarriesOn(h)


class Control(GdbCase):
    """array_control after free gave its blocks back at free: no retention."""

    def test_array_control_after_free(self):
        h = self.hold('array_control', ['--count', '10000'])
        doc = self.explain_json(h)
        self.assertNotEqual(doc['verdict'], explain.VERDICT_RETENTION, doc['why'])
        self.assertEqual(doc['verdict'], explain.VERDICT_NONE, doc['why'])
        self.assertLess(doc['free_resident_bytes'], 16e6)
        self.assertCarriesOn(h)

    def test_array_control_at_peak_is_live(self):
        h = self.hold('array_control', ['--count', '10000'], hold='peak')
        doc = self.explain_json(h)
        self.assertEqual(doc['verdict'], explain.VERDICT_LIVE, doc['why'])
        self.assertGreater(doc['live_bytes'], 600e6)
        self.assertCarriesOn(h)


class NotGlibc(GdbCase):
    """The seed under jemalloc (the jemalloc cell's library): not glibc malloc."""

    def test_seed_under_jemalloc(self):
        ctx = runner.Context(REPO, BUILD_DIR, os.path.join(REPO, 'cases'), os.path.join(REPO, 'expected'),
                             platforminfo.detect())
        lib, why = cellmod.allocator_library('jemalloc')(ctx)
        if lib is None:
            self.skipTest(why)
        h = self.hold('seed_std_list', ['--count', '10000'], env={'LD_PRELOAD': lib})
        doc = self.explain_json(h)
        self.assertEqual(doc['verdict'], explain.VERDICT_NOT_GLIBC, doc['why'])
        self.assertEqual(doc['allocator']['name'], 'jemalloc')
        self.assertFalse(doc['allocator']['glibc'])
        # --trim does not touch another allocator's process
        doc = self.explain_json(h, '--trim')
        self.assertFalse(doc['trim']['called'])
        self.assertCarriesOn(h)


class Trim(GdbCase):
    """explain --trim brings the seed after free to the trim cell's after_trim figure (same
    machine, same moment), within 1.1x."""

    def test_trim_matches_the_trim_cell(self):
        ctx = runner.Context(REPO, BUILD_DIR, os.path.join(REPO, 'cases'), os.path.join(REPO, 'expected'),
                             platforminfo.detect())
        case = load_case(ctx.cases_dir, 'seed_std_list', REPO)
        result, failed = runner.measure_cell(ctx, case, cellmod.CELLS['trim'], {})
        self.assertFalse(failed, result['reason'])
        cell_after_trim = result['phases']['after_trim']['rss_kb'] * 1024
        h = self.hold('seed_std_list', case.args_for('args'))
        doc = self.explain_json(h, '--trim')
        t = doc['trim']
        self.assertTrue(t['called'])
        self.assertEqual(t['returned'], 1)
        self.assertGreater(t['rss_before_bytes'], 600e6)
        ratio = float(t['rss_after_bytes']) / cell_after_trim
        self.assertLessEqual(ratio, 1.1, 'explain --trim: %d B, trim cell after_trim: %d B' % (
            t['rss_after_bytes'], cell_after_trim))
        # the estimate it printed before trimming is what trim gave back, roughly
        self.assertGreater(t['released_bytes'], 0.8 * doc['trimmable_bytes'])
        # a second look: the rest is pinned by the live nodes, trim cannot do more
        doc2 = self.explain_json(h)
        self.assertLess(doc2['trimmable_bytes'], 0.1 * doc['trimmable_bytes'])
        self.assertCarriesOn(h)


class Errors(GdbCase):
    """Real gdb on bad targets: one line, exit 1, nothing left stopped."""

    def assertOneLine(self, rc, err, *words):
        self.assertEqual(rc, 1, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith('retention: '), err)
        self.assertTrue(any(w in lines[0] for w in words), err)

    def test_no_such_process(self):
        p = subprocess.Popen(['true'])
        p.wait()
        rc, out, err = run_explain(p.pid)
        self.assertOneLine(rc, err, 'no process %d' % p.pid)

    def test_process_exits_meanwhile(self):
        h = self.hold('seed_std_list', ['--count', '1000'])
        p = subprocess.Popen([sys.executable, RUNNER, 'explain', str(h.pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
        # killed as soon as gdb has attached
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            with open('/proc/%d/status' % h.pid) as f:
                if re.search(r'^TracerPid:\s*[1-9]', f.read(), re.M):
                    break
            time.sleep(0.005)
        h.proc.kill()
        out, err = p.communicate(timeout=EXPLAIN_TIMEOUT_S)
        h.proc.wait()
        self.assertOneLine(p.returncode, err, 'exited while gdb was attached')

    def test_lock_held_by_another_thread_times_out_and_undoes_the_call(self):
        p = subprocess.Popen([sys.executable, os.path.join(HERE, 'data', 'lock_target.py')],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            hold = json.loads(p.stdout.readline().decode())
            rc, out, err = run_explain(hold['pid'], '--timeout', '3')
            if 'Operation not permitted' in err:
                self.skipTest('ptrace not permitted here')
            self.assertOneLine(rc, err, 'waiting for a lock and was undone')
            with open('/proc/%d/stat' % p.pid) as f:
                self.assertNotIn(f.read().rsplit(')', 1)[1].split()[0], ('t', 'T'))
            os.kill(p.pid, signal.SIGUSR1)
            # it lets the lock go and mallocs again: it would hang if the undone call kept the lock
            rest, _ = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, rest)
            self.assertIn(b'"released": true', rest)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()


def main(argv=None):
    global BUILD_DIR
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--build-dir', default=BUILD_DIR)
    ap.add_argument('tests', nargs='*', help='test classes or Class.test_method (default: all)')
    args = ap.parse_args(argv)
    BUILD_DIR = os.path.abspath(args.build_dir)
    os.environ['RETENTION_BUILD_DIR'] = BUILD_DIR
    loader = unittest.defaultTestLoader
    module = sys.modules[__name__]
    if args.tests:
        suite = unittest.TestSuite(loader.loadTestsFromName(t, module) for t in args.tests)
    else:
        suite = loader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun and len(result.skipped) == result.testsRun:
        for test, why in result.skipped:
            print('SKIP %s: %s' % (test.id(), why))
        return SKIP_CODE
    return 0


if __name__ == '__main__':
    sys.exit(main())
