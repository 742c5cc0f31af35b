import os
import re
import shutil
import tempfile
import unittest

from retentionlib import cells as cellmod
from retentionlib import expfile
from retentionlib.casefile import case_names, load_case
from retentionlib.errors import ConfigError
from retentionlib.expfile import (load_expected, parse_expected_text, select_bounds, version_tuple,
                                  with_cell_bounds)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# cells.exp and two case files in it; named relative to DATA, so 'cellbounds/cells.exp'.
DATA = os.path.join(HERE, 'data')
LAYERS = os.path.join(DATA, 'cellbounds')

PLATFORM = {'glibc': '2.36', 'distro_id': 'debian', 'distro_version': '12', 'thp': 'madvise',
            'arch': 'x86_64', 'page_size': 4096}

GOOD = """\
# file comment
[native]
# why retained
retained >= 0.90
# why the upper end
retained <= 1.05

[trim]
# why floor
floor_ratio <= 1.20

[memcheck]
# nothing lost
definitely_lost_bytes == 0
still_reachable_blocks == live_objects
still_reachable_bytes == live_bytes * 1.5
# old glibc
[native glibc<2.26]
# tcache absent
retained >= 0.80

[native distro=debian-12 thp=madvise]
# debian
floor_ratio <= 9
"""


def parse(text):
    return parse_expected_text(text, 'expected/x.exp')


class GoodExpectedFile(unittest.TestCase):
    def test_sections_and_bounds(self):
        exp = parse(GOOD)
        self.assertEqual([s.header for s in exp.sections],
                         ['native', 'trim', 'memcheck', 'native glibc<2.26', 'native distro=debian-12 thp=madvise'])
        native = exp.sections[0]
        self.assertEqual([(b.metric, b.op, b.number) for b in native.bounds],
                         [('retained', '>=', 0.9), ('retained', '<=', 1.05)])
        self.assertEqual(native.bounds[0].why, 'why retained')
        self.assertEqual(native.bounds[1].why, 'why the upper end')
        self.assertEqual(native.bounds[0].location, 'expected/x.exp:4')
        mc = exp.sections[2].bounds
        self.assertEqual([b.why for b in mc], ['nothing lost'] * 3)
        self.assertEqual((mc[1].figure, mc[1].factor, mc[1].number), ('live_objects', 1, None))
        self.assertEqual((mc[2].figure, mc[2].factor), ('live_bytes', 1.5))
        self.assertEqual(exp.sections[3].why, 'old glibc')
        self.assertEqual(mc[0].number, 0)
        self.assertIsInstance(mc[0].number, int)


class MalformedExpectedFile(unittest.TestCase):
    def assertError(self, text, line, fragment):
        with self.assertRaises(ConfigError) as cm:
            parse(text)
        msg = str(cm.exception)
        self.assertTrue(msg.startswith('expected/x.exp:%d: ' % line), msg)
        self.assertIn(fragment, msg)

    def test_bound_before_section(self):
        self.assertError('# c\nretained >= 0.9\n', 2, 'before any section header')

    def test_unknown_cell(self):
        self.assertError('[natve]\n# w\nretained >= 0.9\n', 1, "unknown cell 'natve'")

    def test_unknown_selector(self):
        self.assertError('[native kernel=6]\n', 1, "unknown selector 'kernel=6'")

    def test_bad_glibc_selector(self):
        self.assertError('[native glibc=2.26]\n', 1, 'bad glibc selector')

    def test_bad_glibc_version(self):
        self.assertError('[native glibc<2.x]\n', 1, 'bad glibc selector')

    def test_bad_thp_selector(self):
        self.assertError('[native thp=sometimes]\n', 1, 'bad thp selector')

    def test_selector_twice(self):
        self.assertError('[native arch=x86_64 arch=x86_64]\n', 1, 'given twice')

    def test_duplicate_section(self):
        self.assertError('[native]\n# w\nretained >= 0.9\n[trim]\n[native]\n', 5,
                         'duplicate section [native] (first at expected/x.exp:1)')

    def test_duplicate_override_section_any_order(self):
        self.assertError('[native thp=never glibc<3]\n[native glibc<3 thp=never]\n', 2, 'duplicate section')

    def test_unknown_metric(self):
        self.assertError('[native]\n# w\nretaned >= 0.9\n', 3, "unknown metric 'retaned'")

    def test_bad_operator(self):
        self.assertError('[native]\n# w\nretained = 0.9\n', 3, "expected 'METRIC OP VALUE'")

    def test_not_equal_is_not_an_operator(self):
        self.assertError('[native]\n# w\nretained != 0.9\n', 3, "expected 'METRIC OP VALUE'")

    def test_missing_value(self):
        self.assertError('[native]\n# w\nretained >=\n', 3, 'missing value')

    def test_bad_value(self):
        self.assertError('[native]\n# w\nretained >= 90%\n', 3, "bad value '90%'")

    def test_unknown_figure(self):
        self.assertError('[memcheck]\n# w\nerrors == live_nodes\n', 3, "unknown figure 'live_nodes'")

    def test_bad_factor(self):
        self.assertError('[memcheck]\n# w\nerrors == live_bytes * x\n', 3, "bad value")

    def test_same_bound_twice(self):
        self.assertError('[native]\n# w\nretained >= 0.9\n# again\nretained >= 0.8\n', 5,
                         "'retained >=' given twice in [native] (first at expected/x.exp:3)")

    def test_bound_without_comment(self):
        self.assertError('[native]\nretained >= 0.9\n', 2, 'no comment right above it')

    def test_comment_cut_by_blank_line(self):
        self.assertError('[native]\n# w\n\nretained >= 0.9\n', 4, 'no comment right above it')

    def test_trailing_comment_is_not_a_number(self):
        self.assertError('[native]\n# w\nretained >= 0.9 # ninety\n', 3, 'bad value')


