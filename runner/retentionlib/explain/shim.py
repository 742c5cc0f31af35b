"""libtrimshim in the process: is it loaded (a mapping of libtrimshim.so* in /proc/PID/maps), and
what did it do (its TRIMSHIM_STATS file, found from /proc/PID/environ, parsed by promtext)? Reads
/proc and that one file: nothing is called in the process, its allocator least of all.

The figures are the shim's own (format 1 of README's "Statistics for a fleet"); the file is
checked to be this process's: its trimshim_info pid label is the process's PID as it sees itself
(a path without %p in a forked child is the parent's file), and its shim started after the process
did (a file left by an earlier process of the same PID, killed, or TRIMSHIM_STATS_KEEP=1)."""

import errno
import os
import re
import stat
import time
from collections import OrderedDict

from .. import promtext
from ..errors import ExplainError
from .procfs import environ_lookup, innermost_pid, parse_status
from .target import read_proc, read_proc_bytes, start_time

LIBRARY = re.compile(r'^libtrimshim\.so(\.[0-9]+)*$')
# shim/env.h TS_STATS_PATH_MAX: the expanded path with its NUL
STATS_PATH_MAX = 1024
# What README's Deploying it suggests; %p gives each process its own file.
ENABLE = 'TRIMSHIM_STATS=/var/lib/node_exporter/textfile/trimshim-%p.prom'
# The shim's thread rewrites the file at least once a minute (TS_STATS_REFRESH_NS); three minutes
# without a write is no longer a late write.
STALE_THREAD_S = 180
# The shim's start time is time(NULL) in its constructor, the process's from ticks after btime
# (whole seconds): they may differ by a second or two either way.
START_SLACK_S = 2
# The shim's file is about 4 kB; anything much larger is not one.
MAX_FILE_BYTES = 1 << 20
STATES = ('running', 'stopped', 'off', 'not-glibc', 'valgrind', 'failed', 'waiting')
MODES = {'thread': 'from a thread of its own', 'idle-points': 'at the program\'s waits (no thread of its own)',
         'none': None}


def library(mappings):
    """The path of the mapped libtrimshim.so*, or None."""
    for m in mappings:
        path = m.path[:-len(' (deleted)')] if m.path.endswith(' (deleted)') else m.path
        if path.startswith('/') and LIBRARY.match(os.path.basename(path)):
            return m.path
    return None


def check_template(t):
    """None if t is a template the shim accepts (shim/env.c ts_check_stats_template), else why not."""
    if not t:
        return 'empty (want an absolute file path, %p for the PID)'
    if not t.startswith('/'):
        return 'not an absolute path'
    i, pids, length = 0, 0, len(t)
    while i < len(t):
        if t[i] == '%':
            nxt = t[i + 1:i + 2]
            if nxt == 'p':
                pids += 1
            elif nxt != '%':
                return 'a % that is neither %p (the PID) nor %% (a %)'
            i += 2
        else:
            i += 1
    slash = t.rfind('/')
    if slash == len(t) - 1:
        return 'ends in / (want a file path)'
    if '%p' in t[:slash].replace('%%', ''):
        return '%p in a directory name (only the file name may vary by process)'
    if length + pids * 5 > STATS_PATH_MAX - 1:
        return 'too long'
    return None


def expand(t, pid):
    """The file of template t for process pid: %p the PID, %% a %. ValueError if t is not one."""
    why = check_template(t)
    if why:
        raise ValueError(why)
    out, i = [], 0
    while i < len(t):
        if t[i] == '%':
            out.append(str(pid) if t[i + 1] == 'p' else '%')
            i += 2
        else:
            out.append(t[i])
            i += 1
    return ''.join(out)


# str.isdigit() takes other scripts' digits ('²'), which int() refuses
_PID = re.compile(r'[0-9]{1,10}\Z')


class StatsProblem(Exception):
    """The statistics file cannot give this process's figures: one line, naming the file."""


