"""Running an unmodified program under the watch probe (rssprobe/watchprobe.c), one cell at a time,
and what its samples say: peak, end and mean RSS, the free memory the allocator keeps, the
allocator that actually ran, the time it took.

One run: the program in a fresh session (its own process group), the scrubbed environment plus
the cell's, the probe preloaded after the cell's own library, its samples appended to a file in
a temporary directory. The runner reaps the program itself (os.wait4: its CPU time too), ends it
at --for (SIGTERM, SIGKILL after TERM_GRACE_S) once a sample taken after the deadline is in, kills
whatever is left of the group, and reads the maps of the live process to see which allocator
libraries are really loaded. A static binary gets no probe: it is sampled from outside (RSS only).

The samples are JSON lines of the probe (keys in watchprobe.c); this module turns them into
figures with no process started (summarize), so tests can feed it any sample list."""

import errno
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import OrderedDict

from . import elf, execute, paths, scrubenv
from .cells import steps_env
from .explain.procfs import parse_maps, parse_status
from .explain.verdict import KNOWN_ALLOCATORS

DEFAULT_INTERVAL_MS = 100
TERM_GRACE_S = 5.0
# How long the runner waits for the probe's first line before it samples from outside (a setuid
# program drops LD_PRELOAD; a program may clear its environment and exec itself).
PROBE_START_S = 1.0
POLL_S = 0.02
MAPS_EVERY_S = 0.5
# A sample window in which the program used less than this share of one core is quiet: the
# probe's and the shim's figure.
QUIET_SHARE = 0.10
SAMPLE_EVENTS = ('s', 'trimmed', 'exit', 'outside')


class RunOptions(object):
    def __init__(self, interval_ms=DEFAULT_INTERVAL_MS, for_s=None, timeout_s=600.0, settle_s=None,
                 cwd=None, thp_disable=False):
        self.interval_ms = interval_ms
        self.for_s = for_s
        self.timeout_s = timeout_s
        self.settle_s = settle_s
        self.cwd = cwd
        self.thp_disable = thp_disable