class Selection(unittest.TestCase):
    def select(self, text, cell='native', platform=PLATFORM, allocator='glibc'):
        bounds, applied = select_bounds(parse(text), cell, platform, allocator)
        return [(b.metric, b.op, b.expr, b.lineno) for b in bounds], [s.header for s in applied]

    def test_defaults_only(self):
        bounds, applied = self.select('[native]\n# w\nretained >= 0.9\n[native glibc<2.26]\n# old\nretained >= 0.8\n')
        self.assertEqual(bounds, [('retained', '>=', '0.9', 3)])
        self.assertEqual(applied, ['native'])

    def test_matching_override_replaces_the_metric(self):
        text = ('[native]\n# w\nretained >= 0.9\nretained <= 1.1\n# f\nfloor_ratio <= 2\n'
                '[native glibc>=2.26]\n# new\nretained >= 0.95\n')
        bounds, applied = self.select(text)
        # both default 'retained' bounds are replaced; floor_ratio stays
        self.assertEqual(bounds, [('floor_ratio', '<=', '2', 6), ('retained', '>=', '0.95', 9)])
        self.assertEqual(applied, ['native', 'native glibc>=2.26'])

    def test_non_matching_override_is_ignored(self):
        text = '[native]\n# w\nretained >= 0.9\n[native glibc<2.26 arch=x86_64]\n# old\nretained >= 0.5\n'
        self.assertEqual(self.select(text)[0], [('retained', '>=', '0.9', 3)])

    def test_override_needs_every_selector(self):
        text = '[native]\n# w\nretained >= 0.9\n[native arch=x86_64 thp=never]\n# x\nretained >= 0.5\n'
        self.assertEqual(self.select(text)[0], [('retained', '>=', '0.9', 3)])
        self.assertEqual(self.select(text, platform=dict(PLATFORM, thp='never'))[0], [('retained', '>=', '0.5', 6)])

    def test_two_matching_overrides_on_one_metric(self):
        text = ('[native]\n# w\nretained >= 0.9\n'
                '[native glibc>=2.26]\n# a\nretained >= 0.8\n'
                '[native distro=debian]\n# b\nretained >= 0.7\n')
        with self.assertRaises(ConfigError) as cm:
            self.select(text)
        msg = str(cm.exception)
        self.assertTrue(msg.startswith('expected/x.exp:9: '), msg)
        self.assertIn("metric 'retained' is set by two matching overrides", msg)
        self.assertIn('[native glibc>=2.26] at expected/x.exp:6', msg)
        self.assertIn('[native distro=debian] at expected/x.exp:9', msg)

    def test_two_matching_overrides_on_different_metrics(self):
        text = ('[native]\n# w\nretained >= 0.9\n'
                '[native glibc>=2.26]\n# a\nretained >= 0.8\n'
                '[native distro=debian]\n# b\nfloor_ratio <= 3\n')
        self.assertEqual(self.select(text)[0], [('retained', '>=', '0.8', 6), ('floor_ratio', '<=', '3', 9)])

    def test_override_without_default(self):
        self.assertEqual(self.select('[native arch=x86_64]\n# w\nretained >= 0.9\n')[0], [('retained', '>=', '0.9', 3)])

    def test_no_section_for_the_cell(self):
        self.assertEqual(self.select('[trim]\n# w\nfloor_ratio <= 1\n'), ([], []))

    def test_other_cells_are_not_mixed_in(self):
        text = '[native]\n# w\nretained >= 0.9\n[trim]\n# t\nfloor_ratio <= 1.2\n'
        self.assertEqual(self.select(text, cell='trim')[0], [('floor_ratio', '<=', '1.2', 6)])


