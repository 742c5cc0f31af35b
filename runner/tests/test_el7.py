"""What differs on EL 7 (glibc 2.17) and can be pinned on any machine: the tcache key of the
platform (off before glibc 2.26, or when the run's --env sets glibc.malloc.tcache_count=0) and
its expected/ selector; explain's figures on a heap above 4 GiB (malloc_info's XML is size_t-wide
on every glibc, unlike mallinfo's ints); what the runner makes of a case whose rssprobe reports
mallinfo's wrapped figures as unknown (-1)."""

import os
import subprocess
import sys
import unittest
from collections import OrderedDict

from retentionlib import demo, platforminfo
from retentionlib.errors import ConfigError
from retentionlib.expfile import parse_expected_text, select_bounds, with_cell_bounds
from retentionlib.explain import glibc, mallocinfo, procfs, verdict

from .helpers import DATA

GIB = 1 << 30
SAMPLES = os.path.join(DATA, 'explain')


class TcacheState(unittest.TestCase):
    def test_glibc_before_226_has_none(self):
        self.assertEqual(platforminfo.tcache_state('2.17'), 'off')
        self.assertEqual(platforminfo.tcache_state('2.25'), 'off')
        self.assertEqual(platforminfo.tcache_state('2.26'), 'on')
        self.assertEqual(platforminfo.tcache_state('2.36'), 'on')

    def test_tunable_count_zero_turns_it_off(self):
        env = {'GLIBC_TUNABLES': 'glibc.malloc.tcache_count=0'}
        self.assertEqual(platforminfo.tcache_state('2.36', env), 'off')
        # among other tunables, and in glibc's other spellings of 0
        for text in ('glibc.malloc.mmap_threshold=65536:glibc.malloc.tcache_count=0',
                     'glibc.malloc.tcache_count=0x0', 'glibc.malloc.tcache_count=00'):
            self.assertEqual(platforminfo.tcache_state('2.36', {'GLIBC_TUNABLES': text}), 'off', text)

    def test_other_settings_leave_it_on(self):
        for text in ('glibc.malloc.tcache_count=7',
                     # the later setting wins, as in glibc's parsing
                     'glibc.malloc.tcache_count=0:glibc.malloc.tcache_count=3',
                     # tcache_max=0 still caches the smallest size class: tcache is not off
                     'glibc.malloc.tcache_max=0',
                     # not a number: glibc keeps the default
                     'glibc.malloc.tcache_count=none', ''):
            self.assertEqual(platforminfo.tcache_state('2.36', {'GLIBC_TUNABLES': text}), 'on', text)
        # some other variable holding the text does not count
        self.assertEqual(platforminfo.tcache_state('2.36', {'MALLOC_TCACHE': 'glibc.malloc.tcache_count=0'}), 'on')

    def test_not_glibc(self):
        self.assertIsNone(platforminfo.tcache_state(None))
        self.assertIsNone(platforminfo.tcache_state('musl'))

    def test_detect_and_key_carry_it(self):
        p = platforminfo.detect(env={'GLIBC_TUNABLES': 'glibc.malloc.tcache_count=0'})
        if p['glibc'] is None:
            self.skipTest('not a glibc system')
        self.assertEqual(p['tcache'], 'off')
        self.assertTrue(p['key'].endswith(' tcache=off'), p['key'])
        here = platforminfo.detect()
        self.assertEqual(here['tcache'], platforminfo.tcache_state(here['glibc']))
        k = platforminfo.key({'glibc': '2.17', 'distro_id': 'centos', 'distro_version': '7', 'thp': 'always',
                              'page_size': 4096, 'arch': 'x86_64', 'tcache': 'off'})
        self.assertEqual(k, 'glibc=2.17 distro=centos-7 thp=always page_size=4096 arch=x86_64 tcache=off')

    def test_parse_tunables(self):
        self.assertEqual(list(platforminfo.parse_tunables('a=1:b=2:a=3:junk:=4').items()), [('b', '2'), ('a', '3')])
        self.assertEqual(platforminfo.parse_tunables(None), OrderedDict())


# Frees ten 72-byte blocks (80-byte chunks, a fastbin size) and prints how many bytes mallinfo
# then counts in the fastbins: with tcache, 7 of the 10 chunks go to the thread's cache first.
FASTBIN_PROBE = '''
import ctypes
libc = ctypes.CDLL(None)
class MI(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd',
                                           'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]
libc.mallinfo.restype = MI
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(72) for _ in range(10)]
guards = [libc.malloc(72) for _ in range(10)]
before = libc.mallinfo().fsmblks
for b in blocks:
    libc.free(b)
print(libc.mallinfo().fsmblks - before)
'''


