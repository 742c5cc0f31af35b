"""Where the runner looks (paths.py): an option first, then the environment, then the checkout."""

import os
import unittest

from retentionlib import paths

from .helpers import TempDirTest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Defaults(unittest.TestCase):
    def test_the_checkout_layout(self):
        self.assertEqual(paths.repo_dir(), REPO)
        self.assertEqual(paths.cases_dir(), os.path.join(REPO, 'cases'))
        self.assertEqual(paths.expected_dir(), os.path.join(REPO, 'expected'))
        self.assertEqual(paths.build_dir(environ={}), os.path.join(REPO, 'build'))
        self.assertEqual(paths.case_program('/b', 'seed_std_list'), '/b/cases/seed_std_list')
        self.assertEqual(paths.shim_library('/b'), '/b/shim/libtrimshim.so')

    def test_option_over_environment_over_default(self):
        env = {'RETENTION_BUILD_DIR': '/from/env', 'RETENTION_VALGRIND': '/env/valgrind'}
        self.assertEqual(paths.build_dir('/from/option', env), '/from/option')
        self.assertEqual(paths.build_dir(None, env), '/from/env')
        self.assertEqual(paths.valgrind('/opt/valgrind', env), '/opt/valgrind')
        self.assertEqual(paths.valgrind(None, env), '/env/valgrind')
        self.assertIsNone(paths.valgrind(None, {}))

    def test_relative_directories_are_made_absolute(self):
        self.assertEqual(paths.cases_dir('c'), os.path.abspath('c'))
        self.assertEqual(paths.build_dir(None, {'RETENTION_BUILD_DIR': 'b'}), os.path.abspath('b'))


class Programs(TempDirTest):
    def program(self, name):
        path = self.file(name, '#!/bin/sh\n')
        os.chmod(path, 0o755)
        return path

    def test_gdb(self):
        gdb = self.program('gdb')
        self.assertEqual(paths.find_gdb(None, {'PATH': self.dir}), (gdb, None))
        self.assertEqual(paths.find_gdb(gdb, {'PATH': ''}), (gdb, None))
        self.assertEqual(paths.find_gdb(None, {'PATH': '', 'RETENTION_GDB': gdb}), (gdb, None))
        self.assertEqual(paths.find_gdb('/no/gdb', {'PATH': self.dir}), (None, 'gdb not found: /no/gdb'))
        path, why = paths.find_gdb(None, {'PATH': ''})
        self.assertIsNone(path)
        self.assertIn('gdb not found in PATH', why)

    def test_valgrind(self):
        vg = self.program('valgrind')
        self.assertEqual(paths.find_valgrind(None, self.dir), (vg, None))
        self.assertEqual(paths.find_valgrind('valgrind', self.dir), (vg, None))
        self.assertEqual(paths.find_valgrind(vg, ''), (vg, None))
        self.assertEqual(paths.find_valgrind('/no/valgrind', self.dir), (None, 'valgrind not found: /no/valgrind'))


if __name__ == '__main__':
    unittest.main()
