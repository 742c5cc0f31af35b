"""`retention list`: the cases, their cells and what each pins; --ctest: the CASE CELL pairs that
runner/CMakeLists.txt makes one ctest test each."""

import sys

from .. import paths
from ..casefile import load_case
from ..errors import ConfigError
from . import options


def add_arguments(p):
    options.add_dir_options(p)
    p.add_argument('--ctest', action='store_true', help="one 'CASE CELL' pair per line (for CMake)")


def run(args):
    cases_dir, _, _ = options.dirs(args)
    names = options.known_cases(cases_dir)
    errors = []
    rows = []
    for name in names:
        try:
            case = load_case(cases_dir, name, paths.repo_dir())
        except ConfigError as e:
            errors.append(str(e))
            continue
        rows.append(case)
    out = sys.stdout
    if args.ctest:
        if not errors:
            for case in rows:
                for cell in case.cells:
                    out.write('%s %s\n' % (case.name, cell))
    else:
        w_name = max([4] + [len(c.name) for c in rows])
        w_cells = max([5] + [len(' '.join(c.cells)) for c in rows])
        out.write('%s  %s  %s\n' % ('case'.ljust(w_name), 'cells'.ljust(w_cells), 'what it pins'))
        for c in rows:
            out.write('%s  %s  %s\n' % (c.name.ljust(w_name), ' '.join(c.cells).ljust(w_cells), c.description))
    out.flush()
    for e in errors:
        sys.stderr.write('retention: %s\n' % e)
    return 2 if errors else 0
