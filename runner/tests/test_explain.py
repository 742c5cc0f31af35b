"""retention explain without gdb: parsing (malloc_info XML, smaps, heap_info in memory) on samples
stored from real held cases (tests/data/explain/), the verdict on those and on synthetic figures,
and the command's error paths with a fake gdb (tests/data/fake_gdb.py). The real gdb is exercised
by tests/gdb_explain.py (ctest label gdb)."""

import base64
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from retentionlib import explain as ex

from .helpers import DATA, call

SAMPLES = os.path.join(DATA, 'explain')
MB = 1000 * 1000


def sample(name, ext):
    with open(os.path.join(SAMPLES, '%s.%s' % (name, ext))) as f:
        return f.read()


def recorded_reader(name):
    """read(addr, size) answering from the reads recorded from the real process."""
    path = os.path.join(SAMPLES, name + '.mem.json')
    mem = {}
    if os.path.exists(path):
        with open(path) as f:
            mem = json.load(f)

    def read(addr, size):
        v = mem.get('%x:%d' % (addr, size))
        return base64.b64decode(v) if v is not None else None
    return read


def sample_figures(name):
    """What explain computes for a stored sample: (figures, verdict, why, fixes)."""
    maps = ex.parse_maps(sample(name, 'smaps'))
    rollup = ex.parse_kb_fields(sample(name, 'rollup'))
    read = recorded_reader(name)
    heaps = ex.find_heaps(maps, read)
    groups = ex.arena_groups(heaps)
    order = ex.order_arenas(groups, read)
    main = sum(m.rss for m in maps if m.path == '[heap]')
    f = ex.figures(ex.parse_malloc_info(sample(name, 'xml')), groups, order, main, rollup['Rss'],
                   rollup['Anonymous'])
    verdict, why, fixes = ex.judge(f, 1234, shim='/x/libtrimshim.so')
    return f, verdict, why, fixes


class Proc(unittest.TestCase):
    def test_stat_state_with_odd_comm(self):
        self.assertEqual(ex.parse_stat_state('42 (a) b (c)) S 1 42 42 0 -1'), 'S')
        self.assertEqual(ex.parse_stat_state('42 (x) t 1'), 't')

    def test_stop_pending(self):
        self.assertTrue(ex.stop_pending({'SigPnd': '0000000000000000', 'ShdPnd': '0000000000040000'}))
        self.assertTrue(ex.stop_pending({'SigPnd': '0000000000040100'}))
        self.assertFalse(ex.stop_pending({'SigPnd': '0000000000000100', 'ShdPnd': '0000000000080000'}))
        self.assertFalse(ex.stop_pending({}))

    def test_status_and_rollup(self):
        st = ex.parse_status('Name:\tx\nTgid:\t42\nTracerPid:\t0\nCapEff:\t000001ffffffffff\n')
        self.assertEqual(st['Tgid'], '42')
        self.assertEqual(ex.cap_effective('CapEff:\t0000000000080000\n'), 1 << 19)
        r = ex.parse_kb_fields(sample('seed_after_free', 'rollup'))
        self.assertGreater(r['Rss'], 600 * MB)
        self.assertIn('Anonymous', r)

    def test_smaps(self):
        maps = ex.parse_maps(sample('seed_after_free', 'smaps'))
        heap = [m for m in maps if m.path == '[heap]']
        self.assertEqual(len(heap), 1)
        self.assertGreater(heap[0].rss, 600 * MB)
        self.assertFalse(heap[0].anonymous)  # named: not a candidate thread heap
        libc = ex.libc_path(maps)
        self.assertTrue(libc.endswith('/libc.so.6'), libc)
        lo, hi = ex.object_range(maps, libc)
        self.assertLess(lo, hi)
        self.assertEqual(ex.object_of(lo + 1, maps), libc)
        self.assertIsNone(ex.object_of(1, maps))

    def test_maps_lines(self):
        maps = ex.parse_maps('7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n'
                             'Rss:                 132 kB\n'
                             '55d0-55e0 r-xp 00001000 fe:00 12 /usr/bin/my prog (deleted)\n')
        self.assertTrue(maps[0].anonymous)
        self.assertEqual(maps[0].rss, 132 * 1024)
        self.assertEqual(maps[1].path, '/usr/bin/my prog (deleted)')
        self.assertEqual(ex.libc_path(maps, '/usr/bin/my prog'), '/usr/bin/my prog (deleted)')
        self.assertEqual(ex.libc_path(ex.parse_maps('1-2 r-xp 0 fe:00 1 /lib64/libc-2.17.so\n')),
                         '/lib64/libc-2.17.so')

    def test_allocator_names(self):
        self.assertEqual(ex.allocator_name('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'), 'jemalloc')
        self.assertEqual(ex.allocator_name('/usr/lib/libtcmalloc_minimal.so.4.5.10'), 'tcmalloc')
        self.assertEqual(ex.allocator_name('/opt/app/libfoo.so'), 'libfoo.so')


