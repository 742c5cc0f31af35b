"""glibc's heap read from the stopped target's memory (/proc/PID/mem), without calling anything in
it and without debug info: every arena's chunks, which are in use, free in a bin, in a fastbin or
in a thread's tcache, and from them, with /proc/PID/pagemap, exactly which resident pages
malloc_trim(0) would give back and which live chunks keep the rest.

What it relies on is glibc's own layout (64-bit, glibc 2.26 and later):
  malloc_chunk    {prev_size, size | PREV_INUSE 1 | IS_MMAPPED 2 | NON_MAIN_ARENA 4, fd, bk,
                  fd_nextsize, bk_nextsize}; a chunk is in use when the next chunk's PREV_INUSE
                  bit is set (tcache and fastbin chunks look in use that way).
  malloc_state    {mutex, flags, [have_fastchunks 2.27+], fastbinsY[10], top, last_remainder,
                  bins[254], binmap[4], next, next_free, attached_threads, system_mem,
                  max_system_mem}: found from `next` (heaps.arena_chain locates it).
  heap_info       {ar_ptr, prev, size, mprotect_size} at the start of each 64 MiB thread heap;
                  an arena's malloc_state follows the first heap's header.
  tcache          tcache_perthread_struct {counts[64] (uint16 2.30+, char before), entries[64]},
                  a chunk of its own in the arena of its thread; entries point at the chunk's
                  user memory; next pointers, like fastbin fd pointers, are stored as
                  (address of the pointer >> 12) ^ pointer since 2.32.
  main_arena      in libc's data, found by its bins: an empty bin's fd and bk point at the bin
                  itself (16 bytes before them), so main_arena shows as a run of such pairs.
  mp_             malloc_par, for the mmapped chunks' total: {..., n_mmaps, n_mmaps_max,
                  max_n_mmaps, no_dyn_threshold, mmapped_mem, max_mmapped_mem, sbrk_base,
                  tcache_bins, tcache_max_bytes, tcache_count, ...}, found by sbrk_base == the
                  heap's start.
and malloc_trim(0)'s own rule: for every free chunk (fastbins consolidated first), the pages
wholly inside [chunk + sizeof(malloc_chunk), chunk end) are dropped (MADV_DONTNEED); the main
arena's top chunk is cut back to under one page above MINSIZE (sbrk); thread arenas' top chunks
are not touched.

Every structure read is checked against the others (chunk chains against the arena's top and
system_mem, bins against the chunks, footers against sizes); a read that does not add up raises
WalkError naming what, and the caller tries again on a fresh stop."""

import os
import struct
from collections import OrderedDict

WORD = 8
MINSIZE = 32
ALIGN = 16
CHUNK_STRUCT = 48  # sizeof(struct malloc_chunk): the part of a free chunk trim keeps
HEAP_INFO = 32  # sizeof(heap_info) before glibc 2.35
NBINS = 128
NFASTBINS = 10
PREV_INUSE, IS_MMAPPED, NON_MAIN_ARENA = 1, 2, 4
BIN_BYTES = (NBINS * 2 - 2) * WORD
TCACHE_BINS = 64

# chunk states
USED, TCACHE, FAST, FREE, TOP = 'used', 'tcache', 'fast', 'free', 'top'

# Bounds of what one walk reads: a heap bigger than this many chunks is reported unwalked.
MAX_CHUNKS = 20000000


class WalkError(Exception):
    """The heap as read does not add up (the allocator was mid-update, or the layout is not
    glibc's as expected): what, in words."""


class WalkUnsupported(WalkError):
    """The walk cannot be done on this process at all (not a question of a fresh stop)."""


class Layout(object):
    """malloc_state's field offsets, from the offset of `next` (which glibc versions move)."""

    def __init__(self, next_off):
        self.next = next_off
        self.system_mem = next_off + 3 * WORD
        self.max_system_mem = next_off + 4 * WORD
        self.size = next_off + 5 * WORD
        self.bins = next_off - 16 - BIN_BYTES
        self.top = self.bins - 2 * WORD
        self.fastbins = self.top - NFASTBINS * WORD

    def bin_addr(self, arena, i):
        """bin_at(arena, i): the fake chunk whose fd and bk are bins[2(i-1)], bins[2(i-1)+1]."""
        return arena + self.bins + (i - 1) * 2 * WORD - 2 * WORD


LAYOUT_227 = Layout(2160)   # 2.27 and later: have_fastchunks before fastbinsY
LAYOUT_226 = Layout(2152)


