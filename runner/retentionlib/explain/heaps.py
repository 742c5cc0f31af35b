"""glibc's arena heaps found in the target's memory: a non-main arena heap starts at a
HEAP_MAX-aligned address (64 MiB on 64-bit) with a heap_info header {ar_ptr, prev, size,
mprotect_size}, read through /proc/PID/mem and validated, so only real arena heaps count; and the
order malloc_info numbers the arenas in, from the malloc_state chain."""

import os
import struct
from collections import OrderedDict


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
    """The thread arenas in the order malloc_info numbers them (main_arena.next first), or None
    (arena_chain)."""
    chain = arena_chain(groups, read, word, span)
    return chain[0] if chain is not None else None


def arena_chain(groups, read, word=8, span=4096):
    """(thread arenas in the order malloc_info numbers them (main_arena.next first), the byte
    offset of malloc_state.next, main_arena's address), found by following malloc_state.next.
    Its offset differs between glibc versions, so it is found: the offset k where, for every
    arena, word k+3 is system_mem (== the sum of its heap sizes, known from heap_info), word k+4
    (max_system_mem) is not below it, and the words k form one chain through all arenas that
    ends at one address outside them (main_arena). None if not found; ([], None, None) without
    thread arenas."""
    if not groups:
        return [], None, None
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
            return order, k * word, outside[0]
    return None
