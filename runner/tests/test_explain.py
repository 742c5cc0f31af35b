"""retention explain without gdb: parsing (malloc_info XML, smaps, heap_info in memory) on samples
stored from real held cases (tests/data/explain/), the heap walk on synthetic heaps laid out as
glibc lays them, the trim simulation and what pins pages, the verdicts, gdb's MI output, which
frames are the allocator's, the watch's trend, and the command's paths with a fake gdb
(tests/data/explain/fake_gdb_mi.py) against a real sleeping python process (whose heap the walk
really reads). The real gdb is exercised by tests/gdb_explain.py (ctest label gdb)."""

import base64
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from retentionlib import errors, paths
from retentionlib.explain import (elfsyms, gdb, glibc, heaps, mallocinfo, others, procfs, ptrace, render,
                                  safety, session, target, verdict, walk, watch)

from .helpers import DATA, TempDirTest, call

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
    maps = procfs.parse_maps(sample(name, 'smaps'))
    rollup = procfs.parse_kb_fields(sample(name, 'rollup'))
    read = recorded_reader(name)
    found = heaps.find_heaps(maps, read)
    groups = heaps.arena_groups(found)
    order = heaps.order_arenas(groups, read)
    main = sum(m.rss for m in maps if m.path == '[heap]')
    f = glibc.figures(mallocinfo.parse_malloc_info(sample(name, 'xml')), groups, order, main, rollup['Rss'],
                      rollup['Anonymous'])
    name, why, fixes = verdict.judge(f, 1234, shim='/x/libtrimshim.so', command='retention')
    return f, name, why, fixes


class Proc(unittest.TestCase):
    def test_stat_state_with_odd_comm(self):
        self.assertEqual(procfs.parse_stat_state('42 (a) b (c)) S 1 42 42 0 -1'), 'S')
        self.assertEqual(procfs.parse_stat_state('42 (x) t 1'), 't')

    def test_stop_pending(self):
        self.assertTrue(target.stop_pending({'SigPnd': '0000000000000000', 'ShdPnd': '0000000000040000'}))
        self.assertTrue(target.stop_pending({'SigPnd': '0000000000040100'}))
        self.assertFalse(target.stop_pending({'SigPnd': '0000000000000100', 'ShdPnd': '0000000000080000'}))
        self.assertFalse(target.stop_pending({}))

    def test_status_and_rollup(self):
        st = procfs.parse_status('Name:\tx\nTgid:\t42\nTracerPid:\t0\nCapEff:\t000001ffffffffff\n')
        self.assertEqual(st['Tgid'], '42')
        self.assertEqual(ptrace.cap_effective('CapEff:\t0000000000080000\n'), 1 << 19)
        r = procfs.parse_kb_fields(sample('seed_after_free', 'rollup'))
        self.assertGreater(r['Rss'], 600 * MB)
        self.assertIn('Anonymous', r)

    def test_smaps(self):
        maps = procfs.parse_maps(sample('seed_after_free', 'smaps'))
        heap = [m for m in maps if m.path == '[heap]']
        self.assertEqual(len(heap), 1)
        self.assertGreater(heap[0].rss, 600 * MB)
        self.assertFalse(heap[0].anonymous)  # named: not a candidate thread heap
        libc = glibc.libc_path(maps)
        self.assertTrue(libc.endswith('/libc.so.6'), libc)
        lo, hi = procfs.object_range(maps, libc)
        self.assertLess(lo, hi)
        self.assertEqual(procfs.object_of(lo + 1, maps), libc)
        self.assertIsNone(procfs.object_of(1, maps))

    def test_maps_lines(self):
        maps = procfs.parse_maps('7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n'
                             'Rss:                 132 kB\n'
                             '55d0-55e0 r-xp 00001000 fe:00 12 /usr/bin/my prog (deleted)\n')
        self.assertTrue(maps[0].anonymous)
        self.assertEqual(maps[0].rss, 132 * 1024)
        self.assertEqual(maps[1].path, '/usr/bin/my prog (deleted)')
        self.assertEqual(glibc.libc_path(maps, '/usr/bin/my prog'), '/usr/bin/my prog (deleted)')
        self.assertEqual(glibc.libc_path(procfs.parse_maps('1-2 r-xp 0 fe:00 1 /lib64/libc-2.17.so\n')),
                         '/lib64/libc-2.17.so')

    def test_allocator_names(self):
        self.assertEqual(verdict.allocator_name('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'), 'jemalloc')
        self.assertEqual(verdict.allocator_name('/usr/lib/libtcmalloc_minimal.so.4.5.10'), 'tcmalloc')
        self.assertEqual(verdict.allocator_name('/opt/app/libfoo.so'), 'libfoo.so')


class MallocInfo(unittest.TestCase):
    def test_seed(self):
        info = mallocinfo.parse_malloc_info(sample('seed_after_free', 'xml'))
        self.assertEqual(len(info['arenas']), 1)
        a = info['arenas'][0]
        self.assertEqual(a['nr'], 0)
        self.assertGreater(a['free_bytes'], 650 * MB)
        self.assertLess(a['in_use'], 1 * MB)
        self.assertEqual(a['in_use'], a['system'] - a['free_bytes'])
        self.assertEqual(info['totals']['mmap_bytes'], 0)
        self.assertTrue(any(c > 9000 for _, _, _, c in a['sizes']))

    def test_thread_arenas(self):
        info = mallocinfo.parse_malloc_info(sample('thread_arenas_after_free', 'xml'))
        self.assertEqual([a['nr'] for a in info['arenas']], [0, 1, 2, 3, 4])
        self.assertEqual([a['subheaps'] for a in info['arenas'][1:]], [3, 3, 3, 3])
        self.assertIsNone(info['arenas'][0]['subheaps'])

    def test_bad_xml(self):
        for text, msg in (('<malloc><heap nr="0"', 'not XML'), ('<free/>', 'expected <malloc>'),
                          ('<malloc version="1"></malloc>', 'no <heap>'),
                          ('<malloc><heap nr="0"><system type="current" size="x"/></heap></malloc>', 'bad size'),
                          ('<malloc><heap nr="0"></heap></malloc>', 'without <system')):
            with self.assertRaises(errors.ExplainError) as c:
                mallocinfo.parse_malloc_info(text)
            self.assertIn(msg, str(c.exception))


def fake_memory(word=8):
    """Two thread arenas, the first with two heaps, plus an impostor mapping, in a dict memory.
    Returns (mappings, read, arenas in list order)."""
    hmax = heaps.heap_max_size(word)
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
    return procfs.parse_maps(text), read, [a2, a1]