class Memory(object):
    """The target's memory, read in blocks and cached for one stop (the process does not move)."""

    BLOCK = 1024
    CAP = 65536

    def __init__(self, read):
        self._read = read
        self.cache = {}
        self.reads = 0

    def bytes(self, addr, n):
        out = []
        end = addr + n
        a = addr
        while a < end:
            base = a - a % self.BLOCK
            blk = self.cache.get(base)
            if blk is None:
                if len(self.cache) >= self.CAP:
                    self.cache.clear()
                blk = self._read(base, self.BLOCK)
                self.reads += 1
                if blk is None:
                    return None
                self.cache[base] = blk
            take = min(end, base + self.BLOCK) - a
            out.append(blk[a - base:a - base + take])
            a += take
        return b''.join(out)

    def word(self, addr):
        b = self.bytes(addr, WORD)
        return struct.unpack('<Q', b)[0] if b is not None else None

    def words(self, addr, n):
        b = self.bytes(addr, n * WORD)
        return struct.unpack('<%dQ' % n, b) if b is not None else None


def _w(mem, addr, what):
    v = mem.word(addr)
    if v is None:
        raise WalkError('cannot read %s at 0x%x' % (what, addr))
    return v


# ---------------------------------------------------------------- finding main_arena and mp_

def empty_bin_pairs(data, base):
    """Addresses a in data (loaded at base) where word(a) == word(a + 8) == a - 16: empty bins."""
    n = len(data) // WORD
    w = struct.unpack('<%dQ' % n, data[:n * WORD])
    out = []
    for i in range(n - 1):
        a = base + i * WORD
        if w[i] == a - 16 and w[i + 1] == a - 16:
            out.append(a)
    return out