class Selectors(unittest.TestCase):
    def matches(self, header, platform=PLATFORM, allocator='glibc'):
        exp = parse('[%s]\n' % header)
        return exp.sections[0].matches(platform, allocator)

    def test_glibc_operators(self):
        cases = [('<', '2.36', False), ('<', '2.37', True), ('<=', '2.36', True), ('<=', '2.35', False),
                 ('==', '2.36', True), ('==', '2.36.0', True), ('==', '2.3', False), ('>=', '2.36', True),
                 ('>=', '2.4', True), ('>', '2.36', False), ('>', '2.9', True), ('<', '3', True)]
        for op, v, want in cases:
            self.assertEqual(self.matches('native glibc%s%s' % (op, v)), want, (op, v))

    def test_glibc_compared_numerically_not_as_text(self):
        self.assertTrue(self.matches('native glibc>2.4', dict(PLATFORM, glibc='2.10')))

    def test_no_glibc_matches_no_glibc_selector(self):
        self.assertFalse(self.matches('native glibc<99', dict(PLATFORM, glibc=None)))
        self.assertFalse(self.matches('native glibc>0', dict(PLATFORM, glibc=None)))

    def test_distro(self):
        self.assertTrue(self.matches('native distro=debian'))
        self.assertTrue(self.matches('native distro=debian-12'))
        self.assertFalse(self.matches('native distro=debian-11'))
        self.assertFalse(self.matches('native distro=ubuntu'))
        self.assertTrue(self.matches('native distro=opensuse-leap-15.5',
                                     dict(PLATFORM, distro_id='opensuse-leap', distro_version='15.5')))

    def test_thp_arch_allocator(self):
        self.assertTrue(self.matches('native thp=madvise'))
        self.assertFalse(self.matches('native thp=always'))
        self.assertTrue(self.matches('native arch=x86_64'))
        self.assertFalse(self.matches('native arch=aarch64'))
        self.assertTrue(self.matches('native allocator=glibc'))
        self.assertFalse(self.matches('native allocator=jemalloc'))
        self.assertTrue(self.matches('native allocator=jemalloc', allocator='jemalloc'))

    def test_version_tuple(self):
        self.assertEqual(version_tuple('2.36'), (2, 36))
        self.assertEqual(version_tuple('2.17-326.el7'), (2, 17))
        self.assertIsNone(version_tuple(None))
        self.assertIsNone(version_tuple('x'))


def load(name):
    return load_expected(LAYERS, name, DATA)


def select(exp, cell, platform=PLATFORM, allocator='glibc'):
    bounds, applied = select_bounds(exp, cell, platform, allocator)
    return [(b.metric, b.op, b.expr, b.location) for b in bounds], [s.origin for s in applied]


def joined(cells_text, case_text):
    """A case's file joined to a cells.exp, both from text."""
    cells = with_cell_bounds(parse_expected_text(cells_text, 'expected/cells.exp'), None)
    return with_cell_bounds(parse_expected_text(case_text, 'expected/x.exp'), cells)