class Heaps(unittest.TestCase):
    def test_recorded_thread_arenas(self):
        maps = procfs.parse_maps(sample('thread_arenas_after_free', 'smaps'))
        read = recorded_reader('thread_arenas_after_free')
        found = heaps.find_heaps(maps, read)
        self.assertEqual(len(found), 12)
        groups = heaps.arena_groups(found)
        self.assertEqual(sorted(g['heaps'] for g in groups.values()), [3, 3, 3, 3])
        info = mallocinfo.parse_malloc_info(sample('thread_arenas_after_free', 'xml'))
        self.assertEqual(sorted(g['size'] for g in groups.values()),
                         sorted(a['system'] for a in info['arenas'][1:]))
        order = heaps.order_arenas(groups, read)
        self.assertEqual(sorted(order), sorted(groups))
        # malloc_info's arena 1 is the newest (main_arena.next), which is not the lowest address here
        self.assertNotEqual(order, sorted(order))

    def test_synthetic_heaps_and_order(self):
        maps, read, order = fake_memory()
        found = heaps.find_heaps(maps, read)
        self.assertEqual(len(found), 3)  # the impostor is not a heap
        groups = heaps.arena_groups(found)
        self.assertEqual([(g['heaps'], g['size']) for g in groups.values()], [(2, 0x300000), (1, 0x300000)])
        self.assertEqual(list(groups.values())[0]['resident'], 0x180000 + 0x100000)
        self.assertEqual(heaps.order_arenas(groups, read), order)

    def test_broken_chain_gives_no_order(self):
        maps, read, _ = fake_memory()
        groups = heaps.arena_groups(heaps.find_heaps(maps, read))
        self.assertIsNone(heaps.order_arenas(groups, lambda a, n: None))
        self.assertEqual(heaps.order_arenas({}, read), [])
        broken = dict(groups)
        broken[0x123] = {'heaps': 1, 'size': 1, 'resident': 0, 'ranges': []}
        self.assertIsNone(heaps.order_arenas(broken, lambda a, n: read(a, n) if a != 0x123 else b'\0' * n))

    def test_orphan_later_heap_is_dropped(self):
        maps, read, _ = fake_memory()
        hmax = heaps.heap_max_size(8)
        keep = [m for m in maps if m.start != 0x7f0000000000]  # the first heap's mapping is gone
        self.assertEqual([h['start'] for h in heaps.find_heaps(keep, read)], [0x7f0000000000 + 2 * hmax])

    def test_sizes_match_without_order(self):
        info = mallocinfo.parse_malloc_info(sample('thread_arenas_after_free', 'xml'))
        maps = procfs.parse_maps(sample('thread_arenas_after_free', 'smaps'))
        groups = heaps.arena_groups(heaps.find_heaps(maps, recorded_reader('thread_arenas_after_free')))
        f = glibc.figures(info, groups, None, 4096, 650 * MB, 648 * MB)
        self.assertEqual(f['arenas_matched_by'], 'size')
        # four arenas of the same size cannot be told apart: no per-arena figure, the total holds
        self.assertEqual([r['resident_bytes'] for r in f['arenas'][1:]], [None] * 4)
        self.assertGreater(f['arena_resident_bytes'], 600 * MB)
        doc = dict(f, pid=1, command='x', exe=None, verdict='v', why='w', fixes=[], notes=[],
                   allocator={'name': 'glibc', 'malloc_object': '/lib/libc.so.6', 'glibc': True})
        self.assertIn('could not be told apart', '\n'.join(render.render(doc)))


class Verdicts(unittest.TestCase):
    """On the stored samples: the verdicts the gdb tests check on live processes."""

    def test_seed_after_free_is_retention_of_the_freed_size(self):
        f, name, why, fixes = sample_figures('seed_after_free')
        self.assertEqual(name, verdict.VERDICT_RETENTION)
        self.assertGreater(f['free_resident_bytes'], 640 * MB)
        self.assertLess(f['free_resident_bytes'], 670 * MB)
        # 10,000 free chunks keep ~a page each (the page floor of the live nodes): ~615 MB returnable
        self.assertGreater(f['trimmable_bytes'], 590 * MB)
        self.assertLess(f['trimmable_bytes'], 640 * MB)
        self.assertIn('not a leak', why)
        text = '\n'.join(fixes)
        self.assertIn('--trim', text)
        self.assertIn('LD_PRELOAD=/x/libtrimshim.so', text)
        # malloc_info's size classes only: a guess, and said to be one
        self.assertIn('mmap_threshold=65536', text)
        self.assertIn('a guess', text)
        self.assertNotIn('MALLOC_ARENA_MAX', text)

    def test_seed_after_trim_is_fragmentation(self):
        f, name, why, fixes = sample_figures('seed_after_trim')
        self.assertEqual(name, verdict.VERDICT_RETENTION)
        self.assertLess(f['trimmable_bytes'], 5 * MB)
        self.assertIn('pages shared', why)
        self.assertNotIn('--trim', '\n'.join(fixes))

    def test_array_control(self):
        f, name, why, fixes = sample_figures('array_control_after_free')
        self.assertEqual(name, verdict.VERDICT_NONE)
        self.assertIn('file-backed', why)
        f, name, why, fixes = sample_figures('array_control_peak')
        self.assertEqual(name, verdict.VERDICT_LIVE)
        self.assertIn('trimming will not help', why)

    def test_thread_arenas(self):
        f, name, why, fixes = sample_figures('thread_arenas_after_free')
        self.assertEqual(name, verdict.VERDICT_RETENTION)
        self.assertEqual(f['arenas_matched_by'], 'address')
        rows = f['arenas'][1:]
        self.assertEqual(len(rows), 4)
        for r in rows:
            self.assertGreater(r['resident_bytes'], 150 * MB)
            self.assertGreater(r['free_bytes'], 150 * MB)
        self.assertIn('MALLOC_ARENA_MAX=2', '\n'.join(fixes))

    def test_long_lived_interleave(self):
        f, name, why, fixes = sample_figures('long_lived_interleave_after_free')
        self.assertEqual(name, verdict.VERDICT_RETENTION)
        self.assertEqual(f['arenas_matched_by'], 'address')


def synthetic(rss, in_use=0, free=0, resident=0, mmapped=0, anon=None, sizes=(), nr_threads=0):
    arenas = [{'nr': 0, 'system': in_use + free, 'max_system': None, 'free_bytes': free, 'fast_bytes': 0,
               'free_chunks': sum(c for _, _, _, c in sizes), 'in_use': in_use, 'aspace': None,
               'subheaps': None, 'sizes': list(sizes)}]
    info = {'arenas': arenas, 'totals': {'mmap_bytes': mmapped, 'mmap_chunks': 1 if mmapped else 0}}
    return glibc.figures(info, {}, [], resident, rss, rss if anon is None else anon)


class Judge(unittest.TestCase):
    def test_thresholds(self):
        big = verdict.SIGNIFICANT_BYTES
        # retention needs both an absolute size and a share of RSS
        self.assertEqual(verdict.judge(synthetic(rss=4 * big, free=2 * big, resident=2 * big), 1)[0], verdict.VERDICT_RETENTION)
        self.assertEqual(verdict.judge(synthetic(rss=big, free=big - 1, resident=big - 1), 1)[0], verdict.VERDICT_NONE)
        self.assertEqual(verdict.judge(synthetic(rss=100 * big, in_use=10 * big, free=30 * big, resident=35 * big), 1)[0],
                         verdict.VERDICT_RETENTION)
        self.assertEqual(verdict.judge(synthetic(rss=100 * big, in_use=10 * big, free=30 * big, resident=34 * big), 1)[0],
                         verdict.VERDICT_NONE)
        # mostly live, a fifth free: live growth, with a word on what trim would still give back
        name, why, fixes = verdict.judge(synthetic(rss=100 * big, in_use=70 * big, free=20 * big, resident=90 * big), 1)
        self.assertEqual(name, verdict.VERDICT_LIVE)
        self.assertIn('still, ', fixes[-1])
        self.assertEqual(verdict.judge(synthetic(rss=100 * big, in_use=80 * big, free=20 * big, resident=84 * big), 1)[0],
                         verdict.VERDICT_LIVE)

    def test_free_but_not_resident_is_not_retention(self):
        # after a trim the free chunks stay in the bins, their pages are gone
        f = synthetic(rss=10 * MB, in_use=1 * MB, free=600 * MB, resident=2 * MB)
        self.assertEqual(f['free_resident_bytes'], 1 * MB)
        self.assertEqual(verdict.judge(f, 1)[0], verdict.VERDICT_NONE)

    def test_mmapped_chunks_are_live(self):
        f = synthetic(rss=300 * MB, in_use=1 * MB, free=1 * MB, resident=2 * MB, mmapped=290 * MB)
        self.assertEqual(f['live_bytes'], 291 * MB)
        self.assertEqual(verdict.judge(f, 1)[0], verdict.VERDICT_LIVE)

    def test_large_chunks_suggest_the_mmap_threshold(self):
        sizes = [(262161, 262161, 2000 * 262161, 2000), (33, 48, 4800, 100)]
        f = synthetic(rss=600 * MB, in_use=1 * MB, free=530 * MB, resident=531 * MB, sizes=sizes)
        self.assertEqual(f['large_free_from'], 262161)
        fixes = '\n'.join(verdict.judge(f, 1)[2])
        self.assertIn('mmap_threshold=262144', fixes)
        small = [(1040, 1040, 500000 * 1040, 500000)]
        f = synthetic(rss=600 * MB, in_use=1 * MB, free=530 * MB, resident=531 * MB, sizes=small)
        self.assertNotIn('mmap_threshold', '\n'.join(verdict.judge(f, 1)[2]))

    def test_pinned_estimate(self):
        a = {'sizes': [(65553, 65553, 10000 * 65553, 10000), (48, 48, 4800, 100)], 'fast_bytes': 4800}
        self.assertEqual(mallocinfo.pinned_free(a, 4096), 10000 * 4096)


