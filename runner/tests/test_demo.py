"""retention demo: the chart (SVG from synthetic samples), the narration (from synthetic results),
--pause without a terminal, and the command line. No real case runs here: the end-to-end test
runs the fake case program of helpers.py."""

import io
import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET
from collections import OrderedDict

from retentionlib import cells as cellmod
from retentionlib import demo, metrics, runner, svgchart
from retentionlib.casefile import parse_case_text

from .helpers import RUNNER, SEED_XML, FixtureTest, call, case_text

SVG = '{http://www.w3.org/2000/svg}'
NBSP = '\u00a0'
PLATFORM = OrderedDict([('glibc', '2.36'), ('distro_id', 'debian'), ('distro_version', '12'),
                        ('distro_name', 'Debian GNU/Linux 12 (bookworm)'), ('page_size', 4096),
                        ('arch', 'x86_64')])


def texts(root):
    return [''.join(t.itertext()) for t in root.iter(SVG + 'text')]


def parse_svg(doc):
    root = ET.fromstring(doc.encode('utf-8'))
    return root


def sample(phase, t_ms, rss_kb, floor_kb=-1, live=0, live_bytes=0, heap=None, work_us=None):
    o = OrderedDict([('rssprobe', 1), ('case', 'seed_std_list'), ('phase', phase), ('t_ms', t_ms),
                     ('rss_kb', rss_kb), ('floor_kb', floor_kb), ('live_objects', live), ('live_bytes', live_bytes)])
    if heap is not None:
        o['heap'] = OrderedDict([('source', 'mallinfo2'), ('in_use_bytes', heap[0]), ('free_bytes', heap[1])])
    if work_us is not None:
        o['work_us'] = work_us
    return o


def result(cell, phases, samples=(), refs=None, status=None, reason='', memcheck=None, command=None):
    """A result as runner.measure_cell returns it for a clean run (status left 'fail', run_ok set:
    measure_cell does not judge), with the cell's metrics computed by the real metrics code."""
    r = runner.new_result('seed_std_list', cell)
    r['run_ok'] = status is None
    if status is not None:
        r['status'] = status
        r['reason'] = reason
    r['phases'] = OrderedDict((p['phase'], p) for p in phases)
    r['samples'] = list(samples)
    r['memcheck'] = memcheck
    r['command'] = command
    if status is None:
        r['metrics'], r['metric_errors'] = metrics.compute_all(cellmod.CELLS[cell], r, refs or {})
    return r


HEAP_FREE = (393376, 655589216)


def native_result():
    return result('native', [
        sample('baseline', 1000, 2700, work_us=-1),
        sample('peak', 6000, 643000, work_us=4900000),
        sample('after_free', 6010, 642000, 40000, 10000, 240000, heap=HEAP_FREE, work_us=2155),
        sample('after_idle', 8100, 642000, 40000, 10000, 240000, heap=HEAP_FREE),
    ], samples=[sample('idle', 6110 + 100 * i, 642000, 40000, 10000, 240000) for i in range(20)])


def trim_result():
    return result('trim', [
        sample('baseline', 1000, 2700),
        sample('peak', 6000, 643000),
        sample('after_free', 6010, 642000, 40000, 10000, 240000, heap=HEAP_FREE),
        sample('after_trim', 9010, 43000, 40000, 10000, 240000, heap=(393376, 655523680), work_us=3000000),
        sample('after_idle', 11100, 43000, 40000, 10000, 240000),
    ], samples=[sample('idle', 9110 + 100 * i, 43000, 40000, 10000, 240000) for i in range(20)])


def shim_result(trim):
    return result('shim', [
        sample('baseline', 1000, 2850),
        sample('peak', 6000, 643100),
        sample('after_free', 6010, 642100, 40000, 10000, 240000),
        sample('after_idle', 8100, 43200, 40000, 10000, 240000),
    ], samples=[sample('idle', 6110, 642100), sample('idle', 6210, 300000)] +
        [sample('idle', 6310 + 100 * i, 43200) for i in range(18)], refs={'trim': trim})


def jemalloc_result():
    return result('jemalloc', [
        sample('baseline', 1000, 3700),
        sample('peak', 6000, 703000),
        sample('after_free', 6050, 147000, 40000, 10000, 240000),
        sample('after_idle', 8100, 147000, 40000, 10000, 240000),
    ], samples=[sample('idle', 6150 + 100 * i, 147000) for i in range(20)],
        command=['/x/seed_std_list', '--count', '4000', '--idle', '2'])


