"""`explain --watch SECONDS`: the process sampled over time, to tell a leak (live bytes growing)
from a plateau or churn (live bytes level, free memory kept), which one snapshot cannot: a
program that allocates and frees steadily looks like "live growth" at one instant and like
"allocator retention" at the next.

Cheap samples (RSS from /proc/PID/statm) every SAMPLE_S; a full reading (the heap walk, a stop
of a fraction of a second) every READING_S. The trend is a least-squares line through the live
bytes of the readings."""

import os
import time
from collections import OrderedDict

from ..errors import ExplainError, ProcessGone
from .session import Explainer, Snapshot
from .target import read_proc, state_of
from .gdb import DEFAULT_TIMEOUT_S
from ..report import human_bytes, pct
from .verdict import VERDICT_LIVE, VERDICT_STEADY, base_bytes

MIN_WATCH_S = 5
MAX_WATCH_S = 3600
SAMPLE_S = 0.5
READING_S = 5.0
# A trend needs this many full readings: on a loaded machine, where a reading takes longer than
# planned, the watch runs on past SECONDS until it has them (up to OVERRUN x SECONDS + 60 s).
MIN_READINGS = 3
OVERRUN = 3
# A leak: live bytes grow along a line (R^2 >= LEAK_FIT) by at least LEAK_MIN_GROWTH over the
# window and by at least LEAK_SHARE of the live bytes; a churning program's live bytes wander by
# a few percent around their level and fit no line.
LEAK_MIN_GROWTH = 4 << 20
LEAK_SHARE = 0.1
LEAK_FIT = 0.6
# Churn rather than a plateau: the process ran (CPU time) at least this share of the wall time, or
# its live bytes moved by this share.
BUSY_SHARE = 0.01
MOVED_SHARE = 0.005

VERDICT_LEAK = 'leak (live bytes growing)'
VERDICT_SHRINK = 'shrinking (live bytes falling)'
VERDICT_CHURN = 'churn (live bytes level, memory reused)'
VERDICT_PLATEAU = 'plateau (level and idle)'


def fit(points):
    """(slope per second, R^2) of the least-squares line through [(t, y)]."""
    n = len(points)
    if n < 2:
        return 0.0, 0.0
    mt = sum(t for t, _ in points) / float(n)
    my = sum(y for _, y in points) / float(n)
    stt = sum((t - mt) ** 2 for t, _ in points)
    syy = sum((y - my) ** 2 for _, y in points)
    sty = sum((t - mt) * (y - my) for t, y in points)
    if stt == 0:
        return 0.0, 0.0
    slope = sty / stt
    r2 = (sty * sty) / (stt * syy) if syy else 0.0
    return slope, r2


