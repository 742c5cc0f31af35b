"""watch's figures from samples (no process started), the multi-cell schedule and its ratios, the
user's tunable cells, and watch's command-line errors."""

import os
import stat
import tempfile
import unittest
from collections import OrderedDict

from retentionlib import cells, multicell, watch

from .helpers import call


def rec(t_s, rss_kb, anon_kb=None, cpu_s=0.0, ev='s', heap=None, pid=7):
    x = OrderedDict([('watch', 1), ('ev', ev), ('pid', pid), ('t_us', int(t_s * 1e6)), ('rss_kb', rss_kb),
                     ('anon_kb', rss_kb - 1000 if anon_kb is None else anon_kb), ('cpu_us', int(cpu_s * 1e6)),
                     ('probe_cpu_us', 100)])
    if heap is not None:
        x['heap'] = heap
    return x


def run_of(records, allocator='glibc', wall=4.0):
    start = OrderedDict([('watch', 1), ('ev', 'start'), ('pid', 7), ('t_us', 0), ('allocator', allocator),
                         ('malloc_from', '/lib/libc.so.6')])
    return {'records': [start] + records, 'probe': start, 'maps': None, 'static': False, 't0_us': 0,
            'wall_s': wall}


MB = 1000  # kB, enough for the figures here


class Figures(unittest.TestCase):
    def test_peak_end_mean_and_the_free_kept_at_the_end(self):
        heap_end = {'in_use': 10 * MB * 1024, 'free': 500 * MB * 1024, 'mmap': 0}
        records = [rec(0, 2 * MB), rec(1, 600 * MB, cpu_s=1.0), rec(2, 600 * MB, cpu_s=1.5),
                   rec(3, 600 * MB, cpu_s=1.5, heap=heap_end), rec(4, 5 * MB, cpu_s=1.6, ev='exit')]
        f, rows = watch.summarize(run_of(records))
        self.assertEqual((f['peak_kb'], f['end_kb'], f['exit_kb']), (600 * MB, 600 * MB, 5 * MB))
        # Trapezoids: (0+1: 301) + (1+2: 600) + (2+3: 600) + (3+4: 302.5) = 1803.5 MB s over 4 s.
        self.assertAlmostEqual(f['mean_kb'], 1803.5 * MB / 4, places=3)
        self.assertEqual(f['end_live_bytes'], 10 * MB * 1024)
        self.assertEqual(f['end_free_bytes'], 500 * MB * 1024)
        self.assertAlmostEqual(f['end_free_share'], 500.0 / 600, places=6)

    def test_glibc_free_bytes_after_a_trim_count_only_what_is_resident(self):
        # After malloc_trim(0) glibc still counts 500 MB free in its bins, but only 40 MB of anonymous
        # memory is resident: at most that can be free memory it keeps.
        heap = {'in_use': 2 * MB * 1024, 'free': 500 * MB * 1024, 'mmap': 0}
        f, _ = watch.summarize(run_of([rec(0, 45 * MB, anon_kb=42 * MB, heap=heap)]))
        self.assertEqual(f['end_free_bytes'], 40 * MB * 1024)

    def test_jemalloc_and_tcmalloc_figures(self):
        je = {'allocated': 1 * MB * 1024, 'active': 2 * MB * 1024, 'resident': 101 * MB * 1024, 'retained': 0}
        live, free = watch.heap_split(je, 'jemalloc', 200 * MB, 150 * MB)
        self.assertEqual((live, free), (1 * MB * 1024, 100 * MB * 1024))
        tc = {'allocated': 1 * MB * 1024, 'heap_size': 600 * MB * 1024, 'pageheap_free': 0,
              'unmapped': 99 * MB * 1024}
        live, free = watch.heap_split(tc, 'tcmalloc', 700 * MB, 650 * MB)
        self.assertEqual(free, 500 * MB * 1024)
        self.assertEqual(watch.heap_split({'committed': 5}, 'mimalloc', 10, 10), (None, None))

    def test_settled_is_the_first_sample_after_the_settle_time_of_quiet(self):
        records = [rec(0, 2 * MB)] + [rec(0.5 * i, 600 * MB, cpu_s=0.5 * i) for i in range(1, 5)] + \
            [rec(2 + 0.5 * i, 600 * MB - i, cpu_s=2.0) for i in range(1, 8)]
        f, rows = watch.summarize(run_of(records), settle_s=2.0)
        # Busy until t=2.0 (cpu rises 0.5 s per 0.5 s), quiet from there: settled at t=4.0.
        self.assertEqual(f['settled_t'], 4.0)
        f, _ = watch.summarize(run_of(records), settle_s=5.0)
        self.assertIsNone(f['settled_t'])

    def test_phases_of_an_unmodified_program(self):
        records = [rec(0, 2 * MB), rec(1, 600 * MB, cpu_s=1.0), rec(1.1, 40 * MB, cpu_s=1.0, ev='trimmed'),
                   rec(2, 40 * MB, cpu_s=1.0), rec(2.1, 3 * MB, cpu_s=1.1, ev='exit')]
        run = run_of(records)
        f, rows = watch.summarize(run, settle_s=0.5)
        ph = watch.phases(run, f, rows)
        self.assertEqual(list(ph), ['baseline', 'peak', 'end', 'after_trim', 'after_idle'])
        self.assertEqual(ph['end']['rss_kb'], 40 * MB)       # not the exit sample
        self.assertEqual(ph['after_trim']['rss_kb'], 40 * MB)

    def test_after_trim_is_the_trim_after_the_work_not_one_mid_allocation(self):
        # Starved of CPU on a loaded machine the program looked quiet at 1 s, mid-allocation: the
        # probe trimmed at 250 MB; the work went on to the peak and the trim that followed it is
        # the reference's figure.
        records = [rec(0, 2 * MB), rec(0.9, 250 * MB, cpu_s=0.9), rec(1.0, 250 * MB, cpu_s=0.9),
                   rec(1.05, 240 * MB, cpu_s=0.9, ev='trimmed'), rec(2, 600 * MB, cpu_s=1.8),
                   rec(2.1, 600 * MB, cpu_s=1.8), rec(2.15, 40 * MB, cpu_s=1.8, ev='trimmed'),
                   rec(3, 40 * MB, cpu_s=1.8), rec(3.1, 3 * MB, cpu_s=1.9, ev='exit')]
        run = run_of(records)
        f, rows = watch.summarize(run)
        self.assertEqual(watch.phases(run, f, rows)['after_trim']['rss_kb'], 40 * MB)
        self.assertEqual(f['trimmed_kb'], 40 * MB)
        # a trim only before the peak (the program grew again after it) is still the one there is
        late = records[:4] + [rec(2, 600 * MB, cpu_s=1.8), rec(3.1, 3 * MB, cpu_s=1.9, ev='exit')]
        run = run_of(late)
        f, rows = watch.summarize(run)
        self.assertEqual(watch.phases(run, f, rows)['after_trim']['rss_kb'], 240 * MB)

    def test_allocator_from_maps_when_the_probe_said_nothing(self):
        maps = ('7f00-7f10 r-xp 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n'
                '7f20-7f30 r-xp 00000000 08:01 43 /usr/lib/x86_64-linux-gnu/libc.so.6\n')
        run = {'records': [], 'probe': None, 'maps': maps, 'static': False}
        self.assertEqual(watch.allocator_of(run)[0], 'jemalloc')
        run['static'] = True
        self.assertEqual(watch.allocator_of(run)[0], 'static binary')