@unittest.skipIf(platforminfo.tcache_state(platforminfo.glibc_version()) != 'on', 'no glibc with tcache here')
class TheTunableTurnsTcacheOff(unittest.TestCase):
    """The no-tcache columns of ci/local-matrix rest on this: the --env they add really sends
    small frees past the (absent) cache, as on glibc < 2.26."""

    def fastbin_bytes(self, tunables):
        env = dict((k, v) for k, v in os.environ.items() if k != 'GLIBC_TUNABLES' and not k.startswith('MALLOC_'))
        if tunables is not None:
            env['GLIBC_TUNABLES'] = tunables
        out = subprocess.check_output([sys.executable, '-c', FASTBIN_PROBE], env=env, universal_newlines=True)
        return int(out.strip())

    def test_fastbins_get_every_chunk_only_without_tcache(self):
        self.assertEqual(self.fastbin_bytes('glibc.malloc.tcache_count=0'), 10 * 80)
        self.assertLess(self.fastbin_bytes(None), 10 * 80)


EXP = '''[native]
# the default: tcache keeps small frees apart
retained >= 0.90

[native tcache=off]
# without tcache the fastbins take them
retained >= 0.50
'''


class TcacheSelector(unittest.TestCase):
    def parse(self, text):
        return with_cell_bounds(parse_expected_text(text, 'expected/x.exp'), None)

    def bound_on(self, exp, plat):
        bounds, applied = select_bounds(exp, 'native', plat, None)
        return [b.text() for b in bounds], [s.label() for s in applied]

    def test_selects_by_the_runs_tcache(self):
        exp = self.parse(EXP)
        self.assertEqual(self.bound_on(exp, {'glibc': '2.36', 'tcache': 'off'}),
                         (['retained >= 0.50'], ['[native tcache=off]']))
        self.assertEqual(self.bound_on(exp, {'glibc': '2.36', 'tcache': 'on'}),
                         (['retained >= 0.90'], ['[native]']))

    def test_a_platform_without_the_key_is_told_by_its_glibc(self):
        exp = self.parse(EXP)
        self.assertEqual(self.bound_on(exp, {'glibc': '2.17'})[0], ['retained >= 0.50'])
        self.assertEqual(self.bound_on(exp, {'glibc': '2.31'})[0], ['retained >= 0.90'])

    def test_bad_value_names_file_and_line(self):
        with self.assertRaises(ConfigError) as cm:
            self.parse('[native tcache=no]\n# why\nretained >= 0.5\n')
        self.assertEqual(str(cm.exception),
                         "expected/x.exp:1: bad tcache selector 'tcache=no' (tcache=on|off)")


def sample(name, ext):
    with open(os.path.join(SAMPLES, '%s.%s' % (name, ext))) as f:
        return f.read()


class ExplainAbove4GiB(unittest.TestCase):
    """malloc_info of a real heap with 4 GiB + 4 MiB freed between live 24-byte nodes (glibc
    2.36; mallinfo's ints report the same heap as 6.1 MB of arena, 4.3 MB of it free)."""

    def test_parser_keeps_the_wide_figures(self):
        info = mallocinfo.parse_malloc_info(sample('bigheap_after_free', 'xml'))
        a = info['arenas'][0]
        self.assertEqual(a['system'], 4301328384)
        self.assertEqual(a['free_bytes'], 4299290016)
        self.assertEqual(a['in_use'], 4301328384 - 4299290016)
        self.assertEqual(info['totals']['system'], 4301328384)

    def test_report_and_verdict(self):
        info = mallocinfo.parse_malloc_info(sample('bigheap_after_free', 'xml'))
        rollup = procfs.parse_kb_fields(sample('bigheap_after_free', 'rollup'))
        # the [heap] mapping holds nearly all of the anonymous memory
        f = glibc.figures(info, {}, [], rollup['Anonymous'] - (2 << 20), rollup['Rss'], rollup['Anonymous'])
        self.assertGreater(f['free_bytes'], 4 * GIB)
        self.assertEqual(f['arena_bytes'], 4301328384)
        self.assertLess(f['live_bytes'], 4 << 20)
        # resident but free: ~4 GiB, not a wrapped 40 kB
        self.assertGreater(f['free_resident_bytes'], 4 * GIB - (100 << 20))
        self.assertGreater(f['trimmable_bytes'], 3 * GIB)
        name, why, fixes = verdict.judge(f, 1234, shim='/x/libtrimshim.so')
        self.assertEqual(name, 'allocator retention')


class WrappedHeapPhases(unittest.TestCase):
    """rssprobe on mallinfo past 4 GiB reports source 'mallinfo-wrapped' and -1 for free and in
    use: the runner must not narrate those as figures."""

    def result(self, source, used, free):
        phase = OrderedDict([('phase', 'after_free'), ('rss_kb', 4200000),
                             ('heap', OrderedDict([('source', source), ('arena_bytes', 4301328384),
                                                   ('in_use_bytes', used), ('free_bytes', free)]))])
        return {'phases': {'after_free': phase}}

    def test_unknown_figures_are_none(self):
        r = self.result('mallinfo-wrapped', -1, -1)
        self.assertIsNone(demo.heap(r, 'after_free', 'in_use_bytes'))
        self.assertIsNone(demo.heap(r, 'after_free', 'free_bytes'))
        self.assertEqual(demo.heap(r, 'after_free', 'arena_bytes'), 4301328384)

    def test_known_figures_stay(self):
        r = self.result('mallinfo', 2 << 20, 300 << 20)
        self.assertEqual(demo.heap(r, 'after_free', 'free_bytes'), 300 << 20)


if __name__ == '__main__':
    unittest.main()
