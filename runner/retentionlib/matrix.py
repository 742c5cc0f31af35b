"""`retention matrix LABEL=RESULTS.json ...`: one table, platform x case x cell, from the JSON
files of several `retention run --json` runs (ci/local-matrix's chroots, CI's artifacts).

Each entry is the status and the cell's key metric: the figure its bounds judge first, in the
order settled_retained, shim_over_trim, floor_ratio, trim_retained, retained, free_over_floor,
still_reachable_blocks. An entry judged by a platform section of expected/ (not the defaults)
carries a mark, and the marks are listed under the table; a platform judged by the defaults
only says so."""

import io
import json
from collections import OrderedDict

from . import cells as cellmod
from . import metrics as metricmod
from . import report
from .errors import UsageError

KEY_METRICS = ('settled_retained', 'shim_over_trim', 'floor_ratio', 'trim_retained', 'retained',
               'free_over_floor', 'still_reachable_blocks')
STATUS = {'pass': 'PASS', 'fail': 'FAIL', 'skip': 'skip'}


def load(specs):
    """specs: ['LABEL=PATH' or 'PATH']. Returns [(label, doc)]; raises UsageError."""
    out = []
    for spec in specs:
        label, sep, path = spec.partition('=')
        if not sep:
            path = spec
            label = spec.rsplit('/', 1)[-1]
            if label.endswith('.json'):
                label = label[:-len('.json')]
        try:
            with io.open(path, encoding='utf-8') as f:
                doc = json.load(f, object_pairs_hook=OrderedDict)
        except (IOError, OSError) as e:
            raise UsageError('cannot read %s: %s' % (path, e.strerror or e))
        except ValueError as e:
            raise UsageError('%s: not JSON: %s' % (path, e))
        if not isinstance(doc, dict) or not isinstance(doc.get('results'), list):
            raise UsageError("%s: not the JSON of 'retention run --json' (no results list)" % path)
        # One platform may be run twice, with tcache on and off (ci/local-matrix does): the two
        # runs are two columns of one label.
        if _tcache_off(doc):
            label += NO_TCACHE
        if label in [x[0] for x in out]:
            raise UsageError("platform label '%s' given twice" % label)
        out.append((label, doc))
    return out


NO_TCACHE = ', no tcache'


def _tcache_off(doc):
    return ((doc.get('platform') or {}).get('tcache')) == 'off'


def column_title(label, doc):
    """'host (2.36)', or for a run with tcache off 'host (2.36, no tcache)'."""
    glibc = (doc.get('platform') or {}).get('glibc') or '?'
    if _tcache_off(doc) and label.endswith(NO_TCACHE):
        return '%s (%s%s)' % (label[:-len(NO_TCACHE)], glibc, NO_TCACHE)
    return '%s (%s)' % (label, glibc)


def key_check(r):
    """The check whose figure stands for this result, or None."""
    checks = [c for c in r.get('checks') or () if isinstance(c, dict)]
    for m in KEY_METRICS:
        for c in checks:
            if c.get('metric') == m:
                return c
    return checks[0] if checks else None


def _short(metric, value):
    m = metricmod.METRICS.get(metric)
    if value is None or m is None:
        return '?'
    if m.kind == 'fraction':
        return report.pct(value)
    if m.kind == 'ratio':
        return '%.2fx' % value
    if metric == 'still_reachable_blocks':
        return '%s blk' % report.thousands(value)
    if m.kind == 'bytes':
        return '%s B' % report.thousands(value)
    return report.thousands(value)


