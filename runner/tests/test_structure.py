"""The runner's layout: one table of commands, every module importable on its own, and no import
inside a function (an import cycle would otherwise hide there until the function runs)."""

import ast
import os
import subprocess
import sys
import unittest

from retentionlib import cli, commands

from .helpers import Fixture, call

RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(RUNNER_DIR, 'retentionlib')
COMMANDS_DIR = os.path.dirname(os.path.abspath(commands.__file__))
# Modules of commands/ that are not a command.
NOT_COMMANDS = ('__init__', 'options')


def modules():
    """Every module of the package, as (dotted name, file)."""
    out = []
    for d, subdirs, files in os.walk(PACKAGE_DIR):
        subdirs[:] = sorted(s for s in subdirs if s != '__pycache__')
        for f in sorted(files):
            if not f.endswith('.py'):
                continue
            rel = os.path.relpath(os.path.join(d, f), RUNNER_DIR)[:-len('.py')].split(os.sep)
            if rel[-1] == '__init__':
                rel = rel[:-1]
            out.append(('.'.join(rel), os.path.join(d, f)))
    return out


class CommandTable(unittest.TestCase):
    def test_every_command_module_has_one_row(self):
        names = [row[0] for row in cli.COMMANDS]
        self.assertEqual(len(names), len(set(names)))
        files = sorted(f[:-len('.py')] for f in os.listdir(COMMANDS_DIR)
                       if f.endswith('.py') and f[:-len('.py')] not in NOT_COMMANDS)
        self.assertEqual(sorted(names), files)

    def test_each_row_is_its_modules_functions(self):
        for name, add_arguments, run, help_text in cli.COMMANDS:
            module = sys.modules['retentionlib.commands.' + name]
            self.assertIs(add_arguments, module.add_arguments, name)
            self.assertIs(run, module.run, name)
            self.assertTrue(help_text, name)

    def test_the_parser_offers_the_table_in_its_order(self):
        ap = cli.make_parser()
        sub = [a for a in ap._actions if a.dest == 'command'][0]
        self.assertEqual(list(sub.choices), [row[0] for row in cli.COMMANDS])

    def test_unknown_command_is_a_usage_error(self):
        rc, out, err = call(['bogus'])
        self.assertEqual(rc, 2)
        self.assertEqual(out, '')
        self.assertIn("invalid choice: 'bogus'", err)

    def test_no_command_is_a_usage_error(self):
        rc, out, err = call([])
        self.assertEqual(rc, 2)
        self.assertIn('required: COMMAND', err)

    def test_a_malformed_case_file_is_one_line_exit_2(self):
        fx = Fixture()
        self.addCleanup(fx.cleanup)
        fx.case('bad', '# a case\nprogram = fake\ncells = native\ntimeout = soon\n')
        rc, out, err = call(['demo', '--case', 'bad', '--cases-dir', fx.cases, '--build-dir', fx.build])
        self.assertEqual((rc, out), (2, ''))
        self.assertRegex(err, r"^retention: \S*bad\.case:4: bad number for 'timeout': 'soon' .*\n$")


class Modules(unittest.TestCase):
    def test_each_imports_on_its_own(self):
        for name, _ in modules():
            p = subprocess.run([sys.executable, '-c', 'import %s' % name], cwd=RUNNER_DIR,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            self.assertEqual(p.returncode, 0, '%s: %s' % (name, p.stderr))

    def test_no_import_inside_a_function(self):
        found = []
        for name, path in modules():
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for fn in ast.walk(tree):
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    for node in ast.walk(fn):
                        if isinstance(node, (ast.Import, ast.ImportFrom)):
                            found.append('%s:%d' % (os.path.relpath(path, RUNNER_DIR), node.lineno))
        self.assertEqual(found, [])


if __name__ == '__main__':
    unittest.main()