class Mi(unittest.TestCase):
    """gdb's machine interface output, parsed."""

    def test_results(self):
        r = gdb.parse_results('threads=[{id="1",target-id="Thread 0x7f (LWP 42)",frame={addr="0x1",func="f"}}],'
                              'current-thread-id="1"')
        self.assertEqual(r['threads'][0]['id'], '1')
        self.assertEqual(r['threads'][0]['frame']['func'], 'f')
        self.assertEqual(r['current-thread-id'], '1')
        r = gdb.parse_results('stack=[frame={level="0",addr="0x10",func="??"},frame={level="1",addr="0x20"}]')
        self.assertEqual([f['addr'] for f in r['stack']], ['0x10', '0x20'])
        self.assertEqual(gdb._cstring('"a\\"b\\n\\\\c\\101"', 0), ('a"b\n\\cA', 15))
        self.assertEqual(gdb.parse_results('msg="ptrace: Operation not permitted."')['msg'],
                         'ptrace: Operation not permitted.')
        with self.assertRaises(ValueError):
            gdb._cstring('"open', 0)


def libc_maps(base=0x7f0000000000):
    """Mappings with this machine's libc loaded at base (what safety.glibc_code needs)."""
    path = glibc.libc_path(procfs.parse_maps(target.read_proc(os.getpid(), 'maps')))
    text = '%x-%x r--p 00000000 fe:00 1 %s\n%x-%x r-xp 00026000 fe:00 1 %s\n' % (
        base, base + 0x26000, path, base + 0x26000, base + 0x200000, path)
    return procfs.parse_maps(text), path


class Safety(unittest.TestCase):
    """Which frames are the allocator's."""

    def test_norm(self):
        self.assertEqual(safety.norm('__GI___libc_malloc'), 'malloc')
        self.assertEqual(safety.norm('_int_malloc'), 'int_malloc')
        self.assertEqual(safety.norm('malloc@plt'), 'malloc')
        self.assertEqual(safety.norm('__malloc_info'), 'malloc_info')
        self.assertEqual(safety.norm('__libc_fork'), 'libc_fork')
        self.assertEqual(safety.norm(None), '')

    def test_glibc_ranges_from_this_machines_libc(self):
        maps, path = libc_maps()
        elf = elfsyms.load(path)
        self.assertIsNotNone(elf)
        syms = dict((n.split('@')[0], (v, s)) for n, v, s in elf.symbols)
        code = safety.glibc_code(maps, path, elf=elf)
        base = 0x7f0000000000
        mv, ms = syms['malloc']
        self.assertEqual(code.where(base + mv + 3, None), 'malloc')
        # a function that has nothing to do with malloc
        pv, _ = syms['getpid']
        self.assertIsNone(code.where(base + pv + 1, None))
        # an unnamed function between malloc's exported ones: malloc.c's static code
        lo = min(syms[n][0] for n in ('malloc', 'free', 'calloc', 'realloc', 'malloc_info') if n in syms)
        hi = max(syms[n][0] for n in ('malloc', 'free', 'calloc', 'realloc', 'malloc_info') if n in syms)
        named = [(v, v + s) for v, s in syms.values()]
        gaps = [a for a in range(lo, hi, 16) if not any(v <= a < e for v, e in named)]
        if gaps:
            self.assertIn("glibc's allocator", code.where(base + gaps[0], None))

    def test_inside(self):
        maps, path = libc_maps()
        elf = elfsyms.load(path)
        code = safety.glibc_code(maps, path, elf=elf)
        syms = dict((n.split('@')[0], v) for n, v, s in elf.symbols)
        base = 0x7f0000000000
        busy = gdb.Thread('2', 4243, [(base + syms['getpid'], '??', path), (base + syms['malloc'] + 40, 'malloc', path),
                                      (0x555500001000, 'worker', '/usr/bin/x')])
        # frames without a name are shown by object and offset
        self.assertEqual(safety.inside(busy, code, maps), 'in %s+0x%x < malloc < worker' % (os.path.basename(path),
                                                                                          syms['getpid']))
        idle = gdb.Thread('1', 4242, [(base + syms['getpid'] + 2, 'getpid', path), (0x555500001000, 'main', '/x')])
        self.assertIsNone(safety.inside(idle, code, maps))
        # names from debug info count even where the addresses say nothing
        named = gdb.Thread('3', 4244, [(0x10, '_int_malloc', None), (0x20, '__GI___libc_malloc', None)])
        self.assertEqual(safety.inside(named, code, maps), 'in _int_malloc < __GI___libc_malloc')
        forking = gdb.Thread('4', 4245, [(0x10, '__libc_fork', None)])
        self.assertTrue(safety.inside(forking, code, maps))
        self.assertEqual(safety.describe(busy, 'in x'), 'thread 2 (tid 4243) is in x')

    def test_another_allocators_library(self):
        text = ('7f1000000000-7f1000010000 r--p 00000000 fe:00 2 /usr/lib/libjemalloc.so.2\n'
                '7f1000010000-7f1000090000 r-xp 00010000 fe:00 2 /usr/lib/libjemalloc.so.2\n')
        maps = procfs.parse_maps(text)
        code = safety.library_code(maps, '/usr/lib/libjemalloc.so.2', 'jemalloc')
        self.assertEqual(code.where(0x7f1000020000, None), 'libjemalloc.so.2')
        self.assertIsNone(code.where(0x7f1000005000, None))  # its data, not code
        # linked into the executable: by the allocator's own names
        code = safety.library_code(maps, '/usr/bin/server', 'server')
        self.assertTrue(code.where(0x1, 'je_malloc_default'))
        self.assertIsNone(code.where(0x1, 'handle_request'))
        # jemalloc's background thread asleep between purges holds no lock; a thread waiting on
        # a mutex inside it might
        code = safety.library_code(maps, '/usr/lib/libjemalloc.so.2', 'jemalloc')
        asleep = gdb.Thread('2', 11, [(0x7f0000085f16, None, '/lib/libc.so.6'),
                                      (0x7f0000086000, 'pthread_cond_timedwait', '/lib/libc.so.6'),
                                      (0x7f1000020000, None, '/usr/lib/libjemalloc.so.2')])
        self.assertIsNone(safety.inside(asleep, code, maps))
        locked = gdb.Thread('3', 12, [(0x7f0000085f16, '__lll_lock_wait', '/lib/libc.so.6'),
                                      (0x7f1000020000, None, '/usr/lib/libjemalloc.so.2')])
        self.assertTrue(safety.inside(locked, code, maps))
        # glibc's malloc never sleeps on a condition: no such exception there
        glibc_code = safety.AllocatorCode('glibc', [(0x7f1000010000, 0x7f1000090000, 'x')])
        self.assertTrue(safety.inside(asleep, glibc_code, maps))


