#!/usr/bin/env python3
"""The generated man pages say what their sources say (packaging/manpages.py writes them from the
runner's parsers and README.md): every command and exit status of the runner's table in
retention.1, every TRIMSHIM_* variable the shim's parser knows (shim/env.c) in trimshim.7, and
roff that man(1) renders without a warning.

    test_manpages.py MANDIR
"""
import os
import re
import shutil
import subprocess
import sys
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'runner'))

from retentionlib import cli  # noqa: E402

MANDIR = None


def page(name):
    with open(os.path.join(MANDIR, name), encoding='utf-8') as f:
        return f.read()


def shim_knobs():
    """The variable names of the shim's table of known TRIMSHIM_* variables."""
    with open(os.path.join(REPO, 'shim', 'env.c'), encoding='utf-8') as f:
        return sorted(set(re.findall(r'"(TRIMSHIM_[A-Z_]+)"', f.read())))


class RetentionPage(unittest.TestCase):
    def test_every_command_and_exit_status(self):
        text = page('retention.1')
        for name, _, _, _ in cli.COMMANDS:
            self.assertIn('.SS %s\n' % name, text)
        for status, _ in cli.EXIT_STATUS:
            self.assertIn('\\fB%d\\fR' % status, text)

    def test_every_option_of_run(self):
        text = page('retention.1')
        for option in ('\\-\\-case', '\\-\\-cell', '\\-\\-json', '\\-\\-junit', '\\-\\-build\\-dir'):
            self.assertIn(option, text)


class TrimshimPage(unittest.TestCase):
    def test_every_knob_the_parser_knows(self):
        text = page('trimshim.7').replace('\\-', '-')
        knobs = shim_knobs()
        self.assertGreaterEqual(len(knobs), 8)
        missing = [k for k in knobs if k not in text]
        self.assertEqual(missing, [], 'README.md\'s libtrimshim section does not document these')


class Renders(unittest.TestCase):
    def test_man_renders_without_warnings(self):
        if not shutil.which('man'):
            self.skipTest('man not installed')
        for name in ('retention.1', 'trimshim.7'):
            proc = subprocess.run(['man', '--warnings', '-l', os.path.join(MANDIR, name)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                  env=dict(os.environ, MANWIDTH='100'))
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stderr.strip(), '', name)
            plain = re.sub('.\b', '', proc.stdout)     # the overstrike man uses for bold
            self.assertIn('EXIT STATUS' if name == 'retention.1' else 'KNOBS', plain)


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.stderr.write('usage: test_manpages.py MANDIR\n')
        sys.exit(2)
    MANDIR = sys.argv.pop(1)
    unittest.main()
