"""Metrics computed from the phases a case reports (and memcheck's figures), and checks of
metrics against bounds.

  retained        (after_free.rss - baseline.rss) / (peak.rss - baseline.rss)
  floor_ratio     after_trim.rss / (baseline.rss + after_trim.floor_kb)
  free_over_floor after_free.rss / (baseline.rss + after_free.floor_kb): how many times the pages
                  its live data needs a process keeps after the free
  trim_retained   (after_trim.rss - baseline.rss) / (peak.rss - baseline.rss): for cases whose
                  floor is too small for a ratio to it to be stable
  settled_retained (after_idle.rss - baseline.rss) / (peak.rss - baseline.rss): what an allocator
                  cell still keeps after its settle time
  shim_over_trim  (trim after_trim.rss + shim cell's growth from its baseline to after_idle - trim
                  cell's growth from its baseline to after_trim) / trim after_trim.rss (same run);
                  growth in anonymous kB where the probe reads it (smaps_rollup), in RSS otherwise
                  (reported, but a bound on it is then not judged: 'na')
  memcheck        definitely/indirectly/possibly_lost_{bytes,blocks}, still_reachable_{bytes,blocks},
                  errors (non-leak errors)

The names, the operators and the figures a bound may use come from vocab, as the expected-file
parser's do."""

import numbers
from collections import OrderedDict

from .vocab import FIGURE_PHASE, MEMCHECK_METRICS, METRIC_NAMES, OPS


class NotComputable(Exception):
    pass