class FakeMem(object):
    """Memory regions in a dict, read as /proc/PID/mem would be."""

    def __init__(self):
        self.regions = []

    def region(self, base, size):
        b = bytearray(size)
        self.regions.append((base, b))
        return b

    def put(self, addr, *words):
        for base, b in self.regions:
            if base <= addr and addr + 8 * len(words) <= base + len(b):
                struct.pack_into('<%dQ' % len(words), b, addr - base, *words)
                return
        raise AssertionError('no region at 0x%x' % addr)

    def read(self, addr, size):
        for base, b in self.regions:
            if base <= addr and addr + size <= base + len(b):
                return bytes(b[addr - base:addr - base + size])
        return None


LIBC = '/lib/x86_64-linux-gnu/libc.so.6'
HEAP = 0x555555554000
LIBC_DATA = 0x7f0000100000


def protect(pos, ptr):
    return (pos >> 12) ^ ptr


def build_heap(spec, top_end, layout=walk.LAYOUT_227, protected=True):
    """A main heap laid out as glibc lays it: spec [(size, state)] from sbrk_base (the first chunk
    a tcache_perthread_struct of 0x290 bytes when any state is 'tcache'), then the top chunk up
    to top_end; main_arena and mp_ in a libc data region. Returns (mem, mappings, addresses)."""
    mem = FakeMem()
    mem.region(LIBC_DATA, 0x4000)
    arena = LIBC_DATA + 0x800
    for i in range(1, 128):
        b = layout.bin_addr(arena, i)
        mem.put(b + 16, b, b)
    mem.put(arena + layout.next, arena)
    size = top_end - HEAP
    mem.region(HEAP, size)
    addrs = []
    a = HEAP
    for s, _ in spec:
        addrs.append(a)
        a += s
    top = a
    prev = None
    for (s, st), a in zip(spec, addrs):
        free_before = prev is not None and prev[1] == 'free'
        mem.put(a + 8, s | (0 if free_before else 1))
        if free_before:
            mem.put(a, prev[0])
        prev = (s, st)
    mem.put(top + 8, (top_end - top) | (0 if prev and prev[1] == 'free' else 1))
    if prev and prev[1] == 'free':
        mem.put(top, prev[0])
    frees = [a for (s, st), a in zip(spec, addrs) if st == 'free']
    b1 = layout.bin_addr(arena, 1)
    if frees:
        mem.put(b1 + 16, frees[0], frees[-1])
        for i, a in enumerate(frees):
            mem.put(a + 16, frees[i + 1] if i + 1 < len(frees) else b1, frees[i - 1] if i else b1)
    fasts = [(a, s) for (s, st), a in zip(spec, addrs) if st == 'fast']
    for idx in set((s >> 4) - 2 for _, s in fasts):
        chain = [a for a, s in fasts if (s >> 4) - 2 == idx]
        mem.put(arena + layout.fastbins + 8 * idx, chain[0])
        for i, a in enumerate(chain):
            nxt = chain[i + 1] if i + 1 < len(chain) else 0
            mem.put(a + 16, protect(a + 16, nxt) if protected else nxt)
    cached = [(a, s) for (s, st), a in zip(spec, addrs) if st == 'tcache']
    if cached:
        tc = addrs[0]
        assert spec[0] == (0x290, 'used')
        counts = [0] * 64
        entries = [0] * 64
        for idx in set((s - 32) // 16 for _, s in cached):
            chain = [a + 16 for a, s in cached if (s - 32) // 16 == idx]
            counts[idx] = len(chain)
            entries[idx] = chain[0]
            for i, m in enumerate(chain):
                nxt = chain[i + 1] if i + 1 < len(chain) else 0
                mem.put(m, protect(m, nxt) if protected else nxt)
        raw = struct.pack('<64H', *counts)
        for i in range(0, 128, 8):
            mem.put(tc + 16 + i, struct.unpack_from('<Q', raw, i)[0])
        mem.put(tc + 16 + 128, *entries)
    mem.put(arena + layout.top, top)
    mem.put(arena + layout.system_mem, size, size)
    # mp_ as glibc 2.35+ lays it: ..., hp_flags | n_mmaps, n_mmaps_max | max_n_mmaps, no_dyn, mmapped_mem,
    # max_mmapped_mem, sbrk_base, tcache_bins, tcache_max_bytes, tcache_count, tcache_unsorted_limit
    mp = LIBC_DATA + 0x3000
    mem.put(mp, 0x20000, 0x20000, 0x20000, 8, 0, 0, 0, 0, 65536, 0, 0, 0, HEAP, 64, 1032, 7, 0)
    text = ('%x-%x rw-p 001d0000 fe:00 1 %s\nRss: 16 kB\n%x-%x rw-p 00000000 00:00 0 [heap]\nRss: %d kB\n'
            % (LIBC_DATA, LIBC_DATA + 0x4000, LIBC, HEAP, top_end, size // 1024))
    return mem, procfs.parse_maps(text), addrs + [top]


# tcache struct, a 64 KiB block in use, a node, a freed block, a node, a freed block, a node, a
# fastbin chunk, a tcache chunk, a small chunk in use, then top: each freed block between nodes.
SPEC = [(0x290, 'used'), (0x10010, 'used'), (0x20, 'used'), (0x10010, 'free'), (0x20, 'used'), (0x10010, 'free'),
        (0x20, 'used'), (0x20, 'fast'), (0x20, 'tcache'), (0x30, 'used')]
TOP_END = HEAP + 0x52000


def full_residency(start, end, page=4096, absent=()):
    res = walk.Residency(page)
    bm = bytearray(b'\x01' * ((end - start) // page))
    for a, b in absent:
        for p in range(a, b, page):
            bm[(p - start) // page] = 0
    res.add(start, end, bytes(bm))
    return res


class Walk(unittest.TestCase):
    """The heap walk on heaps laid out as glibc lays them."""

    def walk(self, mem, maps, protected=True):
        arena, layout, mp = walk.discover(mem.read, maps, LIBC, ([], None, None), HEAP)
        aw, _ = walk.walk_arena(walk.Memory(mem.read), arena, layout, 'main', [(HEAP, TOP_END)], protected)
        return arena, layout, mp, aw

    def test_discover(self):
        mem, maps, _ = build_heap(SPEC, TOP_END)
        arena, layout, mp = walk.discover(mem.read, maps, LIBC, ([], None, None), HEAP)
        self.assertEqual(arena, LIBC_DATA + 0x800)
        self.assertEqual(layout.next, 2160)
        self.assertEqual((mp['mmapped_mem'], mp['n_mmaps'], mp['n_mmaps_max']), (0, 0, 65536))
        self.assertEqual(mp['mmap_threshold'], 0x20000)
        # the layout before glibc 2.27 (no have_fastchunks) is found as well
        mem, maps, _ = build_heap(SPEC, TOP_END, layout=walk.LAYOUT_226)
        arena, layout, mp = walk.discover(mem.read, maps, LIBC, ([], None, None), HEAP)
        self.assertEqual((arena, layout.next), (LIBC_DATA + 0x800, 2152))

    def test_discover_without_arena(self):
        mem, maps, _ = build_heap(SPEC, TOP_END)
        mem.put(LIBC_DATA + 0x800 + walk.LAYOUT_227.next, 0x1234)  # next points nowhere
        with self.assertRaises(walk.WalkError):
            walk.discover(mem.read, maps, LIBC, ([], None, None), HEAP)

    def test_states(self):
        mem, maps, addrs = build_heap(SPEC, TOP_END)
        arena, layout, mp, aw = self.walk(mem, maps)
        states = [st for _, _, st in aw.chunks()]
        self.assertEqual(states, ['used', 'used', 'used', 'free', 'used', 'free', 'used', 'fast', 'tcache', 'used',
                                  'top'])
        self.assertEqual(aw.top, (addrs[-1], TOP_END - addrs[-1]))
        self.assertEqual(aw.tcaches, [HEAP])

    def test_safe_linking_unknown_is_tried_both_ways(self):
        for prot in (True, False):
            mem, maps, _ = build_heap(SPEC, TOP_END, protected=prot)
            aw = self.walk(mem, maps, protected=None)[3]
            self.assertEqual([st for _, _, st in aw.chunks()].count('tcache'), 1)
        # the wrong encoding stated outright: the fastbin does not add up
        mem, maps, _ = build_heap(SPEC + [(0x20, 'fast'), (0x20, 'used')], TOP_END, protected=False)
        with self.assertRaises(walk.WalkError):
            self.walk(mem, maps, protected=True)

    def test_inconsistent_reads_are_caught(self):
        def walk_after(change):
            mem, maps, addrs = build_heap(SPEC, TOP_END)
            arena, layout, _ = walk.discover(mem.read, maps, LIBC, ([], None, None), HEAP)
            change(mem, addrs)
            with self.assertRaises(walk.WalkError) as c:
                walk.walk_arena(walk.Memory(mem.read), arena, layout, 'main', [(HEAP, TOP_END)], True)
            return str(c.exception)
        # the first freed block's back link
        self.assertIn('back link', walk_after(lambda mem, addrs: mem.put(addrs[3] + 24, 0x1234)))
        # the footer after the freed block
        self.assertIn('the next chunk says', walk_after(lambda mem, addrs: mem.put(addrs[4], 0x1000)))
        # top's size overshoots the heap
        self.assertIn('top chunk', walk_after(lambda mem, addrs: mem.put(addrs[-1] + 8, 0x100001)))
        # a chunk half-way through an update: its size points past the heap
        self.assertIn('bad chunk', walk_after(lambda mem, addrs: mem.put(addrs[5] + 8, 0x7ffff1)))
        # a chunk cut in two, the second half not yet marked: two free chunks side by side
        self.assertIn('side by side', walk_after(lambda mem, addrs: (mem.put(addrs[3] + 8, 0x8001),
                                                                     mem.put(addrs[3] + 0x8000, 0x8000, 0x8010),
                                                                     mem.put(addrs[4], 0x8010))))

    def test_what_trim_returns_and_what_pins(self):
        mem, maps, addrs = build_heap(SPEC, TOP_END)
        aw = self.walk(mem, maps)[3]
        page = 4096
        res = full_residency(HEAP, TOP_END)
        would, groups = walk.simulate_trim(aw, res, page)
        # each freed block of 0x10010 keeps its first 48 bytes and its partial pages: the pages wholly
        # inside [block + 48, block end): 0x11000-0x20000 and 0x21000-0x30000, 15 pages each; the top
        # chunk (0x30390-0x52000) is cut back to its first page boundary: 0x31000-0x52000, 33 pages.
        self.assertEqual(addrs[3], HEAP + 0x102c0)
        self.assertEqual(would, (15 + 15 + 33) * page)
        # the page 0x20000 holds the node between the blocks and the blocks' edges: the node pins it;
        # 0x10000 holds the end of the block in use and the node before the first freed block
        self.assertEqual(groups[(0x20, 'used')]['pages'], 1)
        self.assertEqual(groups[(0x20, 'used')]['examples'], [addrs[4] + 16])
        self.assertEqual(groups[(0x10010, 'used')]['pages'], 1)
        self.assertEqual(len(groups), 2)
        # after a trim those pages are gone: nothing more to return, the same pins
        res = full_residency(HEAP, TOP_END, absent=[(HEAP + 0x11000, HEAP + 0x20000), (HEAP + 0x21000, HEAP + 0x30000),
                                                    (HEAP + 0x31000, TOP_END)])
        would, groups2 = walk.simulate_trim(aw, res, page)
        self.assertEqual(would, 0)
        self.assertEqual(sorted(groups2), sorted(groups))

    def test_summary(self):
        mem, maps, addrs = build_heap(SPEC, TOP_END)
        aw = self.walk(mem, maps)[3]
        hw = walk.HeapWalk([aw], full_residency(HEAP, TOP_END), walk.Memory(mem.read), 4096)
        rows, pinned = walk.summarize(hw)
        r = rows[0]
        self.assertEqual(r['resident_bytes'], 0x52000)
        self.assertEqual(r['would_return_bytes'] + r['floor_bytes'], 0x52000)
        self.assertEqual(r['tcache_chunks'], 1)
        self.assertEqual(r['fastbin_chunks'], 1)
        self.assertEqual(r['free_sizes'], {0x10010: 2})
        self.assertEqual(r['used_bytes'] + r['tcache_bytes'] + r['free_bytes'], r['system_bytes'])
        self.assertEqual([(p['chunk_size'], p['pages']) for p in pinned], [(0x20, 1), (0x10010, 1)])

    def test_mp_before_2_35(self):
        # n_mmaps shares a word with n_mmaps_max (no hp_flags before it): 3 chunks, 3 MiB mmapped
        data = struct.pack('<13Q', 0x40000, 0x20000, 0x20000, 8, 0, 3 | (65536 << 32), 5 | (0 << 32),
                           3 << 20, 4 << 20, HEAP, 64, 1032, 7)
        mp = walk.find_mp(data, 0x1000, HEAP)
        self.assertEqual((mp['n_mmaps'], mp['mmapped_mem'], mp['n_mmaps_max']), (3, 3 << 20, 65536))
        # raised dynamically: trim_threshold is twice the threshold
        self.assertEqual(mp['mmap_threshold'], 0x20000)
        self.assertIsNone(walk.find_mp(data, 0x1000, HEAP + 16))

    def test_mmapped_chunks_without_mp(self):
        mem = FakeMem()
        base = 0x7f2000000000
        mem.region(base, 0x5000)
        mem.put(base, 0, 0x2000 | 2)           # a chunk of 2 pages with a mapping of its own
        mem.put(base + 0x2000, 0, 0x3000 | 2)  # the next mapping, merged into one by the kernel
        maps = procfs.parse_maps('%x-%x rw-p 00000000 00:00 0 \nRss: 20 kB\n' % (base, base + 0x5000))
        self.assertEqual(glibc.scan_mmapped(walk.Memory(mem.read), maps, []), (0x5000, 2))
        # an arena's heap is not looked at, nor a mapping that does not start with a chunk header
        self.assertEqual(glibc.scan_mmapped(walk.Memory(mem.read), maps, [(base, base + 0x5000)]), (0, 0))
        mem.put(base + 8, 0x2000)
        self.assertEqual(glibc.scan_mmapped(walk.Memory(mem.read), maps, []), (0, 0))

    def test_segments_merge_fastbins_into_neighbours_and_top(self):
        segs = walk.segments([(0, 32, 'used'), (32, 64, 'free'), (96, 32, 'fast'), (128, 32, 'tcache'),
                              (160, 32, 'fast'), (192, 100, 'top')])
        self.assertEqual([(a, b, k) for a, b, k, _ in segs], [(0, 32, 'live'), (32, 128, 'free'), (128, 160, 'live'),
                                                               (160, 292, 'top')])

    def test_pointers(self):
        heap = [(0x1000, 0x9000)]
        mapped = lambda a: '/usr/bin/x' if 0x400000 <= a < 0x500000 else None  # noqa: E731
        self.assertEqual(walk.classify_pointers([(0x1010, 0x2020), (0x2020, 0)], heap, mapped), 'heap pointers')
        self.assertEqual(walk.classify_pointers([(0x400010, 7), (0x400010, 9)], heap, mapped), ('object', 0x400010))
        self.assertIsNone(walk.classify_pointers([(5, 6), (7, 8)], heap, mapped))

    def test_present_bits(self):
        # this process's own stack page is resident
        here = ctypes_stack_address()
        page = 4096
        bm = walk.read_present(os.getpid(), here // page * page, here // page * page + page, page)
        self.assertEqual(bm, b'\x01')


def ctypes_stack_address():
    import ctypes
    x = ctypes.c_int(1)
    return ctypes.addressof(x)


class Advice(unittest.TestCase):
    """The mmap threshold fix, from the free chunks' sizes as the heap shows them."""

    def test_blocks_of_one_size(self):
        a = glibc.mmap_advice({65552: 9999, 64240: 1, 48: 3}, {})
        self.assertTrue(a['applies'], a['why'])
        self.assertEqual(a['threshold'], 65536)
        self.assertEqual(a['from'], 65552)

    def test_merged_neighbours_give_no_threshold(self):
        # what a ruby heap showed: large free chunks, each of a size of its own
        sizes = dict((400000 + 4096 * i + 16 * (i % 7), 1) for i in range(300))
        a = glibc.mmap_advice(sizes, {})
        self.assertFalse(a['applies'])
        self.assertIn('merged', a['why'])
        # the same sizes, but the program holds blocks of that range: they are its blocks
        a = glibc.mmap_advice(dict((400016, 1) for _ in range(1)), {400016: 50})
        self.assertFalse(a['applies'])  # one free chunk is not enough to tell

    def test_small_frees(self):
        # what sqlite showed: 4 kB page buffers
        a = glibc.mmap_advice({4112: 20000, 70000: 3}, {})
        self.assertFalse(a['applies'])
        self.assertIn('under 33 kB', a['why'])
        self.assertIn('no free chunk', glibc.mmap_advice({}, {})['why'])

    def test_stable_between_readings(self):
        # the same blocks with a different stray merged chunk: the same advice
        one = glibc.mmap_advice({262160: 500, 2097152: 1}, {})
        two = glibc.mmap_advice({262160: 480, 589824: 1}, {})
        # 256 KiB blocks: chunks of 262160 bytes, requests of 262144
        self.assertEqual((one['applies'], one['threshold']), (True, 262144))
        self.assertEqual((two['applies'], two['threshold']), (True, 262144))


def walk_doc(rss=700 * MB, anon=None, shmem=0, free_resident=0, live=0, would=0, pinned=(), advice=None):
    """A report as walk_figures makes it, from chosen figures."""
    anon = rss if anon is None else anon
    f = {'rss_bytes': rss, 'rss_anon_bytes': anon, 'rss_shmem_bytes': shmem, 'rss_file_bytes': rss - anon - shmem,
         'live_bytes': live, 'free_resident_bytes': free_resident, 'trimmable_bytes': would,
         'would_return_bytes': would,
         'floor_bytes': free_resident - would, 'arenas': [{'kind': 'main', 'resident_bytes': free_resident + live,
                                                           'in_use_bytes': live}],
         'pinned': list(pinned), 'mmap_advice': advice or {'applies': False, 'why': 'no free chunk'},
         'outside_malloc_anon_bytes': 0, 'mmap_threshold_now': 131072, 'mmap_threshold_dynamic': True}
    return f


class Base(unittest.TestCase):
    """Shares of the anonymous RSS: shared memory is neither code nor malloc's."""

    def test_shared_memory_does_not_hide_retention(self):
        # the PostgreSQL backend: RSS 654 MB, anonymous 158 MB, shared buffers 473 MB, 145 MB free in malloc
        f = walk_doc(rss=654 * MB, anon=158 * MB, shmem=473 * MB, free_resident=145 * MB, live=10 * MB, would=140 * MB)
        name, why, fixes = verdict.judge(f, 1, shim='/x/s.so', command='retention')
        self.assertEqual(name, verdict.VERDICT_RETENTION)
        self.assertIn('of the 158 MB anonymous RSS', why)
        self.assertIn('shared memory 473 MB', why)
        # on the whole RSS, as before, the same figures said "no significant retention"
        f['rss_anon_bytes'] = None
        self.assertEqual(verdict.classify(f), verdict.VERDICT_NONE)

    def test_words(self):
        # the pins keep 41 MB of 300 MB free: more than the tenth that makes them worth a fix line
        f = walk_doc(rss=700 * MB, anon=600 * MB, shmem=50 * MB, free_resident=300 * MB, live=1 * MB, would=200 * MB,
                     pinned=[{'chunk_size': 32, 'state': 'in use', 'count': 10000, 'pages': 10000, 'bytes': 40960000,
                              'points_to': 'two heap pointers first (a list or tree node?)', 'examples': []}])
        name, why, fixes = verdict.judge(f, 7, shim='/x/s.so', command='/opt/bin/retention')
        self.assertIn('malloc_trim(0) would return 200 MB', why)
        text = '\n'.join(fixes)
        self.assertIn('/opt/bin/retention explain 7 --trim', text)
        self.assertIn('10,000 chunks of 32 B pin 10,000 pages (41 MB)', text)
        self.assertIn('apart from the large blocks', text)
        self.assertIn('no mmap threshold fix: no free chunk', text)
        self.assertNotIn('runner/retention', text)

    def test_live(self):
        f = walk_doc(rss=700 * MB, free_resident=5 * MB, live=600 * MB)
        name, why, fixes = verdict.judge(f, 7, shim='/x/s.so', command='retention')
        self.assertEqual(name, verdict.VERDICT_LIVE)
        self.assertIn('--watch', '\n'.join(fixes))

    def test_other_allocators(self):
        figs = {'allocated_bytes': 1 * MB, 'resident_bytes': 140 * MB, 'metadata_bytes': 5 * MB,
                'releasable_bytes': 130 * MB}
        split = {'rss': 145 * MB, 'anon': 141 * MB, 'shmem': 0, 'file': 4 * MB}
        f = others.report('jemalloc', figs, split)
        self.assertEqual(f['free_resident_bytes'], 134 * MB)
        name, why, fixes = verdict.judge_other(f, figs, 'jemalloc', 9, command='retention')
        self.assertEqual(name, verdict.VERDICT_RETENTION)
        self.assertIn('jemalloc keeps resident', why)
        self.assertIn('arena.<all>.purge', why)
        self.assertIn('retention explain 9 --trim', '\n'.join(fixes))
        figs = {'allocated_bytes': 500 * MB, 'heap_size_bytes': 520 * MB, 'pageheap_unmapped_bytes': 0,
                'releasable_bytes': 10 * MB}
        f = others.report('tcmalloc', figs, {'rss': 530 * MB, 'anon': 525 * MB, 'shmem': 0, 'file': 5 * MB})
        self.assertEqual(verdict.judge_other(f, figs, 'tcmalloc', 9)[0], verdict.VERDICT_LIVE)
        f = others.report('mimalloc', {'rss_bytes': 1, 'commit_bytes': 2}, split)
        self.assertEqual(verdict.judge_other(f, {'rss_bytes': 1, 'commit_bytes': 2}, 'mimalloc', 9)[0],
                         verdict.VERDICT_NOT_GLIBC)

    def test_values(self):
        self.assertEqual(others.value_int('(void *) 0x7f0012'), 0x7f0012)
        self.assertEqual(others.value_int('-1'), -1)
        self.assertEqual(others.value_int('0x4010 <main>'), 0x4010)
        self.assertIsNone(others.value_int('<error>'))


class Shm(unittest.TestCase):
    def test_split_and_names(self):
        rollup = procfs.parse_kb_fields('Rss: 638672 kB\nAnonymous: 154296 kB\n')
        st = procfs.parse_status('RssAnon:\t154296 kB\nRssFile:\t22528 kB\nRssShmem:\t461848 kB\n')
        s = procfs.rss_split(rollup, st)
        self.assertEqual((s['rss'], s['anon'], s['shmem']), (638672 * 1024, 154296 * 1024, 461848 * 1024))
        self.assertEqual(s['file'], (638672 - 154296 - 461848) * 1024)
        text = ('7f00-7f10 rw-s 00000000 00:01 5 /dev/zero (deleted)\nRss: 400000 kB\n'
                '7f10-7f20 rw-s 00000000 00:01 6 /SYSV0052e2c1 (deleted)\nRss: 8 kB\n'
                '7f20-7f30 rw-s 00000000 00:17 7 /dev/shm/PostgreSQL.1804289383\nRss: 60000 kB\n'
                '7f30-7f40 r-xp 00000000 fe:00 8 /usr/lib/libc.so.6\nRss: 1000 kB\n')
        rows = procfs.shared_memory(procfs.parse_maps(text))
        self.assertEqual([r[0] for r in rows], ['anonymous shared memory (mmap MAP_SHARED|MAP_ANONYMOUS)',
                                                '/dev/shm/PostgreSQL.1804289383', 'System V segment key 0x0052e2c1'])
        self.assertEqual(rows[0][1], 400000 * 1024)


class Naming(unittest.TestCase):
    def test_command_name(self):
        env = {'PATH': '/nonexistent'}
        self.assertEqual(paths.command_name('/opt/x/bin/retention', env), '/opt/x/bin/retention')
        here = os.getcwd()
        self.assertEqual(paths.command_name('runner/retention', env), os.path.join(here, 'runner/retention'))
        d = tempfile.mkdtemp()
        try:
            exe = os.path.join(d, 'retention')
            with open(exe, 'w') as f:
                f.write('#!/bin/sh\n')
            os.chmod(exe, 0o755)
            self.assertEqual(paths.command_name('retention', {'PATH': d}), 'retention')
            self.assertEqual(paths.command_name(exe, {'PATH': d}), 'retention')
        finally:
            shutil.rmtree(d)


class Watch(unittest.TestCase):
    def readings(self, ys, step=5.0):
        return [{'t': i * step, 'live_bytes': y, 'rss_bytes': y} for i, y in enumerate(ys)]

    def test_fit(self):
        slope, r2 = watch.fit([(0, 0), (1, 2), (2, 4)])
        self.assertAlmostEqual(slope, 2.0)
        self.assertAlmostEqual(r2, 1.0)
        self.assertEqual(watch.fit([(1, 5)]), (0.0, 0.0))

    def test_leak_churn_plateau(self):
        # 1 MB/s with some jitter, read every 5 s for 30 s
        jitter = [0, 300000, -200000, 100000, -300000, 200000, 0]
        leak = [40 * MB + i * 5 * MB + j for i, j in enumerate(jitter)]
        self.assertEqual(watch.judge_watch(self.readings(leak), 30, 3.0)[0], watch.VERDICT_LEAK)
        # 64 MB live, a percent up and down, the process busy
        churn = [64 * MB + j * 2 for j in jitter]
        self.assertEqual(watch.judge_watch(self.readings(churn), 30, 12.0)[0], watch.VERDICT_CHURN)
        # the same churn, slower readings of a busy program: still churn, never a leak
        few = self.readings([64 * MB + 500000, 64 * MB - 700000, 64 * MB + 650000])
        self.assertEqual(watch.judge_watch(few, 30, 5.0)[0], watch.VERDICT_CHURN)
        self.assertEqual(watch.judge_watch(self.readings([64 * MB] * 6), 30, 0.0)[0], watch.VERDICT_PLATEAU)
        fall = [200 * MB - i * 10 * MB for i in range(6)]
        self.assertEqual(watch.judge_watch(self.readings(fall), 30, 1.0)[0], watch.VERDICT_SHRINK)
        with self.assertRaises(errors.ExplainError):
            watch.judge_watch(self.readings([1, 2]), 30, 0.0)

class Permissions(TempDirTest):
    def yama(self, v):
        return self.file('ptrace_scope', '%s\n' % v)

    def test_hints(self):
        cap = 'Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n'
        nocap = 'Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n'
        other = 'Uid:\t0\t0\t0\t0\n'
        mine = 'Uid:\t1000\t1000\t1000\t1000\n'
        hint = ptrace.ptrace_hint
        self.assertIn('=3 forbids', hint(1, self.yama(3), cap, mine))
        self.assertIn('=2: only a process with CAP_SYS_PTRACE', hint(1, self.yama(2), nocap, mine))
        self.assertIn('belongs to uid 0', hint(1, self.yama(0), nocap, other))
        self.assertIn('=1 allows attaching only to your own descendants', hint(1, self.yama(1), nocap, mine))
        self.assertIn('--cap-add=SYS_PTRACE', hint(1, '/nonexistent', nocap, mine))
        self.assertIn('seccomp', hint(1, '/nonexistent', cap, mine))
        self.assertIsNone(ptrace.attach_blocker(self.yama(1), cap))
        self.assertIn('no CAP_SYS_PTRACE', ptrace.attach_blocker(self.yama(1), nocap))
        self.assertIn('forbids', ptrace.attach_blocker(self.yama(3), cap))
        self.assertIsNone(ptrace.attach_blocker('/nonexistent', nocap))


def alive_state(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return procfs.parse_stat_state(f.read())
    except (IOError, OSError):
        return None


def alive_state(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return procfs.parse_stat_state(f.read())
    except (IOError, OSError):
        return None


class Command(unittest.TestCase):
    """retention explain end to end, in process, against a real (sleeping python) process, with
    the fake gdb: the heap walk reads that process's real heap."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='retention-explain-test-')
        with open(os.path.join(SAMPLES, 'fake_gdb_mi.py')) as f:
            body = f.read()
        self.gdb = os.path.join(self.dir, 'gdb')
        with open(self.gdb, 'w') as f:
            f.write('#!%s -S\n%s' % (sys.executable, body))
        os.chmod(self.gdb, 0o755)
        self.log = os.path.join(self.dir, 'gdb.log')
        self.procs = []
        self.saved = dict(os.environ)
        self.grace = gdb.INTERRUPT_GRACE_S
        gdb.INTERRUPT_GRACE_S = 0.5
        self.pauses = session.STOP_PAUSES_S
        session.STOP_PAUSES_S = (0.01,)

    def tearDown(self):
        gdb.INTERRUPT_GRACE_S = self.grace
        session.STOP_PAUSES_S = self.pauses
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
        shutil.rmtree(self.dir, ignore_errors=True)

    def target(self, code='import time; time.sleep(120)'):
        p = subprocess.Popen([sys.executable, '-c', 'import sys; print("ready", flush=True); ' + code],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), b'ready')
        return p

    def explain(self, pid, *args, **env):
        os.environ.update(env)
        os.environ['FAKE_GDB_LOG'] = self.log
        rc, out, err = call(['explain', str(pid), '--gdb', self.gdb] + list(args))
        self.assertNotIn('Traceback', err)
        return rc, out, err

    def calls_made(self):
        """The calls the fake gdb was asked to make in the target (expressions with a call)."""
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [ln for ln in f if '-data-evaluate-expression' in ln and ')(' in ln]

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
        rc, out, err = call(['explain', '1', '--watch', '0.5'])
        self.assertOneLine(rc, err, '--watch must be between', code=2)
        rc, out, err = call(['explain', '1', '--watch', '10', '--trim'])
        self.assertOneLine(rc, err, 'do not go together', code=2)

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

    def test_glibc_reads_the_heap_and_calls_nothing(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, '--json')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc['pid'], p.pid)
        self.assertTrue(doc['allocator']['glibc'])
        self.assertEqual(doc['heap_walk']['source'], 'heap walk')
        self.assertEqual(doc['calls'], [])
        self.assertEqual(self.calls_made(), [])
        self.assertEqual(doc['arenas'][0]['kind'], 'main')
        # a python process's heap: a few MB at most, all of it accounted for
        a = doc['arenas'][0]
        self.assertEqual(a['in_use_bytes'] + a['free_bytes'], a['size_bytes'])
        self.assertLessEqual(doc['would_return_bytes'] + doc['floor_bytes'], doc['arena_resident_bytes'])
        self.assertIn(doc['verdict'], (verdict.VERDICT_RETENTION, verdict.VERDICT_LIVE, verdict.VERDICT_NONE))
        self.assertNotIn('trim', doc)
        self.assertEqual(alive_state(p.pid), 'S')
        rc, out, err = self.explain(p.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn('verdict: ', out)
        self.assertIn('malloc_trim(0) would return', out)
        self.assertIn('1 MB = 10^6 bytes', out)

    def test_trim(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, '--trim', '--json')
        self.assertEqual(rc, 0, err)
        t = json.loads(out)['trim']
        self.assertTrue(t['called'])
        self.assertEqual(t['returned'], 1)
        self.assertGreater(t['rss_before_bytes'], 0)
        self.assertGreater(t['rss_after_bytes'], 0)
        self.assertEqual(len(self.calls_made()), 1)
        rc, out, err = self.explain(p.pid, '--trim')
        self.assertRegex(out, r'trim: malloc_trim\(0\) returned 1; RSS \S+ \S+ -> ')

    def test_inside_malloc_waits_then_refuses_to_call(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, '--json', FAKE_GDB_MODE='in-malloc')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc['stops']['count'], session.STOP_TRIES)
        self.assertEqual(doc['stops']['inside_allocator'][0]['where'], 'in malloc < sigtimedwait')
        self.assertIn('the heap read adds up all the same', ' '.join(doc['notes']))
        rc, out, err = self.explain(p.pid, '--trim', FAKE_GDB_MODE='in-malloc')
        self.assertOneLine(rc, err, 'not called: thread 1 (tid %d) is in malloc' % p.pid)
        self.assertIn('nothing was called', err)
        self.assertIn('trim: not called (thread 1', out)
        self.assertEqual(self.calls_made(), [])
        self.assertEqual(alive_state(p.pid), 'S')

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
        self.assertEqual(doc['stops']['threads'], 2)

    def test_unknown_allocator(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, '--trim', FAKE_GDB_MODE='other')
        self.assertEqual(rc, 0, err)
        self.assertIn('verdict: not glibc malloc', out)
        self.assertIn('explain knows no API of', out)
        self.assertIn('trim: not called (explain knows no API', out)
        self.assertEqual(self.calls_made(), [])

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
        self.assertOneLine(rc, err, 'gdb exited unexpectedly')
        self.assertNotIn(alive_state(p.pid), ('t', 'T'))

    def test_stuck_call_is_undone_at_the_hard_limit(self):
        # the target is stopped, the call never comes back: explain waits HARD_LIMIT x the timeout
        # (a call that works may hold a lock), then interrupts it with SIGURG
        # a handler: an ignored signal is dropped, and the fake gdb could not see it pending
        p = self.target('import signal, time; signal.signal(signal.SIGURG, lambda *a: None); time.sleep(120)')
        t0 = time.monotonic()
        rc, out, err = self.explain(p.pid, '--trim', '--timeout', '0.2', FAKE_GDB_MODE='call-stuck')
        self.assertOneLine(rc, err, 'did not finish within 0.2 s (gdb was still busy at 10 x the timeout')
        self.assertGreater(time.monotonic() - t0, (gdb.HARD_LIMIT - 1) * 0.2)
        self.assertNotIn(alive_state(p.pid), ('t', 'T'))
        # someone watching (a terminal) is told why it waits
        said = []
        with self.assertRaises(errors.ExplainError):
            session.explain(p.pid, trim=True, gdb=self.gdb, timeout=0.2, log=said.append)
        self.assertEqual(len(said), 1)
        self.assertIn('waiting up to', said[0])
        self.assertNotIn(alive_state(p.pid), ('t', 'T'))

    def test_hung_gdb_is_killed(self):
        p = self.target()
        t0 = time.monotonic()
        rc, out, err = self.explain(p.pid, '--trim', '--timeout', '0.1', FAKE_GDB_MODE='call-hang')
        self.assertOneLine(rc, err, 'did not stop on SIGURG and was killed')
        # HARD_LIMIT x 0.1 s, then INTERRUPT_GRACE_S (0.5 here), and the stops before: well under 10 s
        self.assertLess(time.monotonic() - t0, 10)
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

    def test_watch_an_idle_process(self):
        p = self.target()
        rc, out, err = self.explain(p.pid, '--watch', '5', '--json')
        self.assertEqual(rc, 0, err)
        w = json.loads(out)['watch']
        self.assertGreaterEqual(len(w['readings']), 3)
        self.assertEqual(w['verdict'], watch.VERDICT_PLATEAU)
        self.assertEqual(self.calls_made(), [])

    def test_watch_waits_for_enough_readings(self):
        # readings planned every 10 s in a 5 s watch (as when each takes long on a loaded machine):
        # the watch runs on until it has the three a trend needs
        p = self.target()
        os.environ['FAKE_GDB_LOG'] = self.log
        doc = watch.watch(p.pid, 5, gdb=self.gdb, reading_s=10)
        w = doc['watch']
        self.assertEqual(len(w['readings']), watch.MIN_READINGS)
        self.assertGreaterEqual(w['seconds'], 5)
        self.assertEqual(w['verdict'], watch.VERDICT_PLATEAU)

    def test_call_state(self):
        p = self.target('import threading; l = threading.Lock(); l.acquire(); l.acquire()')
        for _ in range(200):
            if gdb.call_state(p.pid) == 'lock-wait':
                break
            time.sleep(0.01)
        self.assertEqual(gdb.call_state(p.pid), 'lock-wait')
        q = self.target()
        self.assertEqual(gdb.call_state(q.pid), 'working')
        os.kill(q.pid, signal.SIGSTOP)
        for _ in range(500):
            if alive_state(q.pid) == 'T':
                break
            time.sleep(0.01)
        self.assertEqual(gdb.call_state(q.pid), 'stopped')
        os.kill(q.pid, signal.SIGCONT)
        r = subprocess.Popen(['true'])
        r.wait()
        self.assertEqual(gdb.call_state(r.pid), 'gone')


if __name__ == '__main__':
    unittest.main()