MEMCHECK = OrderedDict([('definitely_lost_bytes', 0), ('indirectly_lost_bytes', 0), ('possibly_lost_bytes', 0),
                        ('still_reachable_bytes', 240000), ('still_reachable_blocks', 10000),
                        ('definitely_lost_blocks', 0), ('indirectly_lost_blocks', 0),
                        ('possibly_lost_blocks', 0), ('errors', 0)])


def memcheck_result():
    return result('memcheck', [
        sample('baseline', 1000, 52000), sample('peak', 6000, 878000),
        sample('after_free', 6010, 878000, 40000, 10000, 240000)], memcheck=MEMCHECK)


CASE_TEXT = '''# The founding report: 64 KiB blocks between live list nodes stay resident.
program = seed_std_list
args = --count 10000
cells = native trim shim memcheck jemalloc
'''


def seed_case():
    return parse_case_text(CASE_TEXT, 'seed_std_list', 'cases/seed_std_list.case')


def full_facts():
    case, count, own = demo.with_count(seed_case())
    trim = trim_result()
    results = OrderedDict([('native', native_result()), ('memcheck', memcheck_result()), ('trim', trim),
                           ('shim', shim_result(trim)), ('jemalloc', jemalloc_result())])
    return demo.Facts(case, PLATFORM, count, own, 2, ('jemalloc', None), results)


def story_text(facts):
    return dict((key, fn(facts).replace(NBSP, ' ')) for key, _, _, fn in demo.STEPS)


class Chart(unittest.TestCase):
    SERIES = [
        svgchart.Series('glibc (native)', [(-5, 2.8), (0, 658), (2, 658)], markers=[(-5, 2.8), (0, 658)]),
        svgchart.Series('glibc + malloc_trim(0) (trim)', [(-5, 2.8), (0, 658), (3, 44), (5, 44)]),
        svgchart.Series('glibc + shim (shim)', [(-5, 2.9), (0, 658), (0.3, 44), (2, 44)]),
        svgchart.Series('jemalloc (jemalloc)', [(-4, 3.8), (0, 720), (0.05, 150), (2, 150)]),
    ]
    MARKS = [svgchart.Mark('span', -5, 0, 'allocate'), svgchart.Mark('line', 0, None, 'free'),
             svgchart.Mark('line', 3, None, 'malloc_trim(0) done')]

    def chart(self):
        return svgchart.line_chart(self.SERIES, self.MARKS, title='seed_std_list: RSS over time',
                                   subtitle=['--count 10,000', 'aligned at the free'],
                                   x_label='time since the free (s)', y_label='RSS (MB)')

    def test_well_formed_svg_with_axis_labels_legend_and_phase_marks(self):
        doc = self.chart()
        self.assertTrue(doc.startswith('<?xml'))
        root = parse_svg(doc)
        self.assertEqual(root.tag, SVG + 'svg')
        t = texts(root)
        self.assertIn('time since the free (s)', t)
        self.assertIn('RSS (MB)', t)
        for s in self.SERIES:
            self.assertIn(s.label, t)
        for m in ('allocate', 'free', 'malloc_trim(0) done'):
            self.assertIn(m, t)
        self.assertIn('seed_std_list: RSS over time', t)
        self.assertIn('aligned at the free', t)
        # tick labels on both axes: 0 on y, a negative second on x
        self.assertIn('0', t)
        self.assertTrue(any(x.startswith('\u2212') for x in t), t)

    def test_self_contained_no_script_no_external_references(self):
        doc = self.chart()
        root = parse_svg(doc)
        for e in root.iter():
            tag = e.tag.split('}')[-1]
            self.assertNotIn(tag, ('script', 'image', 'foreignObject', 'use', 'a', 'style'))
            for k, v in e.attrib.items():
                self.assertNotIn('href', k)
                self.assertFalse(k.startswith('on'), k)
                self.assertNotIn('url(', v)
                self.assertNotIn('http', v)
        self.assertNotIn('<script', doc)
        self.assertNotIn('@import', doc)

    def test_series_have_distinct_line_styles_and_black_text(self):
        root = parse_svg(self.chart())
        lines = list(root.iter(SVG + 'polyline'))
        self.assertEqual(len(lines), len(self.SERIES))
        dashes = [l.get('stroke-dasharray') for l in lines]
        self.assertEqual(len(set(dashes)), len(dashes), dashes)
        for g in root.iter(SVG + 'g'):
            if g.get('fill') not in (None, 'none'):
                self.assertEqual(g.get('fill'), '#000000')
        for t in root.iter(SVG + 'text'):
            self.assertIn(t.get('fill', '#000000'), ('#000000',))

    def test_overlapping_mark_labels_take_separate_rows(self):
        marks = [svgchart.Mark('line', 0, None, 'free'), svgchart.Mark('line', 0.01, None, 'malloc_trim(0) done')]
        root = parse_svg(svgchart.line_chart(self.SERIES, marks, x_label='s', y_label='MB'))
        ys = [float(t.get('y')) for t in root.iter(SVG + 'text') if t.text in ('free', 'malloc_trim(0) done')]
        self.assertEqual(len(set(ys)), 2, ys)

    def test_ticks_cover_the_range(self):
        lo, hi, ts = svgchart.ticks(-4.2, 7.1, 8)
        self.assertLessEqual(lo, -4.2)
        self.assertGreaterEqual(hi, 7.1)
        self.assertEqual(ts[0], lo)
        self.assertEqual(ts[-1], hi)
        self.assertLessEqual(len(ts), 14)

    def test_empty_chart_is_still_valid(self):
        root = parse_svg(svgchart.line_chart([], [], x_label='s', y_label='MB'))
        self.assertEqual(root.tag, SVG + 'svg')


