"""The verdict on a report: allocator retention, live growth (a possible leak), or nothing worth a
fix; why, and the fixes.

A report is the dict an allocator's reader makes (glibc.walk_figures from the heap walk, or
glibc.figures from malloc_info; others.report for jemalloc, tcmalloc, mimalloc), in bytes:
rss_bytes, rss_anon_bytes (None where unknown), rss_shmem_bytes, live_bytes (allocated and in
use), free_resident_bytes (free inside the allocator and resident), trimmable_bytes (what the
allocator's release call would return), and for glibc outside_malloc_anon_bytes, pinned (which
live chunks keep free pages resident), mmap_advice, arenas. classify() needs only the first
few. Shares are taken of the anonymous RSS, the memory an allocator can own: shared memory (a
database's buffer pool) and file-backed pages (code, libraries) are neither malloc's nor a leak
of it, and counting them in would hide retention behind them."""

import os

from .. import paths
from ..report import human_bytes, pct, thousands
from .others import RELEASE_NAMES


# Verdict thresholds. Below SIGNIFICANT_BYTES nothing is worth a verdict: a small process's RSS
# is its code and libraries. Retention: the free memory the allocator keeps resident is at least
# RETENTION_SHARE of the anonymous RSS (the seed after free: 99%; array_control after free: 0%).
# Live growth: allocations still in use are at least LIVE_SHARE of it (any case at its peak).
SIGNIFICANT_BYTES = 16 << 20
RETENTION_SHARE = 0.25
LIVE_SHARE = 0.5
# Retention is "trimmable" when the release call would return at least this share of it, else
# the free space sits on pages shared with live objects (fragmentation: trim cannot help).
TRIMMABLE_SHARE = 0.5
# What pins the floor is worth saying (in the why and as a fix) once it holds this much: the seed's
# 10,000 nodes pin 41 MB; a few stray chunks on their pages, kilobytes.
PINNED_BYTES = 4 << 20

# glibc's mmap threshold until it raises it (or a tunable sets it)
DEFAULT_MMAP_THRESHOLD = 128 * 1024

# MALLOC_ARENA_MAX is worth a mention when at least two thread arenas each hold this share of the
# free resident memory.
ARENA_SHARE = 0.1

VERDICT_RETENTION = 'allocator retention'
VERDICT_LIVE = 'live growth / possible leak'
VERDICT_NOT_GLIBC = 'not glibc malloc'
VERDICT_NONE = 'no significant retention'
# Only after --watch: the allocations are live, and they stayed level.
VERDICT_STEADY = 'live, steady (not a leak)'

KNOWN_ALLOCATORS = ('jemalloc', 'tcmalloc', 'mimalloc', 'hoard', 'snmalloc', 'rpmalloc', 'tbbmalloc',
                    'scudo', 'dlmalloc', 'ptmalloc')


def allocator_name(path):
    if not path:
        return 'unknown'
    base = os.path.basename(path).lower()
    for name in KNOWN_ALLOCATORS:
        if name in base:
            return name
    return os.path.basename(path)


def base_bytes(f):
    """What the shares are of: the anonymous RSS, else (not known) the whole RSS."""
    anon = f.get('rss_anon_bytes')
    return anon if anon else (f['rss_bytes'] or 1)


def classify(f):
    """The verdict from the shares of the anonymous RSS alone."""
    base = base_bytes(f)
    fr, live = f['free_resident_bytes'] or 0, f['live_bytes'] or 0
    if fr >= SIGNIFICANT_BYTES and fr >= RETENTION_SHARE * base:
        return VERDICT_RETENTION
    if live >= SIGNIFICANT_BYTES and live >= LIVE_SHARE * base:
        return VERDICT_LIVE
    return VERDICT_NONE


def share_words(f, part):
    """'655 MB of the 656 MB anonymous RSS (99%; RSS 659 MB, of it file-backed 2.9 MB)'."""
    rss = f['rss_bytes']
    anon = f.get('rss_anon_bytes')
    base = base_bytes(f)
    if not anon:
        return '%s of the %s RSS (%s)' % (human_bytes(part), human_bytes(rss), pct(float(part) / base))
    parts = []
    if f.get('rss_shmem_bytes'):
        parts.append('shared memory %s' % human_bytes(f['rss_shmem_bytes']))
    if f.get('rss_file_bytes') is not None:
        parts.append('file-backed %s' % human_bytes(f['rss_file_bytes']))
    return '%s of the %s anonymous RSS (%s; RSS %s%s)' % (
        human_bytes(part), human_bytes(anon), pct(float(part) / base), human_bytes(rss),
        (', of it ' + ', '.join(parts)) if parts else '')


def pinned_words(g, page=4096):
    """'10,000 chunks of 32 B (in use) pin 10,157 pages (42 MB)'."""
    what = '' if g['state'] == 'in use' else ' (%s)' % g['state']
    return '%s chunk%s of %s%s pin%s %s page%s (%s)%s' % (
        thousands(g['count']), '' if g['count'] == 1 else 's', human_bytes(g['chunk_size']), what,
        's' if g['count'] == 1 else '', thousands(g['pages']), '' if g['pages'] == 1 else 's',
        human_bytes(g['bytes']), (', each holding %s' % g['points_to']) if g.get('points_to') else '')