def entry(r, marks):
    """'PASS 100%', 'FAIL 85% (>= 90%)', 'skip', with a mark [n] when a platform section applied."""
    status = STATUS.get(r.get('status'), str(r.get('status')))
    text = status
    if r.get('status') != 'skip':
        c = key_check(r)
        if c is not None:
            text += ' ' + _short(c['metric'], c.get('value'))
            if not c.get('ok') and c.get('bound') is not None:
                text += ' (%s %s)' % (c['op'], _short(c['metric'], c['bound']))
        elif r.get('status') == 'fail':
            text += ' (run)'
    over = r.get('bounds_override') or []
    if over:
        key = ', '.join(over)
        if key not in marks:
            marks[key] = len(marks) + 1
        text += ' [%d]' % marks[key]
    return text


def platform_line(label, doc):
    p = doc.get('platform') or {}
    distro = p.get('distro_id') or '?'
    if p.get('distro_version'):
        distro += ' ' + p['distro_version']
    results = doc['results']
    judged = [r for r in results if r.get('bounds_from')]
    over = [r for r in judged if r.get('bounds_override')]
    if over:
        bounds = 'platform sections in %d of %d results' % (len(over), len(judged))
    else:
        bounds = 'defaults only'
    s = doc.get('summary') or {}
    thp = p.get('thp') or '?'
    return '%s: glibc %s, %s, thp %s; %s passed, %s failed, %s skipped; bounds: %s' % (
        label, p.get('glibc') or '?', distro, thp, s.get('passed', '?'), s.get('failed', '?'),
        s.get('skipped', '?'), bounds)


def render(loaded):
    """The combined table as lines: rows by case, then in the runner's cell order."""
    rows = OrderedDict()
    for label, doc in loaded:
        for r in doc['results']:
            if r.get('reference'):
                continue
            rows.setdefault((r.get('case'), r.get('cell')), OrderedDict())[label] = r
    marks = OrderedDict()
    labels = [x[0] for x in loaded]
    table = []
    order = list(cellmod.CELLS)

    def sort_key(k):
        case, cell = k
        return (str(case), order.index(cell) if cell in order else len(order), str(cell))
    for case, cell in sorted(rows, key=sort_key):
        per = rows[(case, cell)]
        table.append([case, cell] + [entry(per[l], marks) if l in per else '-' for l in labels])
    heads = [['case', 'cell'] + [column_title(l, d) for l, d in loaded]]
    widths = [max(len(row[i]) for row in heads + table) for i in range(len(heads[0]))]
    lines = []
    for row in heads + table:
        lines.append('  '.join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    lines.append('')
    for label, doc in loaded:
        lines.append(platform_line(label, doc))
    for key, n in marks.items():
        lines.append('[%d] bounds from %s' % (n, key))
    skipped = OrderedDict()
    for label, doc in loaded:
        for r in doc['results']:
            if r.get('status') == 'skip' and not r.get('reference'):
                skipped.setdefault(r.get('reason') or '?', []).append('%s %s %s' % (label, r['case'], r['cell']))
    for reason, where in skipped.items():
        lines.append('skipped (%d): %s' % (len(where), reason))
    return lines


def totals(loaded):
    t = OrderedDict([('passed', 0), ('failed', 0), ('skipped', 0)])
    for _, doc in loaded:
        for r in doc['results']:
            key = {'pass': 'passed', 'fail': 'failed', 'skip': 'skipped'}.get(r.get('status'))
            if key:
                t[key] += 1
    return t


def to_json(loaded):
    doc = OrderedDict()
    doc['platforms'] = OrderedDict((label, d.get('platform')) for label, d in loaded)
    rows = []
    for label, d in loaded:
        for r in d['results']:
            if r.get('reference'):
                continue
            c = key_check(r)
            e = OrderedDict()
            e['platform'] = label
            e['case'] = r.get('case')
            e['cell'] = r.get('cell')
            e['status'] = r.get('status')
            e['metric'] = c['metric'] if c else None
            e['value'] = c.get('value') if c else None
            e['bounds_override'] = r.get('bounds_override') or []
            e['reason'] = r.get('reason')
            rows.append(e)
    doc['results'] = rows
    doc['summary'] = totals(loaded)
    return json.dumps(doc, indent=2) + '\n'
