"""Is a thread of the stopped target inside its allocator? A call into the allocator from gdb
(malloc_trim, malloc_info, mallctl...) is safe only if no thread is: a single-threaded glibc
takes no lock, so the call would run on data structures half-way through an update; in a
multi-threaded one the thread may hold the very lock the call needs, and wait for good.

A frame is the allocator's when gdb names it so (debug info: _int_malloc, sysmalloc...), or when
its address lies in the allocator's code: for glibc, its malloc functions from the dynamic
symbol table (sizes included), the code between them (malloc.c's static functions sit among
them) and what they tail-call (aligned_alloc jumps into _mid_memalign, whose frame then stands
without aligned_alloc's); for another allocator (jemalloc, tcmalloc, mimalloc), its whole
library. System calls made from malloc (sbrk, mmap, madvise, futex) have the allocator's frame
above them, so the whole stack is looked at, not only the innermost frame. fork() counts: it
holds every arena lock while it copies the process."""

import os
import re

from . import elfsyms

# glibc's malloc API, as names normalized by norm(): each is malloc.c's (or a wrapper that
# calls it directly).
GLIBC_API = frozenset((
    'malloc', 'free', 'cfree', 'calloc', 'realloc', 'reallocarray', 'memalign', 'aligned_alloc', 'valloc',
    'pvalloc', 'posix_memalign', 'malloc_usable_size', 'malloc_trim', 'malloc_stats', 'malloc_info',
    'mallinfo', 'mallinfo2', 'mallopt', 'malloc_get_state', 'malloc_set_state', 'default_morecore',
))
# malloc.c's static functions, named only where debug info is present.
GLIBC_STATIC = frozenset((
    'int_malloc', 'int_free', 'int_realloc', 'int_memalign', 'mid_memalign', 'sysmalloc', 'systrim',
    'malloc_consolidate', 'mtrim', 'heap_trim', 'new_heap', 'alloc_new_heap', 'grow_heap', 'shrink_heap',
    'arena_get2', 'arena_get_retry', 'reused_arena', 'get_free_list', 'int_new_arena', 'tcache_init',
    'tcache_thread_shutdown', 'ptmalloc_init', 'munmap_chunk', 'mremap_chunk', 'malloc_printerr',
    'int_mallinfo', 'malloc_fork_lock_parent', 'malloc_fork_unlock_parent', 'malloc_fork_unlock_child',
    'malloc_arena_thread_freeres', 'int_free_merge_chunk', 'int_free_create_chunk',
    'int_free_maybe_consolidate', 'unlink_chunk', 'malloc_hook_ini', 'realloc_hook_ini',
    'memalign_hook_ini', 'tcache_get', 'tcache_put', 'int_mallinfo', 'malloc_check',
))
# Functions outside malloc.c that hold malloc's locks while they run.
LOCK_HOLDERS = frozenset(('fork', 'libc_fork'))
# A thread of another allocator asleep in a condition wait (jemalloc's background thread between two
# purges) holds no lock: the wait releases the mutex. glibc's malloc never waits on a condition.
CONDITION_WAITS = frozenset(('pthread_cond_wait', 'pthread_cond_timedwait', 'pthread_cond_clockwait',
                             'pthread_cond_timedwait64', 'pthread_cond_clockwait64'))
# Another allocator linked into the executable: its functions by prefix.
ALLOCATOR_PREFIXES = ('je_', 'tc_', 'mi_', 'tcmalloc', 'jemalloc', 'mimalloc', 'arena_', 'tcache_')


def norm(name):
    """'__GI___libc_malloc' -> 'malloc', '_int_malloc' -> 'int_malloc', 'malloc@plt' -> 'malloc'."""
    if not name:
        return ''
    n = name.split('@', 1)[0]
    n = re.sub(r'^(__GI_)+', '', n)
    n = n.lstrip('_')
    if n.startswith('libc_') and n != 'libc_fork':
        n = n[5:]
    if n.startswith('malloc_') and n[7:] in ('trim', 'stats', 'info', 'usable_size'):
        return n
    return n.lstrip('_')


class AllocatorCode(object):
    """Where the allocator's code is: ranges [(lo, hi, label)] in the target and the names that
    are the allocator's; where(pc, func) says whether a frame is inside it, and as what."""

    def __init__(self, name, ranges=(), names=frozenset(), prefixes=(), obj=None, bias=0, parks=False):
        self.name = name
        self.bias = bias
        self.parks = parks  # a condition wait inside it is a safe place to be
        # the narrowest first: a function's own range names it before the span around it
        self.ranges = sorted(ranges, key=lambda r: (r[1] - r[0], r[0]))
        self.names = names
        self.prefixes = prefixes
        self.obj = obj

    def where(self, pc, func):
        n = norm(func)
        if n and (n in self.names or n in LOCK_HOLDERS or any(n.startswith(p) for p in self.prefixes)):
            return func.split('@', 1)[0]
        for lo, hi, label in self.ranges:
            if lo <= pc < hi:
                return label % (pc - self.bias) if '%' in label else label
        return None


