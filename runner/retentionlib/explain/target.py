"""The live target: its /proc files read (a missing process is ProcessGone, a refused read names
the reason), its state, and never leaving it stopped."""

import errno
import os
import signal
import time

from ..errors import ExplainError, ProcessGone
from .procfs import (parse_btime, parse_kb_fields, parse_stat_starttime, parse_stat_state, parse_status, rss_split,
                     tracer_pid)
from .ptrace import ptrace_hint


def read_proc(pid, name):
    """The text of /proc/PID/NAME. ProcessGone if the process does not exist, ExplainError naming
    the file for any other failure (EACCES: no ptrace access)."""
    return read_proc_bytes(pid, name).decode('utf-8', 'replace')


def read_proc_bytes(pid, name):
    """The bytes of /proc/PID/NAME (environ: NUL-separated, not necessarily UTF-8); errors as
    read_proc's."""
    path = '/proc/%d/%s' % (pid, name)
    try:
        with open(path, 'rb') as f:
            return f.read()
    except (IOError, OSError) as e:
        if e.errno in (errno.ENOENT, errno.ESRCH):
            raise ProcessGone('no process %d' % pid)
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ExplainError('cannot read %s: %s (%s)' % (path, e.strerror, ptrace_hint(pid)))
        raise ExplainError('cannot read %s: %s' % (path, e.strerror or e))


def read_rss(pid):
    """RSS and anonymous RSS in bytes, read by the runner: /proc/PID/smaps_rollup (Linux >= 4.14),
    else statm (resident, and resident minus file-backed pages)."""
    try:
        fields = parse_kb_fields(read_proc(pid, 'smaps_rollup'))
        if 'Rss' in fields:
            return fields['Rss'], fields.get('Anonymous')
    except ProcessGone:
        raise
    except ExplainError:
        pass
    parts = read_proc(pid, 'statm').split()
    page = os.sysconf('SC_PAGE_SIZE')
    if len(parts) < 3 or not all(p and len(p) <= 20 and not p.strip('0123456789') for p in parts[1:3]):
        raise ExplainError('cannot parse /proc/%d/statm' % pid)
    return int(parts[1]) * page, (int(parts[1]) - int(parts[2])) * page


def read_rss_split(pid):
    """procfs.rss_split of the live process; without smaps_rollup (Linux < 4.14), status'
    VmRSS, RssAnon, RssShmem, RssFile."""
    st = parse_status(read_proc(pid, 'status'))
    try:
        fields = parse_kb_fields(read_proc(pid, 'smaps_rollup'))
    except ProcessGone:
        raise
    except ExplainError:
        fields = {}
    if 'Rss' not in fields:
        for key, want in (('VmRSS', 'Rss'), ('RssAnon', 'Anonymous')):
            v = st.get(key, '').split()
            if v and len(v[0]) <= 20 and not v[0].strip('0123456789'):
                fields[want] = int(v[0]) * 1024
    return rss_split(fields, st)


def start_time(pid):
    """The Unix time the process started (fork, not its last exec), to the second, or None: its
    /proc/PID/stat starttime after /proc/stat's btime."""
    try:
        ticks = parse_stat_starttime(read_proc(pid, 'stat'))
        with open('/proc/stat') as f:
            boot = parse_btime(f.read())
    except (ExplainError, IOError, OSError):
        return None
    if ticks is None or boot is None:
        return None
    return boot + float(ticks) / os.sysconf('SC_CLK_TCK')


def state_of(pid):
    try:
        return parse_stat_state(read_proc(pid, 'stat'))
    except ExplainError:
        return None


SIGSTOP_BIT = 1 << (signal.SIGSTOP - 1)


def stop_pending(status):
    """Is a SIGSTOP queued for the process (/proc/PID/status SigPnd/ShdPnd), not yet taken?"""
    for key in ('SigPnd', 'ShdPnd'):
        try:
            if int(status.get(key, '0'), 16) & SIGSTOP_BIT:
                return True
        except ValueError:
            pass
    return False


def ensure_running(pid, before, tries=40, settle=4, sig=signal.SIGCONT):
    """Never leave the target stopped: if it is in state t/T now, or has a SIGSTOP queued (a stop
    takes effect asynchronously: gdb's attach sends one), and was not stopped before, and nobody
    else traces it, send SIGCONT (which also discards a queued SIGSTOP) until it runs. It must be
    seen running `settle` times in a row. Returns a note (str) when it had to, else None."""
    if before in ('t', 'T'):
        return None
    sent = False
    calm = 0
    for _ in range(tries):
        st = state_of(pid)
        if st in (None, 'Z', 'X'):
            return None
        try:
            status = parse_status(read_proc(pid, 'status'))
        except ExplainError:
            return None
        if st not in ('t', 'T') and not stop_pending(status):
            calm += 1
            if calm >= settle:
                return 'process %d was left stopped; SIGCONT resumed it' % pid if sent else None
            time.sleep(0.02)
            continue
        calm = 0
        tracer = tracer_pid(status)
        if tracer and os.path.exists('/proc/%d' % tracer):
            return None  # someone else's debugger: not ours to resume
        try:
            os.kill(pid, sig)
            sent = True
        except OSError:
            return None
        time.sleep(0.05)
    raise ExplainError('process %d is still stopped (state %s) after SIGCONT' % (pid, state_of(pid)))
