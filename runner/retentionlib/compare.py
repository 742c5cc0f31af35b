"""`retention compare`: one table, cases x allocators. Each entry is the RSS a process keeps after
the free (settled, where the column idles) and its ratio to the page floor of the live objects,
plus the alloc and free wall times as ratios to glibc's from the same invocation. It reports;
it does not judge (the bounds live in expected/ and `run` checks them)."""

import json
from collections import OrderedDict

from . import report, runner
from .casefile import load_case
from .errors import ConfigError

# (column, cell, the phase whose RSS the column shows)
COLUMNS = (
    ('glibc', 'native', 'after_free'),
    ('glibc+trim', 'trim', 'after_trim'),
    ('glibc+shim', 'shim', 'after_idle'),
    ('jemalloc', 'jemalloc', 'after_idle'),
    ('jemalloc_bg', 'jemalloc_bg', 'after_idle'),
    ('tcmalloc', 'tcmalloc', 'after_idle'),
    ('mimalloc', 'mimalloc', 'after_idle'),
)


def _work_us(r, phase):
    v = r['phases'].get(phase, {}).get('work_us')
    return v if isinstance(v, int) and v >= 0 else None


def _entry(r, shown_phase):
    e = OrderedDict()
    e['status'] = 'ok' if r['run_ok'] else r['status']
    e['reason'] = r['reason']
    e['phase'] = shown_phase
    ph = r['phases']
    rss = ph.get(shown_phase, {}).get('rss_kb')
    base = ph.get('baseline', {}).get('rss_kb')
    floor = ph.get(shown_phase, {}).get('floor_kb')
    e['rss_kb'] = rss
    e['after_free_kb'] = ph.get('after_free', {}).get('rss_kb')
    e['peak_kb'] = ph.get('peak', {}).get('rss_kb')
    e['baseline_kb'] = base
    e['floor_kb'] = floor
    e['floor_ratio'] = (float(rss) / (base + floor)
                        if r['run_ok'] and None not in (rss, base, floor) and floor >= 0 and base + floor > 0
                        else None)
    e['alloc_us'] = _work_us(r, 'peak')
    e['free_us'] = _work_us(r, 'after_free')
    e['alloc_ratio'] = None
    e['free_ratio'] = None
    return e


def _ratio(v, ref):
    if v is None or not ref:
        return None
    return float(v) / ref


def compare_case(ctx, name):
    case = load_case(ctx.cases_dir, name, ctx.repo, ctx.cells)
    row = OrderedDict()
    refs = {}
    for column, cell_name, shown in COLUMNS:
        r, _ = runner.measure_cell(ctx, case, ctx.cells[cell_name], refs)
        refs[cell_name] = r
        row[column] = _entry(r, shown)
    glibc = row['glibc']
    for e in row.values():
        e['alloc_ratio'] = _ratio(e['alloc_us'], glibc['alloc_us'])
        e['free_ratio'] = _ratio(e['free_us'], glibc['free_us'])
    return row


def _times(e):
    if e['alloc_ratio'] is None or e['free_ratio'] is None:
        return '-'
    return '%.2f/%.2f' % (e['alloc_ratio'], e['free_ratio'])


def _rss(e):
    if e['status'] == 'skip':
        return 'skipped'
    if e['status'] != 'ok':
        return 'FAILED'
    text = report.human_kb(e['rss_kb'])
    if e['floor_ratio'] is not None:
        text += ' %.1fx' % e['floor_ratio']
    return text


def render(rows):
    """rows: OrderedDict case -> row (or an error string)."""
    header = ['case', ''] + [c[0] for c in COLUMNS]
    lines = [header]
    problems = []
    for case, row in rows.items():
        if isinstance(row, str):
            lines.append([case, 'error', row] + [''] * (len(COLUMNS) - 1))
            continue
        lines.append([case, 'RSS'] + [_rss(e) for e in row.values()])
        lines.append(['', 'time'] + [_times(e) for e in row.values()])
        for column, e in row.items():
            if e['status'] not in ('ok',):
                problems.append('%s %s: %s: %s' % (case, column, e['status'], e['reason']))
    widths = [max(len(l[i]) for l in lines) for i in range(len(header))]
    out = ['  '.join(cell.ljust(w) for cell, w in zip(l, widths)).rstrip() for l in lines]
    out.append('RSS: after the free (glibc), after malloc_trim(0) (glibc+trim), after %s of idle '
               '(the others); Nx = RSS over baseline + page floor of the live objects.'
               % 'the settle time')
    out.append('time: alloc/free wall time over glibc\'s, same invocation. ' + report.UNITS_NOTE)
    out.extend(problems)
    return out


def to_json(platform, rows):
    doc = OrderedDict()
    doc['platform'] = platform
    doc['columns'] = [OrderedDict([('column', c), ('cell', cell), ('phase', ph)]) for c, cell, ph in COLUMNS]
    doc['cases'] = [OrderedDict([('case', case), ('error', row)]) if isinstance(row, str)
                    else OrderedDict([('case', case), ('cells', row)]) for case, row in rows.items()]
    return json.dumps(doc, indent=2) + '\n'


def run(ctx, names, log_row=None):
    rows = OrderedDict()
    for name in names:
        try:
            rows[name] = compare_case(ctx, name)
        except ConfigError as e:
            rows[name] = str(e)
        if log_row:
            log_row(name)
    return rows