class Schedule(unittest.TestCase):
    def test_warm_up_then_rotated_rounds(self):
        order = multicell.schedule(['a', 'b', 'c'], 3)
        self.assertEqual(order[0], ('a', -1))
        self.assertEqual([c for c, r in order if r == 0], ['a', 'b', 'c'])
        self.assertEqual([c for c, r in order if r == 1], ['b', 'c', 'a'])
        self.assertEqual([c for c, r in order if r == 2], ['c', 'a', 'b'])

    def test_the_warm_up_is_dropped_and_references_are_of_the_same_round(self):
        seen = []

        def run_one(cell, rnd, done):
            seen.append((cell, rnd, list(done)))
            return (cell, rnd)
        out = multicell.run_rounds(['a', 'b'], 2, run_one)
        self.assertEqual(out['a'], [('a', 0), ('a', 1)])
        self.assertEqual(seen[2], ('b', 0, ['a']))
        self.assertEqual(seen[3], ('b', 1, []))   # round 1 starts with b

    def test_a_spread_over_one_is_no_difference(self):
        self.assertTrue(multicell.Ratio([0.9, 1.05, 1.2]).overlaps_one())
        self.assertEqual(multicell.Ratio([0.9, 1.05, 1.2]).text(), '~1.05 [0.90-1.20]')
        self.assertFalse(multicell.Ratio([0.5, 0.52, 0.55]).overlaps_one())
        self.assertEqual(multicell.Ratio([0.5, 0.52, 0.55]).text(), '0.52 [0.50-0.55]')
        self.assertEqual(multicell.Ratio([0.5]).text(), '0.50 (1 run)')
        r = multicell.ratio_per_round([{'t': 2}, {'t': 4}], [{'t': 4}, {'t': 4}], lambda x: x['t'])
        self.assertEqual(r.ratios, [0.5, 1.0])