class DemoChart(unittest.TestCase):
    def test_timeline_is_aligned_at_the_free_in_mb(self):
        points, phases = demo.timeline(native_result())
        self.assertEqual(phases['after_free'], (0.0, 642000 * 1024 / 1e6))
        self.assertAlmostEqual(phases['baseline'][0], -5.01)
        self.assertEqual([p[0] for p in points], sorted(p[0] for p in points))
        self.assertEqual(len(points), 4 + 20)

    def test_chart_has_the_four_runs_and_the_phases(self):
        facts = full_facts()
        root = parse_svg(demo.chart(facts))
        t = texts(root)
        for role in ('native', 'trim', 'shim', 'jemalloc'):
            self.assertIn(demo.series_label(facts, role), t)
        for m in ('allocate', 'free', 'malloc_trim(0) done'):
            self.assertIn(m, t)
        self.assertTrue(any(x.startswith('RSS (MB') for x in t), t)
        self.assertTrue(any('(s)' in x for x in t), t)
        self.assertEqual(len(list(root.iter(SVG + 'polyline'))), 4)

    def test_skipped_runs_are_left_out_of_the_chart(self):
        facts = full_facts()
        facts.results['shim'] = result('shim', [], status='skip', reason='shim not built: /b/shim/libtrimshim.so')
        root = parse_svg(demo.chart(facts))
        self.assertEqual(len(list(root.iter(SVG + 'polyline'))), 3)
        self.assertNotIn(demo.series_label(facts, 'shim'), texts(root))

    def test_html_page_has_the_svg_and_the_story(self):
        facts = full_facts()
        story = [('', demo.header(facts))] + [(t, fn(facts)) for _, t, _, fn in demo.STEPS]
        page = demo.html_page(facts, story)
        self.assertIn('<svg', page)
        self.assertNotIn('<script', page.lower())
        self.assertNotIn('<?xml', page)
        self.assertIn('valgrind&#x27;s verdict', page)
        self.assertIn('still reachable', page)


