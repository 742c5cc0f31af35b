"""The command line: run, compare, matrix, list, platform, explain."""

import argparse
import json
import os
import sys
from collections import OrderedDict

from . import cells as cellmod
from . import compare, explain, matrix, platforminfo, report, runner
from . import demo
from .casefile import case_names, display_path, load_case
from .errors import ConfigError, UsageError
from .expfile import load_expected, select_bounds, unmatched_sections

RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(RUNNER_DIR)


def _add_dirs(p, build=False, expected=False):
    p.add_argument('--cases-dir', metavar='DIR', help='case files (default: <repo>/cases)')
    if expected:
        p.add_argument('--expected-dir', metavar='DIR', help='expected files (default: <repo>/expected)')
    if build:
        p.add_argument('--build-dir', metavar='DIR',
                       help='build tree with cases/<program> and shim/ (default: $RETENTION_BUILD_DIR or <repo>/build)')


def make_parser():
    ap = argparse.ArgumentParser(
        prog='retention',
        description='Runs the retention cases: what glibc malloc keeps resident after a program frees it.')
    sub = ap.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    cell_names = ', '.join(cellmod.CELLS)

    p = sub.add_parser('run', help='run cases in cells and compare with expected/')
    p.add_argument('--case', action='append', default=[], metavar='NAME', help='run this case (repeatable; default: all)')
    p.add_argument('--cell', action='append', default=[], metavar='CELL',
                   help='run this cell (repeatable; default: the cells each case lists; known: %s)' % cell_names)
    _add_dirs(p, build=True, expected=True)
    p.add_argument('--json', metavar='FILE', help='write every figure and check as JSON')
    p.add_argument('--junit', metavar='FILE', help='write JUnit XML')
    p.add_argument('--valgrind', metavar='PATH',
                   help='the valgrind executable (default: $RETENTION_VALGRIND, else valgrind in PATH)')
    p.add_argument('--env', action='append', default=[], metavar='NAME=VALUE',
                   help='set this variable in every cell, after the case file\'s env (repeatable); the '
                        'caller\'s own MALLOC_*, GLIBC_TUNABLES, LD_PRELOAD... are never inherited')
    p.add_argument('--skip-exit-code', type=int, metavar='N',
                   help='exit N when every requested cell was skipped (for ctest SKIP_RETURN_CODE)')
    p.add_argument('--verbose', '-v', action='store_true',
                   help='commands, environment and figures on stderr; every bound, its file:line and its '
                        'why under its row')

    p = sub.add_parser('compare', help='one table, cases x allocators: RSS after free, its ratio to the '
                                       'page floor, alloc/free time over glibc')
    p.add_argument('--case', action='append', default=[], metavar='NAME', help='this case (repeatable; default: all)')
    _add_dirs(p, build=True)
    p.add_argument('--json', metavar='FILE', help='write the table as JSON')
    p.add_argument('--verbose', '-v', action='store_true', help='commands and figures on stderr')

    p = sub.add_parser('matrix', help='one table, platform x case x cell, from the --json files of '
                                      'several runs (ci/local-matrix, CI artifacts)')
    p.add_argument('results', nargs='+', metavar='[LABEL=]RESULTS.json',
                   help="a run's --json file, labelled (default label: the file name)")
    p.add_argument('--json', metavar='FILE', help='write the combined table as JSON')

    demo.add_parser(sub, _add_dirs)

    p = sub.add_parser('list', help='list the cases, their cells and what each pins')
    _add_dirs(p)
    p.add_argument('--ctest', action='store_true', help="one 'CASE CELL' pair per line (for CMake)")

    p = sub.add_parser('platform', help='the platform key that selects bounds, and the sections that apply')
    _add_dirs(p, expected=True)
    p.add_argument('--json', action='store_true', help='print JSON')

    explain.add_parser(sub)
    return ap


def _dirs(args):
    cases_dir = os.path.abspath(args.cases_dir or os.path.join(REPO, 'cases'))
    expected_dir = getattr(args, 'expected_dir', None)
    expected_dir = os.path.abspath(expected_dir or os.path.join(REPO, 'expected'))
    build_dir = getattr(args, 'build_dir', None) or os.environ.get('RETENTION_BUILD_DIR') or os.path.join(REPO, 'build')
    return cases_dir, expected_dir, os.path.abspath(build_dir)


def _known_cases(cases_dir):
    if not os.path.isdir(cases_dir):
        raise UsageError('no cases directory: %s' % cases_dir)
    names = case_names(cases_dir)
    if not names:
        raise UsageError('no case files (*.case) in %s' % cases_dir)
    return names


def _unique(items):
    out = []
    for x in items:
        if x not in out:
            out.append(x)
    return out


def _selected_cases(args, cases_dir):
    known = _known_cases(cases_dir)
    for name in args.case:
        if name not in known:
            raise UsageError("unknown case '%s' (known: %s)" % (name, ', '.join(known)))
    return _unique(args.case) or known


def cmd_compare(args):
    cases_dir, expected_dir, build_dir = _dirs(args)
    selected = _selected_cases(args, cases_dir)
    plat = platforminfo.detect()
    ctx = runner.Context(REPO, build_dir, cases_dir, expected_dir, plat,
                         valgrind=os.environ.get('RETENTION_VALGRIND') or None, verbose=args.verbose)
    rows = compare.run(ctx, selected, log_row=lambda name: ctx.log('compared %s' % name))
    for line in compare.render(rows):
        sys.stdout.write(line + '\n')
    if args.json:
        report.write_file(args.json, compare.to_json(plat, rows))
    failed = [c for c, row in rows.items()
              if isinstance(row, str) or any(e['status'] == 'fail' for e in row.values())]
    return 1 if failed else 0