class SampleFile(object):
    """The probe's output file, read as it grows: complete lines only."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b''
        self.records = []
        self.malformed = 0  # complete lines of the probe's that were not a well-formed record

    def poll(self):
        try:
            with open(self.path, 'rb') as f:
                f.seek(self.offset)
                data = f.read()
        except (IOError, OSError):
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b'\n')
        self.partial = lines.pop()
        new = []
        for line in lines:
            try:
                obj = json.loads(line.decode('utf-8', 'replace'), object_pairs_hook=OrderedDict)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict) and obj.get('watch') == 1:
                if well_formed(obj):
                    new.append(obj)
                else:
                    self.malformed += 1
        self.records.extend(new)
        return new


# The probe's numeric keys (watchprobe.c); a record whose values have other types is not the
# probe's (a corrupt file) and is left out, counted in SampleFile.malformed: the figures are made
# of numbers, never of a default standing in for a bad one.
_NUMERIC_KEYS = ('pid', 't_us', 'rss_kb', 'anon_kb', 'cpu_us', 'probe_cpu_us')


def _is_number(v):
    # the probe writes 64-bit integers: anything wider is not its (and overflows a float)
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) < 2 ** 63


def well_formed(rec):
    """A probe record the figures can be made of: 'ev' a string, the numeric keys numbers, a
    sample event with its time, 'heap' an object of numbers."""
    if not isinstance(rec.get('ev'), str):
        return False
    if any(k in rec and rec[k] is not None and not _is_number(rec[k]) for k in _NUMERIC_KEYS):
        return False
    if rec['ev'] in SAMPLE_EVENTS and not _is_number(rec.get('t_us')):
        return False
    heap = rec.get('heap')
    if heap is not None and not (isinstance(heap, dict) and all(_is_number(v) for v in heap.values())):
        return False
    return all(not isinstance(rec.get(k), (dict, list)) for k in ('allocator', 'malloc_from'))


def resolve_command(name, search_path):
    """The executable a command name means (a path, or a name looked up in search_path), or
    (None, why) with the reason in one line."""
    if os.sep in name:
        path = os.path.abspath(name)
        if not os.path.exists(path):
            return None, 'no such file: %s' % name
    else:
        path = shutil.which(name, path=search_path)
        if path is None:
            # which() skips what is not executable; say which it is.
            for d in search_path.split(os.pathsep):
                p = os.path.join(d or '.', name)
                if os.path.isfile(p):
                    return None, 'not executable: %s' % p
            return None, 'command not found: %s (not in PATH)' % name
        path = os.path.abspath(path)
    if os.path.isdir(path):
        return None, 'is a directory: %s' % name
    if not os.access(path, os.X_OK):
        return None, 'not executable: %s' % path
    return path, None


def is_static(path):
    """True for an ELF executable without a dynamic loader (nothing can be preloaded into it)."""
    return elf.has_interp(path) is False


def allocators_in_maps(text):
    """(allocator libraries mapped: [(name, path)], libc mapped: bool) from /proc/PID/maps text."""
    found = OrderedDict()
    libc = False
    for m in parse_maps(text):
        base = os.path.basename(m.path or '').lower()
        if not base or m.path.startswith('['):
            continue
        if base.startswith('libc.so') or base.startswith('libc-2.'):
            libc = True
        for name in KNOWN_ALLOCATORS:
            if base.startswith('lib' + name) and name not in found:
                found[name] = m.path
    return list(found.items()), libc


def _read_proc(pid, name):
    try:
        with open('/proc/%d/%s' % (pid, name), 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return None


def outside_sample(pid, t0):
    """One sample read from outside (/proc/PID/status), for a program with no probe in it."""
    text = _read_proc(pid, 'status')
    if text is None:
        return None
    st = parse_status(text)

    def kb(key):
        v = st.get(key, '').split()
        # ASCII digits only: str.isdigit() also takes '²', which int() refuses
        return int(v[0]) if v and len(v[0]) <= 20 and not v[0].strip('0123456789') else -1
    if kb('VmRSS') < 0:
        return None
    return OrderedDict([('watch', 1), ('ev', 'outside'), ('pid', pid),
                        ('t_us', int(time.monotonic() * 1e6)), ('rss_kb', kb('VmRSS')),
                        ('anon_kb', kb('RssAnon'))])


def _status_of(st):
    if os.WIFSIGNALED(st):
        return -os.WTERMSIG(st)
    if os.WIFEXITED(st):
        return os.WEXITSTATUS(st)
    return None


def new_run(cell):
    r = OrderedDict()
    r['cell'] = cell.name
    r['status'] = 'fail'
    r['reason'] = ''
    r['command'] = None
    r['env'] = OrderedDict()
    r['exit_status'] = None
    r['signal'] = None
    r['ended_by'] = None
    r['wall_s'] = None
    r['cpu_s'] = None
    r['static'] = False
    r['probe'] = None
    r['maps'] = None
    r['records'] = []
    r['stderr_tail'] = ''
    return r


def cell_env(ctx, cell, program, samples_path, opts, case=None):
    """(the environment the cell adds, None) or (None, why the cell cannot run)."""
    added = OrderedDict()
    preloads = []
    if cell.preload is not None:
        lib, why = cell.preload(ctx)
        if lib is None:
            return None, why
        preloads.append(lib)
    # The probe goes first: it finds the malloc that serves the program as the next definition
    # after itself (watchprobe.c, malloc_definition).
    if is_static(program):
        if preloads or cell.base != 'native':
            return None, ('%s is a static binary: nothing can be preloaded into it, so only native runs'
                          % os.path.basename(program))
    else:
        probe = paths.watch_probe(ctx.build_dir)
        if not os.path.isfile(probe):
            return None, 'watch probe not built: %s (%s)' % (probe, paths.how_to_get_programs(ctx.build_dir))
        added['LD_PRELOAD'] = ':'.join([probe] + preloads)
        added['RETENTION_WATCH_OUT'] = samples_path
        added['RETENTION_WATCH_PPID'] = '%d' % os.getpid()
        added['RETENTION_WATCH_INTERVAL_MS'] = '%d' % opts.interval_ms
        added.update(steps_env(cell, case or _Settle(opts.settle_s), 'watch'))
    added.update(cell.env)
    return added, None


class _Settle(object):
    """What a cell's --idle flag reads from a case: the settle time."""

    def __init__(self, idle):
        self.idle = int(idle or 0)


