"""What several commands share on the command line: the directory options, resolved through
paths.py, and the choice of cases."""

import os

from .. import paths
from ..casefile import case_names
from ..errors import UsageError


def add_dir_options(p, build=False, expected=False):
    p.add_argument('--cases-dir', metavar='DIR', help='case files (default: <repo>/cases)')
    if expected:
        p.add_argument('--expected-dir', metavar='DIR', help='expected files (default: <repo>/expected)')
    if build:
        p.add_argument('--build-dir', metavar='DIR',
                       help='build tree with cases/<program> and shim/ (default: $RETENTION_BUILD_DIR or <repo>/build)')


def add_valgrind_option(p):
    p.add_argument('--valgrind', metavar='PATH',
                   help='the valgrind executable (default: $RETENTION_VALGRIND, else valgrind in PATH)')


def dirs(args):
    """(cases dir, expected dir, build dir) from the options a command has, else the defaults."""
    return (paths.cases_dir(args.cases_dir),
            paths.expected_dir(getattr(args, 'expected_dir', None)),
            paths.build_dir(getattr(args, 'build_dir', None)))


def cases_in(cases_dir):
    """The case names in cases_dir (maybe none); UsageError without such a directory."""
    if not os.path.isdir(cases_dir):
        raise UsageError('no cases directory: %s' % cases_dir)
    return case_names(cases_dir)


def known_cases(cases_dir):
    names = cases_in(cases_dir)
    if not names:
        raise UsageError('no case files (*.case) in %s' % cases_dir)
    return names


def unique(items):
    out = []
    for x in items:
        if x not in out:
            out.append(x)
    return out


def selected_cases(args, cases_dir):
    """The cases named by --case (each once, in the order given), else every case."""
    known = known_cases(cases_dir)
    for name in args.case:
        if name not in known:
            raise UsageError("unknown case '%s' (known: %s)" % (name, ', '.join(known)))
    return unique(args.case) or known