class CellBounds(unittest.TestCase):
    """expected/cells.exp under a case's own file (data/cellbounds/: cells.exp, layered.exp, plain.exp)."""

    def test_cell_bounds_apply_where_the_case_says_nothing(self):
        bounds, applied = select(load('plain'), 'shim')
        self.assertEqual(bounds, [('shim_over_trim', '<=', '1.05', 'cellbounds/cells.exp:5')])
        # The provenance of the section (the JSON's bounds_from) is the cells file's line too.
        self.assertEqual(applied, ['cellbounds/cells.exp:3 [shim]'])
        bounds, _ = select(load('plain'), 'jemalloc', allocator='jemalloc')
        self.assertEqual([b[:3] for b in bounds], [('retained', '>=', '0.10'), ('retained', '<=', '0.35'),
                                                   ('settled_retained', '>=', '0.10'),
                                                   ('settled_retained', '<=', '0.35')])

    def test_case_section_replaces_the_cell_bounds_on_its_metric(self):
        bounds, applied = select(load('layered'), 'jemalloc', allocator='jemalloc')
        # Both ends of the settled band are replaced by the case's one bound; retained is dropped.
        self.assertEqual(bounds, [('settled_retained', '<=', '0.05', 'cellbounds/layered.exp:9')])
        # cells.exp's [jemalloc] decides nothing here, so it is not listed.
        self.assertEqual(applied, ['cellbounds/layered.exp:7 [jemalloc]'])

    def test_bounds_on_different_metrics_add_up(self):
        bounds, applied = select(load('layered'), 'memcheck')
        self.assertEqual(bounds, [('definitely_lost_bytes', '==', '0', 'cellbounds/cells.exp:20'),
                                  ('still_reachable_blocks', '==', 'live_objects', 'cellbounds/cells.exp:22'),
                                  ('still_reachable_bytes', '<=', 'live_bytes * 2', 'cellbounds/layered.exp:14')])
        self.assertEqual(applied, ['cellbounds/cells.exp:18 [memcheck]', 'cellbounds/layered.exp:12 [memcheck]'])

    def test_case_platform_section_wins_over_both(self):
        bounds, applied = select(load('layered'), 'memcheck', dict(PLATFORM, thp='never'))
        self.assertEqual(bounds, [('definitely_lost_bytes', '==', '0', 'cellbounds/cells.exp:20'),
                                  ('still_reachable_bytes', '<=', 'live_bytes * 2', 'cellbounds/layered.exp:14'),
                                  ('still_reachable_blocks', '<=', 'live_objects * 2', 'cellbounds/layered.exp:18')])
        self.assertEqual(applied[-1], 'cellbounds/layered.exp:16 [memcheck thp=never]')

    def test_case_platform_section_replaces_a_case_bound_and_a_cell_bound(self):
        exp = joined('[native]\n# cell\nretained >= 0.5\n',
                     '[native]\n# case\nretained >= 0.9\n[native thp=never]\n# no THP\nretained >= 0.1\n')
        self.assertEqual(select(exp, 'native')[0], [('retained', '>=', '0.9', 'expected/x.exp:3')])
        self.assertEqual(select(exp, 'native', dict(PLATFORM, thp='never'))[0],
                         [('retained', '>=', '0.1', 'expected/x.exp:6')])

    def test_cells_platform_section_beats_cells_section_not_the_case(self):
        testarch = dict(PLATFORM, arch='testarch')
        bounds, applied = select(load('plain'), 'jemalloc', testarch, 'jemalloc')
        self.assertEqual([b[:3] for b in bounds], [('settled_retained', '>=', '0.10'),
                                                   ('settled_retained', '<=', '0.35'), ('retained', '<=', '0.50')])
        self.assertEqual(applied, ['cellbounds/cells.exp:7 [jemalloc]',
                                   'cellbounds/cells.exp:14 [jemalloc arch=testarch]'])
        # The case's own [jemalloc] drops retained: more specific than any section of cells.exp.
        bounds, _ = select(load('layered'), 'jemalloc', testarch, 'jemalloc')
        self.assertEqual([b[:3] for b in bounds], [('settled_retained', '<=', '0.05')])

    def test_two_matching_cell_platform_sections_on_one_metric(self):
        exp = joined('[native]\n# w\nretained >= 0.9\n[native arch=x86_64]\n# a\nretained >= 0.8\n'
                     '[native thp=madvise]\n# b\nretained >= 0.7\n', '[trim]\n# t\nfloor_ratio <= 1\n')
        with self.assertRaises(ConfigError) as cm:
            select(exp, 'native')
        msg = str(cm.exception)
        self.assertTrue(msg.startswith('expected/cells.exp:9: '), msg)
        self.assertIn("metric 'retained' is set by two matching overrides: [native arch=x86_64] at "
                      "expected/cells.exp:6 and [native thp=madvise] at expected/cells.exp:9", msg)

    def test_platform_sections_of_two_files_do_not_conflict(self):
        exp = joined('[native arch=x86_64]\n# cell\nretained >= 0.8\n',
                     '[native thp=madvise]\n# case\nretained >= 0.7\n')
        self.assertEqual(select(exp, 'native')[0], [('retained', '>=', '0.7', 'expected/x.exp:3')])

    def test_a_drop_in_a_platform_section(self):
        exp = joined('[native]\n# cell\nretained >= 0.8\n', '[native thp=never]\n# not without THP\ndrop retained\n')
        self.assertEqual(select(exp, 'native')[0], [('retained', '>=', '0.8', 'expected/cells.exp:3')])
        self.assertEqual(select(exp, 'native', dict(PLATFORM, thp='never')),
                         ([], ['expected/x.exp:1 [native thp=never]']))

    def test_unmatched_platform_sections_of_both_files(self):
        exp = joined('[native glibc<1]\n# cell\nretained >= 0.8\n', '[native glibc<2]\n# case\nretained >= 0.7\n')
        self.assertEqual([s.origin for s in expfile.unmatched_sections(exp, 'native', PLATFORM, 'glibc')],
                         ['expected/cells.exp:1 [native glibc<1]', 'expected/x.exp:1 [native glibc<2]'])


