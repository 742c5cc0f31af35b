"""The Prometheus text parser (promtext) on good and bad input, each bad one a single-line error
naming the file and the line; and explain's reading of libtrimshim's statistics file
(explain/shim.py) on text in the shim's format 1: template expansion as shim/env.c does it, the
figures, and the checks that the file is this process's."""

import os
import unittest

from retentionlib import promtext
from retentionlib.explain import procfs, render, shim

SRC = '/var/lib/node_exporter/textfile/trimshim-4242.prom'

# What shim/promfile.c writes (help texts shortened), for process 4242.
SHIM_FILE = '''\
# HELP trimshim_info The trim shim (libtrimshim) is loaded in this process.
# TYPE trimshim_info gauge
trimshim_info{pid="4242",program="server",mode="idle-points",policy="adaptive",format="1"} 1
# HELP trimshim_state The shim's state: 1 for the current one.
# TYPE trimshim_state gauge
trimshim_state{pid="4242",state="running"} 1
trimshim_state{pid="4242",state="stopped"} 0
trimshim_state{pid="4242",state="off"} 0
trimshim_state{pid="4242",state="not-glibc"} 0
trimshim_state{pid="4242",state="valgrind"} 0
trimshim_state{pid="4242",state="failed"} 0
trimshim_state{pid="4242",state="waiting"} 0
# HELP trimshim_trims_total malloc_trim calls, by why.
# TYPE trimshim_trims_total counter
trimshim_trims_total{pid="4242",kind="quiet"} 3
trimshim_trims_total{pid="4242",kind="busy"} 1
trimshim_trims_total{pid="4242",kind="interval"} 0
trimshim_trims_total{pid="4242",kind="api"} 0
# TYPE trimshim_returned_bytes_total counter
trimshim_returned_bytes_total{pid="4242"} 614240256
# TYPE trimshim_trim_seconds_total counter
trimshim_trim_seconds_total{pid="4242"} 0.021795368
# TYPE trimshim_probes_total counter
trimshim_probes_total{pid="4242"} 7
# TYPE trimshim_probe_seconds_total counter
trimshim_probe_seconds_total{pid="4242"} 0.003591048
# TYPE trimshim_cpu_seconds_total counter
trimshim_cpu_seconds_total{pid="4242"} 0.017354053
# TYPE trimshim_futile_trims_total counter
trimshim_futile_trims_total{pid="4242"} 1
# TYPE trimshim_refault_minor_faults_total counter
trimshim_refault_minor_faults_total{pid="4242"} 1400
# TYPE trimshim_wakeups_total counter
trimshim_wakeups_total{pid="4242"} 21
# TYPE trimshim_idle_point_looks_total counter
trimshim_idle_point_looks_total{pid="4242"} 21
# TYPE trimshim_heap_free_bytes gauge
trimshim_heap_free_bytes{pid="4242"} 656000000
# TYPE trimshim_heap_used_bytes gauge
trimshim_heap_used_bytes{pid="4242"} 393000
# TYPE trimshim_resident_bytes gauge
trimshim_resident_bytes{pid="4242"} 45000000
# TYPE trimshim_start_time_seconds gauge
trimshim_start_time_seconds{pid="4242"} 1796192027
'''


