"""`retention matrix`: one table, platform x case x cell, from several runs' --json files (the
table itself is ../matrix.py)."""

import sys

from .. import matrix, report


def add_arguments(p):
    p.add_argument('results', nargs='+', metavar='[LABEL=]RESULTS.json',
                   help="a run's --json file, labelled (default label: the file name)")
    p.add_argument('--json', metavar='FILE', help='write the combined table as JSON')


def run(args):
    loaded = matrix.load(args.results)
    for line in matrix.render(loaded):
        sys.stdout.write(line + '\n')
    t = matrix.totals(loaded)
    if args.json:
        report.write_file(args.json, matrix.to_json(loaded))
    sys.stdout.write(report.summary_line(t) + '\n')
    sys.stdout.flush()
    return 1 if t['failed'] else 0