class Narration(unittest.TestCase):
    def test_figures_appear(self):
        s = story_text(full_facts())
        self.assertIn('2.8 MB', s['allocate'])
        self.assertIn('658 MB', s['allocate'])
        self.assertIn('4.9 s', s['allocate'])
        self.assertIn('10,000 live objects (240,000 bytes', s['free'])
        self.assertIn('657 MB, 100% of what the allocation added', s['free'])
        self.assertIn('still 657 MB', s['free'])
        self.assertIn('0 bytes definitely, indirectly or possibly lost', s['valgrind'])
        self.assertIn('240,000 bytes in 10,000 blocks "still reachable"', s['valgrind'])
        self.assertIn('exactly the 10,000 live objects', s['valgrind'])
        self.assertIn('393 kB in use', s['heap'])
        self.assertIn('656 MB free', s['heap'])
        self.assertIn('41 MB of pages (10,000 pages of 4 KiB)', s['heap'])
        self.assertIn('from 657 MB to 44 MB', s['trim'])
        self.assertIn('3.0 s', s['trim'])
        self.assertIn('one page per live object', s['trim'])
        self.assertIn('baseline + floor = 44 MB', s['trim'])
        self.assertIn('1.01x', s['trim'])
        self.assertIn('from 658 MB to 44 MB within 0.3 s', s['shim'])
        self.assertIn('1.00x what the explicit trim left', s['shim'])
        self.assertIn('jemalloc', s['other'])
        self.assertIn('720 MB', s['other'])
        self.assertIn('151 MB right after the free (20%', s['other'])

    def test_header_says_the_count_was_reduced(self):
        facts = full_facts()
        h = demo.header(facts)
        self.assertIn('--count {:,}'.format(demo.DEMO_COUNT), h)
        self.assertIn('10,000', h)
        self.assertIn('glibc 2.36', h)

    def test_in_short(self):
        text = demo.in_short(full_facts()).replace(NBSP, ' ')
        self.assertIn('valgrind is right', text)
        self.assertIn('657 MB stays resident', text)

    def test_skipped_steps_say_why(self):
        facts = full_facts()
        facts.results['memcheck'] = result('memcheck', [], status='skip', reason='valgrind not found')
        facts.results['shim'] = result('shim', [], status='skip', reason='shim not built: /b/shim/libtrimshim.so')
        facts.other = (None, 'jemalloc not installed; tcmalloc not installed; mimalloc not installed')
        del facts.results['jemalloc']
        s = story_text(facts)
        self.assertTrue(s['valgrind'].startswith('Skipped: valgrind not found.'), s['valgrind'])
        self.assertTrue(s['shim'].startswith('Skipped: shim not built: /b/shim/libtrimshim.so.'), s['shim'])
        self.assertIn('no other allocator is installed (jemalloc not installed', s['other'])
        self.assertNotIn('valgrind is right', demo.in_short(facts))

    def test_a_failed_run_says_so(self):
        facts = full_facts()
        facts.results['native'] = result('native', [], status='fail', reason='exited with status 2: bad flag')
        s = story_text(facts)
        for key in ('allocate', 'free', 'heap'):
            self.assertIn('native run failed', s[key])
            self.assertIn('exited with status 2: bad flag', s[key])
        self.assertEqual(demo.in_short(facts), '')

    def test_missing_heap_figures(self):
        facts = full_facts()
        r = native_result()
        for p in r['phases'].values():
            p.pop('heap', None)
        facts.results['native'] = r
        self.assertIn('no mallinfo2 figures', story_text(facts)['heap'])

    def test_singular_and_no_retention(self):
        facts = full_facts()
        r = native_result()
        for p in r['phases'].values():
            if p['phase'] in ('after_free', 'after_idle'):
                p['rss_kb'], p['live_objects'], p['live_bytes'] = 3000, 1, 24000
        facts.results['native'] = r
        mc = OrderedDict(MEMCHECK, still_reachable_blocks=1, still_reachable_bytes=24000)
        facts.results['memcheck'] = result('memcheck', [
            sample('baseline', 1000, 52000), sample('peak', 6000, 878000),
            sample('after_free', 6010, 60000, 8, 1, 24000)], memcheck=mc)
        s = story_text(facts)
        self.assertIn('except its 1 live object (24,000 bytes', s['free'])
        self.assertIn('Here most of it went back', s['free'])
        self.assertIn('24,000 bytes in 1 block "still reachable": exactly the live object it', s['valgrind'])
        self.assertNotIn('it is right', s['valgrind'])
        self.assertIn('did go back by itself', s['heap'])
        self.assertEqual(demo.in_short(facts), '')

    def test_wrap_keeps_figures_on_one_line(self):
        text = ('x' * 86) + ' ' + demo.mb(2700)
        out = demo.wrap(text, '')
        self.assertIn('\n2.8 MB', out)
        self.assertNotIn(NBSP, out)