class Drops(unittest.TestCase):
    def assertError(self, make, where, fragment):
        with self.assertRaises(ConfigError) as cm:
            make()
        msg = str(cm.exception)
        self.assertTrue(msg.startswith(where + ': '), msg)
        self.assertIn(fragment, msg)

    def test_drop_with_nothing_to_drop(self):
        self.assertError(lambda: joined('[native]\n# cell\nretained >= 0.8\n',
                                        '[trim]\n# not here\ndrop floor_ratio\n'),
                         'expected/x.exp:3', "'drop floor_ratio' in [trim]: nothing to drop, no less specific "
                         "section bounds 'floor_ratio' (there is no less specific section for the cell)")
        self.assertError(lambda: joined('[trim]\n# cell\ntrim_retained <= 0.1\n',
                                        '[trim]\n# not here\ndrop floor_ratio\n'),
                         'expected/x.exp:3', 'sections for the cell: expected/cells.exp:1 [trim]')

    def test_drop_without_a_cells_file(self):
        self.assertError(lambda: with_cell_bounds(parse('[native]\n# not here\ndrop retained\n'), None),
                         'expected/x.exp:3', 'nothing to drop')

    def test_drop_in_cells_file_section_has_nothing_below(self):
        self.assertError(lambda: joined('[native]\n# cell\ndrop retained\n', ''), 'expected/cells.exp:3',
                         'nothing to drop')

    def test_drop_of_the_case_own_bound_in_a_platform_section(self):
        exp = joined('', '[native]\n# w\nretained >= 0.9\n[native thp=never]\n# x\ndrop retained\n')
        self.assertEqual(select(exp, 'native', dict(PLATFORM, thp='never'))[0], [])

    def test_drop_and_bound_in_one_section(self):
        self.assertError(lambda: parse('[native]\n# w\nretained >= 0.9\ndrop retained\n'), 'expected/x.exp:4',
                         "'retained' is both bounded (at expected/x.exp:3) and dropped in [native]")
        self.assertError(lambda: parse('[native]\n# w\ndrop retained\nretained >= 0.9\n'), 'expected/x.exp:4',
                         "'retained' is both dropped (at expected/x.exp:3) and bounded in [native]")

    def test_drop_twice(self):
        self.assertError(lambda: parse('[native]\n# w\ndrop retained\ndrop retained\n'), 'expected/x.exp:4',
                         "'drop retained' given twice in [native] (first at expected/x.exp:3)")

    def test_drop_needs_a_comment(self):
        self.assertError(lambda: parse('[native]\ndrop retained\n'), 'expected/x.exp:2', 'no comment right above it')

    def test_drop_names_one_known_metric(self):
        self.assertError(lambda: parse('[native]\n# w\ndrop\n'), 'expected/x.exp:3', "expected 'drop METRIC'")
        self.assertError(lambda: parse('[native]\n# w\ndrop retained floor_ratio\n'), 'expected/x.exp:3',
                         "expected 'drop METRIC' (one metric)")
        self.assertError(lambda: parse('[native]\n# w\ndrop retaned\n'), 'expected/x.exp:3', "unknown metric 'retaned'")


