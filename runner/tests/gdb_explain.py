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
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER_DIR = os.path.dirname(HERE)
RUNNER = os.path.join(RUNNER_DIR, 'retention')
sys.path.insert(0, RUNNER_DIR)

from retentionlib import cells as cellmod  # noqa: E402
from retentionlib import paths, platforminfo, promtext, runner, scrubenv  # noqa: E402
from retentionlib.casefile import load_case  # noqa: E402
from retentionlib.explain import procfs, ptrace, session, verdict, watch  # noqa: E402
from retentionlib.explain.gdb import GdbSession  # noqa: E402

REPO = paths.repo_dir()
BUILD_DIR = paths.build_dir()
SKIP_CODE = 77
HOLD_TIMEOUT_S = 120
EXPLAIN_TIMEOUT_S = 300


def _skip_reason():
    if not shutil.which('gdb'):
        return 'gdb not installed (ci/install-deps installs it)'
    return ptrace.attach_blocker()


class Held(object):
    """A case program run with --hold PHASE: waits for the hold line, releases on demand."""

    def __init__(self, argv, env=None, hold='after_free'):
        self.argv = list(argv) + (['--hold', hold] if hold else [])
        e = dict(scrubenv.scrubbed_env())
        e.update(env or {})
        # a process group of its own: kill() ends it and anything it started
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                                     start_new_session=True)
        self.phases = {}
        self.pid = None
        deadline = time.monotonic() + HOLD_TIMEOUT_S
        for raw in self.proc.stdout:
            line = raw.decode('utf-8', 'replace').strip()
            if line.startswith('{'):
                obj = json.loads(line)
                if 'hold' in obj:
                    self.pid = obj['pid']
                    self.hold_line = obj
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
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
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
    path = paths.case_program(BUILD_DIR, name)
    if not os.path.isfile(path):
        raise AssertionError('not built: %s (cmake --build %s)' % (path, BUILD_DIR))
    return path


def test_program():
    """runner/tests/data/explain_target.c as built by runner/CMakeLists.txt."""
    path = os.path.join(BUILD_DIR, 'runner', 'explain_target')
    if not os.path.isfile(path):
        raise AssertionError('not built: %s (cmake --build %s --target explain_target)' % (path, BUILD_DIR))
    return path


def calls_in(transcript):
    """The commands of a gdb transcript that make a call in the target."""
    return [c for c in transcript if c.startswith('-data-evaluate-expression') and ')(' in c]


