"""The scrubbed environment of every case run: which variables go, which stay, and that the
module stands alone (bench/shim-bench imports it by itself)."""

import json
import os
import subprocess
import sys
import unittest

from retentionlib import scrubenv

RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM_BENCH = os.path.join(os.path.dirname(RUNNER_DIR), 'bench', 'shim-bench')


class Scrub(unittest.TestCase):
    def test_scrub(self):
        env = {'PATH': '/bin', 'HOME': '/root', 'LANG': 'C.UTF-8', 'MALLOC_ARENA_MAX': '1',
               'MALLOC_TOP_PAD_': '0', 'GLIBC_TUNABLES': 'glibc.malloc.trim_threshold=0', 'LD_PRELOAD': 'x.so',
               'LD_AUDIT': 'a.so', 'TRIMSHIM_POLICY': 'x', 'VALGRIND_OPTS': '--leak-check=no',
               'VALGRIND_LIB': '/opt/vg/lib', 'LD_LIBRARY_PATH': '/opt/lib', 'MY_MALLOC_': 'kept'}
        out = scrubenv.scrubbed_env(env)
        self.assertEqual(sorted(out), ['HOME', 'LANG', 'LD_LIBRARY_PATH', 'MY_MALLOC_', 'PATH', 'VALGRIND_LIB'])
        self.assertEqual(scrubenv.scrubbed_names(env), ['GLIBC_TUNABLES', 'LD_AUDIT', 'LD_PRELOAD', 'MALLOC_ARENA_MAX',
                                                        'MALLOC_TOP_PAD_', 'TRIMSHIM_POLICY', 'VALGRIND_OPTS'])

    def test_imports_nothing_else_of_the_runner(self):
        code = ('import sys; import retentionlib.scrubenv; '
                'print(" ".join(sorted(m for m in sys.modules if m.startswith("retentionlib"))))')
        out = subprocess.check_output([sys.executable, '-c', code], cwd=RUNNER_DIR, universal_newlines=True)
        self.assertEqual(out.split(), ['retentionlib', 'retentionlib.scrubenv'])

    @unittest.skipUnless(os.path.isfile(SHIM_BENCH), 'no bench/shim-bench')
    def test_shim_bench_scrubs_with_the_same_list(self):
        # Loaded as a module, its main() not run: its scrubbed_env() against the runner's.
        code = ('import importlib.machinery, importlib.util, json, sys\n'
                'loader = importlib.machinery.SourceFileLoader("shim_bench", sys.argv[1])\n'
                'spec = importlib.util.spec_from_loader("shim_bench", loader)\n'
                'mod = importlib.util.module_from_spec(spec)\n'
                'loader.exec_module(mod)\n'
                'print(json.dumps(sorted(mod.scrubbed_env())))\n')
        # (nothing that would change the python running it, such as LD_AUDIT)
        env = {'PATH': os.environ.get('PATH', os.defpath), 'MALLOC_ARENA_MAX': '1',
               'VALGRIND_OPTS': 'x', 'VALGRIND_LIB': '/opt/vg/lib', 'TRIMSHIM_POLICY': 'x', 'KEPT': '1'}
        out = subprocess.check_output([sys.executable, '-c', code, SHIM_BENCH], env=env, universal_newlines=True)
        got = [k for k in json.loads(out) if k in env]
        self.assertEqual(got, sorted(scrubenv.scrubbed_env(env)))


if __name__ == '__main__':
    unittest.main()
