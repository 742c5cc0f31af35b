"""Reporting: the table, --json FILE and --junit FILE.

RSS figures in the table use decimal units: 1 kB = 10^3 B, 1 MB = 10^6 B, 1 GB = 10^9 B
(the case reports kB = KiB from /proc, converted to bytes first)."""

import errno
import json
import numbers
import os
import stat
import tempfile
import xml.etree.ElementTree as ET
from collections import OrderedDict

from . import metrics as metricmod
from .errors import UsageError

UNITS_NOTE = 'RSS in decimal units: 1 MB = 10^6 bytes.'
TABLE_PHASES = (('baseline', 'baseline'), ('peak', 'peak'), ('after_free', 'after free'),
                ('after_trim', 'after trim'))
IDLE_PHASE = ('after_idle', 'after idle')
MAX_ALIGN = 100


def _output_problem(path):
    """Why path cannot take an output file the user named, or None. It must be a regular file or
    nothing yet, in a directory we may create files in (write_file replaces it by a rename)."""
    if not path:
        return 'an empty file name'
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):
            return e.strerror
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            return 'it is a directory'
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            return 'it is a device, not a file'
        if not stat.S_ISREG(st.st_mode):
            return 'it is not a regular file (a FIFO or a socket)'
        if not os.access(target, os.W_OK):
            return 'permission denied'
    d = os.path.dirname(target)
    if not os.path.isdir(d):
        return ('%s is not a directory' if os.path.exists(d) else 'no such directory %s') % d
    if not os.access(d, os.W_OK | os.X_OK):
        return 'directory %s is not writable' % d
    return None


def check_outputs(named):
    """Before any work: every output file the command line names, as (option, path) pairs, can be
    written (UsageError naming the first that cannot), and no two options name the same file.
    A file is created and removed in each directory, so that what access(2) cannot tell (a
    read-only mount, a sandbox) shows now rather than after the run."""
    seen = {}
    for option, path in named:
        why = _output_problem(path)
        if why is None:
            target = os.path.realpath(path)
            if target in seen:
                raise UsageError('%s and %s name the same file %s' % (seen[target], option, path))
            seen[target] = option
            try:
                fd, probe = tempfile.mkstemp(dir=os.path.dirname(target), prefix='.retention-probe-')
                os.close(fd)
                os.unlink(probe)
            except OSError as e:
                why = e.strerror or str(e)
        if why:
            raise UsageError('cannot write %s (%s): %s' % (path, option, why))


def write_file(path, text):
    """Writes an output file the user named (--json, --junit, --svg, --html): to a temporary file
    beside it, then renamed over it, so that a write that fails (a full disk) leaves the previous
    file as it was, never a truncated one. A path that is no regular file (a device, a FIFO) is
    refused, never renamed over."""
    why = _output_problem(path)
    if why:
        raise UsageError('cannot write %s: %s' % (path, why))
    target = os.path.realpath(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix='.%s.' % os.path.basename(target),
                                   suffix='.tmp')
        with os.fdopen(fd, 'wb') as f:
            _keep_mode(f.fileno(), target)
            f.write(text.encode('utf-8'))
            f.flush()
            # A full disk may show only here (delayed allocation), not at write().
            os.fsync(f.fileno())
        os.rename(tmp, target)
        tmp = None
    except (IOError, OSError) as e:
        raise UsageError('cannot write %s: %s' % (path, e.strerror or e))
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _keep_mode(fd, target):
    """The temporary file gets the mode (and, for root, the owner) the file it replaces had, else
    what open(2) would have created under the umask (mkstemp makes 0600)."""
    try:
        st = os.stat(target)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        return
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except OSError:
            pass


def human_bytes(n):
    if n is None:
        return '-'
    n = float(n)
    if abs(n) < 1000:
        return '%d B' % n
    for unit, scale in (('kB', 1e3), ('MB', 1e6), ('GB', 1e9), ('TB', 1e12)):
        v = n / scale
        if abs(v) < 999.5 or unit == 'TB':
            return ('%.1f %s' % (v, unit)) if abs(v) < 9.95 else ('%.0f %s' % (v, unit))
    return '%d B' % n