def figures(expo, pid, proc_start=None):
    """The shim's figures from its parsed file (promtext.Exposition) for process `pid` (as it sees
    itself), started at Unix time proc_start (None: not checked). StatsProblem when the file is
    not the shim's, or not this process's."""
    src = expo.source

    def one(name, **labels):
        try:
            v = expo.value(name, **labels)
        except promtext.PromError as e:
            raise StatsProblem(str(e))
        if v is None:
            raise StatsProblem('%s: no %s%s sample: not a libtrimshim statistics file (format 1)'
                               % (src, name, promtext.labels_text(labels)))
        if v != v or v < 0 or v == float('inf'):
            line = expo.find(name, **labels)[0].lineno
            raise StatsProblem('%s:%d: %s is %r, not a count' % (src, line, name, v))
        return int(v) if v == int(v) else v
    info = expo.find('trimshim_info')
    if len(info) != 1:
        raise StatsProblem('%s: %s trimshim_info samples (want one): not a libtrimshim statistics file'
                           % (src, len(info) or 'no'))
    info = info[0]
    label_pid = info.labels.get('pid', '')
    if not _PID.match(label_pid):
        raise StatsProblem('%s:%d: trimshim_info has no pid label' % (src, info.lineno))
    if int(label_pid) != pid:
        raise StatsProblem('%s: the file of process %s, not of this one (%d): a path without %%p is the file of '
                           'the process that started with it (its parent?)' % (src, label_pid, pid))
    for s in expo.samples:
        if s.name.startswith('trimshim_') and s.labels.get('pid') != label_pid:
            raise StatsProblem('%s:%d: %s carries pid "%s", trimshim_info pid "%s"'
                               % (src, s.lineno, s.name, s.labels.get('pid', ''), label_pid))
    current = [s for s in expo.find('trimshim_state') if s.value == 1]
    if len(current) != 1:
        raise StatsProblem('%s: %d trimshim_state samples at 1 (want one: the current state)' % (src, len(current)))
    f = OrderedDict()
    f['state'] = current[0].labels.get('state', '?')
    f['mode'] = info.labels.get('mode')
    f['policy'] = info.labels.get('policy')
    f['program'] = info.labels.get('program')
    f['format'] = info.labels.get('format')
    trims = OrderedDict()
    for kind in ('quiet', 'busy', 'interval', 'api'):
        trims[kind] = one('trimshim_trims_total', kind=kind)
    trims['total'] = sum(trims.values())
    f['trims'] = trims
    f['returned_bytes'] = one('trimshim_returned_bytes_total')
    f['futile_trims'] = one('trimshim_futile_trims_total')
    f['refault_minor_faults'] = one('trimshim_refault_minor_faults_total')
    f['probes'] = one('trimshim_probes_total')
    f['trim_seconds'] = one('trimshim_trim_seconds_total')
    f['cpu_seconds'] = one('trimshim_cpu_seconds_total')
    f['heap_free_bytes'] = one('trimshim_heap_free_bytes')
    f['heap_used_bytes'] = one('trimshim_heap_used_bytes')
    f['resident_bytes'] = one('trimshim_resident_bytes')
    f['start_time'] = one('trimshim_start_time_seconds')
    if proc_start is not None and f['start_time'] < proc_start - START_SLACK_S:
        raise StatsProblem('%s: left by an earlier process %d: its shim started %s, before this process did (%s)'
                           % (src, pid, _when(f['start_time']), _when(proc_start)))
    return f


def _when(t):
    return time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t))


def state_words(state, mode=None, allocator=None):
    """The state as a phrase: running (and where), or why it stands down or is off."""
    if state == 'running':
        where = MODES.get(mode)
        return 'running' + (', ' + where if where else '')
    if state == 'not-glibc':
        return 'standing down: malloc is not glibc\'s%s, so malloc_trim would do nothing' % (
            ' (it is %s)' % allocator if allocator else '')
    return {
        'stopped': 'stopped (the program called trimshim_stop())',
        'off': 'off (TRIMSHIM_POLICY=off)',
        'valgrind': 'standing down: running under valgrind',
        'failed': 'not running: its thread could not be created',
        'waiting': 'not trimming until the program starts a thread: a signal handler was installed behind its '
                   'back (a raw rt_sigaction), so its work at the program\'s waits could run inside a handler',
    }.get(state, 'in state %s' % state)


