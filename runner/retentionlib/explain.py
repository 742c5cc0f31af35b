"""retention explain PID: is a live process's RSS a leak or memory glibc malloc keeps after free?

How it works (README, "Is it a leak?", walks a user through it):
  1. /proc/PID/{status,stat,smaps,smaps_rollup}: state, RSS, the [heap] mapping and the anonymous
     mappings of glibc's non-main arenas. A non-main arena heap starts at a HEAP_MAX-aligned
     address (64 MiB on 64-bit) with a heap_info header {ar_ptr, prev, size, mprotect_size}, read
     through /proc/PID/mem and validated, so only real arena heaps count.
  2. gdb in batch mode attaches, finds which object the process's `malloc` resolves to, and only
     if that is glibc's calls malloc_info(0, open_memstream(...)) in the process and dumps the XML
     to a temp file (gdb writes it: no path inside the target's namespace is needed), and with
     --trim malloc_trim(0). `set unwindonsignal on` and a timeout (SIGURG to the target, on which
     gdb stops and unwinds the call; SIGKILL to gdb only as a last resort) bound every call; gdb
     detaches at the end of the batch.
  3. Afterwards the process is checked: if it was left stopped (state t/T), it gets SIGCONT.
  4. The figures (per arena: size, in use, free, resident) give the verdict.

Everything that parses or judges is a pure function of text or numbers (tests/test_explain.py)."""

import errno
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import OrderedDict

from .errors import UsageError
from .report import human_bytes, pct

RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(RUNNER_DIR)

DEFAULT_TIMEOUT_S = 60
# At the timeout the target gets this signal: gdb stops on it and unwinds a running call (see
# run_gdb); after INTERRUPT_GRACE_S more gdb is killed.
INTERRUPT_SIGNAL = signal.SIGURG
INTERRUPT_GRACE_S = 10
# A call still working at the timeout is left to finish, up to this many times the timeout
# (malloc_trim over a big heap takes seconds on a loaded machine: 10 s for the seed's 655 MB on
# two busy CPUs). Undoing it early would leave an arena lock held; killing gdb crashes the target.
HARD_LIMIT = 10
CAP_SYS_PTRACE = 19
YAMA_SCOPE = '/proc/sys/kernel/yama/ptrace_scope'

# Verdict thresholds. Below SIGNIFICANT_BYTES nothing is worth a verdict: a small process's RSS
# is its code and libraries. Retention: the free memory the allocator keeps resident is at least
# RETENTION_SHARE of RSS (the seed after free: 99%; array_control after free: 0%). Live growth:
# allocations still in use are at least LIVE_SHARE of RSS (any case at its peak).
SIGNIFICANT_BYTES = 16 << 20
RETENTION_SHARE = 0.25
LIVE_SHARE = 0.5
# Retention is "trimmable" when malloc_trim(0) would return at least this share of it, else the
# free space sits on pages shared with live objects (fragmentation: trim cannot help).
TRIMMABLE_SHARE = 0.5
# The mmap threshold fix fits when most free bytes (outside fastbins and the top chunk) are in
# chunks of at least this size.
LARGE_CHUNK = 32 * 1024
# MALLOC_ARENA_MAX is worth a mention when at least two thread arenas each hold this share of the
# free resident memory.
ARENA_SHARE = 0.1

VERDICT_RETENTION = 'allocator retention'
VERDICT_LIVE = 'live growth / possible leak'
VERDICT_NOT_GLIBC = 'not glibc malloc'
VERDICT_NONE = 'no significant retention'

KNOWN_ALLOCATORS = ('jemalloc', 'tcmalloc', 'mimalloc', 'hoard', 'snmalloc', 'rpmalloc', 'tbbmalloc',
                    'scudo', 'dlmalloc', 'ptmalloc')


class ExplainError(Exception):
    """A one-line failure shown as 'retention: MESSAGE', exit status 1."""


class ProcessGone(ExplainError):
    pass


# ---------------------------------------------------------------------------------------------
# /proc


def read_proc(pid, name):
    """The text of /proc/PID/NAME. ProcessGone if the process does not exist, ExplainError naming
    the file for any other failure (EACCES: no ptrace access)."""
    path = '/proc/%d/%s' % (pid, name)
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except (IOError, OSError) as e:
        if e.errno in (errno.ENOENT, errno.ESRCH):
            raise ProcessGone('no process %d' % pid)
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ExplainError('cannot read %s: %s (%s)' % (path, e.strerror, ptrace_hint(pid)))
        raise ExplainError('cannot read %s: %s' % (path, e.strerror or e))


def parse_stat_state(text):
    """The state letter of /proc/PID/stat (the comm field may hold spaces and parentheses)."""
    rest = text[text.rfind(')') + 1:].split()
    return rest[0] if rest else '?'


