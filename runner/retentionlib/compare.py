"""`retention compare`: one table, cases x allocators. Each entry is the RSS a process keeps after
the free (settled, where the column idles) and its ratio to the page floor of the live objects,
plus the alloc and free wall times as ratios to glibc's. It reports; it does not judge (the bounds
live in expected/ and `run` checks them).

The columns run through multicell, as `watch` runs its cells: a discarded warm-up run, then
--repeat rounds (5 by default, at least 3) with every column once per round, interleaved; a time
ratio is the median of the per-round ratios to glibc's run of the same round, shown with their
range, and a range that includes 1.0 is marked as within noise. RSS figures are medians over
the rounds."""

import json
from collections import OrderedDict

from . import multicell, report, runner
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


# Three rounds is the least that gives a median with a spread; five is the default because on a
# shared VM a run's alloc time is bimodal (list_retention's glibc: 370-450 ms, or 900-1500 ms when
# another job holds a core), and with three rounds one slow reference run moves a median past the
# whole range of the next invocation (array_control's jemalloc_bg alloc: 1.25 [1.15-1.58], then
# 1.04 [1.02-1.10]). A warm-up per column was not needed: after the one warm-up run a column's
# first round measured no slower than its later ones.
MIN_ROUNDS = 3
DEFAULT_ROUNDS = 5


def _entry(runs, shown_phase, glibc_runs):
    """One column of one case: medians over the rounds, and the time ratios with their spread."""
    e = OrderedDict()
    ok = [r for r in runs if r['run_ok']]
    e['status'] = 'ok' if ok and len(ok) == len(runs) else (runs[0]['status'] if runs else 'skip')
    e['reason'] = next((r['reason'] for r in runs if not r['run_ok']), '')
    e['phase'] = shown_phase
    e['rounds'] = len(runs)

    def med(phase, key='rss_kb'):
        return multicell.median([r['phases'].get(phase, {}).get(key) for r in ok])
    rss, base, floor = med(shown_phase), med('baseline'), med(shown_phase, 'floor_kb')
    e['rss_kb'] = rss
    e['after_free_kb'] = med('after_free')
    e['peak_kb'] = med('peak')
    e['baseline_kb'] = base
    e['floor_kb'] = floor
    e['floor_ratio'] = (float(rss) / (base + floor)
                        if ok and None not in (rss, base, floor) and floor >= 0 and base + floor > 0 else None)
    e['alloc_us'] = [_work_us(r, 'peak') for r in runs]
    e['free_us'] = [_work_us(r, 'after_free') for r in runs]
    e['alloc_ratio'] = multicell.ratio_per_round(runs, glibc_runs, lambda r: _work_us(r, 'peak'))
    e['free_ratio'] = multicell.ratio_per_round(runs, glibc_runs, lambda r: _work_us(r, 'after_free'))
    return e


def compare_case(ctx, name, rounds=DEFAULT_ROUNDS):
    case = load_case(ctx.cases_dir, name, ctx.repo, ctx.cells)
    cells = [cell for _, cell, _ in COLUMNS]

    def run_one(cell_name, rnd, done):
        # done: this round's runs so far, the references a cell's metrics need (shim: trim).
        r, _ = runner.measure_cell(ctx, case, ctx.cells[cell_name], done)
        return r
    results = multicell.run_rounds(cells, rounds, run_one, warmup=True,
                                   progress=lambda c, r: ctx.log('[%s %s] round %s' % (
                                       name, c, 'warm-up' if r < 0 else r + 1)))
    row = OrderedDict()
    for column, cell_name, shown in COLUMNS:
        row[column] = _entry(results[cell_name], shown, results['native'])
    return row


def _times(e, key):
    if e['status'] != 'ok':
        return '-'
    return e[key].text()


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
        lines.append(['', 'alloc'] + ['1 (ref)' if c == 'glibc' else _times(e, 'alloc_ratio') for c, e in row.items()])
        lines.append(['', 'free'] + ['1 (ref)' if c == 'glibc' else _times(e, 'free_ratio') for c, e in row.items()])
        for column, e in row.items():
            if e['status'] not in ('ok',):
                problems.append('%s %s: %s: %s' % (case, column, e['status'], e['reason']))
    widths = [max(len(l[i]) for l in lines) for i in range(len(header))]
    out = ['  '.join(cell.ljust(w) for cell, w in zip(l, widths)).rstrip() for l in lines]
    out.append('RSS: after the free (glibc), after malloc_trim(0) (glibc+trim), after %s of idle '
               '(the others); Nx = RSS over baseline + page floor of the live objects.'
               % 'the settle time')
    rounds = max([e['rounds'] for row in rows.values() if not isinstance(row, str) for e in row.values()] or [0])
    out.append('alloc, free: wall time of the allocation and of the free over glibc\'s, median of %d '
               'interleaved rounds after a discarded warm-up run; %s.' % (rounds, multicell.RATIO_NOTE))
    out.append(report.UNITS_NOTE)
    out.extend(problems)
    return out


def _jsonable(e):
    d = OrderedDict(e)
    d['alloc_ratio'] = e['alloc_ratio'].to_json()
    d['free_ratio'] = e['free_ratio'].to_json()
    return d


def to_json(platform, rows):
    doc = OrderedDict()
    doc['platform'] = platform
    doc['columns'] = [OrderedDict([('column', c), ('cell', cell), ('phase', ph)]) for c, cell, ph in COLUMNS]
    doc['cases'] = [OrderedDict([('case', case), ('error', row)]) if isinstance(row, str)
                    else OrderedDict([('case', case), ('cells', OrderedDict((c, _jsonable(e)) for c, e in row.items()))])
                    for case, row in rows.items()]
    return json.dumps(doc, indent=2) + '\n'


def run(ctx, names, log_row=None, rounds=DEFAULT_ROUNDS):
    rows = OrderedDict()
    for name in names:
        try:
            rows[name] = compare_case(ctx, name, rounds)
        except ConfigError as e:
            rows[name] = str(e)
        if log_row:
            log_row(name)
    return rows
