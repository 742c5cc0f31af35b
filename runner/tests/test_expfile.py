import unittest

from retentionlib.errors import ConfigError
from retentionlib.expfile import parse_expected_text, select_bounds, version_tuple

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
        self.assertError('[native]\n# w\nretained >= 0.9\n[trim]\n[native]\n', 5, 'duplicate section [native] (first on line 1)')

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
                         "'retained >=' given twice in [native] (first on line 3)")

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
        self.assertIn('[native glibc>=2.26] on line 6', msg)
        self.assertIn('[native distro=debian] on line 9', msg)

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


if __name__ == '__main__':
    unittest.main()
