#!/usr/bin/env python3
"""The installed tool, as a user gets it: `cmake --install` into a DESTDIR, the staged prefix then
moved elsewhere (relocatable: nothing may point back at the build tree or the checkout), and from
another working directory:
  - `retention list` and `retention run --case seed_std_list --cell native --cell trim --cell shim`
    pass, with the installed case programs and the installed shim preloaded (read back from the
    run's JSON, so a runner that silently fell back on the build tree fails);
  - a tiny consumer project builds against the installed libraries twice, with pkg-config and with
    find_package(retention CONFIG), and runs;
  - no __pycache__ is written under the prefix (a package's files must stay its own).

    test_install.py BUILD_DIR      exit 0 passed, 1 failed, 77 skipped (no pkg-config or cc)
"""
import json
import os
import shutil
import sys
import tempfile
import unittest

from staged import install_moved, run

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = None
PREFIX = '/opt/retention-install-test'


class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='retention-install-')
        cls.prefix, cls.env = install_moved(BUILD, cls.tmp, PREFIX)
        cls.retention = os.path.join(cls.prefix, 'bin', 'retention')
        libdirs = [d for d in ('lib', 'lib64') if os.path.isdir(os.path.join(cls.prefix, d))]
        cls.pkgconfig = next(os.path.join(dirpath)
                             for d in libdirs for dirpath, _, files in os.walk(os.path.join(cls.prefix, d))
                             if 'trimshim.pc' in files)
        cls.libdir = os.path.dirname(cls.pkgconfig)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_run_uses_the_installed_programs_and_shim(self):
        out = os.path.join(self.tmp, 'run.json')
        proc = run([self.retention, 'run', '--case', 'seed_std_list', '--cell', 'native', '--cell', 'trim',
                    '--cell', 'shim', '--json', out], env=self.env, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn('3 passed, 0 failed', proc.stdout)
        with open(out) as f:
            results = json.load(f)['results']
        self.assertEqual(sorted(r['cell'] for r in results), ['native', 'shim', 'trim'])
        text = json.dumps(results)
        self.assertIn(os.path.join(self.prefix, 'libexec', 'retention', 'seed_std_list'), text)
        self.assertIn(os.path.join(self.libdir, 'libtrimshim.so.0'), text)
        self.assertNotIn(BUILD, text)

    def test_list_and_the_installed_data(self):
        proc = run([self.retention, 'list'], env=self.env)
        self.assertIn('seed_std_list', proc.stdout)
        for part in ('share/retention/cases/seed_std_list.case', 'share/retention/expected/cells.exp',
                     'share/man/man1/retention.1', 'share/man/man7/trimshim.7',
                     'share/doc/retention/README.md', 'share/doc/retention/LICENSE',
                     'include/trimshim.h', 'include/rssprobe.h'):
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, part)), part)

    def test_shim_has_its_soname(self):
        real = os.path.realpath(os.path.join(self.libdir, 'libtrimshim.so'))
        proc = run(['objdump', '-p', real], check=False) if shutil.which('objdump') else None
        if proc is None:
            self.skipTest('objdump not installed')
        self.assertIn('SONAME               libtrimshim.so.0', proc.stdout)

    def consumer_runs(self, binary):
        env = dict(self.env, LD_LIBRARY_PATH=self.libdir, TRIMSHIM_POLICY='off')
        proc = run([binary], env=env)
        self.assertRegex(proc.stdout, r'^rss_kb=[1-9][0-9]* trimshim=off\n$')

    def test_consumer_with_pkg_config(self):
        if not shutil.which('pkg-config') or not shutil.which('cc'):
            self.skipTest('pkg-config or cc not installed')
        env = dict(self.env, PKG_CONFIG_PATH=self.pkgconfig)
        flags = run(['pkg-config', '--cflags', '--libs', 'rssprobe', 'trimshim'], env=env).stdout.split()
        self.assertIn('-lrssprobe', flags)
        self.assertIn('-ltrimshim', flags)
        binary = os.path.join(self.tmp, 'consumer-pc')
        run(['cc', '-std=c11', '-Wall', '-Werror', os.path.join(HERE, 'consumer', 'consumer.c'), '-o', binary]
            + flags, env=env)
        self.consumer_runs(binary)

    def test_consumer_with_find_package(self):
        build = os.path.join(self.tmp, 'consumer-cmake')
        run(['cmake', '-S', os.path.join(HERE, 'consumer'), '-B', build, '-DCMAKE_PREFIX_PATH=' + self.prefix],
            env=self.env)
        run(['cmake', '--build', build], env=self.env)
        self.consumer_runs(os.path.join(build, 'consumer'))

    def test_nothing_written_under_the_prefix(self):
        run([self.retention, 'list'], env=self.env)
        caches = [d for d, _, _ in os.walk(self.prefix) if os.path.basename(d) == '__pycache__']
        self.assertEqual(caches, [])


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.stderr.write('usage: test_install.py BUILD_DIR\n')
        sys.exit(2)
    BUILD = os.path.abspath(sys.argv.pop(1))
    unittest.main()
