"""Fixtures for the runner's tests: a throw-away repo layout (cases/, expected/, build/cases/)
in a temp dir, fake case programs, and in-process calls of the CLI."""

import contextlib
import io
import os
import shlex
import shutil
import stat
import struct
import sys
import tempfile
import unittest

from retentionlib import cli

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
RUNNER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'retention')
LEAKY_XML = os.path.join(DATA, 'memcheck_leaky.xml')
SEED_XML = os.path.join(DATA, 'memcheck_seed.xml')

# Bounds in the shape of the real expected files, for the fake case's figures (baseline 2700 kB,
# peak 643000, after_free 642000, after_trim 43000, floor 40000, after_idle 44000, 100 live
# objects of 24 B: the same as the stored memcheck_seed.xml).
GOOD_EXP = """\
# fake bounds
[native]
# the fake keeps the peak
retained >= 0.90

[trim]
# the fake trims to the floor
floor_ratio <= 1.20

[shim]
# the fake shim matches trim
shim_over_trim <= 1.05

[memcheck]
# nothing lost
definitely_lost_bytes == 0
indirectly_lost_bytes == 0
possibly_lost_bytes == 0
# exactly the live objects
still_reachable_blocks == live_objects
still_reachable_bytes == live_bytes
# correct code
errors == 0
"""


def case_text(program='fake', cells='native', env=None, timeout=None, extra=''):
    lines = ['# a fake case for the runner tests', 'program = %s' % program, 'args = --count 100',
             'cells = %s' % cells]
    if timeout is not None:
        lines.append('timeout = %s' % timeout)
    if env:
        lines.append('env = %s' % ' '.join(shlex.quote('%s=%s' % kv) for kv in sorted(env.items())))
    if extra:
        lines.append(extra)
    return '\n'.join(lines) + '\n'


def static_elf_bytes():
    """A minimal ELF64 header with one PT_LOAD and no PT_INTERP: what a static binary looks like."""
    ehdr = b'\x7fELF' + bytes([2, 1, 1, 0]) + b'\0' * 8
    ehdr += struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack('<IIQQQQQQ', 1, 5, 0, 0x400000, 0x400000, 0x1000, 0x1000, 0x1000)
    return ehdr + phdr


def dynamic_elf_bytes():
    """The same with a PT_INTERP header first."""
    ehdr = b'\x7fELF' + bytes([2, 1, 1, 0]) + b'\0' * 8
    ehdr += struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    phdr = struct.pack('<IIQQQQQQ', 3, 4, 176, 0, 0, 28, 28, 1)
    phdr += struct.pack('<IIQQQQQQ', 1, 5, 0, 0x400000, 0x400000, 0x1000, 0x1000, 0x1000)
    return ehdr + phdr + b'/lib64/ld-linux-x86-64.so.2\0'


class Fixture(object):
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix='retention-test-')
        self.cases = os.path.join(self.root, 'cases')
        self.expected = os.path.join(self.root, 'expected')
        self.build = os.path.join(self.root, 'build')
        for d in (self.cases, self.expected, os.path.join(self.build, 'cases')):
            os.makedirs(d)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, path, text, mode=None):
        with open(path, 'w') as f:
            f.write(text)
        if mode:
            os.chmod(path, mode)
        return path

    def case(self, name, text):
        return self.write(os.path.join(self.cases, name + '.case'), text)

    def exp(self, name, text=GOOD_EXP):
        return self.write(os.path.join(self.expected, name + '.exp'), text)

    def program(self, name='fake'):
        """Installs the fake case program as build/cases/NAME."""
        with open(os.path.join(DATA, 'fake_case.py')) as f:
            body = f.read()
        return self.write(os.path.join(self.build, 'cases', name), '#!%s -S\n%s' % (sys.executable, body), 0o755)

    def static_program(self, name):
        path = os.path.join(self.build, 'cases', name)
        with open(path, 'wb') as f:
            f.write(static_elf_bytes())
        os.chmod(path, 0o755)
        return path

    def fake_valgrind(self):
        with open(os.path.join(DATA, 'fake_valgrind.py')) as f:
            body = f.read()
        return self.write(os.path.join(self.root, 'valgrind'), '#!%s -S\n%s' % (sys.executable, body), 0o755)

    def shim(self):
        """An (empty) build/shim/libtrimshim.so: the dynamic loader ignores it with a warning."""
        d = os.path.join(self.build, 'shim')
        if not os.path.isdir(d):
            os.makedirs(d)
        return self.write(os.path.join(d, 'libtrimshim.so'), '')

    def dirs(self):
        return ['--cases-dir', self.cases, '--expected-dir', self.expected, '--build-dir', self.build]

    def run(self, *args, **kw):
        """retention run with this fixture's dirs, in process: (exit status, stdout, stderr)."""
        argv = ['run'] + self.dirs()
        if 'valgrind' in kw:
            argv += ['--valgrind', kw['valgrind']]
        return call(argv + list(args))


class TempDirTest(unittest.TestCase):
    """A test with a fresh directory self.dir, removed afterwards."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='retention-test-')

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def file(self, name, data):
        """Writes data (text or bytes) to self.dir/name; returns the path."""
        path = os.path.join(self.dir, name)
        with open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
            f.write(data)
        return path


class FixtureTest(unittest.TestCase):
    """A test with a throw-away repo layout (self.fx) holding the fake case program."""

    def setUp(self):
        self.fx = Fixture()
        self.fx.program('fake')

    def tearDown(self):
        self.fx.cleanup()


def call(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def executable(path):
    return os.stat(path).st_mode & stat.S_IXUSR


def table_row(test, out, case, cell):
    """The line of `retention run`'s table for case x cell (test.fail if there is none)."""
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == case and parts[1] == cell:
            return line
    test.fail('no row for %s %s in:\n%s' % (case, cell, out))