def glibc_code(mappings, libc, pid=None, elf=None):
    """AllocatorCode for glibc's malloc in the target, from libc's symbol table; names only (what
    gdb's debug info gives) when the file cannot be read."""
    names = GLIBC_API | GLIBC_STATIC
    elf = elf or (elfsyms.load(libc, pid) if libc else None)
    if elf is None:
        return AllocatorCode('glibc', (), names, obj=libc)
    bias = elfsyms.load_bias(mappings, libc, elf)
    if bias is None:
        return AllocatorCode('glibc', (), names, obj=libc)
    base = os.path.basename(libc)
    ranges = []
    api = []
    for sym, value, size in elf.symbols:
        n = norm(sym)
        if n in GLIBC_API or n in GLIBC_STATIC:
            api.append((value, size, sym.split('@', 1)[0]))
        elif n in LOCK_HOLDERS:
            ranges.append((bias + value, bias + value + max(size, 1), sym.split('@', 1)[0]))
    if api:
        lo = min(v for v, _, _ in api)
        hi = max(v + s for v, s, _ in api)
        for value, size, sym in api:
            ranges.append((bias + value, bias + value + max(size, 1), sym))
        # malloc.c's static functions between its exported ones
        ranges.append((bias + lo, bias + hi, base + '+0x%x (glibc\'s allocator)'))
        seen = set()
        todo = [(v, s) for v, s, _ in api if s]
        for _ in range(3):
            nxt = []
            for value, size in todo:
                for t in elfsyms.tail_targets(elf, value, size):
                    if t in seen or lo <= t < hi:
                        continue
                    seen.add(t)
                    end = elfsyms.function_end(elf, t)
                    ranges.append((bias + t, bias + end, base + '+0x%x (glibc\'s allocator)'))
                    nxt.append((t, end - t))
            todo = nxt
    return AllocatorCode('glibc', ranges, names, obj=libc, bias=bias)


def library_code(mappings, obj, name):
    """AllocatorCode for an allocator in a library of its own: all of that library's code. In
    the executable itself: its allocator functions by name."""
    ranges = [(m.start, m.end, os.path.basename(obj)) for m in mappings
              if m.path == obj and 'x' in m.perms]
    exe_like = not os.path.basename(obj).startswith('lib')
    return AllocatorCode(name, [] if exe_like else ranges, GLIBC_API, ALLOCATOR_PREFIXES if exe_like else (), obj,
                         parks=True)


def frame_label(pc, func, obj, mappings=None):
    if func and func != '??':
        return func.split('@', 1)[0]
    if obj:
        return '%s+0x%x' % (os.path.basename(obj), pc - _obj_base(mappings, obj, pc))
    return '0x%x' % pc


def _obj_base(mappings, obj, pc):
    # gdb may name the object by another path (/lib is often a link to /usr/lib): the mapping
    # holding pc with the same file name
    base = os.path.basename(obj)
    real = os.path.realpath(obj)
    holder = [m for m in mappings or () if os.path.basename(m.path) == base or
              (m.path.startswith('/') and os.path.realpath(m.path) == real)]
    for m in holder:
        if m.offset == 0 and any(h.start <= pc < h.end for h in holder):
            return m.start
    return 0


def inside(thread, code, mappings=None):
    """None if the thread is not inside the allocator, else where it is, as words:
    'in _int_malloc < malloc < blocking_malloc'."""
    hit = None
    for i, (pc, func, obj) in enumerate(thread.frames):
        # A caller's saved pc points after its call instruction; one byte back is inside it.
        w = code.where(pc if i == 0 else pc - 1, func)
        if w is not None:
            hit = i
            break
    if hit is None:
        return None
    if code.parks and any(norm(f[1]) in CONDITION_WAITS for f in thread.frames[:hit]):
        return None

    def label(i):
        pc, func, obj = thread.frames[i]
        if func and func != '??':
            return frame_label(pc, func, obj, mappings)
        w = code.where(pc if i == 0 else pc - 1, func)
        return w if w is not None else frame_label(pc, func, obj, mappings)
    # the innermost frame, the allocator's, and its caller: where it is, in what, called from where
    shown = sorted(set([0, hit, min(hit + 1, len(thread.frames) - 1)]))
    labels = []
    for k, i in enumerate(shown):
        if k and i > shown[k - 1] + 1:
            labels.append('...')
        labels.append(label(i))
    return 'in ' + ' < '.join(labels)


def describe(thread, where):
    return 'thread %s (tid %s) is %s' % (thread.num, thread.tid, where)