class MallocInfo(unittest.TestCase):
    def test_seed(self):
        info = ex.parse_malloc_info(sample('seed_after_free', 'xml'))
        self.assertEqual(len(info['arenas']), 1)
        a = info['arenas'][0]
        self.assertEqual(a['nr'], 0)
        self.assertGreater(a['free_bytes'], 650 * MB)
        self.assertLess(a['in_use'], 1 * MB)
        self.assertEqual(a['in_use'], a['system'] - a['free_bytes'])
        self.assertEqual(info['totals']['mmap_bytes'], 0)
        self.assertTrue(any(c > 9000 for _, _, _, c in a['sizes']))

    def test_thread_arenas(self):
        info = ex.parse_malloc_info(sample('thread_arenas_after_free', 'xml'))
        self.assertEqual([a['nr'] for a in info['arenas']], [0, 1, 2, 3, 4])
        self.assertEqual([a['subheaps'] for a in info['arenas'][1:]], [3, 3, 3, 3])
        self.assertIsNone(info['arenas'][0]['subheaps'])

    def test_bad_xml(self):
        for text, msg in (('<malloc><heap nr="0"', 'not XML'), ('<free/>', 'expected <malloc>'),
                          ('<malloc version="1"></malloc>', 'no <heap>'),
                          ('<malloc><heap nr="0"><system type="current" size="x"/></heap></malloc>', 'bad size'),
                          ('<malloc><heap nr="0"></heap></malloc>', 'without <system')):
            with self.assertRaises(ex.ExplainError) as c:
                ex.parse_malloc_info(text)
            self.assertIn(msg, str(c.exception))