def run_cell(ctx, argv, cell, opts, case_env=None, log=None):
    """Runs argv once in cell under the probe; returns the run (new_run's keys). Never leaves a
    process of its group running, Ctrl-C included."""
    r = new_run(cell)
    program = argv[0]
    tmpdir = tempfile.mkdtemp(prefix='retention-watch-')
    try:
        samples_path = os.path.join(tmpdir, 'samples')
        with open(samples_path, 'w'):
            pass  # the probe appends and never creates: a stray variable in a child writes nowhere
        added, why = cell_env(ctx, cell, program, samples_path, opts)
        if added is None:
            r['status'] = 'skip'
            r['reason'] = why
            return r
        r['static'] = is_static(program)
        if case_env:
            added.update(case_env)
        env = scrubenv.scrubbed_env(ctx.environ)
        env.update(added)
        r['command'] = list(argv)
        r['env'] = OrderedDict((k, v) for k, v in added.items() if not k.startswith('RETENTION_WATCH_'))
        if log:
            log('[%s] $ %s%s' % (cell.name, ''.join('%s=%s ' % kv for kv in added.items()), ' '.join(argv)))
        _run(r, argv, env, tmpdir, samples_path, opts)
        return r
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _run(r, argv, env, tmpdir, samples_path, opts):
    samples = SampleFile(samples_path)
    outside = []
    preexec = None
    if opts.thp_disable:
        execute._get_prctl()
        preexec = execute._disable_thp
    out_path, err_path = os.path.join(tmpdir, 'stdout'), os.path.join(tmpdir, 'stderr')
    interval = opts.interval_ms / 1000.0
    with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(argv, env=dict(env), cwd=opts.cwd or os.getcwd(), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, close_fds=True, start_new_session=True,
                                    preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError) as e:
            r['reason'] = 'cannot start %s: %s' % (argv[0], getattr(e, 'strerror', None) or e)
            return
        pid = proc.pid
        status = rusage = None
        deadline = t0 + opts.for_s if opts.for_s else None
        hard = t0 + opts.timeout_s if opts.timeout_s else None
        next_maps = t0 + min(interval, MAPS_EVERY_S)
        next_outside = t0
        term_at = None
        probed = False
        try:
            while True:
                try:
                    wpid, st, ru = os.wait4(pid, os.WNOHANG)
                except ChildProcessError:
                    wpid, st, ru = pid, 0, None
                if wpid == pid:
                    status, rusage = st, ru
                    proc.returncode = _status_of(st)
                    break
                now = time.monotonic()
                new = samples.poll()
                probed = probed or any(x.get('ev') == 'start' for x in new)
                if not probed and (r['static'] or now - t0 >= PROBE_START_S) and now >= next_outside:
                    s = outside_sample(pid, t0)
                    if s:
                        outside.append(s)
                    next_outside = now + interval
                if now >= next_maps:
                    text = _read_proc(pid, 'maps')
                    if text:
                        r['maps'] = text
                    next_maps = now + MAPS_EVERY_S
                if term_at is None and deadline is not None and now >= deadline:
                    # The end sample is the first one taken after the deadline, while the program
                    # is alive; then SIGTERM.
                    after = [x for x in new + samples.records[-3:] if x.get('t_us', 0) >= deadline * 1e6]
                    if after or now >= deadline + 3 * interval + 0.5 or not probed:
                        if not probed:
                            s = outside_sample(pid, t0)
                            if s:
                                outside.append(s)
                        r['ended_by'] = 'for'
                        execute.signal_process(pid, signal.SIGTERM, group=True)
                        term_at = now
                if term_at is not None and now >= term_at + TERM_GRACE_S:
                    execute.signal_process(pid, signal.SIGKILL, group=True)
                if term_at is None and hard is not None and now >= hard:
                    r['ended_by'] = 'timeout'
                    execute.signal_process(pid, signal.SIGKILL, group=True)
                    term_at = now - TERM_GRACE_S
                time.sleep(POLL_S)
        finally:
            execute.signal_process(pid, signal.SIGKILL, group=True)
            if proc.returncode is None:
                try:
                    os.waitpid(pid, 0)
                except OSError as e:
                    if e.errno != errno.ECHILD:
                        raise
                proc.returncode = -signal.SIGKILL
        r['wall_s'] = round(time.monotonic() - t0, 4)
    samples.poll()
    r['records'] = samples.records + outside
    r['records'].sort(key=lambda x: x.get('t_us', 0))
    r['t0_us'] = int(t0 * 1e6)
    if rusage is not None:
        r['cpu_s'] = round(rusage.ru_utime + rusage.ru_stime, 4)
    code = proc.returncode
    r['exit_status'] = code
    if r['ended_by'] is None:
        r['ended_by'] = 'exit'
    if code is not None and code < 0:
        r['signal'] = execute.signal_name(-code)
    stderr = execute.read_output(err_path)
    r['stderr_tail'] = '\n'.join(stderr.splitlines()[-20:])
    starts = [x for x in samples.records if x.get('ev') == 'start']
    r['probe'] = starts[-1] if starts else None
    if r['ended_by'] == 'timeout':
        r['reason'] = 'timed out after %g s, killed' % opts.timeout_s
    elif r['ended_by'] == 'for':
        r['status'] = 'ok'
    elif code is not None and code < 0:
        r['reason'] = 'killed by signal %s' % r['signal']
    elif code:
        r['reason'] = 'exited with status %d' % code
        last = execute.last_stderr_line(stderr)
        if last:
            r['reason'] += ': %s' % last
    else:
        r['status'] = 'ok'
    if r['probe'] is None and not r['static'] and r['status'] == 'ok' and not outside:
        r['reason'] = 'the probe reported nothing'


