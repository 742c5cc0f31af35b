"""The glibc reader: which mapped object is glibc, and its figures (malloc_info's arenas, with the
resident bytes of the mappings each arena owns) made into the report verdict.py judges."""

import os
import re
from collections import OrderedDict

from ..report import human_bytes
from .mallocinfo import large_free_share, pinned_free


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


# ---------------------------------------------------------------- from the heap walk

# The mmap threshold fix is worth saying when most free bytes in bins sit in chunks of at least
# LARGE_CHUNK, most of those in one size range (sizes within ADVICE_SPAN of the smallest), and the
# heap shows that range is what the program allocates and frees: several free chunks of the very
# same size (merged neighbours would give sizes all different), or chunks of that range in use.
LARGE_CHUNK = 32 * 1024
ADVICE_SPAN = 1.25
ADVICE_MIN_CHUNKS = 8
ADVICE_SHARE = 0.6
# glibc refuses a threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit).
MAX_MMAP_THRESHOLD = 32 << 20


def mmap_advice(free_sizes, used_sizes, page=4096):
    """{'applies', 'threshold', 'from', 'to', 'count', 'share', 'why'} from the free chunks' sizes
    as the heap shows them ({size: count}) and the sizes in use ({size: count})."""
    out = OrderedDict([('applies', False), ('threshold', None), ('from', None), ('to', None), ('count', 0),
                       ('share', 0.0), ('why', None)])
    total = sum(s * c for s, c in free_sizes.items())
    large = sorted((s, c) for s, c in free_sizes.items() if s >= LARGE_CHUNK)
    lbytes = sum(s * c for s, c in large)
    if not total or not large:
        out['why'] = 'no free chunk of %s or more in the bins: an mmap threshold would not move anything' % (
            _kb(LARGE_CHUNK))
        return out
    if lbytes < 0.5 * total:
        out['why'] = ('most free bytes (%d%%) are in chunks under %s: an mmap threshold that low would make '
                      'every small block a system call' % (round(100.0 * (total - lbytes) / total), _kb(LARGE_CHUNK)))
        return out
    best = None
    for i, (lo, _) in enumerate(large):
        hi = lo * ADVICE_SPAN
        win = [(s, c) for s, c in large[i:] if s <= hi]
        b = sum(s * c for s, c in win)
        if best is None or b > best[0]:
            best = (b, lo, win[-1][0], win)
    b, lo, hi, win = best
    # the window's lower end moves up past stray sizes that add little (a last chunk cut off a
    # free run), so the threshold is the blocks' own size
    while len(win) > 1 and b - win[0][0] * win[0][1] >= 0.95 * best[0]:
        b -= win[0][0] * win[0][1]
        win = win[1:]
    lo = win[0][0]
    count = sum(c for _, c in win)
    repeated = sum(c for _, c in win if c > 1)
    in_use = sum(c for s, c in used_sizes.items() if lo <= s <= hi)
    out['from'], out['to'], out['count'] = lo, hi, count
    out['share'] = round(float(b) / lbytes, 4)
    if float(b) / lbytes < ADVICE_SHARE or count < ADVICE_MIN_CHUNKS:
        out['why'] = ('the large free chunks are of many sizes (the most in one range, %s-%s, hold %d%% of them): '
                      'free neighbours merged, so the heap does not show one block size the program frees'
                      % (_kb(lo), _kb(hi), round(100.0 * b / lbytes)))
        return out
    if repeated * 2 < count and in_use < ADVICE_MIN_CHUNKS:
        out['why'] = ('the %d large free chunks of %s-%s all differ in size and none of that size is in use: '
                      'they look like merged neighbours, not blocks the program frees' % (count, _kb(lo), _kb(hi)))
        return out
    if lo > MAX_MMAP_THRESHOLD:
        out['why'] = 'the free chunks are larger than glibc\'s highest mmap threshold (32 MiB): merged neighbours'
        return out
    out['applies'] = True
    out['threshold'] = max(page, (lo - 16) // page * page)
    return out


def _kb(n):
    return human_bytes(n)


def walk_figures(rows, pinned, order, mp, split, mmapped, page=4096):
    """The report from the heap walk: the keys figures() makes from malloc_info (same meaning),
    plus would_return_bytes and floor_bytes per arena and in all, the pinning groups, the mmap
    advice from the free chunks' sizes. rows: walk.summarize's, main arena first; order: the
    thread arenas' addresses in malloc_info's numbering; mmapped: (bytes, count)."""
    by_addr = dict((int(r['address'], 16), r) for r in rows)
    ordered = [rows[0]] + [by_addr[a] for a in order if a in by_addr]
    ordered += [r for r in rows[1:] if r not in ordered]
    arenas = []
    free_sizes = {}
    for nr, r in enumerate(ordered):
        a = OrderedDict()
        a['nr'] = nr
        a['kind'] = r['kind']
        a['address'] = r['address']
        a['size_bytes'] = r['system_bytes']
        # as malloc_info counts it: all but the free chunks, so the arena's headers and fenceposts too
        a['in_use_bytes'] = r['system_bytes'] - r['free_bytes']
        a['live_bytes'] = r['used_bytes']
        a['tcache_bytes'] = r['tcache_bytes']
        a['fastbin_bytes'] = r['fastbin_bytes']
        a['top_bytes'] = r['top_bytes']
        a['free_bytes'] = r['free_bytes']
        a['free_chunks'] = r['free_chunks']
        a['heaps'] = r['heaps']
        a['resident_bytes'] = r['resident_bytes']
        a['would_return_bytes'] = r['would_return_bytes']
        a['floor_bytes'] = r['floor_bytes']
        a['mappings'] = r['ranges']
        arenas.append(a)
        for s, c in r['free_sizes'].items():
            free_sizes[s] = free_sizes.get(s, 0) + c
    in_use = sum(a['in_use_bytes'] for a in arenas)
    free = sum(a['free_bytes'] for a in arenas)
    resident = sum(a['resident_bytes'] for a in arenas)
    mm_bytes, mm_count = mmapped
    f = OrderedDict()
    f['rss_bytes'] = split['rss']
    f['rss_anon_bytes'] = split['anon']
    f['rss_shmem_bytes'] = split['shmem']
    f['rss_file_bytes'] = split['file']
    f['live_bytes'] = in_use + mm_bytes
    f['in_use_arena_bytes'] = in_use
    f['tcache_bytes'] = sum(a['tcache_bytes'] for a in arenas)
    f['mmapped_bytes'] = mm_bytes
    f['mmapped_chunks'] = mm_count
    f['free_bytes'] = free
    f['arena_bytes'] = sum(a['size_bytes'] for a in arenas)
    f['arena_resident_bytes'] = resident
    f['free_resident_bytes'] = min(free, max(0, resident - in_use))
    f['would_return_bytes'] = sum(a['would_return_bytes'] for a in arenas)
    f['floor_bytes'] = sum(a['floor_bytes'] for a in arenas)
    f['trimmable_bytes'] = f['would_return_bytes']
    f['outside_malloc_anon_bytes'] = (max(0, split['anon'] - resident - mm_bytes)
                                      if split['anon'] is not None else None)
    f['arenas'] = arenas
    f['arenas_matched_by'] = 'address'
    f['pinned'] = pinned
    used_sizes = {}
    for r in rows:
        for sz, c in r.get('used_large_sizes', {}).items():
            used_sizes[sz] = used_sizes.get(sz, 0) + c
    f['mmap_advice'] = mmap_advice(free_sizes, used_sizes, page)
    f['mmap_threshold_now'] = mp.get('mmap_threshold') if mp else None
    f['mmap_threshold_dynamic'] = (not mp['no_dyn_threshold']) if mp else None
    share, smallest = _large_share(free_sizes)
    f['large_free_share'] = round(share, 4)
    f['large_free_from'] = smallest
    return f


def _large_share(free_sizes, large=LARGE_CHUNK):
    total = sum(s * c for s, c in free_sizes.items())
    big = [(s, c) for s, c in free_sizes.items() if s >= large]
    if not total or not big:
        return 0.0, None
    return float(sum(s * c for s, c in big)) / total, min(s for s, _ in big)


def scan_mmapped(mem, mappings, exclude, page=4096, limit=1 << 20):
    """(bytes, count) of glibc's mmapped chunks, found without mp_: anonymous rw mappings outside
    the arenas that begin with chunk headers {prev_size 0, size a page multiple | IS_MMAPPED},
    one after another (the kernel merges neighbouring mappings into one)."""
    total = count = 0
    for m in mappings:
        if not m.anonymous or not m.perms.startswith('rw') or m.fields.get('Rss', 1) == 0:
            continue
        if any(lo <= m.start < hi for lo, hi in exclude):
            continue
        a = m.start
        while a < m.end and count < limit:
            head = mem.words(a, 2)
            if head is None:
                break
            prev, size = head[0], head[1] & ~7
            if not head[1] & 2 or head[1] & 5 or prev or size == 0 or size % page or a + size > m.end:
                break
            total += size
            count += 1
            a += size
    return total, count
