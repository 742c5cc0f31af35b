"""`retention compare`'s rounds and its table, with the case runs replaced by figures made up here
(no process is started): the default number of rounds, the per-round ratios shown as median
[min-max], and "~" (within noise) where that range includes 1.0."""

import os
import unittest
from collections import OrderedDict

from retentionlib import cli, compare, paths, runner

from .helpers import call

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fake_result(cell, alloc_us, free_us):
    r = OrderedDict([('cell', cell), ('status', 'fail'), ('reason', ''), ('run_ok', True)])
    r['phases'] = OrderedDict([
        ('baseline', {'rss_kb': 2000}),
        ('peak', {'rss_kb': 600000, 'work_us': alloc_us}),
        ('after_free', {'rss_kb': 590000, 'work_us': free_us, 'floor_kb': 1000}),
        ('after_trim', {'rss_kb': 3000, 'floor_kb': 1000}),
        ('after_idle', {'rss_kb': 4000, 'floor_kb': 1000}),
    ])
    return r


class Rounds(unittest.TestCase):
    def setUp(self):
        self.calls = []
        self.real = runner.measure_cell
        runner.measure_cell = self.fake
        self.addCleanup(setattr, runner, 'measure_cell', self.real)
        self.ctx = runner.Context(REPO, paths.build_dir(), os.path.join(REPO, 'cases'),
                                  os.path.join(REPO, 'expected'), {'key': 'test'})

    def fake(self, ctx, case, cell, refs):
        n = len([c for c in self.calls if c == cell.name])
        self.calls.append(cell.name)
        # glibc's alloc takes 100 ms; jemalloc's 150 ms in every round (a resolved difference);
        # tcmalloc's 90 or 110 ms by turns (within noise). Free: 10 ms for all.
        alloc = {'native': 100000, 'jemalloc': 150000, 'tcmalloc': 90000 if n % 2 else 110000}.get(cell.name, 100000)
        return fake_result(cell.name, alloc, 10000), False

    def test_five_rounds_by_default_after_one_warm_up(self):
        row = compare.compare_case(self.ctx, 'array_control')
        self.assertEqual(compare.DEFAULT_ROUNDS, 5)
        # 7 columns x 5 rounds, and the warm-up run (the first column's), dropped
        self.assertEqual(len(self.calls), 7 * 5 + 1)
        for e in row.values():
            self.assertEqual(e['rounds'], 5)
            self.assertEqual(e['alloc_ratio'].n, 5)
        self.assertEqual(row['jemalloc']['alloc_ratio'].text(), '1.50 [1.50-1.50]')
        self.assertTrue(row['tcmalloc']['alloc_ratio'].text().startswith('~'), row['tcmalloc']['alloc_ratio'].text())
        lines = compare.render(OrderedDict([('array_control', row)]))
        note = [l for l in lines if l.startswith('alloc, free:')]
        self.assertEqual(len(note), 1)
        self.assertIn('median of 5 interleaved rounds', note[0])
        self.assertIn('~: within noise', note[0])

    def test_run_defaults_to_five_rounds(self):
        rows = compare.run(self.ctx, ['list_retention'])
        self.assertEqual(rows['list_retention']['glibc']['rounds'], 5)


class CommandLine(unittest.TestCase):
    def test_the_command_defaults_to_five_rounds(self):
        args = cli.make_parser().parse_args(['compare'])
        self.assertEqual(args.repeat, 5)

    def test_too_few_rounds_is_one_line(self):
        rc, out, err = call(['compare', '--repeat', '2'])
        self.assertEqual(rc, 2, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn('--repeat', lines[0])
        self.assertIn('got 2', lines[0])


if __name__ == '__main__':
    unittest.main()