# ---- from samples to figures ------------------------------------------------------------------

def heap_split(heap, allocator, rss_kb, anon_kb):
    """(live bytes, free bytes the allocator keeps resident) from one heap record, None where the
    allocator does not say. glibc's free bytes count free chunks whether resident or not (after a
    trim they stay in the bins, their pages gone): the resident part is at most the anonymous
    memory that live data does not fill."""
    if not heap:
        return None, None
    anon = (anon_kb if anon_kb is not None and anon_kb >= 0 else rss_kb) * 1024
    # Each allocator's figures only when its record has every key they need: a record short of
    # one says nothing, rather than a made-up 0.
    if allocator == 'glibc' and 'in_use' in heap and 'free' in heap:
        live = heap['in_use'] + heap.get('mmap', 0)
        return live, max(0, min(heap['free'], anon - live))
    if allocator == 'jemalloc' and 'allocated' in heap and 'resident' in heap:
        # resident: metadata, pages of live allocations and dirty (freed, not purged) pages.
        return heap['allocated'], max(0, min(heap['resident'] - heap['allocated'], anon - heap['allocated']))
    if allocator == 'tcmalloc' and all(k in heap for k in ('allocated', 'heap_size', 'unmapped')):
        # heap_size counts released (unmapped) pages too.
        kept = heap['heap_size'] - heap['unmapped'] - heap['allocated']
        return heap['allocated'], max(0, min(kept, anon - heap['allocated']))
    return None, None