class CountAndIdle(unittest.TestCase):
    def test_count_is_capped_and_memcheck_args_follow(self):
        case = parse_case_text(CASE_TEXT + 'memcheck_args = --count 10000\n', 'seed_std_list', 'x.case')
        c, count, own = demo.with_count(case)
        self.assertEqual((count, own), (demo.DEMO_COUNT, 10000))
        self.assertEqual(c.args, ['--count', str(demo.DEMO_COUNT)])
        self.assertEqual(c.memcheck_args, ['--count', str(demo.DEMO_COUNT)])
        self.assertEqual(case.args, ['--count', '10000'])
        c, count, own = demo.with_count(case, 10000)
        self.assertEqual(c.args, ['--count', '10000'])

    def test_no_count(self):
        case = parse_case_text(CASE_TEXT.replace('--count 10000', '--size 100'), 'x', 'x.case')
        c, count, own = demo.with_count(case)
        self.assertIs(c, case)
        self.assertIsNone(count)

    def test_native_and_trim_idle_through_the_cell_table(self):
        case = seed_case()
        native = demo.with_idle(cellmod.CELLS['native'], 2)
        self.assertEqual(native.extra_args(case), ['--idle', '2'])
        self.assertIn('after_idle', native.phases)
        self.assertEqual(demo.with_idle(cellmod.CELLS['trim'], 3).extra_args(case), ['--trim', '--idle', '3'])
        self.assertEqual(demo.with_idle(cellmod.CELLS['shim'], 3).extra_args(case), ['--idle', '2'])
        self.assertEqual(cellmod.CELLS['native'].extra_args(case), [])
        self.assertNotIn('after_idle', cellmod.CELLS['native'].phases)


class Pause(unittest.TestCase):
    class NoTerminal(object):
        def isatty(self):
            return False

        def readline(self):
            raise AssertionError('read from stdin without a terminal')

    class Terminal(object):
        read = 0

        def isatty(self):
            return True

        def readline(self):
            self.read += 1
            return '\n'

    def test_never_waits_without_a_terminal(self):
        out = io.StringIO()
        self.assertFalse(demo.wait_for_enter(out, self.NoTerminal()))
        self.assertFalse(demo.wait_for_enter(out, io.StringIO('')))
        self.assertEqual(out.getvalue(), '')

    def test_waits_for_enter_on_a_terminal(self):
        out, tty = io.StringIO(), self.Terminal()
        self.assertTrue(demo.wait_for_enter(out, tty))
        self.assertEqual(tty.read, 1)
        self.assertIn('Enter', out.getvalue())


class Cli(FixtureTest):
    def dirs(self):
        return ['--cases-dir', self.fx.cases, '--build-dir', self.fx.build]

    def test_unknown_case_is_one_line_exit_2(self):
        self.fx.case('good', case_text())
        rc, out, err = call(['demo', '--case', 'nope'] + self.dirs())
        self.assertEqual(rc, 2)
        self.assertEqual(out, '')
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertRegex(err, r"^retention: unknown case 'nope' \(known: good\)\n$")

    def test_count_for_a_case_without_count(self):
        self.fx.case('nocount', case_text().replace('args = --count 100', 'args ='))
        rc, out, err = call(['demo', '--case', 'nocount', '--count', '5'] + self.dirs())
        self.assertEqual(rc, 2)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn('no --count', err)

    def test_svg_into_a_missing_directory(self):
        self.fx.case('good', case_text())
        rc, out, err = call(['demo', '--case', 'good', '--svg', os.path.join(self.fx.root, 'no', 'x.svg')]
                            + self.dirs())
        self.assertEqual(rc, 2)
        self.assertEqual(len(err.splitlines()), 1, err)

    def test_end_to_end_with_pause_and_no_terminal(self):
        """The whole demo on the fake case program, --pause, stdin from /dev/null: never waits."""
        self.fx.shim()
        self.fx.case('good', case_text(cells='native trim shim memcheck', env={'FAKE_VALGRIND_XML': SEED_XML}))
        svg = os.path.join(self.fx.root, 'demo.svg')
        page = os.path.join(self.fx.root, 'demo.html')
        env = dict(os.environ)
        for name in ('JEMALLOC', 'TCMALLOC', 'MIMALLOC'):
            env['RETENTION_PRELOAD_%s' % name] = os.path.join(self.fx.root, 'no-such-lib.so')
        with open(os.devnull) as devnull:
            p = subprocess.run([sys.executable, RUNNER, 'demo', '--case', 'good', '--pause', '--svg', svg,
                                '--html', page, '--valgrind', self.fx.fake_valgrind()] + self.dirs(),
                               stdin=devnull, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               timeout=60, universal_newlines=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn('Enter', p.stdout)
        for _, title, _, _ in demo.STEPS:
            self.assertIn(title, p.stdout)
        self.assertIn('still reachable', p.stdout)
        self.assertIn('Skipped: no other allocator is installed', p.stdout)
        self.assertIn('no mallinfo2 figures', p.stdout)
        root = ET.parse(svg).getroot()
        self.assertEqual(len(list(root.iter(SVG + 'polyline'))), 3)
        with open(page) as f:
            self.assertIn('<svg', f.read())


if __name__ == '__main__':
    unittest.main()
