"""The Python 3.6 guard: it flags what EL 7's python3 cannot run, and passes the project itself."""
import os
import subprocess
import sys
import unittest

from tests import py36_compat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def findings(source):
    return [message for _, message in py36_compat.check_source(source)]


class Flags(unittest.TestCase):
    """Each of these ran on 3.6 would be a SyntaxError, an ImportError, a TypeError (an unknown
    keyword) or an AttributeError."""

    CASES = [
        ('import subprocess\nsubprocess.run(["x"], capture_output=True)\n', 'capture_output', '3.7'),
        ('import subprocess as sp\nsp.run(["x"], text=True)\n', 'subprocess.run(text=)', '3.7'),
        ('from subprocess import check_output\ncheck_output(["x"], text=True)\n', 'text=', '3.7'),
        ('from dataclasses import dataclass\n', 'dataclasses', '3.7'),
        ('import dataclasses\n', 'dataclasses', '3.7'),
        ('if (n := 10) > 5:\n    pass\n', 'syntax', '3.8'),
        ('def f(a, /):\n    pass\n', 'syntax', '3.8'),
        ('x = 1\ns = f"{x=}"\n', 'syntax', '3.8'),
        ('from __future__ import annotations\n', 'annotations', '3.7'),
        ('def f() -> list[int]:\n    return []\n', 'list[...]', '3.9'),
        ('import time\nt = time.monotonic_ns()\n', 'time.monotonic_ns', '3.7'),
        ('from contextlib import nullcontext\n', 'contextlib.nullcontext', '3.7'),
        ('import shlex\nshlex.join(["a"])\n', 'shlex.join', '3.8'),
        ('import argparse\np = argparse.ArgumentParser()\np.add_subparsers(required=True)\n',
         '.add_subparsers(required=)', '3.7'),
        ('s = "abc".removeprefix("a")\n', '.removeprefix()', '3.9'),
        ('import os\nos.waitstatus_to_exitcode(0)\n', 'os.waitstatus_to_exitcode', '3.9'),
        ('def f(a, b):\n    return *a, *b\n', 'return *a, *b', '3.8'),
        ('from datetime import datetime\ndatetime.fromisoformat("2020-01-01")\n', 'fromisoformat', '3.7'),
    ]

    def test_each_construct_is_flagged_with_its_version(self):
        for source, what, version in self.CASES:
            with self.subTest(source=source):
                found = findings(source)
                self.assertTrue(any(what in m for m in found), (source, found))
                self.assertTrue(any(('Python %s+' % version) in m or m.startswith('syntax')
                                    for m in found), (source, found))

    def test_line_number_is_the_offending_line(self):
        source = 'import subprocess\n\n\nsubprocess.run(["x"], capture_output=True)\n'
        self.assertEqual([line for line, _ in py36_compat.check_source(source)], [4])


class Passes(unittest.TestCase):
    def test_what_36_has_is_not_flagged(self):
        source = ('import subprocess, os, argparse\n'
                  'from collections import OrderedDict\n'
                  'subprocess.run(["x"], stdout=subprocess.PIPE, universal_newlines=True)\n'
                  'p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="c"); sub.required = True\n'
                  'name = "x"; s = f"{name!r:>10}"\n'
                  'os.readlink("/proc/self/exe")\n'
                  'def f(*a, **k):\n    return (*a, 1)\n')
        self.assertEqual(findings(source), [])

    def test_the_project_needs_no_more_than_36(self):
        """The guard run on every Python source of the project, as ctest runs it."""
        proc = subprocess.run([sys.executable, py36_compat.__file__], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        files = py36_compat.project_sources(REPO)
        self.assertIn(os.path.join(REPO, 'runner', 'retention'), files)
        self.assertIn(os.path.join(REPO, 'bench', 'shim-bench'), files)


if __name__ == '__main__':
    unittest.main()
