"""`retention watch -- CMD [ARGS...]`: run your own program once per cell under the watch probe and
compare what each allocator keeps (the work is in ../watch.py, ../watchreport.py, ../watchsvg.py)."""

import argparse
import sys
from collections import OrderedDict

from .. import cells as cellmod
from .. import multicell, paths, platforminfo, report, runner, watch, watchreport, watchsvg
from ..errors import UsageError
from . import options


def add_arguments(p):
    p.add_argument('--cell', action='append', default=[], metavar='CELL',
                   help='run in this cell (repeatable; default: native, trim, shim and each installed '
                        'allocator; known: %s; a tunable cell is CELL:NAME=VALUE, e.g. '
                        'native:MALLOC_ARENA_MAX=2)' % ', '.join(cellmod.WATCH_CELLS))
    p.add_argument('--interval', type=int, default=watch.DEFAULT_INTERVAL_MS, metavar='MS',
                   help='sample every MS milliseconds (default %(default)s; 1..60000)')
    p.add_argument('--for', dest='for_s', type=float, metavar='SECONDS',
                   help='end the program after SECONDS (a server): SIGTERM, SIGKILL %g s later; its end '
                        'sample is taken while it is alive' % watch.TERM_GRACE_S)
    p.add_argument('--timeout', type=float, default=600.0, metavar='SECONDS',
                   help='kill a run that lasts longer (default %(default)s s)')
    p.add_argument('--repeat', type=int, default=1, metavar='N',
                   help='run every cell N times, interleaved, after a discarded warm-up run, for time '
                        'ratios with their spread (default 1: one run, no warm-up)')
    p.add_argument('--json', metavar='FILE', help='write every sample and figure as JSON')
    p.add_argument('--svg', metavar='FILE', help='draw the timeline: native split into live, free kept by '
                                                 'the allocator and other RSS; the other cells as RSS lines')
    options.add_dir_options(p, build=True)
    p.add_argument('--verbose', '-v', action='store_true', help='each command and its environment on stderr')
    p.add_argument('argv', nargs=argparse.REMAINDER, metavar='CMD', help='the program and its arguments, after --')


def parse_cells(specs, ctx):
    """The cells to run, native first (every time ratio is over native). Default: native, trim,
    shim and the allocator cells whose library is installed (the others are shown as skipped)."""
    if not specs:
        specs = list(cellmod.WATCH_CELLS)
    out = OrderedDict()
    for spec in specs:
        try:
            cell = cellmod.user_cell(spec)
        except ValueError as e:
            raise UsageError(str(e))
        if cell.name in out:
            raise UsageError("cell '%s' given twice" % cell.name)
        out[cell.name] = cell
    if 'native' not in out:
        native = OrderedDict([('native', cellmod.CELLS['native'])])
        native.update(out)
        out = native
    else:
        out.move_to_end('native', last=False)
    return out


def run(args):
    argv = list(args.argv)
    if argv and argv[0] == '--':
        argv = argv[1:]
    if not argv:
        raise UsageError('watch: no command given (retention watch [OPTIONS] -- CMD [ARGS...])')
    if not 1 <= args.interval <= 60000:
        raise UsageError('--interval: %d ms is outside 1..60000' % args.interval)
    if args.for_s is not None and not args.for_s > 0:
        raise UsageError('--for: want a number of seconds > 0, got %g' % args.for_s)
    if not args.timeout > 0:
        raise UsageError('--timeout: want a number of seconds > 0, got %g' % args.timeout)
    if args.repeat < 1:
        raise UsageError('--repeat: want a whole number >= 1, got %d' % args.repeat)
    build_dir = paths.build_dir(args.build_dir)
    plat = platforminfo.detect()
    ctx = runner.Context(paths.repo_dir(), build_dir, None, None, plat, verbose=args.verbose)
    program, why = watch.resolve_command(argv[0], ctx.search_path)
    if program is None:
        raise UsageError('watch: %s' % why)
    argv[0] = program
    wanted = parse_cells(args.cell, ctx)
    opts = watch.RunOptions(interval_ms=args.interval, for_s=args.for_s, timeout_s=args.timeout)
    err = sys.stderr
    if watch.is_static(program):
        err.write('retention: %s is a static binary: nothing can be preloaded into it, so only native runs, '
                  'sampled from outside (RSS only, no allocator figures)\n' % program)
        wanted = OrderedDict([('native', wanted['native'])])
    # Skipped cells (an allocator not installed) are found before anything runs, and run no rounds.
    skipped = OrderedDict()
    for name, cell in wanted.items():
        if cell.preload is not None:
            lib, why = cell.preload(ctx)
            if lib is None:
                skipped[name] = why
    runnable = [c for c in wanted if c not in skipped]

    def run_one(cell_name, rnd, done):
        return watch.run_cell(ctx, argv, wanted[cell_name], opts, log=ctx.log)

    def progress(cell_name, rnd):
        ctx.log('[%s] round %s done' % (cell_name, 'warm-up' if rnd < 0 else rnd + 1))
    results = multicell.run_rounds(runnable, args.repeat, run_one, warmup=args.repeat > 1, progress=progress)
    summaries = OrderedDict()
    for name in wanted:
        if name in skipped:
            r = watch.new_run(wanted[name])
            r['status'] = 'skip'
            r['reason'] = skipped[name]
            summaries[name] = watchreport.CellSummary(wanted[name], [r])
        else:
            summaries[name] = watchreport.CellSummary(wanted[name], results[name])
    out = sys.stdout
    for line in watchreport.render(summaries, argv, opts):
        out.write(line + '\n')
    out.flush()
    if args.json:
        report.write_file(args.json, watchreport.to_json(plat, argv, opts, summaries))
    if args.svg:
        report.write_file(args.svg, watchsvg.chart(summaries, argv))
    failed = [s for s in summaries.values() if s.status == 'fail']
    return 1 if failed else 0