class CellBoundsFiles(unittest.TestCase):
    """load_expected with a cells.exp on disk."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix='retention-exp-')
        self.dir = os.path.join(self.root, 'expected')
        os.mkdir(self.dir)

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, name, text):
        with open(os.path.join(self.dir, name + '.exp'), 'w') as f:
            f.write(text)

    def load(self, name):
        return load_expected(self.dir, name, self.root)

    def assertError(self, name, fragment):
        with self.assertRaises(ConfigError) as cm:
            self.load(name)
        self.assertIn(fragment, str(cm.exception))
        return str(cm.exception)

    def test_malformed_cells_file_names_its_line(self):
        self.write('cells', '# c\n[shim]\n# w\nshim_over_trim <= 1.05\nbogus line\n')
        self.write('a', '[native]\n# w\nretained >= 0.9\n')
        msg = self.assertError('a', "expected/cells.exp:5: expected 'METRIC OP VALUE'")
        self.assertTrue(msg.startswith('expected/cells.exp:5: '), msg)

    def test_cell_bound_without_comment(self):
        self.write('cells', '[shim]\nshim_over_trim <= 1.05\n')
        self.write('a', '[native]\n# w\nretained >= 0.9\n')
        self.assertError('a', 'expected/cells.exp:2: bound')

    def test_conflicting_cell_bounds_name_both_lines(self):
        self.write('cells', '[shim]\n# w\nshim_over_trim <= 1.05\n\n[shim]\n# again\nshim_over_trim <= 1.10\n')
        self.write('a', '[native]\n# w\nretained >= 0.9\n')
        self.assertError('a', 'expected/cells.exp:5: duplicate section [shim] (first at expected/cells.exp:1)')
        self.write('cells', '[shim]\n# w\nshim_over_trim <= 1.05\n# again\nshim_over_trim <= 1.10\n')
        self.assertError('a', "expected/cells.exp:5: 'shim_over_trim <=' given twice in [shim] "
                              "(first at expected/cells.exp:3)")

    def test_cells_file_joins_every_case(self):
        self.write('cells', '[shim]\n# w\nshim_over_trim <= 1.05\n')
        self.write('a', '[native]\n# w\nretained >= 0.9\n')
        bounds, applied = select(self.load('a'), 'shim')
        self.assertEqual(bounds, [('shim_over_trim', '<=', '1.05', 'expected/cells.exp:3')])

    def test_no_cells_file_is_the_case_file_alone(self):
        self.write('a', '[native]\n# w\nretained >= 0.9\n')
        exp = self.load('a')
        self.assertIsNone(exp.cell_bounds)
        self.assertEqual(select(exp, 'shim'), ([], []))

    def test_a_case_needs_its_own_file(self):
        self.write('cells', '[shim]\n# w\nshim_over_trim <= 1.05\n')
        self.assertIsNone(self.load('a'))

    def test_cells_is_no_case_name(self):
        self.write('cells', '[shim]\n# w\nshim_over_trim <= 1.05\n')
        self.assertError('cells', "expected/cells.exp: 'cells' is no case name")


def _whys(exp):
    """(why, file:line) of each comment block above bounds or drops (a group counts once)."""
    out = []
    for sec in exp.sections:
        seen = set()
        for item in sorted(sec.bounds + sec.drops, key=lambda i: i.lineno):
            if item.why not in seen:
                seen.add(item.why)
                out.append((item.why, item.location))
    return out


class RepositoryExpected(unittest.TestCase):
    """expected/ as committed: every case loads with cells.exp, and each why is written once."""

    def test_every_case_and_cell_has_bounds(self):
        cases_dir, expected_dir = os.path.join(REPO, 'cases'), os.path.join(REPO, 'expected')
        names = case_names(cases_dir)
        self.assertTrue(names)
        for name in names:
            case = load_case(cases_dir, name, REPO)
            exp = load_expected(expected_dir, name, REPO)
            self.assertIsNotNone(exp, name)
            self.assertEqual(exp.cell_bounds.where, 'expected/cells.exp')
            for cell in case.cells:
                bounds, _ = select_bounds(exp, cell, PLATFORM, cellmod.CELLS[cell].allocator)
                self.assertTrue(bounds, '%s %s' % (name, cell))

    def test_no_why_is_written_twice(self):
        expected_dir = os.path.join(REPO, 'expected')
        seen = {}
        for entry in sorted(os.listdir(expected_dir)):
            if not entry.endswith('.exp'):
                continue
            path = os.path.join(expected_dir, entry)
            with open(path) as f:
                exp = parse_expected_text(f.read(), 'expected/' + entry, path)
            for why, where in _whys(exp):
                self.assertNotIn(why, seen, 'the same why at %s and %s' % (seen.get(why), where))
                seen[why] = where

    def test_no_tracker_references_in_comments(self):
        expected_dir = os.path.join(REPO, 'expected')
        for entry in sorted(os.listdir(expected_dir)):
            with open(os.path.join(expected_dir, entry)) as f:
                for n, line in enumerate(f, 1):
                    self.assertIsNone(re.search(r'\bissue\s*#?\d', line), 'expected/%s:%d' % (entry, n))


if __name__ == '__main__':
    unittest.main()
