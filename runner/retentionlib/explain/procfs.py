"""The text of /proc/PID files, parsed: pure functions of the text (tests/test_explain.py feeds
them stored samples). Reading them from a live process is target.py's job."""

import re
from collections import OrderedDict

# A figure of /proc: ASCII decimal digits, at most 20 (any 64-bit value). str.isdigit() and \d also
# take other scripts' digits ('²' even fails int()), and int() refuses past 4300 digits (3.11+).
_DIGITS = re.compile(r'^[0-9]{1,20}$')
_KB_LINE = re.compile(r'^(\w+):\s+([0-9]{1,20}) kB\s*$')


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


def tracer_pid(status):
    """The pid of the process tracing this one (a debugger), 0 when none; status: parse_status's."""
    try:
        return int(status.get('TracerPid', '0'))
    except ValueError:
        return 0


def parse_kb_fields(text):
    """'Key:   123 kB' lines (smaps_rollup, one smaps entry) -> {Key: bytes}."""
    out = OrderedDict()
    for line in text.splitlines():
        m = _KB_LINE.match(line)
        if m:
            out[m.group(1)] = int(m.group(2)) * 1024
    return out


_MAP_LINE = re.compile(r'^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+([0-9a-f]+)\s+(\S+)\s+([0-9]{1,20})\s*(.*)$')


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
            f = _KB_LINE.match(line)
            if f:
                out[-1].fields[f.group(1)] = int(f.group(2)) * 1024
    return out


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


# Shared memory as /proc names its mappings: POSIX shm, memfd, System V segments, and
# MAP_SHARED|MAP_ANONYMOUS (shown as /dev/zero (deleted)).
_SHMEM = ('/dev/shm/', '/memfd:', '/SYSV', '/dev/zero', '[anon_shmem', '/anon_hugepage', '/run/shm/')


def shmem_name(m):
    """What a mapping of shared memory is, in words, or None if it is not shared memory."""
    path = m.path[:-len(' (deleted)')] if m.path.endswith(' (deleted)') else m.path
    if not path.startswith(_SHMEM):
        return None
    if path.startswith('/dev/zero') or path.startswith('[anon_shmem'):
        return 'anonymous shared memory (mmap MAP_SHARED|MAP_ANONYMOUS)'
    if path.startswith('/SYSV'):
        return 'System V segment key 0x%s' % path[5:]
    if path.startswith('/memfd:'):
        return 'memfd %s' % path[7:]
    return path + (' (deleted)' if m.path.endswith(' (deleted)') else '')


def shared_memory(mappings, limit=5):
    """[(name, resident bytes, mappings)] of the shared memory the process maps, largest first."""
    out = OrderedDict()
    for m in mappings:
        name = shmem_name(m)
        if name is None:
            continue
        r = out.setdefault(name, [0, 0])
        r[0] += m.fields.get('Rss', 0)
        r[1] += 1
    rows = sorted(((k, v[0], v[1]) for k, v in out.items()), key=lambda t: -t[1])
    return rows[:limit]


def rss_split(rollup, status):
    """RSS split into anonymous (what malloc can own, and the rest: stacks, direct mmaps), shared
    memory (RssShmem: neither code nor malloc's) and file-backed, in bytes: {'rss', 'anon',
    'shmem', 'file'} (None where /proc does not say). rollup: parse_kb_fields(smaps_rollup);
    status: parse_status(status) (its RssShmem is in kB, i.e. KiB)."""
    rss = rollup.get('Rss')
    anon = rollup.get('Anonymous')
    shmem = None
    v = status.get('RssShmem', '')
    m = re.match(r'^([0-9]{1,20})\s*kB$', v)
    if m:
        shmem = int(m.group(1)) * 1024
    if rss is None:
        return {'rss': None, 'anon': None, 'shmem': shmem, 'file': None}
    file_b = None
    if anon is not None:
        file_b = max(0, rss - anon - (shmem or 0))
    return {'rss': rss, 'anon': anon, 'shmem': shmem, 'file': file_b}


def environ_lookup(data, name):
    """The value of `name` in /proc/PID/environ's bytes (NUL-separated NAME=VALUE), or None: the
    first entry wins, as getenv and libtrimshim's own lookup take it. bytes in, bytes out: a path
    need not be UTF-8."""
    want = name.encode('ascii') + b'='
    for entry in data.split(b'\0'):
        if entry.startswith(want):
            return entry[len(want):]
    return None


def parse_stat_starttime(text):
    """/proc/PID/stat's starttime (field 22): clock ticks after boot; None if it cannot be read."""
    rest = text[text.rfind(')') + 1:].split()
    # rest[0] is field 3 (state), so field 22 is rest[19]
    if len(rest) < 20 or not _DIGITS.match(rest[19]):
        return None
    return int(rest[19])


def parse_btime(text):
    """/proc/stat's btime: the Unix time the system booted; None if absent."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == 'btime' and _DIGITS.match(parts[1]):
            return int(parts[1])
    return None


def innermost_pid(status, pid):
    """The process's PID as it sees itself (the last NSpid field: a container's PID namespace),
    from parse_status's dict; pid when the kernel does not say (Linux < 4.1)."""
    parts = status.get('NSpid', '').split()
    if parts and _DIGITS.match(parts[-1]):
        return int(parts[-1])
    return pid