def allocator(name):
    ctx = runner.Context(REPO, BUILD_DIR, paths.cases_dir(), paths.expected_dir(), platforminfo.detect())
    return cellmod.allocator_library(name)(ctx)


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

    def hold_target(self, mode, *args, **kw):
        h = Held([test_program(), '--mode', mode] + list(args), hold=None, **kw)
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
    """The founding report's process after free: retention, naming the ~655 MB it freed, read
    from the heap without a call, and what pins the rest."""

    def test_seed_after_free(self):
        h = self.hold('seed_std_list', ['--count', '10000'])
        doc = self.explain_json(h)
        self.assertEqual(doc['verdict'], verdict.VERDICT_RETENTION, doc['why'])
        self.assertTrue(doc['allocator']['glibc'])
        self.assertEqual(doc['heap_walk']['source'], 'heap walk')
        self.assertEqual(doc['calls'], [])
        # 10,000 x 64 KiB blocks freed = 655 MB, kept resident by glibc.
        self.assertGreater(doc['free_bytes'], 600e6)
        self.assertLess(doc['free_bytes'], 700e6)
        self.assertGreater(doc['free_resident_bytes'], 600e6)
        self.assertLess(doc['free_resident_bytes'], 700e6)
        self.assertLess(doc['live_bytes'], 10e6)
        # 10,000 list nodes of 24 B (32 B chunks), each alone between two freed blocks: each keeps
        # its page, one more where a node's page also holds the next block's header (up to 2%)
        g = doc['pinned'][0]
        self.assertEqual((g['chunk_size'], g['state'], g['count']), (32, 'in use', 10000))
        self.assertGreaterEqual(g['pages'], 10000)
        self.assertLessEqual(g['pages'], 10200)
        self.assertIn('heap pointers', g['points_to'])
        a = doc['mmap_advice']
        self.assertTrue(a['applies'], a['why'])
        self.assertEqual(a['threshold'], 65536)
        # The text report says it too, with the figures.
        rc, out, err = run_explain(h.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn('verdict: allocator retention', out)
        self.assertRegex(out, r'free bytes held by malloc +6[0-9]{2} MB')
        self.assertRegex(out, r'\n  6[0-9]{2} MB of the 6[0-9]{2} MB anonymous RSS')
        self.assertRegex(out, r'10,000 chunks of 32 B pin 10,[0-9]{3} pages')
        self.assertCarriesOn(h)

    def test_walk_agrees_with_malloc_info(self):
        """The same stop read two ways: the walk's per-arena figures are malloc_info's."""
        h = self.hold('thread_arenas', ['--threads', '4', '--count', '10000'])
        snap = session.Snapshot(h.pid)
        sess = GdbSession(shutil.which('gdb'), h.pid)
        try:
            sess.attach()
            stop = session.Stop(sess, h.pid, lambda maps: session.safety.AllocatorCode('none'))
            lib = session.glibc.libc_path(stop.mappings)
            elf = session.elfsyms.load(lib, h.pid)
            walked, hw = session._read_glibc(sess, stop, snap, lib, elf)
            split = session.read_rss_split(h.pid)
            info = session._malloc_info_figures(sess, stop, snap, lib, elf, split)
            main = sess.evaluate('(unsigned long)&main_arena')
        finally:
            sess.close()
        self.assertEqual(len(walked['arenas']), 5)
        for w, m in zip(walked['arenas'][1:], info['arenas'][1:]):
            self.assertEqual(w['size_bytes'], m['size_bytes'])
            # malloc_info adds up the binned chunks' size fields with their PREV_INUSE bit: one
            # byte too many per chunk; the walk masks the flags
            extra = m['free_bytes'] - w['free_bytes']
            self.assertGreaterEqual(extra, 0, (w, m))
            self.assertLessEqual(extra, m['free_chunks'], (w, m))
            self.assertEqual(m['in_use_bytes'] + extra, w['in_use_bytes'])
        # the main arena: malloc_info's own calls allocate there first (a 16-byte block and the
        # memory stream's buffer, under 16 KiB)
        w, m = walked['arenas'][0], info['arenas'][0]
        self.assertEqual(w['size_bytes'], m['size_bytes'])
        self.assertGreaterEqual(m['in_use_bytes'] - w['in_use_bytes'], 0)
        self.assertLess(m['in_use_bytes'] - w['in_use_bytes'], 16384)
        self.assertEqual(walked['mmapped_bytes'], info['mmapped_bytes'])
        if main is not None and main.isdigit():  # gdb knows main_arena only with glibc's debug info
            self.assertEqual(walked['heap_walk']['main_arena'], '%x' % int(main))
        self.assertCarriesOn(h)


class Control(GdbCase):
    """array_control after free gave its blocks back at free: no retention."""

    def test_array_control_after_free(self):
        h = self.hold('array_control', ['--count', '10000'])
        doc = self.explain_json(h)
        self.assertNotEqual(doc['verdict'], verdict.VERDICT_RETENTION, doc['why'])
        self.assertEqual(doc['verdict'], verdict.VERDICT_NONE, doc['why'])
        self.assertLess(doc['free_resident_bytes'], 16e6)
        self.assertCarriesOn(h)

    def test_array_control_at_peak_is_live(self):
        h = self.hold('array_control', ['--count', '10000'], hold='peak')
        doc = self.explain_json(h)
        self.assertEqual(doc['verdict'], verdict.VERDICT_LIVE, doc['why'])
        self.assertGreater(doc['live_bytes'], 600e6)
        self.assertCarriesOn(h)


class NotGlibc(GdbCase):
    """The seed under jemalloc, tcmalloc and mimalloc: their own figures through their API, and
    --trim calls their own release, measured as the RSS drop."""

    def preloaded(self, name):
        lib, why = allocator(name)
        if lib is None:
            self.skipTest(why)
        return self.hold('seed_std_list', ['--count', '10000'], env={'LD_PRELOAD': lib})

    def check_release(self, name, key):
        h = self.preloaded(name)
        doc = self.explain_json(h)
        self.assertEqual(doc['allocator']['name'], name)
        self.assertFalse(doc['allocator']['glibc'])
        figs = doc['allocator_figures']
        # the seed holds 10,000 nodes of 24 B: well under 1 MB live
        self.assertLess(figs['allocated_bytes'], 1e6)
        self.assertEqual(doc['verdict'], verdict.VERDICT_RETENTION, doc['why'])
        doc = self.explain_json(h, '--trim')
        t = doc['trim']
        self.assertTrue(t['called'])
        releasable = doc['allocator_figures'][key]
        self.assertGreater(releasable, 100e6)
        # measured while gdb holds the process: the drop is what the allocator said it could
        # release, within 5% (pages the release call touches itself, metadata it frees with them)
        self.assertGreater(t['released_bytes'], 0.95 * releasable)
        self.assertLess(t['released_bytes'], 1.05 * releasable)
        self.assertCarriesOn(h)

    def test_seed_under_jemalloc(self):
        self.check_release('jemalloc', 'releasable_bytes')

    def test_seed_under_tcmalloc(self):
        self.check_release('tcmalloc', 'releasable_bytes')

    def test_seed_under_jemalloc_background_thread(self):
        # jemalloc's own thread sleeps in its code between purges: that is no reason not to call
        lib, why = allocator('jemalloc')
        if lib is None:
            self.skipTest(why)
        h = self.hold('seed_std_list', ['--count', '10000'], env={'LD_PRELOAD': lib,
                                                                  'MALLOC_CONF': 'background_thread:true'})
        doc = self.explain_json(h, '--trim')
        self.assertGreaterEqual(doc['stops']['threads'], 2)
        t = doc['trim']
        self.assertTrue(t['called'], t)
        releasable = doc['allocator_figures']['releasable_bytes']
        # the background thread may have purged much already: the drop is what is left, within 5%
        # and 1 MiB (jemalloc's metadata pages freed with it)
        self.assertLessEqual(abs(t['released_bytes'] - releasable), 0.05 * releasable + (1 << 20))
        self.assertCarriesOn(h)

    def test_seed_under_mimalloc(self):
        h = self.preloaded('mimalloc')
        doc = self.explain_json(h, '--trim')
        self.assertEqual(doc['allocator']['name'], 'mimalloc')
        self.assertIn('commit_bytes', doc['allocator_figures'])
        t = doc['trim']
        self.assertTrue(t['called'])
        # the seed freed 99% of what it allocated: mi_collect gives most of the RSS back
        self.assertGreater(t['released_bytes'], 0.5 * t['rss_before_bytes'])
        self.assertCarriesOn(h)


class Trim(GdbCase):
    """explain --trim brings the seed after free to the trim cell's after_trim figure (same
    machine, same moment), within 1.1x; the walk's would_return_bytes is what it returned."""

    def test_trim_matches_the_trim_cell(self):
        ctx = runner.Context(REPO, BUILD_DIR, paths.cases_dir(), paths.expected_dir(),
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
        # what the walk said a trim returns is what it returned, within 5%
        self.assertGreater(t['released_bytes'], 0.95 * doc['would_return_bytes'])
        self.assertLess(t['released_bytes'], 1.05 * doc['would_return_bytes'])
        # a second look: the rest is pinned by the live nodes, trim cannot do more
        doc2 = self.explain_json(h)
        self.assertLess(doc2['would_return_bytes'], 0.01 * doc['would_return_bytes'])
        self.assertGreater(doc2['floor_bytes'], 0.9 * doc['floor_bytes'])
        self.assertCarriesOn(h)

    def test_thread_arenas(self):
        h = self.hold('thread_arenas', ['--threads', '4', '--count', '10000'])
        doc = self.explain_json(h, '--trim')
        self.assertEqual(doc['verdict'], verdict.VERDICT_RETENTION, doc['why'])
        rows = [a for a in doc['arenas'] if a['kind'] == 'thread']
        self.assertEqual(len(rows), 4)
        for r in rows:
            # each worker freed 2,500 x 64 KiB = 164 MB between its nodes
            self.assertGreater(r['would_return_bytes'], 140e6)
        g = doc['pinned'][0]
        self.assertEqual((g['chunk_size'], g['state']), (32, 'in use'))
        # 10,000 nodes over 4 arenas; the last nodes of each heap sit next to its end, not
        # between two freed blocks (up to 5% fewer), a node's page may hold a block header too
        self.assertGreater(g['pages'], 9500)
        self.assertLess(g['pages'], 10300)
        t = doc['trim']
        self.assertGreater(t['released_bytes'], 0.95 * doc['would_return_bytes'])
        self.assertLess(t['released_bytes'], 1.05 * doc['would_return_bytes'])
        self.assertCarriesOn(h)


class InMalloc(GdbCase):
    """A target stopped inside _int_malloc (one thread; two, the blocked one holding the arena's
    lock) is never called into: explain stops it again a few times, then refuses, saying which
    thread is where, and leaves it untouched."""

    def check(self, threads):
        h = self.hold_target('in-malloc', '--threads', str(threads))
        tid = h.hold_line['tid']
        # wait until the thread sits in the write-protected page
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open('/proc/%d/task/%d/wchan' % (h.pid, tid)) as f:
                if 'userfault' in f.read():
                    break
            time.sleep(0.01)
        else:
            self.skipTest('the target did not block in malloc (userfaultfd write protection not available)')
        for args in ((), ('--trim',)):
            rc, out, err = run_explain(h.pid, *args)
            self.assertEqual(rc, 1, out + err)
            line = err.strip()
            self.assertEqual(len(line.splitlines()), 1, err)
            self.assertIn('thread %d (tid %d) is in ' % (1 if threads == 1 else 2, tid), line)
            self.assertIn('malloc', line)
            self.assertIn('at each of %d stops' % session.STOP_TRIES, line)
            self.assertIn('nothing was called', line)
            self.assertNotIn(h.state(), ('t', 'T'))
        # the same in process, with gdb's transcript: not one call
        said = []
        with self.assertRaises(session.ExplainError):
            session.explain(h.pid, trim=True, transcript=said)
        self.assertGreater(len([c for c in said if c.startswith('-target-attach')]), 1)
        self.assertEqual(calls_in(said), [])
        self.assertEqual(h.release(), 0, 'the target did not finish its malloc after explain')

    def test_single_thread(self):
        self.check(1)

    def test_two_threads(self):
        self.check(2)


class Shm(GdbCase):
    """Shared memory resident beside freed heap memory: allocator retention, judged on the
    anonymous RSS, with the shared memory shown apart by name."""

    def test_shared_buffers_and_freed_heap(self):
        h = self.hold_target('shm', '--shm-mb', '256', '--heap-mb', '128')
        doc = self.explain_json(h)
        # 2 x 256 MiB touched, POSIX and anonymous shared memory
        self.assertGreater(doc['rss_shmem_bytes'], 0.95 * 2 * 256 * 2 ** 20)
        names = [s['name'] for s in doc['shared_memory']]
        self.assertIn('anonymous shared memory (mmap MAP_SHARED|MAP_ANONYMOUS)', names)
        self.assertTrue(any('/dev/shm/retention-explain-%d' % h.pid in n for n in names), names)
        # 128 MB freed between live nodes: a quarter of the RSS only, most of the anonymous RSS
        self.assertLess(doc['free_resident_bytes'], 0.25 * doc['rss_bytes'])
        self.assertEqual(doc['verdict'], verdict.VERDICT_RETENTION, doc['why'])
        self.assertIn('anonymous RSS', doc['why'])
        self.assertIn('shared memory 5', doc['why'])
        self.assertCarriesOn(h)


class Watch(GdbCase):
    """explain --watch tells churn from a leak within 30 s."""

    def test_churn(self):
        h = self.hold_target('churn', '--live-mb', '64', '--period-us', '200')
        doc = self.explain_json(h, '--watch', '20')
        w = doc['watch']
        self.assertEqual(w['verdict'], watch.VERDICT_CHURN, w['why'])
        self.assertGreaterEqual(len(w['readings']), 4)
        self.assertCarriesOn(h)

    def test_leak(self):
        h = self.hold_target('leak', '--rate-kb', '1000')
        doc = self.explain_json(h, '--watch', '20')
        w = doc['watch']
        self.assertEqual(w['verdict'], watch.VERDICT_LEAK, w['why'])
        # 1 MB/s leaked (1000 KiB/s): the slope is that within a quarter (readings take time)
        self.assertGreater(w['live_slope_bytes_per_s'], 0.75 * 1024000)
        self.assertLess(w['live_slope_bytes_per_s'], 1.25 * 1024000)
        self.assertCarriesOn(h)


class Shim(GdbCase):
    """explain on a process with libtrimshim preloaded: its state and what it did, from its
    TRIMSHIM_STATS file (the pinned target frees 64 KiB blocks between live nodes, then waits in
    pause(), where the shim trims); with the shim but no TRIMSHIM_STATS; without the shim; with a
    malformed statistics file."""

    def setUp(self):
        GdbCase.setUp(self)
        self.dir = tempfile.mkdtemp(prefix='retention-explain-shim-')
        self.addCleanup(shutil.rmtree, self.dir, True)

    def shim(self):
        path = paths.shim_library(BUILD_DIR)
        if not os.path.isfile(path):
            raise AssertionError('not built: %s (cmake --build %s --target trimshim)' % (path, BUILD_DIR))
        return path

    def stats(self, path, timeout=30):
        """The file's parse once it shows a trim (the shim trims ~1 s after the free)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                try:
                    e = promtext.parse(open(path, 'rb').read(), path)
                except (promtext.PromError, IOError, OSError):
                    e = None   # caught between the shim's rename and our open: read again
                if e is not None and sum(s.value for s in e.find('trimshim_trims_total')) >= 1:
                    return e
            time.sleep(0.1)
        self.fail('%s never showed a trim within %d s' % (path, timeout))

    def test_running_with_its_statistics(self):
        env = {'LD_PRELOAD': self.shim(), 'TRIMSHIM_STATS': os.path.join(self.dir, 'trimshim-%p.prom')}
        h = self.hold_target('pinned', '--count', '2000', env=env)
        path = os.path.join(self.dir, 'trimshim-%d.prom' % h.pid)
        before = self.stats(path)
        doc = self.explain_json(h)
        after = promtext.parse(open(path, 'rb').read(), path)
        trims = sum(s.value for s in after.find('trimshim_trims_total'))
        # the shim may trim again meanwhile; then the figure is either file's
        self.assertEqual(trims, sum(s.value for s in before.find('trimshim_trims_total')),
                         'the shim trimmed again during explain: the figures cannot be compared')
        sh = doc['shim']
        self.assertTrue(sh['loaded'])
        self.assertEqual(os.path.realpath(sh['library']), os.path.realpath(self.shim()))
        self.assertEqual(sh['stats']['file'], path)
        self.assertNotIn('problem', sh['stats'])
        self.assertEqual(sh['state'], 'running')
        self.assertEqual(sh['state_source'], 'its statistics file')
        self.assertEqual(sh['mode'], 'idle-points')
        self.assertEqual(sh['trims']['total'], trims)
        self.assertGreaterEqual(sh['trims']['quiet'], 1)
        self.assertEqual(sh['returned_bytes'], after.value('trimshim_returned_bytes_total'))
        self.assertEqual(sh['heap_used_bytes'], after.value('trimshim_heap_used_bytes'))
        self.assertLess(sh['stats']['age_seconds'], 120)
        # explain suggests no shim to a process that has it
        self.assertFalse([fx for fx in doc['fixes'] if 'LD_PRELOAD=' in fx and 'libtrimshim' in fx], doc['fixes'])
        rc, out, err = run_explain(h.pid)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'\n  trim shim \(libtrimshim\) +running, at the program\'s waits')
        self.assertRegex(out, r'\n    trims +%d \(quiet %d, busy %d\), returned ' % (
            trims, after.value('trimshim_trims_total', kind='quiet'), after.value('trimshim_trims_total', kind='busy')))
        self.assertIn('statistics', out)
        self.assertIn(path + ', written ', out)
        self.assertCarriesOn(h)

    def test_loaded_without_statistics(self):
        h = self.hold_target('pinned', '--count', '200', env={'LD_PRELOAD': self.shim()})
        doc = self.explain_json(h)
        sh = doc['shim']
        self.assertTrue(sh['loaded'])
        self.assertFalse(sh['stats']['exported'])
        self.assertIsNone(sh['state'])
        rc, out, err = run_explain(h.pid)
        self.assertEqual(rc, 0, err)
        lines = [ln for ln in out.splitlines() if 'trim shim' in ln or 'not exported' in ln]
        self.assertEqual(len(lines), 2, out)
        self.assertIn('not exported: start the program with TRIMSHIM_STATS=', lines[1])
        self.assertCarriesOn(h)

    def test_without_the_shim_nothing_is_said(self):
        h = self.hold_target('pinned', '--count', '200')
        doc = self.explain_json(h)
        self.assertEqual(doc['shim'], {'loaded': False})
        rc, out, err = run_explain(h.pid)
        self.assertEqual(rc, 0, err)
        self.assertNotIn('shim (libtrimshim)', out)
        self.assertNotIn('TRIMSHIM', out)
        self.assertCarriesOn(h)

    def test_a_malformed_file_is_one_line(self):
        # The directory does not exist when the process starts: the shim refuses the path and
        # never writes there, so the file made afterwards is the one explain reads.
        stats_dir = os.path.join(self.dir, 'later')
        env = {'LD_PRELOAD': self.shim(), 'TRIMSHIM_STATS': os.path.join(stats_dir, 'trimshim-%p.prom')}
        h = self.hold_target('pinned', '--count', '200', env=env)
        os.mkdir(stats_dir)
        path = os.path.join(stats_dir, 'trimshim-%d.prom' % h.pid)
        with open(path, 'w') as f:
            f.write('# TYPE trimshim_info gauge\ntrimshim_info{pid="%d"} one\n' % h.pid)
        doc = self.explain_json(h)
        self.assertEqual(doc['shim']['stats']['problem'], "%s:2: bad value 'one' for trimshim_info" % path)
        self.assertIn(doc['verdict'], (verdict.VERDICT_RETENTION, verdict.VERDICT_LIVE, verdict.VERDICT_NONE))
        rc, out, err = run_explain(h.pid)
        self.assertEqual(rc, 0, err)
        self.assertEqual([ln for ln in out.splitlines() if path in ln],
                         ['  %-34s %s' % ('  statistics', doc['shim']['stats']['problem'])])
        self.assertIn('\nverdict: ', out)
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
        self.assertOneLine(p.returncode, err, 'exited while gdb was attached', 'exited while explain')

    def test_lock_held_by_another_thread_is_not_called_into(self):
        """A thread inside malloc_stats holds the main arena's lock (blocked writing to a full
        pipe): the heap is read all the same, --trim is refused, and the process carries on."""
        p = subprocess.Popen([sys.executable, os.path.join(HERE, 'data', 'lock_target.py')],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            hold = json.loads(p.stdout.readline().decode())
            rc, out, err = run_explain(hold['pid'], '--trim')
            if 'Operation not permitted' in err:
                self.skipTest('ptrace not permitted here')
            self.assertOneLine(rc, err, 'not called: thread 2')
            self.assertIn('malloc_stats', err)
            self.assertIn('verdict: ', out)
            with open('/proc/%d/stat' % p.pid) as f:
                self.assertNotIn(f.read().rsplit(')', 1)[1].split()[0], ('t', 'T'))
            os.kill(p.pid, signal.SIGUSR1)
            # it lets the lock go and mallocs again
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
