"""`retention demo`: the teaching demo's command line (the demo itself is demo.py)."""

import os
import sys
import time

from .. import demo, paths, platforminfo, report, runner
from ..casefile import load_case
from ..errors import UsageError
from . import options


def add_arguments(p):
    p.add_argument('--case', default=demo.DEFAULT_CASE, metavar='NAME',
                   help='the case (default: %s)' % demo.DEFAULT_CASE)
    p.add_argument('--pause', action='store_true',
                   help='wait for Enter between steps (only when stdin is a terminal; never otherwise)')
    p.add_argument('--svg', metavar='FILE', help='write the RSS timeline as a self-contained SVG')
    p.add_argument('--html', metavar='FILE', help='write a page with the chart and the narration')
    p.add_argument('--count', type=int, metavar='N',
                   help='--count for the case program (default: the case file\'s, at most %d, so the demo '
                        'ends within a minute)' % demo.DEMO_COUNT)
    options.add_dir_options(p, build=True)
    options.add_valgrind_option(p)


def run(args):
    out, err, stdin = sys.stdout, sys.stderr, sys.stdin
    cases_dir, expected_dir, build_dir = options.dirs(args)
    known = options.cases_in(cases_dir)
    if args.case not in known:
        raise UsageError("unknown case '%s' (known: %s)" % (args.case, ', '.join(known) or 'none'))
    if args.count is not None and args.count < 1:
        raise UsageError('bad --count %d (expected a whole number >= 1)' % args.count)
    case = load_case(cases_dir, args.case, paths.repo_dir())
    case, count, case_count = demo.with_count(case, args.count)
    if args.count is not None and count is None:
        raise UsageError("case '%s' has no --count in its args; run it without --count" % case.name)
    plat = platforminfo.detect()
    ctx = runner.Context(paths.repo_dir(), build_dir, cases_dir, expected_dir, plat,
                         valgrind=paths.valgrind(args.valgrind))
    for path in (args.svg, args.html):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError('cannot write %s: no such directory' % path)
    t0 = time.monotonic()
    facts = demo.Facts(case, plat, count, case_count, demo.idle_seconds(case))
    facts.other = demo.pick_other(ctx, case)
    story = demo.run(ctx, facts, out, err, pause=args.pause, stdin=stdin)
    if args.svg:
        report.write_file(args.svg, demo.chart(facts))
        out.write('\nRSS timeline written to %s\n' % args.svg)
    if args.html:
        report.write_file(args.html, demo.html_page(facts, story))
        out.write('%sPage with the chart and this story written to %s\n' % ('' if args.svg else '\n', args.html))
    err.write('demo: %.1f s in all\n' % (time.monotonic() - t0))
    out.flush()
    failed = [r for r in facts.results.values() if r is not None and demo.failed_run(r)]
    return 1 if failed else 0
