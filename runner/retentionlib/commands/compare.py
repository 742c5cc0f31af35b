"""`retention compare`: one table, cases x allocators (the table itself is ../compare.py)."""

import sys

from .. import compare, paths, platforminfo, report, runner
from ..errors import UsageError
from . import options


def add_arguments(p):
    p.add_argument('--case', action='append', default=[], metavar='NAME', help='this case (repeatable; default: all)')
    options.add_dir_options(p, build=True)
    p.add_argument('--repeat', type=int, default=compare.DEFAULT_ROUNDS, metavar='N',
                   help='rounds per column, interleaved, after a discarded warm-up run (default %d, least %d)'
                        % (compare.DEFAULT_ROUNDS, compare.MIN_ROUNDS))
    p.add_argument('--json', metavar='FILE', help='write the table as JSON')
    p.add_argument('--verbose', '-v', action='store_true', help='commands and figures on stderr')


def run(args):
    if args.repeat < compare.MIN_ROUNDS:
        raise UsageError('--repeat: at least %d rounds (a median with its spread), got %d'
                         % (compare.MIN_ROUNDS, args.repeat))
    cases_dir, expected_dir, build_dir = options.dirs(args)
    selected = options.selected_cases(args, cases_dir)
    plat = platforminfo.detect()
    ctx = runner.Context(paths.repo_dir(), build_dir, cases_dir, expected_dir, plat,
                         valgrind=paths.valgrind(), verbose=args.verbose)
    rows = compare.run(ctx, selected, log_row=lambda name: ctx.log('compared %s' % name), rounds=args.repeat)
    for line in compare.render(rows):
        sys.stdout.write(line + '\n')
    if args.json:
        report.write_file(args.json, compare.to_json(plat, rows))
    failed = [c for c, row in rows.items()
              if isinstance(row, str) or any(e['status'] == 'fail' for e in row.values())]
    return 1 if failed else 0