def is_number(v):
    """A figure that is a number: int or float, not a bool (JSON true and false are bools) and
    not None (a figure the case did not report)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def human_kb(kb):
    if not is_number(kb) or kb < 0:
        return '-'
    return human_bytes(kb * 1024)


def thousands(n):
    if isinstance(n, float) and not n.is_integer():
        return '{:,.2f}'.format(n)
    return '{:,}'.format(int(n))


def pct(v):
    p = v * 100.0
    if abs(p) < 9.95 and round(p, 1) != round(p):
        return '%.1f%%' % p
    return '%.0f%%' % p


def pct_bound(v):
    return '%s%%' % ('%.6g' % (v * 100.0))


def _fmt_value(kind, v):
    if v is None:
        return '?'
    if kind == 'fraction':
        return pct(v)
    if kind == 'ratio':
        return '%.2fx' % v
    if kind == 'bytes':
        return '%s B' % thousands(v)
    return thousands(v)


def _fmt_bound(kind, c):
    b = c.get('bound')
    expr = c.get('bound_expr')
    if b is None:
        return expr
    if kind == 'fraction':
        text = pct_bound(b)
    elif kind == 'ratio':
        text = '%sx' % ('%.6g' % b)
    elif kind == 'bytes':
        text = '%s B' % thousands(b)
    else:
        text = thousands(b)
    if c.get('bound_expr') and not _is_plain_number(expr):
        return '%s = %s' % (expr, text)
    return text


def _is_plain_number(s):
    try:
        float(s)
        return True
    except (TypeError, ValueError):
        return False


def describe_check(c):
    """'retained 100% (expected >= 90%)'; for an uncomputable check, the reason."""
    if c.get('error'):
        return c['error']
    m = metricmod.METRICS.get(c['metric'])
    kind = m.kind if m else 'count'
    label = m.label if m else c['metric']
    if c.get('na'):
        return '%s not judged: %s' % (label, c['na'])
    return '%s %s (expected %s %s)' % (label, _fmt_value(kind, c.get('value')), c['op'], _fmt_bound(kind, c))


def memcheck_summary(mc):
    d, i, p = mc['definitely_lost_bytes'], mc['indirectly_lost_bytes'], mc['possibly_lost_bytes']
    if d == 0 and i == 0 and p == 0:
        lost = '0 B definitely/indirectly/possibly lost'
    else:
        lost = '%s B definitely, %s B indirectly, %s B possibly lost' % (thousands(d), thousands(i), thousands(p))
    blocks = mc['still_reachable_blocks']
    text = '%s; %s B still reachable in %s block%s' % (
        lost, thousands(mc['still_reachable_bytes']), thousands(blocks), '' if blocks == 1 else 's')
    if mc.get('errors'):
        kinds = ', '.join('%s %d' % kv for kv in mc.get('error_kinds', {}).items())
        text += '; %s errors (%s)' % (thousands(mc['errors']), kinds)
    return text


def _has_figures(r):
    return any(p in r['phases'] for p, _ in TABLE_PHASES + (IDLE_PHASE,))


def verdict(r):
    """The text after the figures: the checks on a pass, the failed checks or the reason on a
    fail, the reason on a skip."""
    status = r['status']
    if status == 'skip':
        return 'skipped: %s' % r['reason']
    mc = r.get('memcheck')
    parts = []
    if mc:
        parts.append(memcheck_summary(mc))
    if status == 'pass':
        if not mc:
            parts.extend(describe_check(c) for c in r['checks'])
        return '; '.join(parts) + override_note(r)
    failed = [c for c in r['checks'] if c['ok'] is False]
    if failed:
        parts.extend(describe_check(c) for c in failed)
    else:
        parts.append(r['reason'])
    return '; '.join(parts) + override_note(r)


def override_note(r):
    """' [bounds: [native glibc<2.33]]' when a platform section replaced a default bound."""
    if r.get('bounds_override'):
        return ' [bounds: %s]' % ', '.join(r['bounds_override'])
    return ''


def bounds_line(results):
    """One line saying which bounds the run used: the defaults only, or which platform
    sections, for how many results."""
    judged = [r for r in results if r.get('bounds_from')]
    over = [r for r in judged if r.get('bounds_override')]
    if not judged:
        return None
    if not over:
        return 'bounds: defaults only (no platform section of expected/ matches this platform)'
    labels = []
    for r in over:
        for label in r['bounds_override']:
            if label not in labels:
                labels.append(label)
    return 'bounds: platform sections %s in %d of %d results, defaults elsewhere' % (
        ', '.join(labels), len(over), len(judged))


def case_summary(results):
    """'=> ...' when a case ran both memcheck and native with figures."""
    native = [r for r in results if r['cell'] == 'native']
    mcheck = [r for r in results if r['cell'] == 'memcheck']
    if not native or not mcheck:
        return None
    retained = native[0]['metrics'].get('retained')
    mc = mcheck[0].get('memcheck')
    if retained is None or not mc:
        return None
    lost = mc['definitely_lost_bytes'] + mc['indirectly_lost_bytes'] + mc['possibly_lost_bytes']
    if lost == 0:
        vg = 'valgrind reports no leak'
    else:
        vg = 'valgrind reports %s B lost' % thousands(lost)
    if retained >= 0.5:
        return '=> %s, yet native RSS after free stays at %s of peak.' % (vg, pct(retained))
    return '=> %s, and native RSS falls back after free (%s of the growth retained).' % (vg, pct(retained))


def render_table(results, verbose=False):
    """The table as a list of lines (without the final summary line)."""
    show_idle = any(IDLE_PHASE[0] in r['phases'] for r in results)
    phases = TABLE_PHASES + ((IDLE_PHASE,) if show_idle else ())
    head = ['case', 'cell'] + [label for _, label in phases] + ['verdict']
    rows = []
    for r in results:
        cell = r['cell'] + (' (ref)' if r.get('reference') else '')
        figs = None
        if r['status'] != 'skip' and _has_figures(r) and r.get('memcheck') is None and \
                r['cell'] != 'memcheck':
            figs = [human_kb(r['phases'].get(p, {}).get('rss_kb')) for p, _ in phases]
        rows.append((r, [r['case'], cell], figs, verdict(r)))
    w_case = max([len(head[0])] + [len(x[1][0]) for x in rows])
    w_cell = max([len(head[1])] + [len(x[1][1]) for x in rows])
    w_fig = []
    for k in range(len(phases)):
        w_fig.append(max([len(head[2 + k])] + [len(x[2][k]) for x in rows if x[2]]))
    fig_span = sum(w + 2 for w in w_fig)

    def body_of(figs, text):
        if figs is None:
            return text
        return ''.join(f.ljust(w + 2) for f, w in zip(figs, w_fig)) + text
    bodies = [body_of(x[2], x[3]) for x in rows]
    w_body = min(MAX_ALIGN, max([fig_span + len('verdict')] + [len(b) for b in bodies]))
    lines = []
    lines.append(('%s  %s  %s' % (head[0].ljust(w_case), head[1].ljust(w_cell),
                                  body_of(head[2:2 + len(phases)], 'verdict'))).rstrip())
    prev_case = None
    for (r, names, figs, text), body in zip(rows, bodies):
        if prev_case is not None and r['case'] != prev_case:
            s = case_summary([x for x in results if x['case'] == prev_case])
            if s:
                lines.append(s)
        prev_case = r['case']
        lines.append('%s  %s  %s  %s' % (names[0].ljust(w_case), names[1].ljust(w_cell), body.ljust(w_body),
                                         r['status'].upper()))
        if verbose:
            why = None
            for c in r['checks']:
                lines.append('    %-5s %s %s %s  [%s]' % (check_mark(c), c['metric'], c['op'],
                                                        c['bound_expr'], c['where']))
                if c['why'] != why:
                    lines.append('          why: %s' % c['why'])
                    why = c['why']
    if prev_case is not None:
        s = case_summary([x for x in results if x['case'] == prev_case])
        if s:
            lines.append(s)
    return lines


def check_mark(c):
    """'ok', 'FAIL', or 'n/a' for a bound this system cannot judge (metrics.check's 'na')."""
    if c.get('na'):
        return 'n/a'
    return 'ok' if c['ok'] else 'FAIL'


def summary_line(summary, interrupted=None):
    line = '%d passed, %d failed' % (summary['passed'], summary['failed'])
    if summary['skipped']:
        line += ', %d skipped' % summary['skipped']
    if interrupted:
        line += '; interrupted by %s: %d cut short, %d not run' % (
            interrupted['signal'], 1 if interrupted['running'] else 0, len(interrupted['not_run']))
    return line


def interrupted_line(interrupted):
    """The line before the summary of an interrupted run: what was running, what never ran."""
    run = interrupted['running']
    line = 'interrupted by %s' % interrupted['signal']
    line += ' while %s %s ran (killed, with its process group)' % (run['case'], run['cell']) if run else \
        ' between cells'
    by_case = OrderedDict()
    for x in interrupted['not_run']:
        by_case.setdefault(x['case'], []).append(x['cell'])
    if by_case:
        line += '; not run: %s' % ', '.join('%s (%s)' % (case, ' '.join(cells)) for case, cells in by_case.items())
    return line


PUBLIC_KEYS = ('case', 'cell', 'status', 'reason', 'duration_s', 'reference', 'command', 'env',
               'exit_status', 'signal', 'timed_out', 'bounds_from', 'bounds_override', 'thp_disabled',
               'phases', 'samples', 'metrics', 'metric_errors', 'checks', 'memcheck', 'stderr_tail')


def to_json(platform, results, summary, interrupted=None):
    """The --json document. An interrupted run adds 'interrupted': the signal, the exit status,
    the cell that was cut short ('running', or null) and the cells never started ('not_run');
    'results' then holds the cells that finished."""
    doc = OrderedDict()
    doc['platform'] = platform
    doc['results'] = [OrderedDict((k, r.get(k)) for k in PUBLIC_KEYS) for r in results]
    doc['summary'] = summary
    if interrupted:
        doc['interrupted'] = interrupted
    return json.dumps(doc, indent=2) + '\n'


def to_junit(platform, results, summary, interrupted=None):
    """JUnit XML. An interrupted run has a property 'interrupted' (the signal), the cell cut short
    as an <error> and each cell never started as <skipped>."""
    total_time = sum(r['duration_s'] for r in results)
    cut = [interrupted['running']] if interrupted and interrupted['running'] else []
    not_run = interrupted['not_run'] if interrupted else []
    counts = {
        'name': 'retention', 'tests': str(len(results) + len(cut) + len(not_run)),
        'failures': str(summary['failed']), 'errors': str(len(cut)),
        'skipped': str(summary['skipped'] + len(not_run)), 'time': '%.3f' % total_time}
    suites = ET.Element('testsuites', counts)
    suite = ET.SubElement(suites, 'testsuite', counts)
    props = ET.SubElement(suite, 'properties')
    for k in ('key', 'glibc', 'distro_id', 'distro_version', 'thp', 'page_size', 'arch'):
        ET.SubElement(props, 'property', {'name': k, 'value': str(platform.get(k))})
    if interrupted:
        ET.SubElement(props, 'property', {'name': 'interrupted', 'value': interrupted['signal']})
    for r in results:
        tc = ET.SubElement(suite, 'testcase', {
            'classname': r['case'], 'name': r['cell'], 'time': '%.3f' % r['duration_s']})
        if r['status'] == 'fail':
            f = ET.SubElement(tc, 'failure', {'message': r['reason'], 'type': 'retention'})
            detail = [r['reason']]
            for c in r['checks']:
                detail.append('%s %s %s: %s [%s] %s' % ('FAILED' if c['ok'] is False else check_mark(c), c['metric'],
                                                         c['op'] + ' ' + c['bound_expr'], describe_check(c),
                                                         c['where'], c['why']))
            if r.get('stderr_tail'):
                detail.append('stderr (last lines):\n' + r['stderr_tail'])
            f.text = '\n'.join(detail)
        elif r['status'] == 'skip':
            ET.SubElement(tc, 'skipped', {'message': r['reason']})
        out = ET.SubElement(tc, 'system-out')
        out.text = verdict(r) + '\n' + ' '.join(
            '%s=%s' % (p, v.get('rss_kb')) for p, v in r['phases'].items()) + '\n'
    for x in cut:
        tc = ET.SubElement(suite, 'testcase', {'classname': x['case'], 'name': x['cell'], 'time': '0.000'})
        ET.SubElement(tc, 'error', {'message': 'interrupted by %s while it ran; killed with its process group'
                                               % interrupted['signal'], 'type': 'interrupted'})
    for x in not_run:
        tc = ET.SubElement(suite, 'testcase', {'classname': x['case'], 'name': x['cell'], 'time': '0.000'})
        ET.SubElement(tc, 'skipped', {'message': 'not run: the run was interrupted by %s'
                                                 % interrupted['signal']})
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding='unicode') + '\n'