def _is_real_number(v):
    """A figure as the case reports it: an int or a float, not a bool (JSON true is no number)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def phase(result, name):
    p = result.get('phases', {}).get(name)
    if p is None:
        raise NotComputable("no '%s' phase reported" % name)
    return p


def rss_kb(result, name):
    v = phase(result, name).get('rss_kb')
    if not _is_real_number(v) or v < 0:
        raise NotComputable("phase '%s' reports no rss_kb (got %r)" % (name, v))
    return v


def _over_floor(phase_name):
    def compute(result, refs):
        b = rss_kb(result, 'baseline')
        t = rss_kb(result, phase_name)
        floor = phase(result, phase_name).get('floor_kb')
        if not _is_real_number(floor) or floor < 0:
            raise NotComputable("phase '%s' reports no floor_kb (got %r)" % (phase_name, floor))
        if b + floor <= 0:
            raise NotComputable('baseline + floor is 0 kB')
        return float(t) / float(b + floor)
    return compute


def _share_of_growth(phase_name):
    def compute(result, refs):
        b = rss_kb(result, 'baseline')
        p = rss_kb(result, 'peak')
        t = rss_kb(result, phase_name)
        if p <= b:
            raise NotComputable('peak RSS (%d kB) is not above baseline RSS (%d kB): the case allocated '
                                'nothing measurable' % (p, b))
        return float(t - b) / float(p - b)
    return compute


def reference(refs, name):
    ref = refs.get(name)
    if ref is None:
        raise NotComputable("reference cell '%s' did not run" % name)
    if ref.get('status') == 'skip':
        raise NotComputable("reference cell '%s' was skipped: %s" % (name, ref.get('reason')))
    if not ref.get('run_ok'):
        raise NotComputable("reference cell '%s' failed: %s" % (name, ref.get('reason')))
    return ref


def anon_kb(result, name):
    """Anonymous resident kB of a phase, or None where the probe could not read it (statm only)"""
    v = phase(result, name).get('anon_kb')
    return v if _is_real_number(v) and v >= 0 else None


def _shim_over_trim(result, refs):
    # Judged on what each process grew since its own baseline, so the preloaded library and its
    # thread (~150 kB before the case starts; 9% of array_control's 1.6 MB after trim) do not
    # count. Growth is read from anonymous memory where the probe has it: a heap keeps anonymous
    # pages, while the file-backed part of RSS (library pages faulted in around an access) was
    # seen to differ by 50-200 kB between two runs of the same program, 10% of a small case.
    ref = reference(refs, 'trim')
    try:
        theirs = rss_kb(ref, 'after_trim')
        their_anon = (anon_kb(ref, 'after_trim'), anon_kb(ref, 'baseline'))
        their_rss_base = rss_kb(ref, 'baseline')
    except NotComputable as e:
        raise NotComputable("reference cell 'trim': %s" % e)
    if theirs <= 0:
        raise NotComputable("reference cell 'trim' reports after_trim rss_kb %r" % theirs)
    mine_anon = (anon_kb(result, 'after_idle'), anon_kb(result, 'baseline'))
    if None not in mine_anon + their_anon:
        mine_growth, their_growth = mine_anon[0] - mine_anon[1], their_anon[0] - their_anon[1]
    else:
        mine_growth = rss_kb(result, 'after_idle') - rss_kb(result, 'baseline')
        their_growth = theirs - their_rss_base
    return float(theirs + mine_growth - their_growth) / float(theirs)


def _shim_needs_anon(result, refs):
    """Why a bound on shim_over_trim cannot be judged here, or None. The bound (5%) is set on
    anonymous growth; where the probe could read only statm (no smaps_rollup: a kernel before
    4.14, a sandbox that hides it), the RSS growth the metric falls back on carries 50-200 kB of
    file pages that differ between two runs, more than 5% of a small case, in either direction."""
    missing = []
    for who, r, names in (('shim', result, ('baseline', 'after_idle')),
                          ('trim', refs.get('trim'), ('baseline', 'after_trim'))):
        if r is None:
            continue
        for name in names:
            p = r.get('phases', {}).get(name)
            if p is not None and anon_kb(r, name) is None:
                missing.append('%s %s%s' % (who, name, ' (rss_source %s)' % p['rss_source']
                                            if isinstance(p.get('rss_source'), str) else ''))
    if not missing:
        return None
    return ('needs anonymous kB from /proc/self/smaps_rollup, not reported for %s; growth in RSS counts '
            'file pages that differ between runs by more than this bound allows' % ', '.join(missing))


def _memcheck(key):
    def compute(result, refs):
        mc = result.get('memcheck')
        if not mc:
            raise NotComputable('no memcheck figures (valgrind XML not read)')
        if key not in mc:
            raise NotComputable("valgrind's figures have no '%s'" % key)
        return mc[key]
    return compute


class Metric(object):
    def __init__(self, name, kind, label, compute, judgeable=None):
        self.name = name
        self.kind = kind      # fraction | ratio | bytes | count
        self.label = label
        self.compute = compute
        # (result, refs) -> why a bound on it cannot be judged on this system, or None: the value
        # is still computed and reported, the bound is not applied ('na').
        self.judgeable = judgeable


_DEFINED = [
    Metric('retained', 'fraction', 'retained', _share_of_growth('after_free')),
    Metric('floor_ratio', 'ratio', 'floor', _over_floor('after_trim')),
    Metric('free_over_floor', 'ratio', 'free/floor', _over_floor('after_free')),
    Metric('trim_retained', 'fraction', 'kept after trim', _share_of_growth('after_trim')),
    Metric('settled_retained', 'fraction', 'kept after idle', _share_of_growth('after_idle')),
    Metric('shim_over_trim', 'ratio', 'shim/trim', _shim_over_trim, judgeable=_shim_needs_anon),
] + [
    Metric(k, 'bytes' if k.endswith('_bytes') else 'count', k.replace('_', ' '), _memcheck(k))
    for k in MEMCHECK_METRICS
]
_BY_NAME = dict((m.name, m) for m in _DEFINED)
# Keyed and ordered by vocab.METRIC_NAMES, the names an expected file may use: a name without a
# definition here fails at import (KeyError), not when a bound first names it.
METRICS = OrderedDict((name, _BY_NAME[name]) for name in METRIC_NAMES)


def compute_all(cell, result, refs):
    """Every metric the cell computes: (values, errors), both OrderedDicts keyed by metric."""
    values = OrderedDict()
    errors = OrderedDict()
    for name in cell.metrics:
        try:
            values[name] = METRICS[name].compute(result, refs)
        except NotComputable as e:
            values[name] = None
            errors[name] = str(e)
    return values, errors


def figure(result, name):
    """A figure the case reported (live_objects, live_bytes, floor_kb), from after_free."""
    p = phase(result, FIGURE_PHASE)
    v = p.get(name)
    if not _is_real_number(v) or v < 0:
        raise NotComputable("figure '%s' not reported in phase '%s' (got %r)" % (name, FIGURE_PHASE, v))
    return v


def resolve_bound(bound, result):
    if bound.figure is None:
        return bound.number
    v = figure(result, bound.figure) * bound.factor
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v


def check(bound, cell, result, values, errors, refs=None):
    """One bound against the cell's metrics: 'ok' True or False, or None with 'na' (why) when the
    metric is computed but this system lacks what the bound is set on (Metric.judgeable; asked
    when refs, the run's reference cells, are given)."""
    c = OrderedDict()
    c['metric'] = bound.metric
    c['op'] = bound.op
    c['bound'] = None
    c['bound_expr'] = bound.expr
    c['value'] = values.get(bound.metric)
    c['ok'] = False
    c['why'] = bound.why
    c['where'] = bound.location
    c['section'] = bound.section.label()
    if bound.metric not in cell.metrics:
        c['error'] = "metric '%s' is not computed in cell '%s' (it computes: %s)" % (
            bound.metric, cell.name, ', '.join(cell.metrics))
        return c
    if bound.metric in errors:
        c['error'] = '%s: %s' % (bound.metric, errors[bound.metric])
        return c
    try:
        c['bound'] = resolve_bound(bound, result)
    except NotComputable as e:
        c['error'] = 'bound %s: %s' % (bound.text(), e)
        return c
    m = METRICS.get(bound.metric)
    why = m.judgeable(result, refs) if m is not None and m.judgeable and refs is not None else None
    if why:
        c['ok'] = None
        c['na'] = why
        return c
    c['ok'] = bool(OPS[bound.op](c['value'], c['bound']))
    return c