class Parser(unittest.TestCase):
    def test_the_shims_file(self):
        e = promtext.parse(SHIM_FILE.encode(), SRC)
        self.assertEqual(e.families['trimshim_trims_total']['type'], 'counter')
        self.assertEqual(e.value('trimshim_trims_total', kind='quiet'), 3)
        self.assertEqual(e.value('trimshim_info'), 1)
        self.assertEqual(e.find('trimshim_info')[0].labels['mode'], 'idle-points')
        self.assertEqual(e.value('trimshim_trim_seconds_total'), 0.021795368)
        self.assertIsNone(e.value('trimshim_nothing'))
        with self.assertRaises(promtext.PromError):
            e.value('trimshim_state')   # seven samples: not one

    def test_what_the_format_allows(self):
        text = ('# a comment\n\n# HELP x_total a \\\\ and a \\n in help\n# TYPE x_total counter\n'
                'x_total{a="q\\"uote",b="back\\\\slash",c="new\\nline",} 1e3\n'
                'x_total{a="2"}\t+Inf\ny NaN\nz -Inf\nw{} -.5\n'
                '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 3\nh_sum 4\nh_count 3\n')
        e = promtext.parse(text, 'f')
        self.assertEqual(e.families['x_total']['help'], 'a \\ and a \n in help')
        s = e.find('x_total', a='q"uote')[0]
        self.assertEqual((s.labels['b'], s.labels['c'], s.value), ('back\\slash', 'new\nline', 1000.0))
        self.assertEqual(e.value('x_total', a='2'), float('inf'))
        self.assertNotEqual(e.value('y'), e.value('y'))
        self.assertEqual(e.value('w'), -0.5)
        self.assertEqual(e.families['h']['samples'], 4)

    BAD = [
        # (text, line, words)
        (b'', 0, 'empty'),
        (b'a 1', 1, 'does not end in a newline'),
        (b'a 1\nb 2', 2, 'does not end in a newline'),
        (b'a 1\n\xff 2\n', 2, 'not UTF-8'),
        (b'a 1\nb\x00 2\n', 2, 'NUL'),
        (b'1a 1\n', 1, 'not a sample'),
        (b'a\n', 1, 'no value'),
        (b'a{x="1"}\n', 1, 'no value'),
        (b'a abc\n', 1, "bad value 'abc'"),
        (b'a 1_000\n', 1, "bad value '1_000'"),
        (b'a infinity\n', 1, 'bad value'),
        (b'a 0x10\n', 1, 'bad value'),
        (b'a 1 1700000000000\n', 1, 'a timestamp'),
        (b'a{1x="1"} 1\n', 1, 'bad label name'),
        (b'a{x:y="1"} 1\n', 1, 'not followed by ='),
        (b'a{x="1",x="2"} 1\n', 1, 'label x twice'),
        (b'a{x=1} 1\n', 1, 'does not start with "'),
        (b'a{x="1} 1\n', 1, 'not terminated'),
        (b'a{x="\\t"} 1\n', 1, 'bad escape \\t'),
        (b'a{x="1" y="2"} 1\n', 1, 'not followed by , or }'),
        (b'a 1\na 2\n', 2, 'series a twice'),
        (b'a{x="1"} 1\nb 1\na{x="2"} 1\n', 3, 'apart from its first group'),
        (b'# TYPE a gauge\n# TYPE a counter\na 1\n', 2, 'a second TYPE for a'),
        (b'# HELP a x\n# HELP a y\na 1\n', 2, 'a second HELP for a'),
        (b'# TYPE a gauges\na 1\n', 1, "unknown TYPE 'gauges'"),
        (b'a 1\n# TYPE a gauge\n', 2, 'TYPE of a after its samples'),
        (b'# HELP a bad \\q escape\na 1\n', 1, 'bad escape \\q'),
        (b'# TYPE 9a gauge\n', 1, 'bad metric name in TYPE'),
        (b'# TYPE\n', 1, 'TYPE without a metric name'),
    ]

    def test_bad_input_is_one_line_naming_file_and_line(self):
        for text, line, words in self.BAD:
            with self.assertRaises(promtext.PromError, msg=text) as cm:
                promtext.parse(text, SRC)
            msg = str(cm.exception)
            self.assertEqual(len(msg.splitlines()), 1, msg)
            want = '%s:%d: ' % (SRC, line) if line else '%s: ' % SRC
            self.assertTrue(msg.startswith(want), '%r: %s' % (text, msg))
            self.assertIn(words, msg, text)

    def test_the_last_sample_of_a_cut_file(self):
        cut = SHIM_FILE[:SHIM_FILE.index('1796192027') + 4]
        with self.assertRaises(promtext.PromError) as cm:
            promtext.parse(cut, SRC)
        self.assertEqual(cm.exception.lineno, len(cut.splitlines()))


class Template(unittest.TestCase):
    def test_expansion_as_the_shim_does(self):
        self.assertEqual(shim.expand('/m/trimshim-%p.prom', 4242), '/m/trimshim-4242.prom')
        self.assertEqual(shim.expand('/m/a%%p-%p', 7), '/m/a%p-7')
        self.assertEqual(shim.expand('/m/%p.%p', 7), '/m/7.7')
        self.assertEqual(shim.expand('/m/fixed.prom', 7), '/m/fixed.prom')
        self.assertEqual(shim.expand('/m%%p/x-%p', 7), '/m%p/x-7')

    def test_what_the_shim_refuses(self):
        for t, why in (('', 'empty'), ('rel/%p', 'not an absolute path'), ('/m/%q', 'neither %p'),
                       ('/m/x%', 'neither %p'), ('/m/', 'ends in /'), ('/%p/x', 'in a directory name'),
                       ('/' + 'a' * 1020 + '%p', 'too long')):
            self.assertIn(why, shim.check_template(t), t)
            with self.assertRaises(ValueError):
                shim.expand(t, 1)