def main_arena_candidates(data, base, layouts=(LAYOUT_227, LAYOUT_226)):
    """(address, layout) pairs where libc's data (loaded at base) can hold a malloc_state: one of
    its bins at least is empty (points at itself), its `next` points at itself or outside libc's
    data, and none of its bins points into libc's data but at itself. discover() checks the
    candidates against the heap."""
    pairs = empty_bin_pairs(data, base)
    if not pairs:
        return []
    n = len(data) // WORD
    end = base + n * WORD
    w = struct.unpack('<%dQ' % n, data[:n * WORD])
    found = []
    seen = set()
    for layout in layouts:
        for a in pairs:
            for i in range(1, NBINS):
                arena = a - layout.bins - (i - 1) * 2 * WORD
                if arena < base or arena + layout.size > end or (arena, layout.next) in seen:
                    continue
                seen.add((arena, layout.next))
                nxt = w[(arena + layout.next - base) // WORD]
                if nxt != arena and base <= nxt < end:
                    continue
                ok = True
                for j in range(1, NBINS):
                    at = arena + layout.bins + (j - 1) * 2 * WORD
                    fd, bk = w[(at - base) // WORD], w[(at - base) // WORD + 1]
                    if fd == bk == at - 16:
                        continue
                    if not fd or not bk or base <= fd < end or base <= bk < end:
                        ok = False
                        break
                if ok:
                    found.append((arena, layout))
    return found


def bins_link_back(mem, arena, layout):
    """Does every non-empty bin of a malloc_state candidate link both ways into the heap
    (bin->fd->bk == bin, bin->bk->fd == bin)? The check that tells main_arena from look-alikes."""
    for i in range(1, NBINS):
        b = layout.bin_addr(arena, i)
        fd, bk = mem.word(b + 2 * WORD), mem.word(b + 3 * WORD)
        if fd is None or bk is None:
            return False
        if fd == b and bk == b:
            continue
        if mem.word(fd + 3 * WORD) != b or mem.word(bk + 2 * WORD) != b:
            return False
    return True


def find_mp(data, base, sbrk_base, page=4096):
    """mp_ (malloc_par) in libc's data, anchored at sbrk_base: {'mmapped_mem', 'n_mmaps',
    'max_mmapped_mem', 'mmap_threshold' (None where not told apart), 'no_dyn_threshold'} or None.
    Its ints pack in two ways: since 2.35 `int hp_flags` comes first, so n_mmaps shares a word
    with it; before, n_mmaps and n_mmaps_max share one."""
    if not sbrk_base:
        return None
    n = len(data) // WORD
    w = struct.unpack('<%dQ' % n, data[:n * WORD])
    lo32 = lambda v: v & 0xffffffff  # noqa: E731
    hi32 = lambda v: v >> 32  # noqa: E731
    for s in range(6, n - 3):
        if w[s] != sbrk_base:
            continue
        tbins, tmax, tcount = w[s + 1], w[s + 2], w[s + 3]
        if not (0 <= tbins <= TCACHE_BINS and tmax <= 1 << 20 and tcount <= 0xffff):
            continue
        mm, maxmm = w[s - 2], w[s - 1]
        if mm > maxmm or mm % page or maxmm % page:
            continue
        for packed in (True, False):
            if packed:  # ... int hp_flags; int n_mmaps | int n_mmaps_max; int max_n_mmaps | int no_dyn
                n_mmaps, n_max = hi32(w[s - 5]), lo32(w[s - 4])
                max_n, no_dyn = hi32(w[s - 4]), lo32(w[s - 3])
                params = s - 5 - 3  # hp_pagesize, thp_pagesize, (thp_mode) before hp_flags
            else:       # int n_mmaps | int n_mmaps_max; int max_n_mmaps | int no_dyn
                n_mmaps, n_max = lo32(w[s - 4]), hi32(w[s - 4])
                max_n, no_dyn = lo32(w[s - 3]), hi32(w[s - 3])
                params = s - 4
            if n_mmaps > max_n or no_dyn > 1 or (n_mmaps == 0) != (mm == 0) or n_max > 1 << 30:
                continue
            thr = None
            for j in range(max(0, params - 6), params - 2):
                trim, top_pad, t, arena_test = w[j], w[j + 1], w[j + 2], w[j + 3]
                if 0 < t <= 32 << 20 and 0 < arena_test <= 4096 and top_pad <= 1 << 32 and trim <= 1 << 62 and \
                        (no_dyn or trim == 2 * t or (trim, t) == (128 << 10, 128 << 10)):
                    thr = t
                    break
            return {'mmapped_mem': mm, 'n_mmaps': n_mmaps, 'max_mmapped_mem': maxmm, 'n_mmaps_max': n_max,
                    'no_dyn_threshold': bool(no_dyn), 'mmap_threshold': thr}
    return None


# ---------------------------------------------------------------- pagemap

_PRESENT = bytes(1 if b & 0x80 else 0 for b in range(256))


def read_present(pid, start, end, page=4096):
    """One byte per page of [start, end): 1 where the page is resident (/proc/PID/pagemap bit
    63), 0 where not. None if pagemap is unreadable."""
    n = (end - start) // page
    if n <= 0:
        return b''
    try:
        fd = os.open('/proc/%d/pagemap' % pid, os.O_RDONLY)
    except OSError:
        return None
    try:
        out = []
        first = start // page
        step = 1 << 20
        for i in range(0, n, step):
            k = min(step, n - i)
            data = os.pread(fd, k * 8, (first + i) * 8)
            if len(data) != k * 8:
                return None
            out.append(data[7::8].translate(_PRESENT))
        return b''.join(out)
    except OSError:
        return None
    finally:
        os.close(fd)


class Residency(object):
    """Resident pages of the walked regions: present(lo, hi) counts them in [lo, hi)."""

    def __init__(self, page):
        self.page = page
        self.regions = []  # (start, end, bytes)

    def add(self, start, end, bitmap):
        self.regions.append((start, end, bitmap))

    def present(self, lo, hi):
        if hi <= lo:
            return 0
        p = self.page
        total = 0
        for start, end, bm in self.regions:
            a, b = max(lo, start), min(hi, end)
            if a < b:
                total += bm[(a - start) // p:(b - start) // p].count(1)
        return total


def align_up(x, a):
    return (x + a - 1) // a * a


def align_down(x, a):
    return x // a * a


# ---------------------------------------------------------------- walking chunks

class ArenaWalk(object):
    """One arena as read: its chunks per region [(addr, size, state)], in address order."""

    def __init__(self, addr, kind):
        self.addr = addr
        self.kind = kind
        self.regions = []      # [(start, end, [chunks])]: a heap (thread) or the main heap
        self.top = None        # (addr, size)
        self.system_mem = 0
        self.heaps = 0
        self.tcaches = []

    def chunks(self):
        for _, _, cs in self.regions:
            for c in cs:
                yield c


def walk_region(mem, start, end, top):
    """The chunks from `start`: until the top chunk (which must end at `end`), or, in a thread
    heap without top, until the fencepost of size 0. Returns [(addr, size, state)] with states
    USED or FREE (by the next chunk's PREV_INUSE) and TOP."""
    out = []
    p = start
    prev_free_size = None
    while True:
        if len(out) > MAX_CHUNKS:
            raise WalkError('more than %d chunks in the heap at 0x%x' % (MAX_CHUNKS, start))
        head = mem.words(p, 2)
        if head is None:
            raise WalkError('cannot read the chunk at 0x%x' % p)
        size_word = head[1]
        size = size_word & ~7
        pinuse = size_word & PREV_INUSE
        if out:
            a, s, _ = out[-1]
            if not pinuse:
                out[-1] = (a, s, FREE)
                if head[0] != s:
                    raise WalkError('free chunk at 0x%x: size %d, but the next chunk says %d' % (a, s, head[0]))
                if prev_free_size is not None:
                    raise WalkError('two free chunks side by side at 0x%x' % a)
                prev_free_size = s
            else:
                prev_free_size = None
        if p == top:
            if p + size != end:
                raise WalkError('top chunk at 0x%x of %d bytes ends at 0x%x, not at the heap end 0x%x'
                                % (p, size, p + size, end))
            if not pinuse:
                raise WalkError('the chunk before the top chunk (0x%x) is free' % p)
            out.append((p, size, TOP))
            return out
        if size == 0 and top is None:
            # the fencepost at the end of a full heap (its PREV_INUSE tells the chunk before)
            if p + 2 * WORD > end:
                raise WalkError('fencepost at 0x%x beyond the heap end 0x%x' % (p, end))
            return out
        if size < 2 * WORD or size % ALIGN or p + size > end:
            raise WalkError('bad chunk at 0x%x: size %d (region 0x%x-0x%x)' % (p, size_word, start, end))
        if size_word & IS_MMAPPED:
            raise WalkError('chunk at 0x%x inside an arena is marked mmapped' % p)
        if size >= MINSIZE:
            out.append((p, size, USED))
        else:
            # the first fencepost (2 words) before the final one: not a chunk anyone holds
            out.append((p, size, 'fence'))
        p += size


def walk_bins(mem, arena, layout, by_addr):
    """Every chunk in the arena's regular bins (unsorted, small, large), checked: each is a free
    chunk of the walk, linked both ways. Returns the number of binned chunks."""
    count = 0
    limit = len(by_addr) + 2
    for i in range(1, NBINS):
        b = layout.bin_addr(arena, i)
        fd = _w(mem, b + 2 * WORD, 'bin %d' % i)
        prev = b
        p = fd
        n = 0
        while p != b:
            st = by_addr.get(p)
            if st is None or st[1] != FREE:
                raise WalkError('bin %d of the arena at 0x%x links 0x%x, which is not a free chunk' % (i, arena, p))
            bk = _w(mem, p + 3 * WORD, 'a free chunk\'s bk')
            if bk != prev:
                raise WalkError('bin %d: chunk 0x%x\'s back link is 0x%x, not 0x%x' % (i, p, bk, prev))
            prev = p
            p = _w(mem, p + 2 * WORD, 'a free chunk\'s fd')
            n += 1
            if n > limit:
                raise WalkError('bin %d of the arena at 0x%x loops' % (i, arena))
        count += n
    return count


def reveal(stored, field_addr, protected):
    return stored ^ (field_addr >> 12) if protected else stored


def walk_fastbins(mem, arena, layout, by_addr, protected):
    """Marks the chunks in the arena's fastbins FAST (they look in use by PREV_INUSE).
    protected None (glibc's version unknown): whichever encoding of the links adds up."""
    if protected is None:
        for prot in (True, False):
            trial = dict(by_addr)
            try:
                n = walk_fastbins(mem, arena, layout, trial, prot)
            except WalkError:
                continue
            by_addr.update(trial)
            return n
        raise WalkError('the fastbins of the arena at 0x%x add up in neither pointer encoding' % arena)
    n = 0
    for i in range(NFASTBINS):
        p = _w(mem, arena + layout.fastbins + i * WORD, 'fastbin %d' % i)
        guard = 0
        while p:
            st = by_addr.get(p)
            want = (i + 2) * ALIGN
            if st is None or st[1] != USED or st[0] != want:
                raise WalkError('fastbin %d of the arena at 0x%x links 0x%x, not a %d-byte chunk in use'
                                % (i, arena, p, want))
            by_addr[p] = (st[0], FAST)
            n += 1
            guard += 1
            if guard > len(by_addr):
                raise WalkError('fastbin %d of the arena at 0x%x loops' % (i, arena))
            p = reveal(_w(mem, p + 2 * WORD, 'a fastbin fd'), p + 2 * WORD, protected)
    return n


def tcache_layout(size):
    """(bytes per count, offset of entries) of a tcache_perthread_struct in a chunk of `size`."""
    if size == 0x290:
        return 2, 2 * TCACHE_BINS
    if size == 0x250:
        return 1, TCACHE_BINS
    return None


def read_tcache(mem, chunk, size, by_addr, protected):
    """The chunks cached by a tcache_perthread_struct at `chunk`, or None if it is not one:
    [chunk addresses]. protected None: try both encodings."""
    lay = tcache_layout(size)
    if lay is None:
        return None
    csize, eoff = lay
    raw = mem.bytes(chunk + 2 * WORD, eoff + TCACHE_BINS * WORD)
    if raw is None:
        return None
    counts = struct.unpack('<%d%s' % (TCACHE_BINS, 'H' if csize == 2 else 'B'), raw[:eoff])
    entries = struct.unpack('<%dQ' % TCACHE_BINS, raw[eoff:])
    if not any(counts):
        return None
    for prot in ((protected,) if protected is not None else (True, False)):
        got = []
        ok = True
        for i in range(TCACHE_BINS):
            c, e = counts[i], entries[i]
            if (c == 0) != (e == 0):
                ok = False
                break
            p = e
            for _ in range(c):
                st = by_addr.get(p - 2 * WORD)
                if st is None or st[1] != USED or st[0] != MINSIZE + ALIGN * i:
                    ok = False
                    break
                got.append(p - 2 * WORD)
                nxt = mem.word(p)
                if nxt is None:
                    ok = False
                    break
                p = reveal(nxt, p, prot)
            if not ok or p != 0:
                ok = False
                break
        if ok:
            return got
    return None


def walk_arena(mem, arena, layout, kind, regions, protected):
    """One arena: regions [(start, end)] in order (the main heap; or each thread heap's chunk
    span, the one holding top last). Returns ArenaWalk."""
    aw = ArenaWalk(arena, kind)
    top = _w(mem, arena + layout.top, 'the arena\'s top')
    aw.system_mem = _w(mem, arena + layout.system_mem, 'the arena\'s system_mem')
    tops = [r for r in regions if r[0] <= top < r[1]]
    if len(tops) != 1:
        raise WalkError('the top chunk 0x%x of the arena at 0x%x is in none of its heaps' % (top, arena))
    by_addr = {}
    for start, end in regions:
        t = top if start <= top < end else None
        cs = walk_region(mem, start, end, t)
        aw.regions.append((start, end, cs))
        for a, s, st in cs:
            by_addr[a] = (s, st)
            if st == TOP:
                aw.top = (a, s)
            if kind != 'main' and st == USED:
                flags = mem.word(a + WORD) & 7
                if not flags & NON_MAIN_ARENA:
                    raise WalkError('chunk 0x%x in use in a thread arena lacks NON_MAIN_ARENA' % a)
    aw.heaps = len(regions)
    nfree = sum(1 for s, st in by_addr.values() if st == FREE)
    binned = walk_bins(mem, arena, layout, by_addr)
    if binned != nfree:
        raise WalkError('the arena at 0x%x has %d free chunks but %d in its bins' % (arena, nfree, binned))
    walk_fastbins(mem, arena, layout, by_addr, protected)
    # Each thread's tcache is a chunk of the arena it first allocated from.
    for a, (s, st) in list(by_addr.items()):
        if st == USED and s in (0x290, 0x250):
            got = read_tcache(mem, a, s, by_addr, protected)
            if got:
                aw.tcaches.append(a)
                for c in got:
                    by_addr[c] = (by_addr[c][0], TCACHE)
    for i, (start, end, cs) in enumerate(aw.regions):
        aw.regions[i] = (start, end, [(a, s, by_addr[a][1] if a in by_addr else st) for a, s, st in cs])
    span = sum(end - start for start, end, _ in aw.regions)
    return aw, span


def walk_heap(pid, mem_read, mappings, main_arena, layout, thread_heaps, sbrk_base, protected, page=4096):
    """Every arena: the main one (main_arena, its chunks from sbrk_base in [heap]) and each thread
    arena (thread_heaps: {arena: [heap dicts from heaps.find_heaps]}). Returns a HeapWalk."""
    mem = Memory(mem_read)
    walks = []
    res = Residency(page)
    heap_maps = [m for m in mappings if m.path == '[heap]']
    top = _w(mem, main_arena + layout.top, 'main_arena.top')
    if heap_maps and sbrk_base:
        first = sbrk_base
        if (first + 2 * WORD) % ALIGN:
            first += ALIGN - (first + 2 * WORD) % ALIGN
        hstart = min(m.start for m in heap_maps)
        hend = max(m.end for m in heap_maps)
        if not (hstart <= top < hend):
            raise WalkError('main_arena.top 0x%x is not in the heap [0x%x, 0x%x)' % (top, hstart, hend))
        tsize = _w(mem, top + WORD, 'the top chunk\'s size') & ~7
        end = top + tsize
        aw, span = walk_arena(mem, main_arena, layout, 'main', [(first, end)], protected)
        if end - sbrk_base != aw.system_mem:
            raise WalkError('the main heap spans %d bytes from sbrk_base, main_arena.system_mem says %d'
                            % (end - sbrk_base, aw.system_mem))
        walks.append(aw)
        bm = read_present(pid, align_down(first, page), align_up(end, page), page)
        if bm is None:
            raise WalkError('cannot read /proc/%d/pagemap' % pid)
        res.add(align_down(first, page), align_up(end, page), bm)
    else:
        aw = ArenaWalk(main_arena, 'main')
        aw.system_mem = _w(mem, main_arena + layout.system_mem, 'main_arena.system_mem')
        if aw.system_mem:
            raise WalkError('main_arena holds %d bytes outside the [heap] mapping (not contiguous): not walked'
                            % aw.system_mem)
        walks.append(aw)
    for arena, hs in thread_heaps.items():
        hs = sorted(hs, key=lambda h: (h['prev'] != 0, h['start']))
        chain = _heap_chain(hs)
        # sizeof(heap_info) (32 bytes, 48 since glibc 2.35 added pagesize): the first heap holds
        # the arena right after it
        info_size = arena - chain[0]['start']
        if info_size not in (HEAP_INFO, HEAP_INFO + 2 * WORD):
            raise WalkError('the arena at 0x%x is %d bytes into its heap: not a heap_info size known'
                            % (arena, info_size))
        regions = []
        for h in chain:
            if h['prev'] == 0:
                s = arena + layout.size
                if (s + 2 * WORD) % ALIGN:
                    s += ALIGN - (s + 2 * WORD) % ALIGN
            else:
                s = h['start'] + info_size
            regions.append((s, h['start'] + h['size']))
        aw, span = walk_arena(mem, arena, layout, 'thread', regions, protected)
        total = sum(h['size'] for h in chain)
        if total != aw.system_mem:
            raise WalkError('the heaps of the arena at 0x%x add up to %d bytes, its system_mem says %d'
                            % (arena, total, aw.system_mem))
        walks.append(aw)
        for h in chain:
            bm = read_present(pid, h['start'], h['start'] + align_up(h['size'], page), page)
            if bm is None:
                raise WalkError('cannot read /proc/%d/pagemap' % pid)
            res.add(h['start'], h['start'] + align_up(h['size'], page), bm)
    return HeapWalk(walks, res, mem, page)


def _heap_chain(hs):
    """An arena's heaps from its first (prev == 0) along the prev links, oldest first."""
    by_prev = dict((h['prev'], h) for h in hs)
    out = []
    cur = by_prev.get(0)
    while cur is not None and cur not in out:
        out.append(cur)
        cur = by_prev.get(cur['start'])
    if len(out) != len(hs):
        raise WalkError('the heaps of an arena do not form one chain')
    return out


class HeapWalk(object):
    def __init__(self, arenas, residency, mem, page):
        self.arenas = arenas
        self.residency = residency
        self.mem = mem
        self.page = page


# ---------------------------------------------------------------- what trim returns, what pins

def segments(chunks):
    """A region's chunks merged as malloc_trim's consolidation sees them: [(start, end, kind)],
    kind 'free' (bins and fastbins, neighbours merged), 'live' (in use, tcache: a run of them
    keeps its chunks [(addr, size, state)]), 'top' (fastbin chunks before it merge into it)."""
    segs = []
    for a, s, st in chunks:
        kind = 'free' if st in (FREE, FAST) else 'top' if st == TOP else 'fence' if st == 'fence' else 'live'
        if segs and kind in ('free', 'live') and segs[-1][2] == kind:
            lo, _, k, cs = segs[-1]
            if kind == 'live':
                cs.append((a, s, st))
            segs[-1] = (lo, a + s, k, cs)
        elif segs and kind == 'top' and segs[-1][2] == 'free':
            lo = segs[-1][0]
            segs[-1] = (lo, a + s, 'top', None)
        else:
            segs.append((a, a + s, kind, [(a, s, st)] if kind == 'live' else None))
    return segs


def trim_range(start, end, kind, main, page):
    """The pages malloc_trim(0) drops from a free stretch [start, end): (lo, hi)."""
    size = end - start
    if kind == 'free':
        if size <= page - 1 + CHUNK_STRUCT:
            return (0, 0)
        return (align_up(start + CHUNK_STRUCT, page), align_down(end, page))
    if kind == 'top' and main:
        area = size - MINSIZE - 1
        if area <= 0:
            return (0, 0)
        extra = align_down(area, page)
        return (end - extra, end) if extra > 0 else (0, 0)
    return (0, 0)


def simulate_trim(aw, res, page, examples=3):
    """For one walked arena: (would_return_bytes, pinned groups {(chunk size, state): dict}).

    Pinned: for each run of live chunks between free stretches, the resident pages a trim would
    drop if the run were freed too (merged with its free neighbours), less the pages the run
    fills wholly itself (those hold data, they are not free memory held hostage): the pages these
    live chunks keep resident although the rest of each page is free."""
    main = aw.kind == 'main'
    would = 0
    groups = {}
    for _, _, chunks in aw.regions:
        segs = segments(chunks)
        for idx, (lo, hi, kind, cs) in enumerate(segs):
            if kind in ('free', 'top'):
                a, b = trim_range(lo, hi, kind, main, page)
                would += res.present(a, b)
                continue
            if kind != 'live':
                continue
            prev = segs[idx - 1] if idx > 0 and segs[idx - 1][2] == 'free' else None
            nxt = segs[idx + 1] if idx + 1 < len(segs) and segs[idx + 1][2] in ('free', 'top') else None
            if prev is None and nxt is None:
                continue
            mlo = prev[0] if prev else lo
            mhi = nxt[1] if nxt else hi
            mkind = nxt[2] if nxt else 'free'
            ma, mb = trim_range(mlo, mhi, mkind, main, page)
            # The pages gained, one by one: those of the merged stretch outside the neighbours' own
            # and outside the pages the run fills wholly (a handful at each end of the run).
            ra = trim_range(prev[0], prev[1], prev[2], main, page) if prev else (0, 0)
            rb = trim_range(nxt[0], nxt[1], nxt[2], main, page) if nxt else (0, 0)
            wa = max(ma, ra[1]) if ra[1] > ra[0] else ma
            wb = min(mb, rb[0]) if rb[1] > rb[0] else mb
            fa, fb = min(max(align_up(lo, page), wa), wb), max(min(align_down(hi, page), wb), wa)
            if fb < fa:
                fa = fb = wa
            for pg in list(range(wa, fa, page)) + list(range(fb, wb, page)):
                if not res.present(pg, pg + page):
                    continue
                c = _holder(cs, pg, pg + page)
                g = groups.setdefault(_group(c), {'count': 0, 'pages': 0, 'examples': [], 'chunks': set()})
                g['pages'] += 1
                if c[0] not in g['chunks']:
                    g['chunks'].add(c[0])
                    g['count'] += 1
                    if len(g['examples']) < examples:
                        g['examples'].append(c[0] + 2 * WORD)
    return would * page, groups


def _group(c):
    return (c[1], c[2])


def _holder(cs, lo, hi):
    """The live chunk of a run with the most bytes in [lo, hi), else the one nearest to it."""
    best, most = None, 0
    for c in cs:
        n = min(hi, c[0] + c[1]) - max(lo, c[0])
        if n > most:
            best, most = c, n
    if best is None:
        best = min(cs, key=lambda c: min(abs(c[0] - lo), abs(c[0] + c[1] - hi)))
    return best


def free_sizes(aw):
    """The sizes of the free chunks in bins (each as the heap shows it: one chunk may be several
    frees merged) -> {size: count}."""
    out = {}
    for a, s, st in aw.chunks():
        if st == FREE:
            out[s] = out.get(s, 0) + 1
    return out


def used_sizes(aw, large=32 * 1024):
    """{size: count} of the chunks in use of at least `large` bytes (what the program holds of
    the sizes the mmap threshold concerns)."""
    out = {}
    for a, s, st in aw.chunks():
        if st == USED and s >= large:
            out[s] = out.get(s, 0) + 1
    return out


def summarize(hw, page=4096):
    """Per arena: size, in use, free, tcache/fastbin bytes, resident, would_return, floor; and
    the pinned groups over all arenas (largest first)."""
    rows = []
    groups = {}
    for aw in hw.arenas:
        used = tc = fast = free = top = 0
        nused = ntc = nfast = nfree = 0
        for a, s, st in aw.chunks():
            if st == USED:
                used += s
                nused += 1
            elif st == TCACHE:
                tc += s
                ntc += 1
            elif st == FAST:
                fast += s
                nfast += 1
            elif st == FREE:
                free += s
                nfree += 1
            elif st == TOP:
                top += s
        resident = 0
        for start, end, _ in aw.regions:
            resident += hw.residency.present(align_down(start, page), align_up(end, page)) * page
        would, gs = simulate_trim(aw, hw.residency, page)
        for k, g in gs.items():
            t = groups.setdefault(k, {'count': 0, 'pages': 0, 'examples': []})
            t['count'] += g['count']
            t['pages'] += g['pages']
            t['examples'] = (t['examples'] + g['examples'])[:3]
        r = OrderedDict()
        r['address'] = '%x' % aw.addr
        r['kind'] = aw.kind
        r['heaps'] = aw.heaps
        r['system_bytes'] = aw.system_mem
        r['used_bytes'] = used
        r['used_chunks'] = nused
        r['tcache_bytes'] = tc
        r['tcache_chunks'] = ntc
        r['fastbin_bytes'] = fast
        r['fastbin_chunks'] = nfast
        r['free_bytes'] = free + top + fast
        r['free_chunks'] = nfree + nfast
        r['binned_bytes'] = free
        r['top_bytes'] = top
        r['resident_bytes'] = resident
        r['would_return_bytes'] = would
        r['floor_bytes'] = max(0, resident - would)
        r['ranges'] = ['%x-%x' % (s, e) for s, e, _ in aw.regions]
        r['free_sizes'] = free_sizes(aw)
        r['used_large_sizes'] = used_sizes(aw)
        rows.append(r)
    pinned = []
    for (size, state), g in groups.items():
        pages = g['pages']
        if pages <= 0:
            continue
        p = OrderedDict()
        p['chunk_size'] = size
        p['state'] = 'in use' if state == USED else 'tcache (freed, cached by malloc)'
        p['count'] = g['count']
        p['pages'] = pages
        p['bytes'] = pages * page
        p['examples'] = ['0x%x' % e for e in g['examples']]
        p['points_to'] = None
        pinned.append(p)
    pinned.sort(key=lambda p: (-p['pages'], p['chunk_size']))
    return rows, pinned


# ---------------------------------------------------------------- what live chunks point to

def classify_pointers(words_list, heap_ranges, mapped):
    """What the first two words of a group's example chunks look like, or None: 'heap pointers'
    (both point into the heap or are NULL: a list or tree node) or ('object', address) when the
    first word points into a file-backed mapping (a C++ vtable, a function table) for gdb to name.
    mapped(addr) -> the mapping's path or None."""
    def in_heap(v):
        return any(lo <= v < hi for lo, hi in heap_ranges)
    heapish = 0
    objs = {}
    for ws in words_list:
        if ws is None or len(ws) < 2:
            continue
        a, b = ws[0], ws[1]
        if (in_heap(a) or a == 0) and (in_heap(b) or b == 0) and (a or b):
            heapish += 1
        path = mapped(a) if a else None
        if path and path.startswith('/'):
            objs[a] = objs.get(a, 0) + 1
    n = len([w for w in words_list if w])
    if not n:
        return None
    if objs:
        addr, cnt = max(objs.items(), key=lambda kv: kv[1])
        if cnt * 2 > n:
            return ('object', addr)
    if heapish * 2 > n:
        return 'heap pointers'
    return None


# ---------------------------------------------------------------- putting it together

def libc_data(mappings, libc, read, cap=16 << 20):
    """(base, bytes) of libc's writable data: its rw mappings and the anonymous one right after
    them (.bss), as one contiguous range; None if unreadable."""
    idx = [i for i, m in enumerate(mappings) if m.path == libc and 'w' in m.perms]
    if not idx:
        return None
    lo = mappings[idx[0]].start
    hi = mappings[idx[-1]].end
    j = idx[-1] + 1
    if j < len(mappings) and mappings[j].anonymous and mappings[j].start == hi and 'w' in mappings[j].perms:
        hi = mappings[j].end
    if hi - lo > cap:
        hi = lo + cap
    data = read(lo, hi - lo)
    return (lo, data) if data is not None else None


def discover(read, mappings, libc, chain, heap_start):
    """(main_arena, Layout, mp_ or None) for the process. chain: heaps.arena_chain's answer
    ((order, next offset, main_arena) from the thread arenas, or ([], None, None))."""
    got = libc_data(mappings, libc, read)
    if got is None:
        raise WalkError('cannot read libc\'s data (%s)' % libc)
    base, data = got
    mp = find_mp(data, base, heap_start) if heap_start else None
    order, next_off, main = chain if chain is not None else (None, None, None)
    cands = main_arena_candidates(data, base)
    if main is not None:
        layout = Layout(next_off)
        if not any(a == main for a, _ in cands) and not (base <= main < base + len(data)):
            raise WalkError('the thread arenas\' chain ends at 0x%x, which is not in libc\'s data' % main)
        return main, layout, mp
    heaps = [(m.start, m.end) for m in mappings if m.path == '[heap]']
    mem = Memory(read)
    good = []
    for a, layout in cands:
        top = mem.word(a + layout.top)
        nxt = mem.word(a + layout.next)
        sysmem = mem.word(a + layout.system_mem)
        maxmem = mem.word(a + layout.max_system_mem)
        if None in (top, nxt, sysmem, maxmem) or nxt != a or maxmem < sysmem:
            continue
        if heaps:
            if not any(lo <= top < hi for lo, hi in heaps):
                continue
        elif top != layout.bin_addr(a, 1):
            continue
        if not bins_link_back(mem, a, layout):
            continue
        good.append((a, layout))
    if len(good) != 1:
        raise WalkError('main_arena not found in libc\'s data (%d candidates)' % len(good))
    a, layout = good[0]
    return a, layout, mp
