"""`retention run`: run cases in cells, judge each result against expected/, print the table."""

import sys
from collections import OrderedDict

from .. import cells as cellmod
from .. import execute, paths, platforminfo, report, runner
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
    progress = runner.Progress()
    interrupted = None
    try:
        for name in selected:
            runner.run_case(ctx, name, cell_filter, progress)
    except execute.Interrupted as e:
        # The case's process group is already killed (execute.run_process); what finished is
        # reported and written, with what was cut short and what never started.
        interrupted = interrupted_info(ctx, e, progress, selected, cell_filter)
    results = progress.done
    if not results and interrupted is None:
        raise UsageError('no selected case runs cell %s (cases: %s)' % (
            ', '.join("'%s'" % c for c in cell_filter or ()), ', '.join(selected)))
    summary = runner.summary(results)
    out = sys.stdout
    if results:
        for line in report.render_table(results, verbose=args.verbose):
            out.write(line + '\n')
    if any(r['phases'] and r['cell'] != 'memcheck' for r in results):
        out.write(report.UNITS_NOTE + '\n')
    bounds = report.bounds_line(results)
    if bounds:
        out.write(bounds + '\n')
    if interrupted:
        out.write(report.interrupted_line(interrupted) + '\n')
    # The table is complete before any file is written: a write that fails (a full disk) costs
    # the file, never the table.
    out.write(report.summary_line(summary, interrupted) + '\n')
    out.flush()
    written = write_outputs(args, plat, results, summary, interrupted)
    if interrupted:
        return interrupted['exit_status']
    if written is not None:
        raise UsageError(written)
    if summary['failed']:
        return 1
    requested = [r for r in results if not r['reference']]
    if args.skip_exit_code is not None and requested and all(r['status'] == 'skip' for r in requested):
        return args.skip_exit_code
    return 0


def interrupted_info(ctx, e, progress, selected, cell_filter):
    """What --json and --junit say of an interrupted run (report.to_json): the signal, the cell
    cut short, and every selected cell that neither finished nor was cut short."""
    info = OrderedDict()
    info['signal'] = e.name
    info['exit_status'] = e.status
    info['running'] = None
    if progress.running:
        info['running'] = OrderedDict([('case', progress.running[0]), ('cell', progress.running[1])])
    finished = set((r['case'], r['cell']) for r in progress.done)
    not_run = []
    for name in selected:
        not_run.extend((name, c) for c in runner.planned_cells(ctx, name, cell_filter)
                       if (name, c) not in finished and (name, c) != progress.running)
    info['not_run'] = [OrderedDict([('case', case), ('cell', cell)]) for case, cell in not_run]
    return info


def write_outputs(args, plat, results, summary, interrupted):
    """Writes --json and --junit: None, or the one line saying which could not be written. Each
    is tried, so that one failing does not cost the other."""
    problems = []
    for path, render in ((args.json, report.to_json), (args.junit, report.to_junit)):
        if not path:
            continue
        try:
            report.write_file(path, render(plat, results, summary, interrupted))
        except UsageError as e:
            problems.append(str(e))
    if not problems:
        return None
    if interrupted:
        # The exit status stays the interruption's; the lost file is said on stderr.
        sys.stderr.write('retention: %s\n' % '; '.join(problems))
    return '; '.join(problems)