class Figures(unittest.TestCase):
    def parsed(self, text=SHIM_FILE):
        return promtext.parse(text, SRC)

    def test_the_figures(self):
        f = shim.figures(self.parsed(), 4242, proc_start=1796192026.5)
        self.assertEqual(f['state'], 'running')
        self.assertEqual(f['mode'], 'idle-points')
        self.assertEqual(dict(f['trims']), {'quiet': 3, 'busy': 1, 'interval': 0, 'api': 0, 'total': 4})
        self.assertEqual(f['returned_bytes'], 614240256)
        self.assertEqual((f['futile_trims'], f['refault_minor_faults']), (1, 1400))
        self.assertEqual((f['heap_free_bytes'], f['heap_used_bytes'], f['resident_bytes']),
                         (656000000, 393000, 45000000))

    def assertProblem(self, text, pid, words, proc_start=None):
        with self.assertRaises(shim.StatsProblem) as cm:
            shim.figures(self.parsed(text), pid, proc_start)
        msg = str(cm.exception)
        self.assertEqual(len(msg.splitlines()), 1, msg)
        self.assertTrue(msg.startswith(SRC), msg)
        self.assertIn(words, msg)

    def test_another_process_file(self):
        self.assertProblem(SHIM_FILE, 4243, 'the file of process 4242, not of this one (4243)')

    def test_left_by_an_earlier_process(self):
        self.assertProblem(SHIM_FILE, 4242, 'left by an earlier process 4242', proc_start=1796199999)

    def test_not_the_shims_file(self):
        self.assertProblem('# TYPE up gauge\nup 1\n', 4242, 'no trimshim_info samples')
        self.assertProblem(SHIM_FILE.replace('trimshim_futile_trims_total{', 'trimshim_futile_total{'), 4242,
                           'no trimshim_futile_trims_total sample')
        self.assertProblem(SHIM_FILE.replace('state="running"} 1', 'state="running"} 0'), 4242,
                           '0 trimshim_state samples at 1')
        self.assertProblem(SHIM_FILE.replace('trimshim_probes_total{pid="4242"}', 'trimshim_probes_total{pid="1"}'),
                           4242, 'trimshim_probes_total carries pid "1"')
        self.assertProblem(SHIM_FILE.replace('} 1400', '} -1'), 4242, 'not a count')

    def test_state_words(self):
        self.assertEqual(shim.state_words('running', 'thread'), 'running, from a thread of its own')
        self.assertIn('it is jemalloc', shim.state_words('not-glibc', None, 'jemalloc'))
        for s in shim.STATES:
            self.assertTrue(shim.state_words(s), s)


class Inspect(unittest.TestCase):
    """inspect() on this test's own process (no shim: nothing), the environ lookup, the library's
    names, and the line that says how to export the figures."""

    def test_not_loaded(self):
        with open('/proc/self/maps') as f:
            maps = procfs.parse_maps(f.read())
        self.assertEqual(dict(shim.inspect(os.getpid(), maps)), {'loaded': False})

    def test_environ_lookup(self):
        env = b'A=1\0TRIMSHIM_STATS=/x/%p\0TRIMSHIM_STATS=/y\0TRIMSHIM_STATSX=/z\0'
        self.assertEqual(procfs.environ_lookup(env, 'TRIMSHIM_STATS'), b'/x/%p')
        self.assertIsNone(procfs.environ_lookup(env, 'TRIMSHIM'))
        self.assertEqual(procfs.innermost_pid({'NSpid': '4555\t12'}, 4555), 12)
        self.assertEqual(procfs.innermost_pid({}, 4555), 4555)

    def test_library_names(self):
        maps = procfs.parse_maps('7f0000000000-7f0000001000 r-xp 00000000 08:01 42 /usr/lib/libtrimshim.so.0.1.0\n')
        self.assertEqual(shim.library(maps), '/usr/lib/libtrimshim.so.0.1.0')
        for other in ('/usr/lib/libtrimshim_mallinfo.so', '/usr/lib/libtrimshimx.so', '/x/libtrimshim.so.a'):
            maps = procfs.parse_maps('7f0000000000-7f0000001000 r-xp 00000000 08:01 42 %s\n' % other)
            self.assertIsNone(shim.library(maps), other)

    def test_render_not_exported_names_the_line_that_enables_it(self):
        sh = {'loaded': True, 'library': '/l/libtrimshim.so', 'state': None,
              'stats': {'template': None, 'exported': False}}
        lines = render.render_shim(sh)
        self.assertEqual(len(lines), 2)
        self.assertIn('loaded; /l/libtrimshim.so', lines[0])
        self.assertIn('not exported: start the program with %s' % shim.ENABLE, lines[1])


if __name__ == '__main__':
    unittest.main()