def judge_watch(readings, seconds, cpu_s):
    """(verdict, why, slope) from [{'t', 'live_bytes', ...}] and the CPU seconds the process used."""
    pts = [(r['t'], r['live_bytes']) for r in readings if r.get('live_bytes') is not None]
    what = 'live bytes'
    if len(pts) < 3:
        pts = [(r['t'], r['rss_bytes']) for r in readings if r.get('rss_bytes') is not None]
        what = 'RSS (the allocator tells no live bytes)'
    if len(pts) < 3:
        raise ExplainError('too few readings to tell a trend (%d)' % len(pts))
    slope, r2 = fit(pts)
    span = pts[-1][0] - pts[0][0]
    ys = sorted(y for _, y in pts)
    median = ys[len(ys) // 2]
    growth = slope * span
    need = max(LEAK_MIN_GROWTH, LEAK_SHARE * median)
    moved = ys[-1] - ys[0]
    rate = '%s/s' % human_bytes(abs(slope))
    if growth >= need and r2 >= LEAK_FIT:
        return VERDICT_LEAK, ('%s grew by %s in %.0f s (%s, along a line: R^2 %.2f): a leak or an unbounded cache; '
                              'find the allocation sites with heaptrack or valgrind --tool=massif'
                              % (what, human_bytes(growth), span, rate, r2)), slope
    if -growth >= need and r2 >= LEAK_FIT:
        return VERDICT_SHRINK, '%s fell by %s in %.0f s (%s)' % (what, human_bytes(-growth), span, rate), slope
    busy = cpu_s is not None and cpu_s >= BUSY_SHARE * seconds
    if busy or moved >= MOVED_SHARE * median:
        did = 'ran %.1f s of CPU' % cpu_s if busy else 'allocated and freed'
        return VERDICT_CHURN, ('%s stayed level at about %s (within %s, no trend: %s, R^2 %.2f) while the process %s: '
                               'it frees what it allocates; RSS that stays up is memory the allocator keeps for '
                               'reuse, not a leak' % (what, human_bytes(median), human_bytes(moved), rate, r2,
                                                      did)), slope
    return VERDICT_PLATEAU, ('%s stayed at %s and the process was idle: nothing grows; what the verdict above says '
                             'about retention holds' % (what, human_bytes(median))), slope


def _statm_rss(pid, page):
    try:
        parts = read_proc(pid, 'statm').split()
        return int(parts[1]) * page
    except (ExplainError, IndexError, ValueError):
        return None


def _cpu_s(pid):
    try:
        text = read_proc(pid, 'stat')
        rest = text[text.rfind(')') + 2:].split()
        return (int(rest[11]) + int(rest[12])) / float(os.sysconf('SC_CLK_TCK'))
    except (ExplainError, IndexError, ValueError):
        return None


def watch(pid, seconds, gdb=None, timeout=DEFAULT_TIMEOUT_S, environ=None, log=None, reading_s=None):
    """The last reading's document, with 'watch': the series and the trend's verdict."""
    snap = Snapshot(pid)
    pid = snap.pid
    page = snap.page
    every = reading_s or min(READING_S, seconds / 4.0)
    samples, readings = [], []
    errors = []
    doc = None
    cpu0 = _cpu_s(pid)
    t0 = time.monotonic()
    next_reading = t0
    with Explainer(snap, gdb, timeout, environ, log) as ex:
        while True:
            now = time.monotonic()
            if state_of(pid) in (None, 'Z', 'X'):
                raise ProcessGone('process %d exited during the watch' % pid)
            if now >= next_reading:
                try:
                    d = ex.reading()
                    doc = d
                    r = OrderedDict()
                    r['t'] = round(time.monotonic() - t0, 2)
                    r['rss_bytes'] = d.get('rss_bytes')
                    r['live_bytes'] = d.get('live_bytes')
                    r['free_resident_bytes'] = d.get('free_resident_bytes')
                    r['verdict'] = d.get('verdict')
                    readings.append(r)
                except ProcessGone:
                    raise
                except ExplainError as e:
                    errors.append('t=%.1f s: %s' % (now - t0, e))
                next_reading += every
                if log is not None:
                    log('watch: %d readings, %.0f of %g s' % (len(readings), now - t0, seconds))
            rss = _statm_rss(pid, page)
            samples.append(OrderedDict([('t', round(time.monotonic() - t0, 2)), ('rss_bytes', rss)]))
            elapsed = time.monotonic() - t0
            if elapsed >= seconds and (len(readings) >= MIN_READINGS or elapsed >= OVERRUN * seconds + 60):
                break
            if elapsed >= seconds:
                next_reading = min(next_reading, time.monotonic())
            time.sleep(max(0.0, min(SAMPLE_S, next_reading - time.monotonic(), t0 + seconds - time.monotonic())))
    if doc is None:
        raise ExplainError('no reading of process %d succeeded during the watch: %s'
                           % (pid, errors[-1] if errors else '?'))
    cpu1 = _cpu_s(pid)
    cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    verdict, why, slope = judge_watch(readings, seconds, cpu)
    w = OrderedDict()
    w['seconds'] = round(time.monotonic() - t0, 1)
    w['verdict'] = verdict
    w['why'] = why
    w['live_slope_bytes_per_s'] = int(slope)
    w['cpu_seconds'] = round(cpu, 2) if cpu is not None else None
    w['readings'] = readings
    w['samples'] = samples
    w['errors'] = errors
    doc['watch'] = w
    # One snapshot of a program that holds much live data says "live growth / possible leak"; the
    # watch tells which.
    if doc.get('verdict') == VERDICT_LIVE and verdict in (VERDICT_CHURN, VERDICT_PLATEAU):
        doc['snapshot_verdict'] = doc['verdict']
        doc['verdict'] = VERDICT_STEADY
        doc['why'] = ('%s (%s of the anonymous RSS) is allocations in use, and it stayed level for %.0f s: not a '
                      'leak, and not allocator retention either' % (
                          human_bytes(doc['live_bytes']), pct(float(doc['live_bytes']) / base_bytes(doc)),
                          w['seconds']))
        doc['fixes'] = []
    elif verdict == VERDICT_LEAK:
        doc['snapshot_verdict'] = doc['verdict']
        doc['verdict'] = VERDICT_LIVE
        doc['why'] = why
        doc['fixes'] = []
    return doc
