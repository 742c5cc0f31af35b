"""What `retention watch` prints and writes: one row per cell, the verdict for native with the fix
the other cells demonstrated, and the JSON of every sample and figure."""

import json
from collections import OrderedDict

from . import multicell
from .explain.verdict import VERDICT_LIVE, VERDICT_RETENTION, classify
from .report import UNITS_NOTE, human_bytes, human_kb, pct
from .watch import summarize

# A cell "fixes" native when it ends at most at this share of native's end RSS: a smaller drop
# is within what two runs of one program differ by (file pages, a late arena).
FIX_SHARE = 0.8
REFERENCE = 'native'


class CellSummary(object):
    """A cell's runs (one per round) and their figures; RSS figures are medians over the rounds."""

    def __init__(self, cell, runs, settle_s=None):
        self.cell = cell
        self.runs = runs
        self.figures = []
        self.rows = []
        for r in runs:
            if r['status'] == 'skip':
                self.figures.append(None)
                self.rows.append([])
                continue
            f, rows = summarize(r, settle_s)
            self.figures.append(f)
            self.rows.append(rows)

    @property
    def status(self):
        sts = [r['status'] for r in self.runs]
        if 'fail' in sts:
            return 'fail'
        if sts and all(s == 'skip' for s in sts):
            return 'skip'
        return 'ok'

    @property
    def reason(self):
        for r in self.runs:
            if r['status'] != 'ok':
                return r['reason']
        return ''

    def fig(self, key):
        vals = [f[key] for f in self.figures if f is not None and f.get(key) is not None]
        return multicell.median(vals)

    def first(self, key):
        for f in self.figures:
            if f is not None and f.get(key) is not None:
                return f[key]
        return None


def _exit_text(runs):
    r = runs[-1]
    if r['status'] == 'skip':
        return 'skipped'
    if r['ended_by'] == 'for':
        return '%s (--for)' % (r['signal'] or 'exit %s' % r['exit_status'])
    if r['ended_by'] == 'timeout':
        return 'timeout'
    if r['signal']:
        return r['signal']
    return '%s' % r['exit_status']


def time_ratio(summaries, cell, key):
    ref = summaries.get(REFERENCE)
    if ref is None or ref.status != 'ok':
        return multicell.Ratio([])
    return multicell.ratio_per_round(summaries[cell].runs, ref.runs, lambda r: r.get(key))


def how_to_get(s):
    """How a user gets what the cell ran, in a line: the environment it added (the probe left
    out), or for trim what the probe did."""
    if s.cell.base == 'trim':
        return 'malloc_trim(0) once the work is done (the probe called it when the program went quiet)'
    env = OrderedDict(s.runs[-1].get('env') or ())
    pre = [p for p in env.pop('LD_PRELOAD', '').split(':') if p and 'libwatchprobe' not in p]
    parts = ['%s=%s' % kv for kv in env.items()]
    if pre:
        parts.append('LD_PRELOAD=%s' % ':'.join(pre))
    return ' '.join(parts) or 'as is'