def allocator_of(run):
    """(name, path, how it was told): the probe's answer (the object that defines the malloc the
    program calls), checked against the libraries the process had mapped."""
    probe = run.get('probe')
    mapped, libc = allocators_in_maps(run['maps']) if run.get('maps') else ([], None)
    if run.get('static'):
        return 'static binary', None, 'no dynamic loader: its own malloc, nothing preloaded'
    if probe:
        name, path = probe.get('allocator'), probe.get('malloc_from')
        if name in ('jemalloc', 'tcmalloc', 'mimalloc'):
            ok = any(n == name for n, _ in mapped) if run.get('maps') else None
            how = 'malloc resolves to %s%s' % (path, '' if ok is None else
                                               (', mapped' if ok else ', NOT in its maps'))
            return name, path, how
        if name == 'glibc':
            extra = [n for n, _ in mapped]
            how = 'malloc resolves to %s' % path
            if extra:
                how += '; also mapped, unused for malloc: %s' % ', '.join(extra)
            return 'glibc', path, how
        return 'unknown', path, 'malloc resolves to %s' % (path or '?')
    if mapped:
        return mapped[0][0], mapped[0][1], 'from its maps (no probe line)'
    if libc:
        return 'glibc', None, 'from its maps (no probe line)'
    return 'unknown', None, 'no probe line, no maps read'


def timeline(run, allocator):
    """The samples as rows: t (s from the program's start), rss_kb, anon_kb, live and free bytes
    (the last heap read carried to samples that had none), cpu_s, the event."""
    rows = []
    live = free = None
    recs = [x for x in run['records'] if x.get('ev') in SAMPLE_EVENTS]
    if not recs:
        return rows
    t0 = run.get('t0_us') or recs[0]['t_us']
    pid = (run.get('probe') or {}).get('pid')
    for x in recs:
        if pid is not None and x.get('pid') not in (pid, None):
            continue
        rss, anon = x.get('rss_kb', -1), x.get('anon_kb', -1)
        if rss is None or rss < 0:
            continue
        if 'heap' in x:
            live, free = heap_split(x['heap'], allocator, rss, anon)
        row = OrderedDict()
        row['t'] = round((x['t_us'] - t0) / 1e6, 4)
        row['rss_kb'] = rss
        row['anon_kb'] = anon if anon is not None and anon >= 0 else None
        row['live_bytes'] = min(live, rss * 1024) if live is not None else None
        row['free_bytes'] = (min(free, rss * 1024 - (row['live_bytes'] or 0)) if free is not None else None)
        row['cpu_s'] = x['cpu_us'] / 1e6 if isinstance(x.get('cpu_us'), (int, float)) else None
        row['ev'] = x['ev']
        rows.append(row)
    return rows


def mean_rss_kb(rows):
    """The RSS-time integral (trapezoids) over the run divided by its duration."""
    if not rows:
        return None
    if len(rows) == 1 or rows[-1]['t'] <= rows[0]['t']:
        return float(rows[0]['rss_kb'])
    area = 0.0
    for a, b in zip(rows, rows[1:]):
        area += (b['t'] - a['t']) * (a['rss_kb'] + b['rss_kb']) / 2.0
    return area / (rows[-1]['t'] - rows[0]['t'])


def settled_row(rows, settle_s):
    """The first sample at which the program, after doing something, has been quiet (under
    QUIET_SHARE of one core) for settle_s seconds: the settled phase. None if it never was."""
    if settle_s is None or settle_s < 0:
        return None
    quiet_since = None
    worked = False
    for a, b in zip(rows, rows[1:]):
        if a['cpu_s'] is None or b['cpu_s'] is None:
            return None
        dt = b['t'] - a['t']
        if dt <= 0:
            continue
        if (b['cpu_s'] - a['cpu_s']) < QUIET_SHARE * dt:
            if worked and quiet_since is None:
                quiet_since = a['t']
        else:
            worked = True
            quiet_since = None
        if quiet_since is not None and b['t'] - quiet_since >= settle_s and b['ev'] != 'exit':
            return b
    return None