def cmd_run(args):
    cases_dir, expected_dir, build_dir = _dirs(args)
    selected = _selected_cases(args, cases_dir)
    for cell in args.cell:
        if cell not in cellmod.CELLS:
            raise UsageError("unknown cell '%s' (known: %s)" % (cell, ', '.join(cellmod.CELLS)))
    extra_env = OrderedDict()
    for item in args.env:
        name, sep, value = item.partition('=')
        if not sep or not name or not (name[0].isalpha() or name[0] == '_') or \
                not all(ch.isalnum() or ch == '_' for ch in name):
            raise UsageError("bad --env %r (expected NAME=VALUE)" % item)
        extra_env[name] = value
    cell_filter = _unique(args.cell) or None
    plat = platforminfo.detect()
    ctx = runner.Context(REPO, build_dir, cases_dir, expected_dir, plat,
                         valgrind=args.valgrind or os.environ.get('RETENTION_VALGRIND') or None,
                         verbose=args.verbose, extra_env=extra_env)
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


def cmd_matrix(args):
    loaded = matrix.load(args.results)
    for line in matrix.render(loaded):
        sys.stdout.write(line + '\n')
    t = matrix.totals(loaded)
    if args.json:
        report.write_file(args.json, matrix.to_json(loaded))
    sys.stdout.write(report.summary_line(t) + '\n')
    sys.stdout.flush()
    return 1 if t['failed'] else 0


def cmd_list(args):
    cases_dir, _, _ = _dirs(args)
    names = _known_cases(cases_dir)
    errors = []
    rows = []
    for name in names:
        try:
            case = load_case(cases_dir, name, REPO)
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


def cmd_platform(args):
    cases_dir, expected_dir, _ = _dirs(args)
    plat = platforminfo.detect()
    sections = OrderedDict()
    errors = []
    names = case_names(cases_dir) if os.path.isdir(cases_dir) else []
    for name in names:
        per = OrderedDict()
        sections[name] = per
        try:
            case = load_case(cases_dir, name, REPO)
            exp = load_expected(expected_dir, name, REPO)
        except ConfigError as e:
            per['error'] = str(e)
            errors.append(str(e))
            continue
        for cell_name in case.cells:
            cell = cellmod.CELLS[cell_name]
            info = OrderedDict()
            per[cell_name] = info
            if exp is None:
                info['error'] = 'no expected file %s' % display_path(os.path.join(expected_dir, name + '.exp'), REPO)
                continue
            try:
                bounds, applied = select_bounds(exp, cell_name, plat, cell.allocator)
            except ConfigError as e:
                info['error'] = str(e)
                errors.append(str(e))
                continue
            info['sections'] = ['%s:%d %s' % (exp.where, s.lineno, s.label()) for s in applied]
            info['not_matching'] = ['%s:%d %s' % (exp.where, s.lineno, s.label())
                                    for s in unmatched_sections(exp, cell_name, plat, cell.allocator)]
            info['bounds'] = [b.text() for b in bounds]
            if not bounds:
                info['note'] = 'no bounds'
            elif all(not s.is_override for s in applied):
                info['note'] = 'defaults only'
            else:
                info['note'] = 'overrides: ' + ', '.join(s.label() for s in applied if s.is_override)
    out = sys.stdout
    if args.json:
        doc = OrderedDict([('platform', plat), ('sections', sections)])
        out.write(json.dumps(doc, indent=2) + '\n')
    else:
        distro = plat['distro_id'] or 'unknown'
        if plat['distro_version']:
            distro += ' ' + plat['distro_version']
        if plat['distro_name']:
            distro += ' (%s)' % plat['distro_name']
        for k, v in (('glibc', plat['glibc'] or 'not glibc'), ('distro', distro), ('thp', plat['thp']),
                     ('page size', plat['page_size']), ('arch', plat['arch']), ('kernel', plat['kernel']),
                     ('key', plat['key'])):
            out.write('%-10s %s\n' % (k, v))
        if sections:
            out.write('\nexpected sections that apply:\n')
            w = max(len(n) for n in sections)
            for name, per in sections.items():
                if 'error' in per and not isinstance(per['error'], dict):
                    out.write('  %s  error: %s\n' % (name.ljust(w), per['error']))
                    continue
                for cell_name, info in per.items():
                    if 'error' in info:
                        text = 'error: %s' % info['error']
                    else:
                        text = '%s (%s)' % (' + '.join(s.split(' ', 1)[1] for s in info['sections']) or '-',
                                            info['note'])
                    out.write('  %s  %-9s %s\n' % (name.ljust(w), cell_name, text))
    out.flush()
    return 2 if errors else 0


def main(argv=None):
    args = make_parser().parse_args(argv)
    try:
        if args.command == 'run':
            return cmd_run(args)
        if args.command == 'compare':
            return cmd_compare(args)
        if args.command == 'list':
            return cmd_list(args)
        if args.command == 'demo':
            return demo.main(args, REPO, *_dirs(args))
        if args.command == 'matrix':
            return cmd_matrix(args)
        if args.command == 'explain':
            return explain.cmd(args)
        return cmd_platform(args)
    except UsageError as e:
        sys.stderr.write('retention: %s\n' % e)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write('retention: interrupted\n')
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, 'w')
        except OSError:
            pass
        return 1