def _mmap_fix(f):
    adv = f.get('mmap_advice')
    if adv is None:
        # malloc_info's size classes only (no walk): the old reading
        if f.get('large_free_share', 0) >= 0.5 and f.get('large_free_from'):
            thr = max(4096, f['large_free_from'] // 4096 * 4096)
            return ('most free chunks are large (%s and up): if the program frees blocks that big, '
                    'GLIBC_TUNABLES=glibc.malloc.mmap_threshold=%d (or MALLOC_MMAP_THRESHOLD_=%d) gives each '
                    'block a mapping of its own that free() returns (a guess from malloc_info\'s size classes, '
                    'which merge neighbouring frees)' % (human_bytes(f['large_free_from']), thr, thr)), None
        return None, None
    if not adv['applies']:
        return None, adv['why']
    thr = adv['threshold']
    now = f.get('mmap_threshold_now')
    dyn = ''
    if now and f.get('mmap_threshold_dynamic') and now > max(thr, DEFAULT_MMAP_THRESHOLD):
        dyn = '; glibc has raised its threshold to %d by itself (each free of an mmapped block raises it)' % now
    size = human_bytes(adv['from']) if human_bytes(adv['from']) == human_bytes(adv['to']) else \
        '%s-%s' % (human_bytes(adv['from']), human_bytes(adv['to']))
    return ('the program frees blocks of %s (%s of them free in the heap now, %s of the large free '
            'bytes): GLIBC_TUNABLES=glibc.malloc.mmap_threshold=%d (or MALLOC_MMAP_THRESHOLD_=%d) gives each '
            'such block a mapping of its own that free() returns; an explicit threshold also stops glibc '
            'raising it dynamically (mind M_MMAP_MAX, 65536 mappings)%s' % (
                size, thousands(adv['count']),
                pct(adv['share']), thr, thr, dyn)), None


def judge(f, pid, shim=None, command=None):
    """(verdict, why, [fixes]) from the report of a glibc malloc process."""
    fr, live, trim = f['free_resident_bytes'], f['live_bytes'], f['trimmable_bytes']
    shim = shim or paths.shim_library(paths.build_dir())
    shim = os.path.abspath(shim)
    cmd = command or paths.command_name()
    exact = f.get('would_return_bytes') is not None
    would = ('malloc_trim(0) would return %s' if exact else 'malloc_trim(0) would return about %s') % human_bytes(trim)
    fixes = []
    large_fix, no_large = _mmap_fix(f)
    pinned = f.get('pinned') or []
    pinned_total = sum(g['bytes'] for g in pinned)
    thread_rows = [r for r in f['arenas'] if r['kind'] == 'thread' and r['resident_bytes'] is not None]
    busy = [r for r in thread_rows if fr and r['resident_bytes'] - r['in_use_bytes'] >= ARENA_SHARE * fr]
    verdict = classify(f)
    if verdict == VERDICT_RETENTION:
        if trim >= TRIMMABLE_SHARE * fr:
            why = ('%s is free memory glibc malloc keeps resident, not a leak: the program holds only %s; %s'
                   % (share_words(f, fr), human_bytes(live), would))
            fixes.append('now, in this process: %s explain %d --trim (calls malloc_trim(0) through gdb)' % (cmd, pid))
            fixes.append('in the program: call malloc_trim(0) after freeing much memory, or periodically '
                         '(what the founding report did)')
            fixes.append('without changing the program: LD_PRELOAD=%s (the trim shim: trims when the process '
                         'idles)%s' % (shim, '' if os.path.isfile(shim) else '; not built yet: cmake --build build'))
            if large_fix:
                fixes.append(large_fix)
        else:
            why = ('%s is free memory glibc malloc keeps resident, not a leak, but it sits on pages shared with '
                   'the %s still in use (fragmentation): %s' % (share_words(f, fr), human_bytes(live), would))
            if large_fix:
                fixes.append(large_fix)
            fixes.append('keep long-lived small objects away from large short-lived blocks: allocate them '
                         'together (a pool, or before the blocks), so freed blocks coalesce into whole pages')
            fixes.append('or preload another allocator (jemalloc, tcmalloc) and measure: '
                         '%s compare shows what each keeps' % cmd)
        if pinned and pinned_total >= PINNED_BYTES:
            top = pinned[0]
            why += '; what stays: %s' % pinned_words(top)
            fixes.append('what keeps the rest: %s: allocate them apart from the large blocks (a pool or arena '
                         'of their own), then freed blocks leave whole pages' % pinned_words(top))
        if len(busy) >= 2:
            fixes.append('%d thread arenas each keep free memory that threads of the other arenas cannot '
                         'reuse: if RSS grows with the number of threads, MALLOC_ARENA_MAX=2 (or GLIBC_TUNABLES='
                         'glibc.malloc.arena_max=2) lets threads share it; it returns nothing by itself '
                         '(trim does)' % len(busy))
        if no_large and not large_fix:
            fixes.append('no mmap threshold fix: %s' % no_large)
    elif verdict == VERDICT_LIVE:
        why = ('%s is allocations still in use; glibc keeps only %s free and resident. This is not allocator '
               'retention: trimming will not help' % (share_words(f, live), human_bytes(fr)))
        fixes.append('watch it: %s explain %d --watch 30 tells a leak (live bytes growing) from a plateau; '
                     'find the allocation sites with heaptrack or valgrind --tool=massif (memcheck reports only '
                     'what is unreachable at exit)' % (cmd, pid))
    else:
        why = 'of %s: %s; nothing here for a malloc fix' % (human_bytes(f['rss_bytes']), ', '.join(_parts(f)))
    if verdict != VERDICT_RETENTION and fr >= SIGNIFICANT_BYTES:
        fixes.append('still, %s is free and resident in malloc; %s' % (human_bytes(fr), would))
    return verdict, why, fixes


def _parts(f):
    parts = ['live allocations %s' % human_bytes(f['live_bytes']),
             'free and resident in malloc %s' % human_bytes(f['free_resident_bytes'])]
    if f.get('rss_shmem_bytes'):
        parts.append('shared memory %s' % human_bytes(f['rss_shmem_bytes']))
    if f.get('rss_file_bytes') is not None:
        parts.append('file-backed (code, libraries) %s' % human_bytes(f['rss_file_bytes']))
    elif f.get('rss_anon_bytes') is not None:
        parts.append('file-backed (code, libraries) %s' % human_bytes(max(0, f['rss_bytes'] - f['rss_anon_bytes'])))
    if f.get('outside_malloc_anon_bytes') is not None:
        parts.append('anonymous outside malloc (stacks, direct mmap) %s' % human_bytes(f['outside_malloc_anon_bytes']))
    return parts


OTHER_KNOBS = {
    'jemalloc': 'MALLOC_CONF=background_thread:true (purges while idle) or a shorter dirty_decay_ms/'
                'muzzy_decay_ms; mallctl("arena.<i>.purge") from the program',
    'tcmalloc': 'MallocExtension::instance()->ReleaseFreeMemory() from the program, or a higher '
                'TCMALLOC_RELEASE_RATE (returns free pages sooner)',
    'mimalloc': 'mi_collect(true) from the program, MIMALLOC_PURGE_DELAY=0 (older: MIMALLOC_RESET_DELAY) to '
                'return freed pages at once',
}


def judge_other(f, figs, name, pid, command=None):
    """(verdict, why, [fixes]) from another allocator's own figures (others.report)."""
    cmd = command or paths.command_name()
    if f['live_bytes'] is None:
        why = ('malloc is %s; its API tells resident %s and committed %s, not what is in use, so no retention '
               'verdict: %s explain %d --trim measures what mi_collect(true) returns' % (
                   name, human_bytes(figs.get('rss_bytes')), human_bytes(figs.get('commit_bytes')), cmd, pid))
        return VERDICT_NOT_GLIBC, why, [OTHER_KNOBS.get(name, not_glibc_fixes(name)[0]),
                                        '%s compare shows what each allocator keeps on the project\'s cases' % cmd]
    fr, live, trim = f['free_resident_bytes'], f['live_bytes'], f['trimmable_bytes'] or 0
    verdict = classify(f)
    fixes = []
    if verdict == VERDICT_RETENTION:
        why = ('%s is free memory %s keeps resident, not a leak: the program holds %s; %s would return %s '
               '(%s\'s own count)' % (share_words(f, fr), name, human_bytes(live), _release_name(name),
                                      human_bytes(trim), name))
        fixes.append('now, in this process: %s explain %d --trim (calls %s through gdb)'
                     % (cmd, pid, _release_name(name)))
        fixes.append(OTHER_KNOBS[name])
        if trim < TRIMMABLE_SHARE * fr:
            fixes.append('most of it is not releasable now (fragmentation inside %s\'s pages, or metadata): '
                         'compare allocators on the workload: %s compare' % (name, cmd))
    elif verdict == VERDICT_LIVE:
        why = ('%s is allocations still in use (%s\'s own count); it keeps only %s free and resident. This is '
               'not allocator retention: releasing will not help' % (share_words(f, live), name, human_bytes(fr)))
        fixes.append('watch it: %s explain %d --watch 30 tells a leak (live bytes growing) from a plateau' % (cmd, pid))
    else:
        why = 'of %s: %s (%s\'s own count); nothing here for an allocator fix' % (
            human_bytes(f['rss_bytes']), ', '.join(_parts(dict(f, outside_malloc_anon_bytes=None))), name)
    return verdict, why, fixes


def _release_name(name):
    return RELEASE_NAMES.get(name, 'its release call')


def not_glibc_fixes(name, command=None):
    cmd = command or paths.command_name()
    generic = 'glibc\'s malloc_trim, the trim shim and MALLOC_* tunables do not apply: ask the allocator itself'
    out = [generic]
    if name in OTHER_KNOBS:
        out.append('%s: %s' % (name, OTHER_KNOBS[name]))
    out.append('%s compare shows what each allocator keeps on the project\'s cases' % cmd)
    return out