def trimmed_row(rows, peak):
    """The sample right after the trim that followed the work: the first trim at or after the
    peak, else the last one. Not simply the first: the probe trims whenever the program goes
    quiet, and a program starved of CPU on a loaded machine looks quiet mid-allocation (seen: a
    first trim at 78 MB of a 209 MB peak, under a load average of 14 on 2 cores)."""
    trimmed = [x for x in rows if x['ev'] == 'trimmed']
    if not trimmed:
        return None
    after = [x for x in trimmed if peak is not None and x['t'] >= peak['t']]
    return after[0] if after else trimmed[-1]


def summarize(run, settle_s=None):
    """Every figure of one run, from its samples: OrderedDict (values None where unknown)."""
    name, path, how = allocator_of(run)
    rows = timeline(run, name)
    f = OrderedDict()
    f['allocator'] = name
    f['allocator_path'] = path
    f['allocator_how'] = how
    f['samples'] = len(rows)
    during = [x for x in rows if x['ev'] != 'exit'] or rows
    peak = max(rows, key=lambda x: x['rss_kb']) if rows else None
    end = during[-1] if during else None
    ex = rows[-1] if rows and rows[-1]['ev'] == 'exit' else None
    f['baseline_kb'] = rows[0]['rss_kb'] if rows else None
    f['peak_kb'] = peak['rss_kb'] if peak else None
    f['peak_t'] = peak['t'] if peak else None
    f['end_kb'] = end['rss_kb'] if end else None
    f['end_t'] = end['t'] if end else None
    f['end_live_bytes'] = end['live_bytes'] if end else None
    f['end_free_bytes'] = end['free_bytes'] if end else None
    f['end_free_share'] = (float(end['free_bytes']) / (end['rss_kb'] * 1024)
                           if end and end['free_bytes'] is not None and end['rss_kb'] > 0 else None)
    f['exit_kb'] = ex['rss_kb'] if ex else None
    f['mean_kb'] = mean_rss_kb(rows)
    settled = settled_row(rows, settle_s)
    f['settled_kb'] = settled['rss_kb'] if settled else None
    f['settled_t'] = settled['t'] if settled else None
    trims = [x for x in run['records'] if x.get('ev') == 'trim']
    f['trims'] = len(trims)
    trimmed = trimmed_row(rows, peak)
    f['trimmed_kb'] = trimmed['rss_kb'] if trimmed else None
    probe_cpu = [x.get('probe_cpu_us') for x in run['records'] if isinstance(x.get('probe_cpu_us'), (int, float))]
    f['probe_cpu_s'] = max(probe_cpu) / 1e6 if probe_cpu else None
    f['probe_share'] = (f['probe_cpu_s'] / run['wall_s'] if f['probe_cpu_s'] is not None and run.get('wall_s')
                        else None)
    return f, rows


def phases(run, figures, rows):
    """The phases the probe can see, in the harness's JSON shape (rss_kb, anon_kb): baseline (the
    first sample, before main), peak, end (the last sample while the program ran), after_trim
    (right after the trim cell's first trim) and after_idle (settled: quiet for the settle
    time). A phase the run did not reach is absent."""
    out = OrderedDict()

    def ph(row):
        return OrderedDict([('rss_kb', row['rss_kb']), ('anon_kb', row['anon_kb']), ('t', row['t']),
                            ('live_bytes_allocator', row['live_bytes']), ('free_bytes_allocator', row['free_bytes'])])
    if not rows:
        return out
    during = [x for x in rows if x['ev'] != 'exit'] or rows
    out['baseline'] = ph(rows[0])
    out['peak'] = ph(max(rows, key=lambda x: x['rss_kb']))
    out['end'] = ph(during[-1])
    trimmed = trimmed_row(rows, max(rows, key=lambda x: x['rss_kb']))
    if trimmed:
        out['after_trim'] = ph(trimmed)
    if figures.get('settled_t') is not None:
        out['after_idle'] = ph(next(x for x in rows if x['t'] == figures['settled_t']))
    return out
