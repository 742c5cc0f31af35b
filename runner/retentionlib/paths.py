"""Where the runner finds what it works with: one function per location, and nowhere else.

Each takes what the command line said (--cases-dir, --build-dir, --valgrind, --gdb) and, where
one is read, the environment ($RETENTION_BUILD_DIR, $RETENTION_VALGRIND, $RETENTION_GDB); without
either it falls back on the layout this package sits in. That layout is the checkout:

  <repo>/runner/retentionlib/     this package
  <repo>/cases/NAME.case          the case files          cases_dir()
  <repo>/expected/NAME.exp        their bounds            expected_dir()
  <build>/cases/PROGRAM           the case programs       case_program()
  <build>/shim/libtrimshim.so     the trim shim           shim_library()
  <build>/rssprobe/libwatchprobe.so  watch's sampler      watch_probe()

with <build> from build_dir(). Installed (`cmake --install`, or the .deb/.rpm), the same functions
answer from the installed layout, each relative to this file's own location, so a copied or
DESTDIR-staged prefix still works:

  <prefix>/bin/retention                       the command
  <prefix>/share/retention/python/retentionlib this package, with _installed.py beside it
  <prefix>/share/retention/{cases,expected}    cases_dir(), expected_dir()
  <prefix>/libexec/retention/PROGRAM           case_program(None, PROGRAM)
  <prefix>/LIBDIR/libtrimshim.so.0             shim_library(None)
  <prefix>/LIBDIR/retention/libwatchprobe.so   watch_probe(None)

_installed.py (written by the install, never present in a checkout) holds those directories
relative to the prefix and the way from this package up to it. With no build tree named
(--build-dir, $RETENTION_BUILD_DIR), an installed runner uses the installed programs and shim:
build_dir() is then None. Every caller asks these functions and none builds a path itself.
"""

import os
import shutil
import sys

try:
    from . import _installed
except ImportError:     # a checkout: only an install writes _installed.py
    _installed = None

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
RUNNER_DIR = os.path.dirname(PACKAGE_DIR)
REPO_DIR = os.path.dirname(RUNNER_DIR)


def installed_layout(module, package_dir):
    """The installed directories as absolute paths, from an _installed module found in
    package_dir; None for a checkout (module None)."""
    if module is None:
        return None
    prefix = os.path.normpath(os.path.join(package_dir, module.PACKAGE_TO_PREFIX))
    return {
        'prefix': prefix,
        'bin': os.path.join(prefix, module.BINDIR),
        'data': os.path.join(prefix, module.DATADIR),
        'libexec': os.path.join(prefix, module.LIBEXECDIR),
        'shim': os.path.join(prefix, module.SHIM),
    }


# None when the runner runs from a checkout.
INSTALLED = installed_layout(_installed, PACKAGE_DIR)


def repo_dir():
    """The tree the runner's data belongs to (the checkout, or the installed share/retention);
    file names inside it are shown relative to it."""
    return INSTALLED['data'] if INSTALLED else REPO_DIR


def cases_dir(explicit=None):
    return os.path.abspath(explicit or os.path.join(repo_dir(), 'cases'))


def expected_dir(explicit=None):
    return os.path.abspath(explicit or os.path.join(repo_dir(), 'expected'))


def build_dir(explicit=None, environ=None):
    """The build tree with the case programs and the shim: --build-dir, else $RETENTION_BUILD_DIR,
    else <repo>/build; installed, None (the installed programs and shim) unless one is named."""
    environ = os.environ if environ is None else environ
    named = explicit or environ.get('RETENTION_BUILD_DIR')
    if named:
        return os.path.abspath(named)
    return None if INSTALLED else os.path.join(repo_dir(), 'build')


def case_program(build, program):
    """The executable of a case file's `program = NAME`: in the build tree, or installed (build
    None)."""
    if build is None:
        return os.path.join(INSTALLED['libexec'], program)
    return os.path.join(build, 'cases', program)


def shim_library(build):
    """The trim shim to preload: the build tree's, or the installed one (build None)."""
    if build is None:
        return INSTALLED['shim']
    return os.path.join(build, 'shim', 'libtrimshim.so')


def watch_probe(build):
    """The sampler `retention watch` preloads (rssprobe/watchprobe.c): the build tree's, or the
    installed one (build None)."""
    if build is None:
        return os.path.join(INSTALLED['prefix'], _installed.WATCHPROBE)
    return os.path.join(build, 'rssprobe', 'libwatchprobe.so')


def how_to_get_programs(build):
    """What to tell a user whose case program is missing."""
    if build is None:
        return 'the installation at %s is incomplete: reinstall retention' % INSTALLED['prefix']
    return 'run cmake --build %s' % build


def command_name(argv0=None, environ=None):
    """How to name this command in advice the user may paste: as the user ran it (`retention`
    when that name in PATH is this very command, else the absolute path run), never relative to a
    checkout the user may not be in."""
    environ = os.environ if environ is None else environ
    search_path = environ.get('PATH', os.defpath)
    argv0 = argv0 if argv0 is not None else (sys.argv[0] if sys.argv else '')
    if not argv0 or argv0.startswith('-') or not os.path.basename(argv0):
        return os.path.join(RUNNER_DIR, 'retention')
    if os.sep not in argv0 and shutil.which(argv0, path=search_path):
        return argv0
    full = os.path.abspath(argv0)
    base = os.path.basename(full)
    found = shutil.which(base, path=search_path)
    if found and os.path.realpath(found) == os.path.realpath(full):
        return base
    if base in ('__main__.py', 'cli.py'):
        return os.path.join(RUNNER_DIR, 'retention')
    return full


def valgrind(explicit=None, environ=None):
    """The valgrind asked for: --valgrind, else $RETENTION_VALGRIND, else None (the one in PATH,
    looked up by find_valgrind when a cell needs it)."""
    environ = os.environ if environ is None else environ
    return explicit or environ.get('RETENTION_VALGRIND') or None


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _in_path(name, search_path, why):
    found = shutil.which(name, path=search_path)
    return (found, None) if found else (None, why)


def find_valgrind(wanted, search_path):
    """(the valgrind executable, None), or (None, why not): `wanted` (a file, else a name looked up
    in search_path) when given, else valgrind in search_path."""
    if wanted:
        if _executable(wanted):
            return wanted, None
        if os.sep in wanted:
            return None, 'valgrind not found: %s' % wanted
        return _in_path(wanted, search_path, 'valgrind not found: %s' % wanted)
    return _in_path('valgrind', search_path, 'valgrind not found')


def find_gdb(explicit=None, environ=None):
    """(the gdb executable, None), or (None, why not): --gdb, else $RETENTION_GDB (a path, or a
    name looked up in $PATH), else gdb in $PATH."""
    environ = os.environ if environ is None else environ
    search_path = environ.get('PATH', os.defpath)
    want = explicit or environ.get('RETENTION_GDB')
    if want:
        if os.sep in want:
            return (want, None) if _executable(want) else (None, 'gdb not found: %s' % want)
        return _in_path(want, search_path, 'gdb not found: %s' % want)
    return _in_path('gdb', search_path, 'gdb not found in PATH: install it (ci/install-deps does; apt-get '
                                        'install gdb, dnf install gdb) or name it with --gdb PATH')
