import glob
import os
import re
import unittest

from retentionlib import casefile
from retentionlib.casefile import parse_case_text
from retentionlib.errors import ConfigError
from retentionlib.lines import display_path, parse_lines

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOOD = """\
# The founding report: freed blocks between live nodes stay resident.
program = seed_std_list
# a comment between keys
args = --count 10000 --hold 'after_free'

cells = native trim shim memcheck
timeout = 90.5
memcheck_args = --count 1000
idle = 3
env = GLIBC_TUNABLES=glibc.malloc.arena_max=1 MALLOC_TOP_PAD_=0
env.trim = A=1 B="two words"
"""


def parse(text):
    return parse_case_text(text, 'x', 'cases/x.case')


class GoodCaseFile(unittest.TestCase):
    def test_all_keys(self):
        c = parse(GOOD)
        self.assertEqual(c.description, 'The founding report: freed blocks between live nodes stay resident.')
        self.assertEqual(c.program, 'seed_std_list')
        self.assertEqual(c.args, ['--count', '10000', '--hold', 'after_free'])
        self.assertEqual(c.cells, ['native', 'trim', 'shim', 'memcheck'])
        self.assertEqual(c.timeout, 90.5)
        self.assertEqual(c.args_for('memcheck_args'), ['--count', '1000'])
        self.assertEqual(c.args_for('args'), ['--count', '10000', '--hold', 'after_free'])
        self.assertEqual(c.idle, 3)
        self.assertEqual(dict(c.env), {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=1', 'MALLOC_TOP_PAD_': '0'})
        self.assertEqual(dict(c.env_for('trim')), {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=1',
                                                   'MALLOC_TOP_PAD_': '0', 'A': '1', 'B': 'two words'})
        self.assertEqual(dict(c.env_for('native')), dict(c.env))

    def test_defaults(self):
        c = parse('# why\nprogram = p\ncells = native\n')
        self.assertEqual(c.args, [])
        self.assertEqual(c.timeout, 120.0)
        self.assertEqual(c.idle, 2)
        self.assertEqual(c.args_for('memcheck_args'), [])
        self.assertEqual(dict(c.env), {})

    def test_empty_args_allowed(self):
        self.assertEqual(parse('# why\nprogram = p\nargs =\ncells = native\n').args, [])


class MalformedCaseFile(unittest.TestCase):
    """Every malformed variant names the file and the line."""

    def assertError(self, text, line, fragment):
        with self.assertRaises(ConfigError) as cm:
            parse(text)
        msg = str(cm.exception)
        self.assertTrue(msg.startswith('cases/x.case:%d: ' % line), msg)
        self.assertIn(fragment, msg)

    def test_empty_file(self):
        self.assertError('', 1, 'line 1 must be')

    def test_first_line_not_a_comment(self):
        self.assertError('program = p\ncells = native\n', 1, 'line 1 must be a comment')

    def test_first_line_blank(self):
        self.assertError('\n# why\nprogram = p\ncells = native\n', 1, 'line 1 must be a comment')

    def test_first_line_empty_comment(self):
        self.assertError('#\nprogram = p\ncells = native\n', 1, 'line 1 must be a comment')

    def test_unknown_key(self):
        self.assertError('# why\nprogram = p\ncells = native\n\nfoo = 1\n', 5, "unknown key 'foo'")

    def test_unknown_dotted_key(self):
        self.assertError('# why\nprogram = p\nargs.native = x\ncells = native\n', 3, "unknown key 'args.native'")

    def test_duplicate_key(self):
        self.assertError('# why\nprogram = p\ncells = native\nprogram = q\n', 4,
                         "duplicate key 'program' (first set on line 2)")

    def test_missing_program(self):
        self.assertError('# why\ncells = native\n', 2, "missing required key 'program'")

    def test_missing_cells(self):
        self.assertError('# why\nprogram = p\nargs = --count 1\n', 3, "missing required key 'cells'")

    def test_line_without_equals(self):
        self.assertError('# why\nprogram = p\ncells native\n', 3, "expected 'key = value'")

    def test_section_header(self):
        self.assertError('# why\n[native]\nprogram = p\ncells = native\n', 2, 'sections belong in expected files')

    def test_bad_timeout(self):
        self.assertError('# why\nprogram = p\ncells = native\ntimeout = soon\n', 4, "bad number for 'timeout'")

    def test_zero_timeout(self):
        self.assertError('# why\nprogram = p\ncells = native\ntimeout = 0\n', 4, "'timeout' must be > 0")

    def test_nan_timeout(self):
        self.assertError('# why\nprogram = p\ncells = native\ntimeout = nan\n', 4, "bad number for 'timeout'")

    def test_fractional_idle(self):
        # The case CLI takes whole seconds (--idle SECONDS).
        self.assertError('# why\nprogram = p\ncells = native\nidle = 1.5\n', 4, "bad number for 'idle'")

    def test_negative_idle(self):
        self.assertError('# why\nprogram = p\ncells = native\nidle = -1\n', 4, "'idle' must be >= 0")

    def test_unknown_cell(self):
        self.assertError('# why\nprogram = p\ncells = native jemalloc_x\n', 3, "unknown cell 'jemalloc_x'")

    def test_duplicate_cell(self):
        self.assertError('# why\nprogram = p\ncells = native native\n', 3, "cell 'native' listed twice")

    def test_shim_without_its_reference(self):
        self.assertError('# why\nprogram = p\ncells = native shim\n', 3, "cell 'shim' needs cell 'trim'")

    def test_trailing_comment(self):
        self.assertError('# why\nprogram = p\nargs = --count 10 # ten\ncells = native\n', 3, 'no trailing comments')

    def test_bad_quoting(self):
        self.assertError('# why\nprogram = p\nargs = --name "open\ncells = native\n', 3, "bad quoting in 'args'")

    def test_bad_env_entry(self):
        self.assertError('# why\nprogram = p\ncells = native\nenv = MALLOC_ARENA_MAX\n', 4, "bad entry 'MALLOC_ARENA_MAX'")

    def test_bad_env_name(self):
        self.assertError('# why\nprogram = p\ncells = native\nenv = 1X=2\n', 4, "bad entry '1X=2'")

    def test_env_set_twice(self):
        self.assertError('# why\nprogram = p\ncells = native\nenv = A=1 A=2\n', 4, "variable 'A' set twice")

    def test_env_for_unknown_cell(self):
        self.assertError('# why\nprogram = p\ncells = native\nenv.nope = A=1\n', 4, "unknown cell 'nope' in 'env.nope'")

    def test_empty_program(self):
        self.assertError('# why\nprogram =\ncells = native\n', 2, "empty value for 'program'")

    def test_program_with_spaces(self):
        self.assertError('# why\nprogram = a b\ncells = native\n', 2, "'program' is one file name")

    def test_unclosed_section_header(self):
        self.assertError('# why\n[native\n', 2, "without a closing ']'")


class SharedLineParser(unittest.TestCase):
    def test_why_is_the_comment_block_right_above(self):
        lines = parse_lines('# file\n\n[a]\n# one\n# two\nx = 1\ny = 2\n\nz = 3\n# late\n[b]\n', 'f')
        content = dict((l.text, l.why) for l in lines if l.kind == 'content')
        self.assertEqual(content['x = 1'], 'one two')
        self.assertEqual(content['y = 2'], 'one two')   # a group of adjacent lines shares it
        self.assertEqual(content['z = 3'], '')          # a blank line cuts it
        sections = dict((l.text, l.why) for l in lines if l.kind == 'section')
        self.assertEqual(sections, {'a': '', 'b': 'late'})

    def test_line_numbers_and_kinds(self):
        lines = parse_lines('# c\n\n  key = v  \n[s]\n', 'f')
        self.assertEqual([(l.lineno, l.kind, l.text) for l in lines],
                         [(1, 'comment', 'c'), (2, 'blank', ''), (3, 'content', 'key = v'), (4, 'section', 's')])


class DisplayPath(unittest.TestCase):
    def test_relative_inside_the_repo_else_as_given(self):
        self.assertEqual(display_path('/r/cases/x.case', '/r'), os.path.join('cases', 'x.case'))
        self.assertEqual(display_path('/elsewhere/x.case', '/r'), '/elsewhere/x.case')

    def test_still_importable_from_casefile(self):
        self.assertIs(casefile.display_path, display_path)


class RepositoryCases(unittest.TestCase):
    def test_thp_disable_points_at_its_why(self):
        # The why of 'thp = disable' is written once, in the README; each case file points there.
        with open(os.path.join(REPO, 'README.md')) as f:
            readme = f.read()
        headings = dict((m.group(1), m.start()) for m in re.finditer(r'(?m)^#+ (.+)$', readme))
        users = 0
        for path in sorted(glob.glob(os.path.join(REPO, 'cases', '*.case'))):
            with open(path) as f:
                lines = parse_lines(f.read(), path)
            for line in lines:
                if line.kind == 'content' and re.match(r'^thp\s*=\s*disable$', line.text):
                    users += 1
                    m = re.search(r'README, "([^"]+)"', line.why)
                    self.assertTrue(m, '%s:%d: %r' % (path, line.lineno, line.why))
                    self.assertIn(m.group(1), headings, path)
                    start = headings[m.group(1)]
                    section = readme[start:readme.find('\n## ', start + 1)]
                    self.assertIn('thp = disable', section)
                    self.assertIn('huge page', section)
        self.assertGreater(users, 0)


if __name__ == '__main__':
    unittest.main()