def parse_status(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(':')
        if sep:
            out[k.strip()] = v.strip()
    return out


def parse_kb_fields(text):
    """'Key:   123 kB' lines (smaps_rollup, one smaps entry) -> {Key: bytes}."""
    out = OrderedDict()
    for line in text.splitlines():
        m = re.match(r'^(\w+):\s+(\d+) kB\s*$', line)
        if m:
            out[m.group(1)] = int(m.group(2)) * 1024
    return out


_MAP_LINE = re.compile(r'^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+([0-9a-f]+)\s+(\S+)\s+(\d+)\s*(.*)$')


class Mapping(object):
    __slots__ = ('start', 'end', 'perms', 'offset', 'inode', 'path', 'fields')

    def __init__(self, start, end, perms, offset, inode, path):
        self.start = start
        self.end = end
        self.perms = perms
        self.offset = offset
        self.inode = inode
        self.path = path
        self.fields = OrderedDict()

    @property
    def rss(self):
        return self.fields.get('Rss', 0)

    @property
    def anonymous(self):
        return self.inode == 0 and not self.path

    def __repr__(self):
        return 'Mapping(%x-%x %s %r)' % (self.start, self.end, self.perms, self.path)


def parse_maps(text):
    """/proc/PID/maps or /proc/PID/smaps -> [Mapping] (smaps' 'Key: N kB' lines fill .fields)."""
    out = []
    for line in text.splitlines():
        m = _MAP_LINE.match(line)
        if m:
            out.append(Mapping(int(m.group(1), 16), int(m.group(2), 16), m.group(3), int(m.group(4), 16),
                               int(m.group(6)), m.group(7).strip()))
            continue
        if out:
            f = re.match(r'^(\w+):\s+(\d+) kB\s*$', line)
            if f:
                out[-1].fields[f.group(1)] = int(f.group(2)) * 1024
    return out


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
    if len(parts) < 3:
        raise ExplainError('cannot parse /proc/%d/statm' % pid)
    return int(parts[1]) * page, (int(parts[1]) - int(parts[2])) * page


# ---------------------------------------------------------------------------------------------
# ptrace permission


def cap_effective(status_text):
    v = parse_status(status_text).get('CapEff')
    try:
        return int(v, 16)
    except (TypeError, ValueError):
        return None


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        return None


def _ptrace_powers(yama_path, self_status):
    """(this process's /proc status text or None, whether it has CAP_SYS_PTRACE, Yama's
    ptrace_scope or None where unreadable)"""
    if self_status is None:
        self_status = _read_text('/proc/self/status')
    caps = cap_effective(self_status or '')
    try:
        scope = int((_read_text(yama_path) or '').strip())
    except ValueError:
        scope = None
    return self_status, caps is not None and bool(caps & (1 << CAP_SYS_PTRACE)), scope


def ptrace_hint(pid, yama_path=YAMA_SCOPE, self_status=None, target_status=None):
    """Why attaching to PID is not allowed, as far as can be told from here (one clause)."""
    self_status, has_cap, scope = _ptrace_powers(yama_path, self_status)
    my_uid = parse_status(self_status or '').get('Uid', '').split()[:1]
    if target_status is None:
        target_status = _read_text('/proc/%d/status' % pid) or ''
    their_uid = parse_status(target_status).get('Uid', '').split()[:1]
    if scope == 3:
        return 'kernel.yama.ptrace_scope=3 forbids attaching to any process until reboot'
    if scope == 2 and not has_cap:
        return 'kernel.yama.ptrace_scope=2: only a process with CAP_SYS_PTRACE (root) may attach'
    if my_uid and their_uid and my_uid != their_uid and not has_cap:
        return 'the process belongs to uid %s: run as that user or as root' % their_uid[0]
    if scope == 1 and not has_cap:
        return ('kernel.yama.ptrace_scope=1 allows attaching only to your own descendants: run as root, '
                'or set it to 0 with sysctl kernel.yama.ptrace_scope=0')
    if not has_cap:
        return ('no CAP_SYS_PTRACE (in a container: docker run --cap-add=SYS_PTRACE, or the pod\'s '
                'securityContext capabilities); a setuid or non-dumpable process needs it too')
    return ('ptrace is blocked although this process has CAP_SYS_PTRACE: a seccomp profile (containers) '
            'or a security module (SELinux deny_ptrace, AppArmor) may forbid it')


def attach_blocker(yama_path=YAMA_SCOPE, self_status=None):
    """A reason why this process cannot ptrace a sibling process (for tests to skip), or None."""
    self_status, has_cap, scope = _ptrace_powers(yama_path, self_status)
    if self_status is None or scope is None:
        return None
    if scope >= 3:
        return 'kernel.yama.ptrace_scope=%d forbids ptrace' % scope
    if scope >= 1 and not has_cap:
        return 'kernel.yama.ptrace_scope=%d and no CAP_SYS_PTRACE' % scope
    return None


# ---------------------------------------------------------------------------------------------
# Arena heaps in memory


def heap_max_size(word):
    """glibc's HEAP_MAX_SIZE: 2 * DEFAULT_MMAP_THRESHOLD_MAX (64 MiB on 64-bit, 1 MiB on 32-bit)."""
    return 2 * (4 * 1024 * 1024 * 8) if word == 8 else 2 * 512 * 1024


def exe_word_size(pid):
    """The target's pointer size from the ELF class of /proc/PID/exe (this python's if unreadable)."""
    try:
        with open('/proc/%d/exe' % pid, 'rb') as f:
            ident = f.read(5)
        if ident[:4] == b'\x7fELF' and ident[4] in (1, 2):
            return 4 if ident[4] == 1 else 8
    except (IOError, OSError):
        pass
    return struct.calcsize('P')


class MemReader(object):
    """Reads the target's memory through /proc/PID/mem (the same permission as ptrace attach)."""

    def __init__(self, pid):
        self.pid = pid
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open('/proc/%d/mem' % self.pid, os.O_RDONLY)
        except OSError:
            self.fd = None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def read(self, addr, size):
        if self.fd is None:
            return None
        try:
            data = os.pread(self.fd, size, addr)
        except (OSError, OverflowError):
            return None
        return data if len(data) == size else None


def _words(data, word):
    fmt = '<%d%s' % (len(data) // word, 'Q' if word == 8 else 'I')
    return struct.unpack(fmt, data[:len(data) // word * word])


def find_heaps(mappings, read, word=8, page=4096):
    """The non-main arena heaps among the mappings: anonymous rw mappings at a HEAP_MAX-aligned
    address whose first words are a consistent heap_info {ar_ptr, prev, size, mprotect_size}.
    read(addr, size) returns bytes or None. Returns [heap dict] with start, end (of the reserved
    region), ar_ptr, prev, size, mprotect_size and resident (Rss of the mappings inside)."""
    hmax = heap_max_size(word)
    cands = OrderedDict()
    for m in mappings:
        if m.anonymous and m.perms.startswith('rw') and m.start % hmax == 0:
            data = read(m.start, 4 * word)
            if data is None:
                continue
            ar_ptr, prev, size, mprot = _words(data, word)
            if not (0 < size <= mprot <= hmax) or size % page or size > (m.end - m.start) + page:
                continue
            cands[m.start] = {'start': m.start, 'end': m.start + hmax, 'ar_ptr': ar_ptr, 'prev': prev,
                              'size': size, 'mprotect_size': mprot}
    # An arena's first heap holds the arena itself right after heap_info and has no prev; later
    # heaps point at an earlier heap and at the same arena.
    firsts = dict((h['ar_ptr'], h['start']) for h in cands.values()
                  if h['prev'] == 0 and h['start'] < h['ar_ptr'] < h['start'] + 256)
    heaps = []
    for h in cands.values():
        if h['ar_ptr'] not in firsts:
            continue
        if h['prev'] != 0 and (h['prev'] not in cands or cands[h['prev']]['ar_ptr'] != h['ar_ptr']):
            continue
        # The heap reserves its whole HEAP_MAX region (rw, then PROT_NONE): every mapping inside
        # is part of it.
        h['resident'] = sum(m.rss for m in mappings
                            if m.anonymous and m.start < h['end'] and m.end > h['start'])
        heaps.append(h)
    return heaps


def arena_groups(heaps):
    """{ar_ptr: {'heaps': n, 'size': sum of heap sizes (== the arena's system_mem), 'resident': B,
    'ranges': [(start, end)]}} in address order of the arenas."""
    out = OrderedDict()
    for h in sorted(heaps, key=lambda h: h['ar_ptr']):
        g = out.setdefault(h['ar_ptr'], {'heaps': 0, 'size': 0, 'resident': 0, 'ranges': []})
        g['heaps'] += 1
        g['size'] += h['size']
        g['resident'] += h['resident']
        g['ranges'].append((h['start'], h['start'] + h['mprotect_size']))
    return out


def order_arenas(groups, read, word=8, span=4096):
    """The thread arenas in the order malloc_info numbers them (main_arena.next first), by
    following malloc_state.next. Its offset differs between glibc versions, so it is found: the
    offset k where, for every arena, word k+3 is system_mem (== the sum of its heap sizes, known
    from heap_info), word k+4 (max_system_mem) is not below it, and the words k form one chain
    through all arenas that ends at one address outside them (main_arena). None if not found."""
    if not groups:
        return []
    mem = {}
    for a in groups:
        data = read(a, span)
        if data is None:
            return None
        mem[a] = _words(data, word)
    n = span // word
    for k in range(0, n - 4):
        if not all(mem[a][k + 3] == g['size'] and mem[a][k + 4] >= g['size'] for a, g in groups.items()):
            continue
        nxt = dict((a, mem[a][k]) for a in groups)
        outside = [v for v in nxt.values() if v not in groups]
        if len(outside) != 1:
            continue
        pointed = set(v for v in nxt.values() if v in groups)
        heads = [a for a in groups if a not in pointed]
        if len(heads) != 1:
            continue
        order, cur = [], heads[0]
        while cur in groups and cur not in order:
            order.append(cur)
            cur = nxt[cur]
        if len(order) == len(groups) and cur == outside[0]:
            return order
    return None


# ---------------------------------------------------------------------------------------------
# malloc_info XML


def _int(el, attr):
    try:
        return int(el.get(attr))
    except (TypeError, ValueError):
        raise ExplainError('malloc_info: bad %s=%r in <%s>' % (attr, el.get(attr), el.tag))


def _typed(el, tag, typ, attr='size'):
    for c in el.findall(tag):
        if c.get('type') == typ:
            return _int(c, attr)
    return None


def parse_malloc_info(text):
    """malloc_info(0, fp)'s XML -> {'version', 'arenas': [...], 'totals': {...}}. Each arena:
    nr, system (bytes from the system), max_system, fast_bytes/fast_chunks, free_bytes (fast +
    rest, the top chunk included), free_chunks, in_use (system - free), aspace, subheaps, sizes
    [(from, to, total, count)]."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ExplainError('malloc_info output is not XML (%s)' % e)
    if root.tag != 'malloc':
        raise ExplainError('malloc_info output: root element <%s>, expected <malloc>' % root.tag)
    arenas = []
    for h in root.findall('heap'):
        fast = _typed(h, 'total', 'fast') or 0
        fast_n = _typed(h, 'total', 'fast', 'count') or 0
        rest = _typed(h, 'total', 'rest') or 0
        rest_n = _typed(h, 'total', 'rest', 'count') or 0
        system = _typed(h, 'system', 'current')
        if system is None:
            raise ExplainError('malloc_info: <heap nr="%s"> without <system type="current">' % h.get('nr'))
        sizes = []
        for s in h.findall('sizes/*'):
            sizes.append((_int(s, 'from'), _int(s, 'to'), _int(s, 'total'), _int(s, 'count')))
        a = OrderedDict()
        a['nr'] = _int(h, 'nr')
        a['system'] = system
        a['max_system'] = _typed(h, 'system', 'max')
        a['free_bytes'] = fast + rest
        a['fast_bytes'] = fast
        a['free_chunks'] = fast_n + rest_n
        a['in_use'] = max(0, system - fast - rest)
        a['aspace'] = _typed(h, 'aspace', 'total')
        a['subheaps'] = _typed(h, 'aspace', 'subheaps')
        a['sizes'] = sizes
        arenas.append(a)
    totals = OrderedDict()
    totals['mmap_bytes'] = _typed(root, 'total', 'mmap') or 0
    totals['mmap_chunks'] = _typed(root, 'total', 'mmap', 'count') or 0
    totals['system'] = _typed(root, 'system', 'current')
    if not arenas:
        raise ExplainError('malloc_info output has no <heap> (no arena)')
    return {'version': root.get('version'), 'arenas': arenas, 'totals': totals}


def pinned_free(arena, page=4096):
    """Free bytes malloc_trim(0) cannot return, estimated: each free chunk in a bin keeps about
    one partial page at its ends (shared with the live chunks around it), a chunk smaller than a
    page all of it. Fastbin chunks are consolidated by malloc_trim first, so they do not count."""
    pinned = sum(min(total, count * page) for _, _, total, count in arena['sizes'])
    return max(0, pinned - arena['fast_bytes'])


def large_free_share(arenas, large=LARGE_CHUNK):
    """(share of binned free bytes in chunks >= large, the smallest chunk size of the size class
    that holds most of them) over all arenas."""
    total = big = 0
    best = None
    for a in arenas:
        for frm, _, tot, _ in a['sizes']:
            total += tot
            if frm >= large:
                big += tot
                if best is None or tot > best[1]:
                    best = (frm, tot)
    return (float(big) / total if total else 0.0), (best[0] if best else None)


# ---------------------------------------------------------------------------------------------
# gdb


def find_gdb(explicit=None, environ=None):
    environ = os.environ if environ is None else environ
    want = explicit or environ.get('RETENTION_GDB')
    if want:
        if os.sep in want:
            if os.path.isfile(want) and os.access(want, os.X_OK):
                return want
            raise ExplainError('gdb not found: %s' % want)
        found = shutil.which(want, path=environ.get('PATH', os.defpath))
        if found:
            return found
        raise ExplainError('gdb not found: %s' % want)
    found = shutil.which('gdb', path=environ.get('PATH', os.defpath))
    if not found:
        raise ExplainError('gdb not found in PATH: install it (ci/install-deps does; apt-get install gdb, '
                           'dnf install gdb) or name it with --gdb PATH')
    return found


def gdb_script(libc_lo, libc_hi, dump_path, trim):
    """The gdb command file. Every call is cast (no debug info needed) and only made if `malloc`
    and `malloc_info` both resolve into glibc's object [libc_lo, libc_hi). A failing command
    aborts the file, so nothing runs on a bad value; gdb detaches at the end of the batch."""
    lines = [
        'set $rt_m = (unsigned long)&malloc',
        'printf "@@rt malloc=%lu\\n", $rt_m',
        'info symbol $rt_m',
        'set $rt_i = (unsigned long)&malloc_info',
        'printf "@@rt malloc_info=%lu\\n", $rt_i',
        'if $rt_m >= %d && $rt_m < %d && $rt_i >= %d && $rt_i < %d' % (libc_lo, libc_hi, libc_lo, libc_hi),
        '  printf "@@rt glibc=1\\n"',
        '  thread 1',
        '  set $rt_p = (char *)malloc((unsigned long)16)',
        '  set *(unsigned long *)$rt_p = 0',
        '  set *(unsigned long *)($rt_p + 8) = 0',
        '  set $rt_f = (void *)open_memstream((char **)$rt_p, (unsigned long *)($rt_p + 8))',
        '  set $rt_rc = (int)malloc_info((int)0, $rt_f)',
        '  set $rt_c = (int)fclose($rt_f)',
        '  set $rt_buf = *(char **)$rt_p',
        '  set $rt_len = *(unsigned long *)($rt_p + 8)',
        '  printf "@@rt info_rc=%d len=%lu\\n", $rt_rc, $rt_len',
        '  if $rt_len > 0',
        '    dump binary memory %s $rt_buf $rt_buf + $rt_len' % dump_path,
        '  end',
        '  call (void)free($rt_buf)',
        '  call (void)free($rt_p)',
    ]
    if trim:
        lines += [
            '  set $rt_t = (int)malloc_trim((unsigned long)0)',
            '  printf "@@rt trim=%d\\n", $rt_t',
        ]
    lines += [
        'else',
        '  printf "@@rt glibc=0\\n"',
        'end',
        'printf "@@rt done\\n"',
    ]
    return '\n'.join(lines) + '\n'


class GdbRun(object):
    def __init__(self):
        self.returncode = None
        self.stdout = ''
        self.stderr = ''
        self.timed_out = False
        self.killed = False
        self.pid = None
        self.timeout = None
        self.interrupted = False
        self.forced = False


def _signal(pid, sig, group=False):
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except OSError:
        pass


FUTEX_SYSCALL = {'x86_64': 202, 'i686': 240, 'i386': 240, 'aarch64': 98, 'armv7l': 240, 'ppc64le': 221,
                 'ppc64': 221, 's390x': 238, 'riscv64': 98}


def call_state(pid, machine=None):
    """What the target's main thread (the one gdb makes its calls on) is doing: 'gone'; 'stopped'
    (t/T: no call is running at this instant); 'lock-wait' (asleep in futex: a call waiting for a lock holds none
    of malloc's, so undoing it is safe); or 'working' (running, or in another syscall: a call
    there may hold an arena lock, and undoing it would leave the lock held for good)."""
    task = 'task/%d/' % pid
    st = state_of(pid)
    if st in (None, 'Z', 'X'):
        return 'gone'
    try:
        st = parse_stat_state(read_proc(pid, task + 'stat'))
    except ExplainError:
        pass
    if st in ('t', 'T'):
        return 'stopped'
    if st != 'S':
        return 'working'
    try:
        if 'futex' in read_proc(pid, task + 'wchan'):
            return 'lock-wait'
    except ExplainError:
        pass
    try:
        nr = read_proc(pid, task + 'syscall').split()[:1]
    except ExplainError:
        nr = []
    want = FUTEX_SYSCALL.get(machine or os.uname().machine)
    if nr and want is not None and nr[0] == str(want):
        return 'lock-wait'
    return 'working'


def run_gdb(gdb, pid, script_path, timeout, tmpdir, environ=None, poll=0.25, log=None):
    """gdb -nx -batch -p PID -x SCRIPT in a session of its own, output to files.

    At the timeout, a call that is asleep waiting for a lock is undone: the target
    gets INTERRUPT_SIGNAL, gdb stops on it (handle ... stop) and unwinds the call
    (unwindonsignal): the target is back where it was, the command file aborts and gdb detaches.
    A call that is working (malloc_trim over a huge heap) is left to finish, up to HARD_LIMIT x
    the timeout: undoing it would leave an arena lock held and the process would hang at its next
    malloc. (SIGINT to gdb is no good: gdb 13 can hang or abort on it mid-call; killing gdb
    mid-call leaves the target running the call with a return address that no longer exists.)
    A signal that arrives while gdb is not resuming the target stays pending and is delivered
    after detach: SIGURG is ignored by default. gdb's process group is killed only if gdb has not
    finished INTERRUPT_GRACE_S after the signal (the kernel then detaches the target; explain()
    makes sure it is not left stopped)."""
    environ = os.environ if environ is None else environ
    env = dict((k, v) for k, v in environ.items()
               if k not in ('DEBUGINFOD_URLS', 'GDBHISTFILE', 'LD_PRELOAD') and not k.startswith('LC_'))
    env['LC_ALL'] = 'C'
    env['LANG'] = 'C'
    argv = [gdb, '-nx', '-batch', '-iex', 'set auto-load off', '-iex', 'set debuginfod enabled off',
            '-ex', 'set pagination off', '-ex', 'set width 0', '-ex', 'set confirm off',
            '-ex', 'set unwindonsignal on', '-ex', 'handle %s stop print pass' % INTERRUPT_SIGNAL.name,
            '-p', str(pid), '-x', script_path]
    res = GdbRun()
    res.timeout = timeout
    out_path = os.path.join(tmpdir, 'gdb.out')
    err_path = os.path.join(tmpdir, 'gdb.err')

    def interrupt(proc):
        _signal(pid, INTERRUPT_SIGNAL)
        res.interrupted = True
        try:
            return proc.wait(timeout=INTERRUPT_GRACE_S)
        except subprocess.TimeoutExpired:
            res.killed = True
            _signal(proc.pid, signal.SIGKILL, group=True)
            return proc.wait()

    with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
        try:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    close_fds=True, start_new_session=True, cwd=tmpdir)
        except OSError as e:
            raise ExplainError('cannot run %s: %s' % (gdb, e.strerror or e))
        res.pid = proc.pid
        try:
            try:
                res.returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                res.timed_out = True
                hard = time.monotonic() + (HARD_LIMIT - 1) * timeout
                told = False
                while res.returncode is None:
                    # Only a call asleep on a lock is undone at once. A stopped thread may be
                    # about to be resumed into a call (gdb is between two calls), and a call that
                    # runs may hold a lock: both wait for the hard limit.
                    state = call_state(pid)
                    if state in ('lock-wait', 'gone') or time.monotonic() >= hard:
                        res.forced = state not in ('lock-wait', 'gone')
                        res.returncode = interrupt(proc)
                        break
                    if not told and log is not None:
                        told = True
                        log('gdb is still busy with process %d after %g s (a call working through a big heap?); '
                            'waiting up to %g s more: undoing a working call could leave malloc\'s lock held'
                            % (pid, timeout, (HARD_LIMIT - 1) * timeout))
                    try:
                        res.returncode = proc.wait(timeout=poll)
                    except subprocess.TimeoutExpired:
                        pass
        finally:
            if proc.returncode is None:
                # interrupted (^C) while gdb runs: undo the call, whatever it is doing
                interrupt(proc)
            _signal(proc.pid, signal.SIGKILL, group=True)
    for path, attr in ((out_path, 'stdout'), (err_path, 'stderr')):
        with open(path, 'rb') as f:
            setattr(res, attr, f.read().decode('utf-8', 'replace'))
    return res


def parse_gdb_output(stdout):
    """The @@rt key=value markers and the `info symbol` line."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith('@@rt '):
            for item in line[5:].split():
                k, sep, v = item.partition('=')
                out[k] = v if sep else '1'
        m = re.match(r'^(\S+?)(?: \+ \d+)? in section (\S+)(?: of (.+))?$', line.strip())
        if m and 'symbol' not in out:
            out['symbol'] = m.group(1)
            out['symbol_object'] = m.group(3)
    return out


def gdb_failure(pid, res, markers):
    """The exception for a gdb run that did not get the figures, or None if it did."""
    text = res.stdout + '\n' + res.stderr
    if 'ptrace: Operation not permitted' in text or 'Could not attach to process' in text:
        return ExplainError('cannot attach to process %d: ptrace: Operation not permitted (%s)'
                            % (pid, ptrace_hint(pid)))
    if 'ptrace: No such process' in text:
        return ProcessGone('process %d exited before gdb could attach' % pid)
    if re.search(r'exited (normally|with code)|program being debugged exited while in a function', text):
        return ProcessGone('process %d exited while gdb was attached' % pid)
    if 'done' in markers:
        return None
    if res.timed_out:
        if res.killed:
            how = 'gdb did not stop on %s and was killed' % INTERRUPT_SIGNAL.name
        elif res.forced:
            how = ('gdb was still busy at %d x the timeout and was interrupted; if a call was running, '
                   'malloc\'s lock may stay held' % HARD_LIMIT)
        else:
            how = 'the call was waiting for a lock and was undone'
        return ExplainError('gdb did not finish within %g s (%s); another thread of process %d may hold '
                            'the allocator\'s lock: try again, or with a longer --timeout' % (res.timeout, how, pid))
    if 'signaled while in a function called from GDB' in text or \
            'stopped while in a function called from GDB' in text:
        m = re.search(r'received signal (\w+)', text)
        return ExplainError('process %d got %s during a call from gdb; gdb undid the call and detached: '
                            'try again' % (pid, m.group(1) if m else 'a signal'))
    if 'malloc' in markers and 'malloc_info' not in markers and 'No symbol "malloc_info"' in text:
        return None  # not glibc: reported as such
    if re.search(r'No symbol "malloc" in current context|No symbol table is loaded', text):
        return ExplainError('gdb cannot find malloc in process %d (a static binary without symbols?)' % pid)
    errors = [ln.strip() for ln in res.stderr.splitlines()
              if ln.strip() and not ln.startswith(('warning:', '[', 'Using host', 'Download'))
              and not re.match(r'^\d+\s', ln)]
    last = errors[-1] if errors else 'exit status %s' % res.returncode
    return ExplainError('gdb failed on process %d: %s' % (pid, last))


# ---------------------------------------------------------------------------------------------
# The target's state


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
        try:
            tracer = int(status.get('TracerPid', '0'))
        except ValueError:
            tracer = 0
        if tracer and os.path.exists('/proc/%d' % tracer):
            return None  # someone else's debugger: not ours to resume
        try:
            os.kill(pid, sig)
            sent = True
        except OSError:
            return None
        time.sleep(0.05)
    raise ExplainError('process %d is still stopped (state %s) after SIGCONT' % (pid, state_of(pid)))


# ---------------------------------------------------------------------------------------------
# Figures and verdict


def object_of(addr, mappings):
    for m in mappings:
        if m.start <= addr < m.end:
            return m.path or '[anonymous]'
    return None


def object_range(mappings, path):
    ms = [m for m in mappings if m.path == path]
    if not ms:
        return 0, 0
    return min(m.start for m in ms), max(m.end for m in ms)


def libc_path(mappings, exe=None):
    """The mapped glibc (libc.so.6, libc-2.17.so), else the executable (a static binary)."""
    for m in mappings:
        base = os.path.basename(m.path)
        if re.match(r'^libc(\.so(\.\d+)*|-\d[\d.]*\.so)$', base):
            return m.path
    if exe:
        for m in mappings:
            if m.path in (exe, exe + ' (deleted)'):
                return m.path
    return None


def allocator_name(path):
    if not path:
        return 'unknown'
    base = os.path.basename(path).lower()
    for name in KNOWN_ALLOCATORS:
        if name in base:
            return name
    return os.path.basename(path)


def figures(info, heaps_by_arena, order, main_resident, rss, rss_anon, page=4096, main_ranges=()):
    """Combines malloc_info with the resident bytes of the arena mappings. order: the thread
    arenas' addresses in malloc_info order, or None (matched by size where unambiguous)."""
    arenas = info['arenas']
    rows = []
    resident_by_nr = {0: main_resident}
    ranges_by_nr = {0: list(main_ranges)}
    thread = [a for a in arenas if a['nr'] != 0]
    matched = 'address'
    if order is not None and len(order) == len(thread):
        for a, addr in zip(thread, order):
            resident_by_nr[a['nr']] = heaps_by_arena[addr]['resident']
            ranges_by_nr[a['nr']] = heaps_by_arena[addr]['ranges']
    else:
        matched = 'size'
        pool = list(heaps_by_arena.values())
        for a in thread:
            same = [g for g in pool if g['size'] == a['system']]
            twins = [b for b in thread if b['system'] == a['system']]
            if len(same) == 1 and len(twins) == 1:
                resident_by_nr[a['nr']] = same[0]['resident']
                ranges_by_nr[a['nr']] = same[0]['ranges']
    arena_resident = main_resident + sum(g['resident'] for g in heaps_by_arena.values())
    for a in arenas:
        r = OrderedDict()
        r['nr'] = a['nr']
        r['kind'] = 'main' if a['nr'] == 0 else 'thread'
        r['size_bytes'] = a['system']
        r['in_use_bytes'] = a['in_use']
        r['free_bytes'] = a['free_bytes']
        r['free_chunks'] = a['free_chunks']
        r['heaps'] = 1 if a['nr'] == 0 else (a['subheaps'] or 1)
        r['resident_bytes'] = resident_by_nr.get(a['nr'])
        r['mappings'] = ['%x-%x' % se for se in ranges_by_nr.get(a['nr'], ())]
        rows.append(r)
    in_use = sum(a['in_use'] for a in arenas)
    free = sum(a['free_bytes'] for a in arenas)
    mmapped = info['totals']['mmap_bytes']
    pinned = sum(pinned_free(a, page) for a in arenas)
    free_resident = min(free, max(0, arena_resident - in_use))
    trimmable = min(free_resident, max(0, arena_resident - in_use - pinned))
    f = OrderedDict()
    f['rss_bytes'] = rss
    f['rss_anon_bytes'] = rss_anon
    f['live_bytes'] = in_use + mmapped
    f['in_use_arena_bytes'] = in_use
    f['mmapped_bytes'] = mmapped
    f['mmapped_chunks'] = info['totals']['mmap_chunks']
    f['free_bytes'] = free
    f['arena_bytes'] = sum(a['system'] for a in arenas)
    f['arena_resident_bytes'] = arena_resident
    f['free_resident_bytes'] = free_resident
    f['trimmable_bytes'] = trimmable
    f['outside_malloc_anon_bytes'] = (max(0, rss_anon - arena_resident - mmapped)
                                      if rss_anon is not None else None)
    f['arenas'] = rows
    f['arenas_matched_by'] = matched
    share, smallest = large_free_share(arenas)
    f['large_free_share'] = round(share, 4)
    f['large_free_from'] = smallest
    return f


def shim_path(environ=None):
    environ = os.environ if environ is None else environ
    build = environ.get('RETENTION_BUILD_DIR') or os.path.join(REPO, 'build')
    return os.path.join(os.path.abspath(build), 'shim', 'libtrimshim.so')


def judge(f, pid, shim=None):
    """(verdict, why, [fixes]) from the figures of a glibc malloc process."""
    rss = f['rss_bytes'] or 1
    fr, live, trim = f['free_resident_bytes'], f['live_bytes'], f['trimmable_bytes']
    shim = shim or shim_path()
    fixes = []
    large_fix = None
    if f['large_free_share'] >= 0.5 and f['large_free_from']:
        thr = max(4096, f['large_free_from'] // 4096 * 4096)
        large_fix = ('most free chunks are large (%s and up): if the program frees blocks that big, '
                     'GLIBC_TUNABLES=glibc.malloc.mmap_threshold=%d (or MALLOC_MMAP_THRESHOLD_=%d) gives each '
                     'block a mapping of its own that free() returns; an explicit threshold also stops '
                     'glibc raising it dynamically (mind M_MMAP_MAX, 65536 mappings)' % (
                         human_bytes(f['large_free_from']), thr, thr))
    thread_rows = [r for r in f['arenas'] if r['kind'] == 'thread' and r['resident_bytes'] is not None]
    busy = [r for r in thread_rows if fr and r['resident_bytes'] - r['in_use_bytes'] >= ARENA_SHARE * fr]
    if fr >= SIGNIFICANT_BYTES and fr >= RETENTION_SHARE * rss:
        verdict = VERDICT_RETENTION
        if trim >= TRIMMABLE_SHARE * fr:
            why = ('%s of the %s RSS (%s) is free memory glibc malloc keeps resident, not a leak: the '
                   'program holds only %s; malloc_trim(0) would return about %s' % (
                       human_bytes(fr), human_bytes(rss), pct(float(fr) / rss), human_bytes(live),
                       human_bytes(trim)))
            fixes.append('now, in this process: runner/retention explain %d --trim (calls malloc_trim(0) through gdb)' % pid)
            fixes.append('in the program: call malloc_trim(0) after freeing much memory, or periodically '
                         '(what the founding report did)')
            fixes.append('without changing the program: LD_PRELOAD=%s (the trim shim: trims when the process '
                         'idles)%s' % (shim, '' if os.path.isfile(shim) else '; not built yet: cmake --build build'))
            if large_fix:
                fixes.append(large_fix)
        else:
            why = ('%s of the %s RSS (%s) is free memory glibc malloc keeps resident, not a leak, but it '
                   'sits on pages shared with the %s still in use (fragmentation): malloc_trim(0) would '
                   'return only about %s' % (human_bytes(fr), human_bytes(rss), pct(float(fr) / rss),
                                             human_bytes(live), human_bytes(trim)))
            if large_fix:
                fixes.append(large_fix)
            fixes.append('keep long-lived small objects away from large short-lived blocks: allocate them '
                         'together (a pool, or before the blocks), so freed blocks coalesce into whole pages')
            fixes.append('or preload another allocator (jemalloc, tcmalloc) and measure: '
                         'runner/retention compare shows what each keeps')
        if len(busy) >= 2:
            fixes.append('%d thread arenas each keep free memory that threads of the other arenas cannot '
                         'reuse: if RSS grows with the number of threads, MALLOC_ARENA_MAX=2 (or GLIBC_TUNABLES='
                         'glibc.malloc.arena_max=2) lets threads share it; it returns nothing by itself '
                         '(trim does)' % len(busy))
    elif live >= SIGNIFICANT_BYTES and live >= LIVE_SHARE * rss:
        verdict = VERDICT_LIVE
        why = ('%s of the %s RSS (%s) is allocations still in use; glibc keeps only %s free and resident. '
               'This is not allocator retention: trimming will not help' % (
                   human_bytes(live), human_bytes(rss), pct(float(live) / rss), human_bytes(fr)))
        fixes.append('run explain again later: if the live bytes keep growing, it is a leak or an unbounded '
                     'cache; find the allocation sites with heaptrack or valgrind --tool=massif (memcheck '
                     'reports only what is unreachable at exit)')
    else:
        verdict = VERDICT_NONE
        anon_out = f['outside_malloc_anon_bytes']
        parts = ['live allocations %s' % human_bytes(live), 'free and resident in malloc %s' % human_bytes(fr)]
        if f['rss_anon_bytes'] is not None:
            parts.append('file-backed (code, libraries) %s' % human_bytes(max(0, rss - f['rss_anon_bytes'])))
        if anon_out is not None:
            parts.append('anonymous outside malloc (stacks, direct mmap) %s' % human_bytes(anon_out))
        why = 'of the %s RSS: %s; nothing here for a malloc fix' % (human_bytes(rss), ', '.join(parts))
    if verdict != VERDICT_RETENTION and fr >= SIGNIFICANT_BYTES:
        fixes.append('still, %s is free and resident in malloc; malloc_trim(0) would return about %s' % (
            human_bytes(fr), human_bytes(trim)))
    return verdict, why, fixes


def not_glibc_fixes(name):
    generic = 'glibc\'s malloc_trim, the trim shim and MALLOC_* tunables do not apply: ask the allocator itself'
    specific = {
        'jemalloc': 'jemalloc: MALLOC_CONF=background_thread:true (purges while idle) or a shorter '
                    'dirty_decay_ms/muzzy_decay_ms; mallctl("arena.<i>.purge") from the program; '
                    'stats with MALLOC_CONF=stats_print:true',
        'tcmalloc': 'tcmalloc: MallocExtension::instance()->ReleaseFreeMemory() from the program, or '
                    'TCMALLOC_RELEASE_RATE (higher returns sooner)',
        'mimalloc': 'mimalloc: mi_collect(true) from the program, MIMALLOC_PURGE_DELAY=0 (older: '
                    'MIMALLOC_RESET_DELAY) to return freed pages at once; MIMALLOC_SHOW_STATS=1',
    }
    out = [generic]
    if name in specific:
        out.append(specific[name])
    out.append('runner/retention compare shows what each allocator keeps on the project\'s cases')
    return out


# ---------------------------------------------------------------------------------------------
# The command


def parse_pid(text):
    s = (text or '').strip()
    if not re.match(r'^\d+$', s):
        raise UsageError("PID must be a process id (a positive number), not '%s'" % text)
    pid = int(s)
    if pid <= 0:
        raise UsageError('PID must be a positive process id, not %s' % text)
    return pid


class Snapshot(object):
    """What /proc says about the process before gdb attaches."""

    def __init__(self, pid):
        status = parse_status(read_proc(pid, 'status'))
        self.requested = pid
        self.pid = pid
        self.notes = []
        try:
            tgid = int(status.get('Tgid', pid))
        except ValueError:
            tgid = pid
        if tgid != pid:
            self.notes.append('%d is a thread of process %d: explaining the process' % (pid, tgid))
            self.pid = pid = tgid
            status = parse_status(read_proc(pid, 'status'))
        self.status = status
        self.comm = read_proc(pid, 'comm').strip()
        self.state = parse_stat_state(read_proc(pid, 'stat'))
        if self.state in ('Z', 'X', 'x'):
            raise ProcessGone('process %d (%s) has exited (state %s)' % (pid, self.comm, self.state))
        if pid == os.getpid():
            raise UsageError('%d is retention itself' % pid)
        try:
            tracer = int(status.get('TracerPid', '0'))
        except ValueError:
            tracer = 0
        if tracer:
            try:
                who = read_proc(tracer, 'comm').strip()
            except ExplainError:
                who = '?'
            raise ExplainError('process %d is already traced by process %d (%s): detach that debugger first'
                               % (pid, tracer, who))
        if self.state == 'T':
            raise ExplainError('process %d (%s) is stopped (state T): resume it first (kill -CONT %d); '
                               'explain leaves stopped processes alone' % (pid, self.comm, pid))
        self.mappings = parse_maps(read_proc(pid, 'smaps'))
        if not self.mappings:
            if state_of(pid) in (None, 'Z', 'X'):
                raise ProcessGone('process %d has exited' % pid)
            raise ExplainError('process %d (%s) has no memory mappings (a kernel thread?)' % (pid, self.comm))
        self.rss, self.rss_anon = read_rss(pid)
        try:
            self.exe = os.readlink('/proc/%d/exe' % pid)
        except OSError:
            self.exe = None
        self.word = exe_word_size(pid)
        self.page = os.sysconf('SC_PAGE_SIZE')
        self.main_resident = sum(m.rss for m in self.mappings if m.path == '[heap]')
        with MemReader(pid) as mem:
            self.heaps = find_heaps(self.mappings, mem.read, self.word, self.page)
            self.groups = arena_groups(self.heaps)
            self.order = order_arenas(self.groups, mem.read, self.word)
            self.mem_readable = mem.fd is not None


def explain(pid, trim=False, gdb=None, timeout=DEFAULT_TIMEOUT_S, environ=None, log=None):
    """Everything explain reports, as an OrderedDict (the --json document)."""
    environ = os.environ if environ is None else environ
    snap = Snapshot(pid)
    pid = snap.pid
    gdb_path = find_gdb(gdb, environ)
    lib = libc_path(snap.mappings, snap.exe)
    lo, hi = object_range(snap.mappings, lib) if lib else (0, 0)
    tmpdir = tempfile.mkdtemp(prefix='retention-explain-')
    if re.search(r'\s', tmpdir):
        shutil.rmtree(tmpdir, ignore_errors=True)
        tmpdir = tempfile.mkdtemp(prefix='retention-explain-', dir='/tmp')
    notes = list(snap.notes)
    try:
        dump = os.path.join(tmpdir, 'malloc_info.xml')
        script = os.path.join(tmpdir, 'explain.gdb')
        with open(script, 'w') as f:
            f.write(gdb_script(lo, hi, dump, trim))
        rss_before = snap.rss
        res = None
        try:
            res = run_gdb(gdb_path, pid, script, timeout, tmpdir, environ, log=log)
        finally:
            # On every path, also ^C and errors: the target must not stay stopped.
            if os.path.exists('/proc/%d' % pid):
                note = ensure_running(pid, snap.state)
                if note:
                    notes.append(note)
        markers = parse_gdb_output(res.stdout)
        failure = gdb_failure(pid, res, markers)
        if failure is not None and not isinstance(failure, ProcessGone):
            # A process that is being killed as gdb fails may take a moment to be gone: tell
            # "it exited" from a gdb problem.
            for _ in range(20):
                if state_of(pid) in (None, 'Z', 'X'):
                    break
                time.sleep(0.05)
        if state_of(pid) in (None, 'Z', 'X'):
            # whatever gdb said about it ("Couldn't get registers: No such process", ...)
            if isinstance(failure, ProcessGone):
                raise failure
            raise ProcessGone('process %d exited while gdb was attached' % pid)
        if failure is not None:
            raise failure
        doc = OrderedDict()
        doc['pid'] = pid
        doc['command'] = snap.comm
        doc['exe'] = snap.exe
        malloc_addr = int(markers['malloc']) if markers.get('malloc', '').isdigit() else None
        malloc_obj = object_of(malloc_addr, snap.mappings) if malloc_addr is not None else None
        malloc_obj = malloc_obj or markers.get('symbol_object') or snap.exe
        glibc = markers.get('glibc') == '1'
        alloc = OrderedDict()
        alloc['malloc_object'] = malloc_obj
        alloc['glibc'] = glibc
        alloc['name'] = 'glibc' if glibc else allocator_name(malloc_obj)
        alloc['libc'] = lib
        doc['allocator'] = alloc
        if not glibc:
            doc['rss_bytes'] = snap.rss
            doc['rss_anon_bytes'] = snap.rss_anon
            doc['verdict'] = VERDICT_NOT_GLIBC
            if 'malloc_info' not in markers:
                doc['why'] = ('malloc in this process is %s and there is no malloc_info: not glibc\'s malloc'
                              % malloc_obj)
            else:
                doc['why'] = ('malloc in this process resolves to %s (%s), not to glibc (%s): glibc\'s figures '
                              'would describe an arena nobody uses' % (alloc['name'], malloc_obj, lib))
            doc['fixes'] = not_glibc_fixes(alloc['name'])
            if trim:
                doc['trim'] = OrderedDict([('called', False), ('why', 'malloc is not glibc\'s'),
                                           ('rss_before_bytes', rss_before), ('rss_after_bytes', None)])
            doc['notes'] = notes
            return doc
        try:
            with open(dump, 'rb') as f:
                xml_text = f.read().decode('utf-8', 'replace')
        except (IOError, OSError):
            raise ExplainError('gdb did not write malloc_info\'s output (%s)' % markers.get('info_rc', '?'))
        info = parse_malloc_info(xml_text)
        if not snap.mem_readable:
            notes.append('/proc/%d/mem was not readable: thread arena mappings were not identified' % pid)
        f = figures(info, snap.groups, snap.order, snap.main_resident, snap.rss, snap.rss_anon, snap.page,
                    [(m.start, m.end) for m in snap.mappings if m.path == '[heap]'])
        doc.update(f)
        verdict, why, fixes = judge(f, pid, shim_path(environ))
        doc['verdict'] = verdict
        doc['why'] = why
        doc['fixes'] = fixes
        if trim:
            rss_after, _ = read_rss(pid)
            t = OrderedDict()
            t['called'] = 'trim' in markers
            t['returned'] = int(markers['trim']) if markers.get('trim', '').lstrip('-').isdigit() else None
            t['rss_before_bytes'] = rss_before
            t['rss_after_bytes'] = rss_after
            t['released_bytes'] = rss_before - rss_after
            doc['trim'] = t
        doc['notes'] = notes
        return doc
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _col(v):
    return '?' if v is None else human_bytes(v)


def render(doc):
    """The text report: figures, arenas, verdict, fixes, trim."""
    out = []
    alloc = doc['allocator']
    out.append('process %d (%s)  malloc: %s%s' % (
        doc['pid'], doc['command'], alloc['name'],
        '' if alloc['name'] == os.path.basename(alloc['malloc_object'] or '') else ' (%s)' % alloc['malloc_object']))
    rss, anon = doc.get('rss_bytes'), doc.get('rss_anon_bytes')
    out.append('  %-34s %s%s' % ('RSS', _col(rss), '' if anon is None else
                                 '  (anonymous %s, file-backed %s)' % (human_bytes(anon), human_bytes(rss - anon))))
    if alloc['glibc']:
        n = doc['mmapped_chunks']
        out.append('  %-34s %s  (in arenas %s, %s)' % (
            'live bytes (per the allocator)', human_bytes(doc['live_bytes']), human_bytes(doc['in_use_arena_bytes']),
            'no mmapped chunks' if not n else 'mmapped chunks %s in %d' % (human_bytes(doc['mmapped_bytes']), n)))
        n = len(doc['arenas'])
        out.append('  %-34s %s  in %d arena%s' % ('free bytes held by malloc', human_bytes(doc['free_bytes']),
                                                   n, '' if n == 1 else 's'))
        out.append('  %-34s %s' % ('resident in arena mappings', human_bytes(doc['arena_resident_bytes'])))
        out.append('  %-34s %s  = %s of RSS' % ('  of which free (resident - live)', human_bytes(doc['free_resident_bytes']),
                                                pct(float(doc['free_resident_bytes']) / (rss or 1))))
        out.append('  %-34s ~%s (est.)' % ('malloc_trim(0) would return', human_bytes(doc['trimmable_bytes'])))
        out.append('')
        out.append('  arena  kind    heaps   size      in use    free      resident')
        for r in doc['arenas']:
            out.append('  %-5d  %-6s  %6s  %-8s  %-8s  %-8s  %s' % (
                r['nr'], r['kind'], '[heap]' if r['kind'] == 'main' else r['heaps'], human_bytes(r['size_bytes']),
                human_bytes(r['in_use_bytes']), human_bytes(r['free_bytes']), _col(r['resident_bytes'])))
        if any(r['resident_bytes'] is None for r in doc['arenas']):
            out.append('  (? = arenas of the same size could not be told apart; the total above counts them)')
    out.append('')
    out.append('verdict: %s' % doc['verdict'])
    out.append('  %s' % doc['why'])
    if doc['fixes']:
        out.append('fix:')
        for fx in doc['fixes']:
            out.append('  - %s' % fx)
    t = doc.get('trim')
    if t is not None:
        out.append('')
        if not t['called']:
            out.append('trim: not called (%s)' % t.get('why', 'gdb did not reach it'))
        else:
            out.append('trim: malloc_trim(0) returned %s; RSS %s -> %s (%s%s); the figures above are from '
                       'before it' % (t['returned'], human_bytes(t['rss_before_bytes']),
                                      human_bytes(t['rss_after_bytes']), '-' if t['released_bytes'] >= 0 else '+',
                                      human_bytes(abs(t['released_bytes']))))
    for n in doc.get('notes') or ():
        out.append('note: %s' % n)
    return out


def add_parser(sub):
    p = sub.add_parser('explain', help='attach to a live process with gdb: is its RSS a leak, or memory '
                                       'glibc malloc keeps after free? (--trim gives it back)')
    p.add_argument('pid', metavar='PID', help='the process to explain')
    p.add_argument('--trim', action='store_true', help='call malloc_trim(0) in the process and report RSS '
                                                       'before and after')
    p.add_argument('--json', action='store_true', help='print the report as JSON')
    p.add_argument('--gdb', metavar='PATH', help='the gdb executable (default: $RETENTION_GDB, else gdb in PATH)')
    p.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT_S, metavar='SECONDS',
                   help='give up on gdb after this long (default %d); the call in the process is interrupted '
                        'and unwound' % DEFAULT_TIMEOUT_S)
    return p


def cmd(args, out=None, err=None):
    """The explain subcommand: 0 explained, 1 could not (one line on stderr), 2 bad usage."""
    out = out or sys.stdout
    err = err or sys.stderr
    pid = parse_pid(args.pid)
    if not args.timeout > 0:
        raise UsageError('--timeout must be a positive number of seconds')
    try:
        # A progress note for someone watching; a script sees one error line or none.
        tty = hasattr(err, 'isatty') and err.isatty()
        doc = explain(pid, trim=args.trim, gdb=args.gdb, timeout=args.timeout,
                      log=(lambda msg: (err.write('retention: %s\n' % msg), err.flush())) if tty else None)
    except ExplainError as e:
        err.write('retention: %s\n' % e)
        return 1
    except (OSError, IOError, ValueError) as e:
        err.write('retention: explain %d failed: %s\n' % (pid, e))
        return 1
    if args.json:
        out.write(json.dumps(doc, indent=2) + '\n')
    else:
        for line in render(doc):
            out.write(line + '\n')
    out.flush()
    return 0