def render(summaries, command, opts):
    """The lines watch prints: the table, the verdict for native and its fix, the notes."""
    header = ['cell', 'allocator', 'peak', 'end', 'mean', 'free kept at end', 'wall', 'CPU', 'exit']
    table = [header]
    problems = []
    for name, s in summaries.items():
        if s.status == 'skip':
            table.append([name, '-', '', '', '', '', '', '', 'skipped'])
            problems.append('%s: skipped: %s' % (name, s.reason))
            continue
        share = s.fig('end_free_share')
        free = s.fig('end_free_bytes')
        alloc = s.first('allocator') or '?'
        row = [name, alloc, human_kb(s.fig('peak_kb')), human_kb(s.fig('end_kb')), human_kb(s.fig('mean_kb')),
               '%s (%s)' % (human_bytes(free), pct(share)) if share is not None else
               ('- (%s keeps no count)' % alloc if alloc == 'mimalloc' else '-'),
               time_ratio(summaries, name, 'wall_s').text() if name != REFERENCE else '1',
               time_ratio(summaries, name, 'cpu_s').text() if name != REFERENCE else '1',
               _exit_text(s.runs)]
        table.append(row)
        if s.status == 'fail':
            problems.append('%s: %s' % (name, s.reason))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = ['  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    out.extend(verdict_lines(summaries))
    out.extend(problems)
    rounds = max(len(s.runs) for s in summaries.values()) if summaries else 0
    out.append('peak, end, mean: RSS (mean: the RSS-time integral over the wall time); end: the last '
               'sample while the program ran%s; free kept: free memory the allocator holds resident, '
               'share of end RSS.' % (' (at --for, before SIGTERM)' if opts.for_s else ''))
    if rounds <= 1:
        out.append('wall, CPU: over native, one run per cell: runs on a VM differ by 15-30%, so only a larger '
                   'difference means anything; --repeat 3 gives medians with their spread.')
    else:
        out.append('wall, CPU: over native, median of %d interleaved rounds after a discarded warm-up run; %s.'
                   % (rounds, multicell.RATIO_NOTE))
    shares = [f['probe_share'] for s in summaries.values() for f in s.figures
              if f is not None and f.get('probe_share') is not None]
    if shares:
        out.append('sampled every %d ms by the watch probe in every cell (its thread: %s of one core, '
                   'median over the runs). %s' % (opts.interval_ms, pct(multicell.median(shares)), UNITS_NOTE))
    else:
        out.append(UNITS_NOTE)
    return out


def verdict_lines(summaries):
    nat = summaries.get(REFERENCE)
    if nat is None or nat.status == 'skip' or not nat.figures or nat.figures[0] is None:
        return []
    f = nat.figures[0]
    alloc = f['allocator']
    rss = nat.fig('end_kb')
    if rss is None:
        return ['verdict (native): no sample: nothing to judge']
    if alloc != 'glibc':
        return ['verdict (native): not glibc malloc (%s, %s): glibc\'s fixes do not apply' % (alloc, f['allocator_how'])]
    live, free = nat.fig('end_live_bytes'), nat.fig('end_free_bytes')
    if live is None or free is None:
        return ['verdict (native): no allocator figures at the end: RSS %s' % human_kb(rss)]
    v = watch_verdict(nat)
    rss_b = rss * 1024
    lines = []
    if v == VERDICT_RETENTION:
        lines.append('verdict (native): %s: %s of the %s RSS at the end (%s) is free memory glibc malloc keeps '
                     'resident, not a leak; the program holds %s' % (
                         v, human_bytes(free), human_kb(rss), pct(free / rss_b), human_bytes(live)))
    elif v == VERDICT_LIVE:
        lines.append('verdict (native): %s: %s of the %s RSS at the end (%s) is allocations still in use; glibc '
                     'keeps only %s free: trimming will not help' % (
                         v, human_bytes(live), human_kb(rss), pct(live / rss_b), human_bytes(free)))
    else:
        lines.append('verdict (native): %s: of the %s RSS at the end, %s is live and %s free kept by glibc' % (
            v, human_kb(rss), human_bytes(live), human_bytes(free)))
    fixes = []
    for name, s in summaries.items():
        if name == REFERENCE or s.status != 'ok' or s.fig('end_kb') is None:
            continue
        fixes.append((s.fig('end_kb') / float(rss), name, s))
    fixes.sort(key=lambda x: x[0])
    good = [x for x in fixes if x[0] <= FIX_SHARE]
    if good:
        share, name, s = good[0]
        text = 'fix, as the cells showed: %s ends at %s (%.2fx native): %s' % (
            name, human_kb(s.fig('end_kb')), share, how_to_get(s))
        if len(good) > 1:
            text += '; also %s' % ', '.join('%s %.2fx' % (n, x) for x, n, _ in good[1:])
        lines.append(text)
    elif fixes:
        lines.append('no cell ends below %.1fx native (best: %s %.2fx): %s' % (
            FIX_SHARE, fixes[0][1], fixes[0][0],
            'the memory is the program\'s own' if v == VERDICT_LIVE else 'nothing here for an allocator fix'))
    shim, trim = summaries.get('shim'), summaries.get('trim')
    if shim and trim and shim.status == 'ok' and trim.status == 'ok' and trim.fig('end_kb'):
        lines.append('shim/trim at the end: %.2fx (shim %s, an explicit malloc_trim(0) %s)' % (
            shim.fig('end_kb') / float(trim.fig('end_kb')), human_kb(shim.fig('end_kb')), human_kb(trim.fig('end_kb'))))
    return lines


def watch_verdict(nat):
    live, free, rss = nat.fig('end_live_bytes'), nat.fig('end_free_bytes'), nat.fig('end_kb')
    if None in (live, free, rss):
        return None
    # explain's thresholds, on the end sample.
    return classify({'rss_bytes': rss * 1024, 'free_resident_bytes': free, 'live_bytes': live})


def to_json(platform, command, opts, summaries):
    doc = OrderedDict()
    doc['platform'] = platform
    doc['command'] = command
    doc['interval_ms'] = opts.interval_ms
    doc['for_s'] = opts.for_s
    nat = summaries.get(REFERENCE)
    doc['verdict'] = watch_verdict(nat) if nat is not None and nat.status == 'ok' else None
    cells = []
    for name, s in summaries.items():
        c = OrderedDict()
        c['cell'] = name
        c['status'] = s.status
        c['reason'] = s.reason
        c['wall_ratio'] = time_ratio(summaries, name, 'wall_s').to_json() if name != REFERENCE else None
        c['cpu_ratio'] = time_ratio(summaries, name, 'cpu_s').to_json() if name != REFERENCE else None
        runs = []
        for r, f, rows in zip(s.runs, s.figures, s.rows):
            d = OrderedDict((k, v) for k, v in r.items() if k not in ('records', 'maps'))
            d['figures'] = f
            d['samples'] = rows
            d['probe_records'] = [x for x in r['records'] if x.get('ev') in ('start', 'trim')]
            runs.append(d)
        c['runs'] = runs
        cells.append(c)
    doc['cells'] = cells
    return json.dumps(doc, indent=1) + '\n'