def _read_file(pid, path):
    """(bytes, mtime) of the process's file at path, read through /proc/PID/root (a container's
    files are in its own mount namespace); StatsProblem with the reason."""
    candidates = ['/proc/%d/root%s' % (pid, path), path]
    first = None
    for p in candidates:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0))
        except OSError as e:
            if first is None:
                first = e
            if e.errno in (errno.EACCES, errno.EPERM):
                continue  # /proc/PID/root refused: the path as it is here
            break
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StatsProblem('%s: %s, not a regular file' % (
                    path, 'a directory' if stat.S_ISDIR(st.st_mode) else 'a special file'))
            if st.st_size > MAX_FILE_BYTES:
                raise StatsProblem('%s: %d bytes, too large for the shim\'s file (about 4 kB)' % (path, st.st_size))
            chunks = []
            while True:
                b = os.read(fd, 65536)
                if not b:
                    break
                chunks.append(b)
            return b''.join(chunks), st.st_mtime
        except OSError as e:
            raise StatsProblem('%s: cannot read it: %s' % (path, e.strerror or e))
        finally:
            os.close(fd)
    if first is not None and first.errno == errno.ENOENT:
        raise StatsProblem('%s: not there (the shim writes it at its first look: at the program\'s first blocking '
                           'wait when it has no thread of its own; it removes it at exit)' % path)
    raise StatsProblem('%s: cannot read it: %s' % (path, first.strerror if first is not None else '?'))


def inspect(pid, mappings, allocator=None, now=None):
    """The shim in process pid as a document (explain's --json 'shim'): {'loaded': False} when it is
    not mapped. allocator: explain's finding, (is_glibc, name), to tell a standing-down shim's
    missing file from a missing file."""
    doc = OrderedDict()
    lib = library(mappings)
    doc['loaded'] = lib is not None
    if lib is None:
        return doc
    doc['library'] = lib
    now = time.time() if now is None else now
    st = OrderedDict()
    st['environ'] = '/proc/%d/environ (the initial environment: the shim reads it once, at start)' % pid
    doc['stats'] = st
    doc['state'] = None
    doc['state_source'] = None
    try:
        env = read_proc_bytes(pid, 'environ')
    except ExplainError as e:
        st['template'] = None
        st['problem'] = '%s: where its statistics are is not known' % e
        return doc
    raw = environ_lookup(env, 'TRIMSHIM_STATS')
    policy = environ_lookup(env, 'TRIMSHIM_POLICY')
    inferred = None
    if allocator is not None and not allocator[0]:
        inferred = ('not-glibc', 'explain: malloc resolves to %s' % allocator[1])
    elif policy is not None and policy.strip().lower() == b'off':
        inferred = ('off', 'TRIMSHIM_POLICY=off in its initial environment')
    if inferred:
        doc['state'], doc['state_source'] = inferred
    st['template'] = os.fsdecode(raw) if raw is not None else None
    if raw is None:
        st['exported'] = False
        return doc
    st['exported'] = True
    tmpl = os.fsdecode(raw)
    try:
        status = parse_status(read_proc(pid, 'status'))
    except ExplainError:
        status = {}
    self_pid = innermost_pid(status, pid)
    try:
        path = expand(tmpl, self_pid)
    except ValueError as e:
        st['file'] = None
        st['problem'] = 'TRIMSHIM_STATS="%s": %s: the shim writes no statistics file' % (tmpl, e)
        return doc
    st['file'] = path
    if inferred:
        # Standing down (another allocator) or off, the shim writes no file: not a problem.
        st['note'] = 'a shim that is %s writes no statistics' % ('off' if inferred[0] == 'off' else 'standing down')
        return doc
    try:
        data, mtime = _read_file(pid, path)
        st['age_seconds'] = round(max(0.0, now - mtime), 1)
        try:
            expo = promtext.parse(data, path)
        except promtext.PromError as e:
            raise StatsProblem(str(e))
        proc_start = start_time(pid)
        if proc_start is not None and mtime < proc_start - START_SLACK_S:
            raise StatsProblem('%s: written %s, before this process started (%s): left by an earlier process'
                               % (path, _when(mtime), _when(proc_start)))
        f = figures(expo, self_pid, proc_start)
    except StatsProblem as e:
        st['problem'] = str(e)
        return doc
    doc['state'] = f.pop('state')
    doc['state_source'] = 'its statistics file'
    doc.update(f)
    if doc['mode'] == 'thread' and st['age_seconds'] > STALE_THREAD_S:
        st['warning'] = ('not rewritten for %.0f s, though its thread rewrites it at least once a minute: the '
                         'figures may be stale' % st['age_seconds'])
    return doc
