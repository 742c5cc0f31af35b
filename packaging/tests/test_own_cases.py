#!/usr/bin/env python3
"""A user's own cases against the installed tool: `cmake --install` into a DESTDIR, the staged
prefix moved elsewhere, examples/own-cases copied outside the repository, its test program built
with find_package(retention) against the moved prefix, and from another working directory:
  - `retention run --cases-dir COPY/cases --expected-dir COPY/expected` passes its three cells, the
    program run from the copy (read back from the run's JSON) and its phases reported through
    rssprobe_phase (a program that reported nothing would fail every cell);
  - with the behaviour broken (--env MALLOC_MMAP_THRESHOLD_=65536: each 64 KiB entry gets a
    mapping of its own, which free() returns), the native bound fails, named by the copy's
    expected file and its line;
  - `retention watch` runs from the moved prefix with its installed probe.

    test_own_cases.py BUILD_DIR EXAMPLE_DIR    exit 0 passed, 1 failed, 77 skipped (no cc/cmake)
"""
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

from staged import install_moved, run

BUILD = None
EXAMPLE = None
PREFIX = '/opt/retention-own-cases-test'


class OwnCases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='retention-own-cases-')
        cls.prefix, cls.env = install_moved(BUILD, cls.tmp, PREFIX)
        cls.retention = os.path.join(cls.prefix, 'bin', 'retention')
        cls.repo = os.path.join(cls.tmp, 'their-repo')
        shutil.copytree(EXAMPLE, cls.repo, ignore=shutil.ignore_patterns('build'))
        run(['cmake', '-S', cls.repo, '-B', os.path.join(cls.repo, 'build'),
             '-DCMAKE_PREFIX_PATH=' + cls.prefix], env=cls.env)
        run(['cmake', '--build', os.path.join(cls.repo, 'build')], env=cls.env)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def retention_run(self, *extra):
        return run([self.retention, 'run', '--cases-dir', os.path.join(self.repo, 'cases'),
                    '--expected-dir', os.path.join(self.repo, 'expected')] + list(extra),
                   cwd=self.tmp, env=self.env, check=False)

    def test_the_cases_pass(self):
        out = os.path.join(self.tmp, 'run.json')
        proc = self.retention_run('--json', out)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn('3 passed, 0 failed', proc.stdout)
        with open(out) as f:
            results = json.load(f)['results']
        self.assertEqual(sorted(r['cell'] for r in results), ['native', 'shim', 'trim'])
        program = os.path.join(self.repo, 'build', 'cache_drop')
        for r in results:
            self.assertEqual(r['command'][0], program)
            self.assertIn('after_free', r['phases'])
        trim = [r for r in results if r['cell'] == 'trim'][0]
        self.assertIn('after_trim', trim['phases'])

    def test_a_broken_behaviour_fails_its_bound_by_file_and_line(self):
        proc = self.retention_run('--cell', 'native', '--env', 'MALLOC_MMAP_THRESHOLD_=65536', '-v')
        self.assertEqual(proc.returncode, 1, proc.stdout)
        exp = os.path.join(self.repo, 'expected', 'cache_drop.exp')
        with open(exp) as f:
            line = [i for i, text in enumerate(f, 1) if text.startswith('retained >=')][0]
        self.assertRegex(proc.stdout, r'FAIL\s+retained >= 0\.90\s+\[%s:%d\]' % (re.escape(exp), line))
        self.assertIn('0 passed, 1 failed', proc.stdout)

    def test_watch_uses_the_installed_probe(self):
        out = os.path.join(self.tmp, 'watch.json')
        proc = run([self.retention, 'watch', '--cell', 'native', '--json', out, '--',
                    os.path.join(self.repo, 'build', 'cache_drop'), '500'], cwd=self.tmp, env=self.env,
                   check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        with open(out) as f:
            doc = json.load(f)
        run_ = doc['cells'][0]['runs'][0]
        self.assertTrue(run_['env']['LD_PRELOAD'].startswith(os.path.join(self.prefix, '')), run_['env'])
        self.assertEqual(run_['figures']['allocator'], 'glibc')
        self.assertGreater(len(run_['samples']), 1)


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.stderr.write('usage: test_own_cases.py BUILD_DIR EXAMPLE_DIR\n')
        sys.exit(2)
    if not shutil.which('cmake') or not shutil.which('cc'):
        sys.stderr.write('test_own_cases: cmake or cc not installed\n')
        sys.exit(77)
    EXAMPLE = os.path.abspath(sys.argv.pop(2))
    BUILD = os.path.abspath(sys.argv.pop(1))
    unittest.main()
