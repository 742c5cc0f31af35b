"""`retention run`: run cases in cells, judge each result against expected/, print the table."""

import sys
from collections import OrderedDict

from .. import cells as cellmod
from .. import paths, platforminfo, report, runner
from ..errors import UsageError
from . import options


def add_arguments(p):
    p.add_argument('--case', action='append', default=[], metavar='NAME', help='run this case (repeatable; default: all)')
    p.add_argument('--cell', action='append', default=[], metavar='CELL',
                   help='run this cell (repeatable; default: the cells each case lists; known: %s)'
                        % ', '.join(cellmod.CELLS))
    options.add_dir_options(p, build=True, expected=True)
    p.add_argument('--json', metavar='FILE', help='write every figure and check as JSON')
    p.add_argument('--junit', metavar='FILE', help='write JUnit XML')
    options.add_valgrind_option(p)
    p.add_argument('--env', action='append', default=[], metavar='NAME=VALUE',
                   help='set this variable in every cell, after the case file\'s env (repeatable); the '
                        'caller\'s own MALLOC_*, GLIBC_TUNABLES, LD_PRELOAD... are never inherited')
    p.add_argument('--skip-exit-code', type=int, metavar='N',
                   help='exit N when every requested cell was skipped (for ctest SKIP_RETURN_CODE)')
    p.add_argument('--verbose', '-v', action='store_true',
                   help='commands, environment and figures on stderr; every bound, its file:line and its '
                        'why under its row')


def parse_env(items):
    """--env NAME=VALUE items -> OrderedDict; UsageError for one that is not NAME=VALUE."""
    extra_env = OrderedDict()
    for item in items:
        name, sep, value = item.partition('=')
        if not sep or not name or not (name[0].isalpha() or name[0] == '_') or \
                not all(ch.isalnum() or ch == '_' for ch in name):
            raise UsageError("bad --env %r (expected NAME=VALUE)" % item)
        extra_env[name] = value
    return extra_env


def run(args):
    cases_dir, expected_dir, build_dir = options.dirs(args)
    selected = options.selected_cases(args, cases_dir)
    for cell in args.cell:
        if cell not in cellmod.CELLS:
            raise UsageError("unknown cell '%s' (known: %s)" % (cell, ', '.join(cellmod.CELLS)))
    extra_env = parse_env(args.env)
    cell_filter = options.unique(args.cell) or None
    plat = platforminfo.detect(env=extra_env)
    ctx = runner.Context(paths.repo_dir(), build_dir, cases_dir, expected_dir, plat,
                         valgrind=paths.valgrind(args.valgrind), verbose=args.verbose, extra_env=extra_env)
    ctx.log('platform: %s' % plat['key'])
    results = []
    for name in selected:
        results.extend(runner.run_case(ctx, name, cell_filter))
    if not results:
        raise UsageError('no selected case runs cell %s (cases: %s)' % (
            ', '.join("'%s'" % c for c in cell_filter or ()), ', '.join(selected)))
    summary = runner.summary(results)
    out = sys.stdout
    for line in report.render_table(results, verbose=args.verbose):
        out.write(line + '\n')
    if any(r['phases'] and r['cell'] != 'memcheck' for r in results):
        out.write(report.UNITS_NOTE + '\n')
    bounds = report.bounds_line(results)
    if bounds:
        out.write(bounds + '\n')
    if args.json:
        report.write_file(args.json, report.to_json(plat, results, summary))
    if args.junit:
        report.write_file(args.junit, report.to_junit(plat, results, summary))
    out.write(report.summary_line(summary) + '\n')
    out.flush()
    if summary['failed']:
        return 1
    requested = [r for r in results if not r['reference']]
    if args.skip_exit_code is not None and requested and all(r['status'] == 'skip' for r in requested):
        return args.skip_exit_code
    return 0