def fake_memory(word=8):
    """Two thread arenas, the first with two heaps, plus an impostor mapping, in a dict memory.
    Returns (mappings, read, arenas in list order)."""
    hmax = ex.heap_max_size(word)
    base = 0x7f0000000000
    mem = {}

    def put(addr, *words):
        mem[addr] = struct.pack('<%dQ' % len(words), *words)
    h1, h2, h3, bogus = base, base + hmax, base + 2 * hmax, base + 3 * hmax
    a1, a2 = h1 + 0x30, h3 + 0x30
    put(h1, a1, 0, 0x200000, 0x200000)
    put(h2, a1, h1, 0x100000, 0x180000)
    put(h3, a2, 0, 0x300000, 0x300000)
    put(bogus, 12345, 0, 0x1000, 0x1000)  # not an arena heap: ar_ptr points nowhere
    main_arena = 0x7f9999000000
    # malloc_state: next at word k, system_mem at k + 3, max at k + 4 (k differs per version)
    k = 270
    for a, nxt, size in ((a2, a1, 0x300000), (a1, main_arena, 0x300000)):
        w = [0] * 512
        w[k], w[k + 3], w[k + 4] = nxt, size, size
        w[5] = size  # a decoy: the right value at a place where the chain does not hold
        mem[a] = struct.pack('<512Q', *w)
    text = ''
    for start, rw, rss in ((h1, 0x200000, 0x180000), (h2, 0x180000, 0x100000), (h3, 0x300000, 0x2f0000),
                           (bogus, 0x1000, 0x1000)):
        text += '%x-%x rw-p 00000000 00:00 0 \nRss: %d kB\n' % (start, start + rw, rss // 1024)
        text += '%x-%x ---p 00000000 00:00 0 \nRss: 0 kB\n' % (start + rw, start + hmax)

    def read(addr, size):
        for start, data in mem.items():
            if start <= addr and addr + size <= start + len(data):
                return data[addr - start:addr - start + size]
        return None
    return ex.parse_maps(text), read, [a2, a1]


class Heaps(unittest.TestCase):
    def test_recorded_thread_arenas(self):
        maps = ex.parse_maps(sample('thread_arenas_after_free', 'smaps'))
        read = recorded_reader('thread_arenas_after_free')
        heaps = ex.find_heaps(maps, read)
        self.assertEqual(len(heaps), 12)
        groups = ex.arena_groups(heaps)
        self.assertEqual(sorted(g['heaps'] for g in groups.values()), [3, 3, 3, 3])
        info = ex.parse_malloc_info(sample('thread_arenas_after_free', 'xml'))
        self.assertEqual(sorted(g['size'] for g in groups.values()),
                         sorted(a['system'] for a in info['arenas'][1:]))
        order = ex.order_arenas(groups, read)
        self.assertEqual(sorted(order), sorted(groups))
        # malloc_info's arena 1 is the newest (main_arena.next), which is not the lowest address here
        self.assertNotEqual(order, sorted(order))

    def test_synthetic_heaps_and_order(self):
        maps, read, order = fake_memory()
        heaps = ex.find_heaps(maps, read)
        self.assertEqual(len(heaps), 3)  # the impostor is not a heap
        groups = ex.arena_groups(heaps)
        self.assertEqual([(g['heaps'], g['size']) for g in groups.values()], [(2, 0x300000), (1, 0x300000)])
        self.assertEqual(list(groups.values())[0]['resident'], 0x180000 + 0x100000)
        self.assertEqual(ex.order_arenas(groups, read), order)

    def test_broken_chain_gives_no_order(self):
        maps, read, _ = fake_memory()
        groups = ex.arena_groups(ex.find_heaps(maps, read))
        self.assertIsNone(ex.order_arenas(groups, lambda a, n: None))
        self.assertEqual(ex.order_arenas({}, read), [])
        broken = dict(groups)
        broken[0x123] = {'heaps': 1, 'size': 1, 'resident': 0, 'ranges': []}
        self.assertIsNone(ex.order_arenas(broken, lambda a, n: read(a, n) if a != 0x123 else b'\0' * n))

    def test_orphan_later_heap_is_dropped(self):
        maps, read, _ = fake_memory()
        hmax = ex.heap_max_size(8)
        keep = [m for m in maps if m.start != 0x7f0000000000]  # the first heap's mapping is gone
        self.assertEqual([h['start'] for h in ex.find_heaps(keep, read)], [0x7f0000000000 + 2 * hmax])

    def test_sizes_match_without_order(self):
        info = ex.parse_malloc_info(sample('thread_arenas_after_free', 'xml'))
        maps = ex.parse_maps(sample('thread_arenas_after_free', 'smaps'))
        groups = ex.arena_groups(ex.find_heaps(maps, recorded_reader('thread_arenas_after_free')))
        f = ex.figures(info, groups, None, 4096, 650 * MB, 648 * MB)
        self.assertEqual(f['arenas_matched_by'], 'size')
        # four arenas of the same size cannot be told apart: no per-arena figure, the total holds
        self.assertEqual([r['resident_bytes'] for r in f['arenas'][1:]], [None] * 4)
        self.assertGreater(f['arena_resident_bytes'], 600 * MB)
        doc = dict(f, pid=1, command='x', exe=None, verdict='v', why='w', fixes=[], notes=[],
                   allocator={'name': 'glibc', 'malloc_object': '/lib/libc.so.6', 'glibc': True})
        self.assertIn('could not be told apart', '\n'.join(ex.render(doc)))


class Verdicts(unittest.TestCase):
    """On the stored samples: the verdicts the gdb tests check on live processes."""

    def test_seed_after_free_is_retention_of_the_freed_size(self):
        f, verdict, why, fixes = sample_figures('seed_after_free')
        self.assertEqual(verdict, ex.VERDICT_RETENTION)
        self.assertGreater(f['free_resident_bytes'], 640 * MB)
        self.assertLess(f['free_resident_bytes'], 670 * MB)
        # 10,000 free chunks keep ~a page each (the page floor of the live nodes): ~615 MB returnable
        self.assertGreater(f['trimmable_bytes'], 590 * MB)
        self.assertLess(f['trimmable_bytes'], 640 * MB)
        self.assertIn('not a leak', why)
        text = '\n'.join(fixes)
        self.assertIn('--trim', text)
        self.assertIn('LD_PRELOAD=/x/libtrimshim.so', text)
        self.assertIn('mmap_threshold=65536', text)
        self.assertNotIn('MALLOC_ARENA_MAX', text)

    def test_seed_after_trim_is_fragmentation(self):
        f, verdict, why, fixes = sample_figures('seed_after_trim')
        self.assertEqual(verdict, ex.VERDICT_RETENTION)
        self.assertLess(f['trimmable_bytes'], 5 * MB)
        self.assertIn('pages shared', why)
        self.assertNotIn('--trim', '\n'.join(fixes))

    def test_array_control(self):
        f, verdict, why, fixes = sample_figures('array_control_after_free')
        self.assertEqual(verdict, ex.VERDICT_NONE)
        self.assertIn('file-backed', why)
        f, verdict, why, fixes = sample_figures('array_control_peak')
        self.assertEqual(verdict, ex.VERDICT_LIVE)
        self.assertIn('trimming will not help', why)

    def test_thread_arenas(self):
        f, verdict, why, fixes = sample_figures('thread_arenas_after_free')
        self.assertEqual(verdict, ex.VERDICT_RETENTION)
        self.assertEqual(f['arenas_matched_by'], 'address')
        rows = f['arenas'][1:]
        self.assertEqual(len(rows), 4)
        for r in rows:
            self.assertGreater(r['resident_bytes'], 150 * MB)
            self.assertGreater(r['free_bytes'], 150 * MB)
        self.assertIn('MALLOC_ARENA_MAX=2', '\n'.join(fixes))

    def test_long_lived_interleave(self):
        f, verdict, why, fixes = sample_figures('long_lived_interleave_after_free')
        self.assertEqual(verdict, ex.VERDICT_RETENTION)
        self.assertEqual(f['arenas_matched_by'], 'address')


def synthetic(rss, in_use=0, free=0, resident=0, mmapped=0, anon=None, sizes=(), nr_threads=0):
    arenas = [{'nr': 0, 'system': in_use + free, 'max_system': None, 'free_bytes': free, 'fast_bytes': 0,
               'free_chunks': sum(c for _, _, _, c in sizes), 'in_use': in_use, 'aspace': None,
               'subheaps': None, 'sizes': list(sizes)}]
    info = {'arenas': arenas, 'totals': {'mmap_bytes': mmapped, 'mmap_chunks': 1 if mmapped else 0}}
    return ex.figures(info, {}, [], resident, rss, rss if anon is None else anon)


class Judge(unittest.TestCase):
    def test_thresholds(self):
        big = ex.SIGNIFICANT_BYTES
        # retention needs both an absolute size and a share of RSS
        self.assertEqual(ex.judge(synthetic(rss=4 * big, free=2 * big, resident=2 * big), 1)[0], ex.VERDICT_RETENTION)
        self.assertEqual(ex.judge(synthetic(rss=big, free=big - 1, resident=big - 1), 1)[0], ex.VERDICT_NONE)
        self.assertEqual(ex.judge(synthetic(rss=100 * big, in_use=10 * big, free=30 * big, resident=35 * big), 1)[0],
                         ex.VERDICT_RETENTION)
        self.assertEqual(ex.judge(synthetic(rss=100 * big, in_use=10 * big, free=30 * big, resident=34 * big), 1)[0],
                         ex.VERDICT_NONE)
        # mostly live, a fifth free: live growth, with a word on what trim would still give back
        verdict, why, fixes = ex.judge(synthetic(rss=100 * big, in_use=70 * big, free=20 * big, resident=90 * big), 1)
        self.assertEqual(verdict, ex.VERDICT_LIVE)
        self.assertIn('still, ', fixes[-1])
        self.assertEqual(ex.judge(synthetic(rss=100 * big, in_use=80 * big, free=20 * big, resident=84 * big), 1)[0],
                         ex.VERDICT_LIVE)

    def test_free_but_not_resident_is_not_retention(self):
        # after a trim the free chunks stay in the bins, their pages are gone
        f = synthetic(rss=10 * MB, in_use=1 * MB, free=600 * MB, resident=2 * MB)
        self.assertEqual(f['free_resident_bytes'], 1 * MB)
        self.assertEqual(ex.judge(f, 1)[0], ex.VERDICT_NONE)

    def test_mmapped_chunks_are_live(self):
        f = synthetic(rss=300 * MB, in_use=1 * MB, free=1 * MB, resident=2 * MB, mmapped=290 * MB)
        self.assertEqual(f['live_bytes'], 291 * MB)
        self.assertEqual(ex.judge(f, 1)[0], ex.VERDICT_LIVE)

    def test_large_chunks_suggest_the_mmap_threshold(self):
        sizes = [(262161, 262161, 2000 * 262161, 2000), (33, 48, 4800, 100)]
        f = synthetic(rss=600 * MB, in_use=1 * MB, free=530 * MB, resident=531 * MB, sizes=sizes)
        self.assertEqual(f['large_free_from'], 262161)
        fixes = '\n'.join(ex.judge(f, 1)[2])
        self.assertIn('mmap_threshold=262144', fixes)
        small = [(1040, 1040, 500000 * 1040, 500000)]
        f = synthetic(rss=600 * MB, in_use=1 * MB, free=530 * MB, resident=531 * MB, sizes=small)
        self.assertNotIn('mmap_threshold', '\n'.join(ex.judge(f, 1)[2]))

    def test_pinned_estimate(self):
        a = {'sizes': [(65553, 65553, 10000 * 65553, 10000), (48, 48, 4800, 100)], 'fast_bytes': 4800}
        self.assertEqual(ex.pinned_free(a, 4096), 10000 * 4096)


class Script(unittest.TestCase):
    def test_script(self):
        s = ex.gdb_script(100, 200, '/tmp/x/out.xml', False)
        self.assertIn('if $rt_m >= 100 && $rt_m < 200 && $rt_i >= 100 && $rt_i < 200', s)
        self.assertIn('(int)malloc_info((int)0, $rt_f)', s)
        self.assertIn('dump binary memory /tmp/x/out.xml $rt_buf $rt_buf + $rt_len', s)
        self.assertNotIn('malloc_trim', s)
        self.assertIn('(int)malloc_trim((unsigned long)0)', ex.gdb_script(1, 2, '/o', True))

    def test_markers(self):
        m = ex.parse_gdb_output('junk\n@@rt malloc=12 x=y\nmalloc in section .text of /lib/libc.so.6\n@@rt done\n')
        self.assertEqual((m['malloc'], m['x'], m['done'], m['symbol_object']), ('12', 'y', '1', '/lib/libc.so.6'))
        m = ex.parse_gdb_output('malloc + 4 in section .text\n')
        self.assertEqual((m['symbol'], m['symbol_object']), ('malloc', None))

    def failure(self, stdout='', stderr='', timed_out=False, killed=False, forced=False, markers=None):
        r = ex.GdbRun()
        r.stdout, r.stderr, r.timed_out, r.killed, r.forced, r.timeout = stdout, stderr, timed_out, killed, forced, 5
        return ex.gdb_failure(os.getpid(), r, markers if markers is not None else ex.parse_gdb_output(stdout))

    def test_failures(self):
        self.assertIn('Operation not permitted', str(self.failure(stderr='ptrace: Operation not permitted.\n')))
        self.assertIsInstance(self.failure(stderr='ptrace: No such process.\n'), ex.ProcessGone)
        self.assertIsInstance(self.failure(stdout='[Inferior 1 (process 9) exited normally]\n'), ex.ProcessGone)
        self.assertIsNone(self.failure(stdout='@@rt done\n', timed_out=True))
        self.assertIn('waiting for a lock and was undone', str(self.failure(timed_out=True)))
        self.assertIn('was killed', str(self.failure(timed_out=True, killed=True)))
        self.assertIn('may stay held', str(self.failure(timed_out=True, forced=True)))
        e = self.failure(stderr='Program received signal SIGSEGV, Segmentation fault.\nThe program being debugged '
                                'was signaled while in a function called from GDB.\n')
        self.assertIn('got SIGSEGV during a call from gdb', str(e))
        self.assertIsNone(self.failure(stdout='@@rt malloc=5\n', stderr='No symbol "malloc_info" in current context.\n'))
        self.assertIn('cannot find malloc', str(self.failure(stderr='No symbol "malloc" in current context.\n')))
        e = self.failure(stderr='31\t../sysdeps/x.c: No such file or directory.\nwarning: w\nsomething odd\n')
        self.assertEqual(str(e), 'gdb failed on process %d: something odd' % os.getpid())


class Permissions(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        import shutil
        shutil.rmtree(self.dir)

    def yama(self, v):
        p = os.path.join(self.dir, 'ptrace_scope')
        with open(p, 'w') as f:
            f.write('%s\n' % v)
        return p

    def test_hints(self):
        cap = 'Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n'
        nocap = 'Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n'
        other = 'Uid:\t0\t0\t0\t0\n'
        mine = 'Uid:\t1000\t1000\t1000\t1000\n'
        hint = ex.ptrace_hint
        self.assertIn('=3 forbids', hint(1, self.yama(3), cap, mine))
        self.assertIn('=2: only a process with CAP_SYS_PTRACE', hint(1, self.yama(2), nocap, mine))
        self.assertIn('belongs to uid 0', hint(1, self.yama(0), nocap, other))
        self.assertIn('=1 allows attaching only to your own descendants', hint(1, self.yama(1), nocap, mine))
        self.assertIn('--cap-add=SYS_PTRACE', hint(1, '/nonexistent', nocap, mine))
        self.assertIn('seccomp', hint(1, '/nonexistent', cap, mine))
        self.assertIsNone(ex.attach_blocker(self.yama(1), cap))
        self.assertIn('no CAP_SYS_PTRACE', ex.attach_blocker(self.yama(1), nocap))
        self.assertIn('forbids', ex.attach_blocker(self.yama(3), cap))
        self.assertIsNone(ex.attach_blocker('/nonexistent', nocap))


def alive_state(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return ex.parse_stat_state(f.read())
    except (IOError, OSError):
        return None


class Command(unittest.TestCase):
    """retention explain end to end, in process, against a real (sleeping python) process, with
    the fake gdb."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='retention-explain-test-')
        with open(os.path.join(DATA, 'fake_gdb.py')) as f:
            body = f.read()
        self.gdb = os.path.join(self.dir, 'gdb')
        with open(self.gdb, 'w') as f:
            f.write('#!%s -S\n%s' % (sys.executable, body))
        os.chmod(self.gdb, 0o755)
        self.procs = []
        self.saved = dict(os.environ)
        self.grace = ex.INTERRUPT_GRACE_S
        ex.INTERRUPT_GRACE_S = 0.5

    def tearDown(self):
        ex.INTERRUPT_GRACE_S = self.grace
        os.environ.clear()
        os.environ.update(self.saved)
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except OSError:
                    pass
                p.kill()
            p.communicate()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def target(self, code='import time; time.sleep(120)'):
        p = subprocess.Popen([sys.executable, '-c', 'import sys; print("ready", flush=True); ' + code],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), b'ready')
        return p

    def explain(self, pid, *args, **env):
        os.environ.update(env)
        os.environ.setdefault('FAKE_GDB_XML', os.path.join(SAMPLES, 'seed_after_free.xml'))
        rc, out, err = call(['explain', str(pid), '--gdb', self.gdb] + list(args))
        self.assertNotIn('Traceback', err)
        return rc, out, err

    def assertOneLine(self, rc, err, text, code=1):
        self.assertEqual(rc, code, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertTrue(err.startswith('retention: '), err)
        self.assertIn(text, err)

    def test_bad_pids(self):
        for bad in ('abc', '0', '-5', '12x', ''):
            rc, out, err = call(['explain', bad])
            self.assertOneLine(rc, err, 'PID must be', code=2)
        rc, out, err = call(['explain', '1', '--timeout', '0'])
        self.assertOneLine(rc, err, '--timeout must be', code=2)

    def test_no_such_process(self):
        p = subprocess.Popen(['true'])
        p.wait()
        rc, out, err = self.explain(p.pid)
        self.assertOneLine(rc, err, 'no process %d' % p.pid)

    def test_zombie(self):
        p = subprocess.Popen([sys.executable, '-c', 'pass'])
        for _ in range(500):
            if alive_state(p.pid) == 'Z':
                break
            time.sleep(0.01)
        rc, out, err = self.explain(p.pid)
        p.wait()
        self.assertOneLine(rc, err, 'has exited (state Z)')

    def test_itself(self):
        rc, out, err = self.explain(os.getpid())
        self.assertOneLine(rc, err, 'is retention itself', code=2)

    def test_no_gdb(self):
        p = self.target()
        rc, out, err = call(['explain', str(p.pid), '--gdb', os.path.join(self.dir, 'nope')])
        self.assertOneLine(rc, err, 'gdb not found: ')
        os.environ['PATH'] = self.dir + '/empty'
        os.environ.pop('RETENTION_GDB', None)
        rc, out, err = call(['explain', str(p.pid)])
        self.assertOneLine(rc, err, 'gdb not found in PATH')
        self.assertEqual(alive_state(p.pid), 'S')

    def test_glibc(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, '--json')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc['pid'], p.pid)
        self.assertTrue(doc['allocator']['glibc'])
        self.assertEqual(len(doc['arenas']), 1)
        self.assertEqual(doc['free_bytes'], ex.parse_malloc_info(sample('seed_after_free', 'xml'))['arenas'][0]['free_bytes'])
        self.assertIn(doc['verdict'], (ex.VERDICT_RETENTION, ex.VERDICT_LIVE, ex.VERDICT_NONE))
        self.assertNotIn('trim', doc)
        rc, out, err = self.explain(p.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn('verdict: ', out)
        self.assertIn('free bytes held by malloc', out)

    def test_trim(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, '--trim', '--json')
        self.assertEqual(rc, 0, err)
        t = json.loads(out)['trim']
        self.assertTrue(t['called'])
        self.assertEqual(t['returned'], 1)
        self.assertGreater(t['rss_before_bytes'], 0)
        self.assertGreater(t['rss_after_bytes'], 0)
        rc, out, err = self.explain(p.pid, '--trim')
        self.assertRegex(out, r'trim: malloc_trim\(0\) returned 1; RSS \S+ \S+ -> ')

    def test_thread_id_explains_its_process(self):
        p = self.target('import threading, time; threading.Thread(target=time.sleep, args=(120,), daemon=True)'
                        '.start(); time.sleep(120)')
        for _ in range(500):
            tids = [int(t) for t in os.listdir('/proc/%d/task' % p.pid) if int(t) != p.pid]
            if tids:
                break
            time.sleep(0.01)
        rc, out, err = self.explain(tids[0], '--json')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc['pid'], p.pid)
        self.assertIn('is a thread of process %d' % p.pid, ' '.join(doc['notes']))

    def test_jemalloc(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, '--trim', FAKE_GDB_MODE='jemalloc')
        self.assertEqual(rc, 0, err)
        self.assertIn('malloc: jemalloc', out)
        self.assertIn('verdict: not glibc malloc', out)
        self.assertIn('background_thread', out)
        self.assertIn("trim: not called (malloc is not glibc's)", out)

    def test_permission_denied(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, FAKE_GDB_MODE='eperm')
        self.assertOneLine(rc, err, 'cannot attach to process %d: ptrace: Operation not permitted (' % p.pid)
        self.assertEqual(alive_state(p.pid), 'S')

    def test_gone_before_attach(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, FAKE_GDB_MODE='nosuch')
        self.assertOneLine(rc, err, 'exited before gdb could attach')

    def test_exits_while_attached(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, FAKE_GDB_MODE='exit-target')
        self.assertOneLine(rc, err, 'exited while gdb was attached')

    def test_gdb_dies_leaving_the_target_stopped(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, FAKE_GDB_MODE='stop-and-die')
        self.assertOneLine(rc, err, 'gdb failed on process %d' % p.pid)
        self.assertNotIn(alive_state(p.pid), ('t', 'T'))

    def test_hang_on_a_lock_is_undone_then_gdb_killed(self):
        # the target's main thread sleeps in futex: the call is "waiting for a lock"
        p = self.target('import threading; l = threading.Lock(); l.acquire(); l.acquire()')
        t0 = time.monotonic()
        rc, out, err = self.explain(p.pid, '--timeout', '0.3', FAKE_GDB_MODE='hang')
        self.assertOneLine(rc, err, 'did not stop on SIGURG and was killed')
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(alive_state(p.pid), 'S')

    def test_hang_while_target_stopped(self):
        # no call is running (the thread is stopped): explain waits to the hard limit, then resumes it
        p = self.target()
        t0 = time.monotonic()
        rc, out, err = self.explain(p.pid, '--timeout', '0.2', FAKE_GDB_MODE='hang-stop')
        self.assertOneLine(rc, err, 'did not finish within 0.2 s')
        self.assertGreater(time.monotonic() - t0, (ex.HARD_LIMIT - 1) * 0.2)
        self.assertNotIn(alive_state(p.pid), ('t', 'T'))
        # someone watching (a terminal) is told why it waits
        said = []
        with self.assertRaises(ex.ExplainError):
            ex.explain(p.pid, gdb=self.gdb, timeout=0.2, log=said.append)
        self.assertEqual(len(said), 1)
        self.assertIn('waiting up to', said[0])
        self.assertNotIn(alive_state(p.pid), ('t', 'T'))

    def test_stopped_target_is_left_alone(self):
        p = self.target()
        os.kill(p.pid, signal.SIGSTOP)
        for _ in range(500):
            if alive_state(p.pid) == 'T':
                break
            time.sleep(0.01)
        rc, out, err = self.explain(p.pid)
        self.assertOneLine(rc, err, 'is stopped (state T): resume it first')
        self.assertEqual(alive_state(p.pid), 'T')
        os.kill(p.pid, signal.SIGCONT)

    def test_call_state(self):
        p = self.target('import threading; l = threading.Lock(); l.acquire(); l.acquire()')
        for _ in range(200):
            if ex.call_state(p.pid) == 'lock-wait':
                break
            time.sleep(0.01)
        self.assertEqual(ex.call_state(p.pid), 'lock-wait')
        q = self.target()
        self.assertEqual(ex.call_state(q.pid), 'working')
        os.kill(q.pid, signal.SIGSTOP)
        for _ in range(500):
            if alive_state(q.pid) == 'T':
                break
            time.sleep(0.01)
        self.assertEqual(ex.call_state(q.pid), 'stopped')
        os.kill(q.pid, signal.SIGCONT)
        r = subprocess.Popen(['true'])
        r.wait()
        self.assertEqual(ex.call_state(r.pid), 'gone')


if __name__ == '__main__':
    unittest.main()