class UserCells(unittest.TestCase):
    def test_a_tunable_cell_is_its_base_plus_the_environment(self):
        c = cells.user_cell('jemalloc:MALLOC_CONF=background_thread:true,dirty_decay_ms:0')
        self.assertEqual(c.base, 'jemalloc')
        self.assertEqual(c.env['MALLOC_CONF'], 'background_thread:true,dirty_decay_ms:0')
        self.assertIs(c.preload, cells.CELLS['jemalloc'].preload)
        self.assertEqual(cells.CELLS['jemalloc'].env, OrderedDict())  # the table's cell is untouched

    def test_bad_cells(self):
        for spec, words in (('bogus', "unknown cell 'bogus'"), ('memcheck', "unknown cell 'memcheck'"),
                            ('native:', "nothing after ':'"), ('native:NOEQUALS', 'bad entry'),
                            ('native:LD_PRELOAD=/x.so', 'set by the cell itself')):
            with self.assertRaises(ValueError) as cm:
                cells.user_cell(spec)
            self.assertIn(words, str(cm.exception))

    def test_harness_steps_as_environment(self):
        case = type('C', (), {'idle': 3})()
        self.assertEqual(dict(cells.steps_env(cells.CELLS['trim'], case, 'watch')), {'RETENTION_WATCH_TRIM': '1'})
        self.assertEqual(dict(cells.steps_env(cells.CELLS['trim'], case, 'phase')), {'RSSPROBE_PHASE_TRIM': '1'})
        self.assertEqual(dict(cells.steps_env(cells.CELLS['shim'], case, 'phase')), {'RSSPROBE_PHASE_IDLE': '3'})


class CommandLine(unittest.TestCase):
    def test_no_command(self):
        rc, out, err = call(['watch'])
        self.assertEqual((rc, out), (2, ''))
        self.assertRegex(err, r'^retention: watch: no command given .*\n$')

    def test_a_command_that_does_not_exist(self):
        rc, out, err = call(['watch', '--', 'no-such-command-here'])
        self.assertEqual((rc, out), (2, ''))
        self.assertEqual(err, 'retention: watch: command not found: no-such-command-here (not in PATH)\n')

    def test_a_file_that_is_not_executable(self):
        with tempfile.NamedTemporaryFile(suffix='.sh') as f:
            os.chmod(f.name, stat.S_IRUSR | stat.S_IWUSR)
            rc, out, err = call(['watch', '--', f.name])
        self.assertEqual((rc, out), (2, ''))
        self.assertEqual(err, 'retention: watch: not executable: %s\n' % f.name)

    def test_bad_options(self):
        for argv, words in ((['--interval', '0'], '--interval: 0 ms is outside 1..60000'),
                            (['--for', '-1'], '--for: want a number of seconds > 0'),
                            (['--repeat', '0'], '--repeat: want a whole number >= 1'),
                            (['--cell', 'bogus'], "unknown cell 'bogus'")):
            rc, out, err = call(['watch'] + argv + ['--', 'true'])
            self.assertEqual((rc, out), (2, ''), argv)
            self.assertIn(words, err)
            self.assertEqual(err.count('\n'), 1, err)


if __name__ == '__main__':
    unittest.main()
