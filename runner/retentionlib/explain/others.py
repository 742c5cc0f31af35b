"""The figures of allocators other than glibc's, read through their own public API in the
stopped target (gdb calls, made only once no thread is inside the allocator), and their own
release call for --trim:

  jemalloc  mallctl("epoch") to refresh, then stats.allocated, stats.active, stats.metadata,
            stats.resident, stats.mapped, stats.retained, and the dirty and muzzy pages of all
            arenas (stats.arenas.<all>.pdirty, .pmuzzy) x arenas.page: what a purge returns.
            Release: mallctl("arena.<all>.purge").
  tcmalloc  MallocExtension_GetNumericProperty: generic.current_allocated_bytes, generic.heap_size,
            tcmalloc.pageheap_free_bytes (free pages still mapped: what a release returns),
            tcmalloc.pageheap_unmapped_bytes, the thread, central and transfer caches.
            Release: MallocExtension_ReleaseFreeMemory().
  mimalloc  mi_process_info (resident and committed bytes as mimalloc counts them).
            Release: mi_collect(true).

The strings and output variables the calls need live in a page mapped in the target for the
purpose (libc's mmap, then munmap): nothing is allocated from the allocator being measured."""

import re
import struct
from collections import OrderedDict

from ..errors import ExplainError
from . import elfsyms

# jemalloc's MALLCTL_ARENAS_ALL: "arena.4096.*" and "stats.arenas.4096.*" mean all arenas.
JEMALLOC_ALL = 4096
SCRATCH = 4096


def value_int(text):
    """gdb's printed value ('(void *) 0x7f12', '1', '-1') -> int, or None."""
    m = re.search(r'(0x[0-9a-fA-F]+|-?\d+)\s*(<[^>]*>)?\s*$', (text or '').strip())
    if not m:
        return None
    v = m.group(1)
    return int(v, 16) if v.lower().startswith('0x') else int(v)


class Target(object):
    """What a reader needs: gdb calls on one thread, symbol addresses, the target's memory."""

    def __init__(self, sess, thread, tid, mappings, libc, obj, read, pid):
        self.sess = sess
        self.thread = thread
        self.tid = tid
        self.read = read
        self.scratch = None
        self.syms = {}
        self.pid = pid
        for path in (obj, libc):
            if not path:
                continue
            elf = elfsyms.load(path, pid)
            bias = elfsyms.load_bias(mappings, path, elf) if elf else None
            if elf is None or bias is None:
                continue
            for name, value, _ in elf.symbols:
                self.syms.setdefault((path, name.split('@', 1)[0]), bias + value)
        self.obj = obj
        self.libc = libc

    def sym(self, *names, **kw):
        path = kw.get('path') or self.obj
        for n in names:
            a = self.syms.get((path, n))
            if a:
                return a
        return None

    def call(self, expr):
        return value_int(self.sess.call(expr, self.thread, self.tid))

    def map_scratch(self):
        mmap = self.sym('mmap', 'mmap64', '__mmap', path=self.libc)
        if mmap is None:
            raise ExplainError('libc\'s mmap not found in process %d: cannot make room for the calls' % self.pid)
        a = self.call('((void *(*)(void *, unsigned long, int, int, int, long))0x%x)(0, %d, 3, 34, -1, 0)'
                      % (mmap, SCRATCH))
        if a is None or a <= 0 or a == (1 << 64) - 1:
            raise ExplainError('mmap in process %d failed: cannot make room for the calls' % self.pid)
        self.scratch = a
        return a

    def unmap_scratch(self):
        munmap = self.sym('munmap', '__munmap', path=self.libc)
        if self.scratch and munmap:
            self.call('((int (*)(void *, unsigned long))0x%x)(0x%x, %d)' % (munmap, self.scratch, SCRATCH))
        self.scratch = None

    def put(self, off, data):
        self.sess.write_memory(self.scratch + off, data)

    def get_u64(self, off, size=8):
        b = self.read(self.scratch + off, size)
        if b is None:
            raise ExplainError('cannot read process %d\'s memory' % self.pid)
        return struct.unpack('<Q' if size == 8 else '<I', b)[0]


# ---------------------------------------------------------------- jemalloc

JEMALLOC_STATS = ('stats.allocated', 'stats.active', 'stats.metadata', 'stats.resident', 'stats.mapped',
                  'stats.retained')


def _mallctl(t):
    f = t.sym('mallctl', 'je_mallctl')
    if f is None:
        raise ExplainError('jemalloc\'s mallctl not found in %s' % t.obj)
    return f


def _ctl(t, f, name, size=8, write=None):
    """mallctl(name, &out, &len, new, newlen) through the scratch page: the value, or None when
    jemalloc says no (an unknown name: this build lacks the statistic)."""
    # scratch: [0] out, [8] len, [16] the value written, [64..] the name
    t.put(64, name.encode() + b'\0')
    t.put(8, struct.pack('<Q', size))
    if write is not None:
        t.put(16, struct.pack('<Q', write))
        rc = t.call('((int (*)(const char *, void *, unsigned long *, void *, unsigned long))0x%x)'
                    '(0x%x, 0x%x, 0x%x, 0x%x, %d)' % (f, t.scratch + 64, t.scratch, t.scratch + 8,
                                                       t.scratch + 16, 8))
    else:
        rc = t.call('((int (*)(const char *, void *, unsigned long *, void *, unsigned long))0x%x)'
                    '(0x%x, 0x%x, 0x%x, 0, 0)' % (f, t.scratch + 64, t.scratch, t.scratch + 8))
    if rc != 0:
        return None
    return t.get_u64(0, size)


def jemalloc_figures(t):
    f = _mallctl(t)
    _ctl(t, f, 'epoch', write=1)
    out = OrderedDict()
    for name in JEMALLOC_STATS:
        out[name.split('.', 1)[1] + '_bytes'] = _ctl(t, f, name)
    page = _ctl(t, f, 'arenas.page') or 4096
    dirty = _ctl(t, f, 'stats.arenas.%d.pdirty' % JEMALLOC_ALL)
    muzzy = _ctl(t, f, 'stats.arenas.%d.pmuzzy' % JEMALLOC_ALL)
    out['page_bytes'] = page
    out['dirty_bytes'] = dirty * page if dirty is not None else None
    out['muzzy_bytes'] = muzzy * page if muzzy is not None else None
    out['narenas'] = _ctl(t, f, 'arenas.narenas', size=4)
    if out['allocated_bytes'] is None or out['resident_bytes'] is None:
        raise ExplainError('jemalloc in process %d gives no statistics (built without --enable-stats?)' % t.pid)
    out['releasable_bytes'] = (out['dirty_bytes'] or 0) + (out['muzzy_bytes'] or 0)
    return out


def jemalloc_release(t):
    f = _mallctl(t)
    t.put(64, ('arena.%d.purge' % JEMALLOC_ALL).encode() + b'\0')
    rc = t.call('((int (*)(const char *, void *, unsigned long *, void *, unsigned long))0x%x)(0x%x, 0, 0, 0, 0)'
                % (f, t.scratch + 64))
    return 'mallctl("arena.%d.purge") returned %s' % (JEMALLOC_ALL, rc), rc == 0


# ---------------------------------------------------------------- tcmalloc

TCMALLOC_PROPS = (('generic.current_allocated_bytes', 'allocated_bytes'), ('generic.heap_size', 'heap_size_bytes'),
                  ('tcmalloc.pageheap_free_bytes', 'pageheap_free_bytes'),
                  ('tcmalloc.pageheap_unmapped_bytes', 'pageheap_unmapped_bytes'),
                  ('tcmalloc.current_total_thread_cache_bytes', 'thread_cache_bytes'),
                  ('tcmalloc.central_cache_free_bytes', 'central_cache_free_bytes'),
                  ('tcmalloc.transfer_cache_free_bytes', 'transfer_cache_free_bytes'))


def tcmalloc_figures(t):
    f = t.sym('MallocExtension_GetNumericProperty')
    if f is None:
        raise ExplainError('tcmalloc\'s MallocExtension_GetNumericProperty not found in %s' % t.obj)
    out = OrderedDict()
    for prop, key in TCMALLOC_PROPS:
        t.put(64, prop.encode() + b'\0')
        t.put(0, struct.pack('<Q', 0))
        ok = t.call('((int (*)(const char *, unsigned long *))0x%x)(0x%x, 0x%x)' % (f, t.scratch + 64, t.scratch))
        out[key] = t.get_u64(0) if ok else None
    if out['allocated_bytes'] is None or out['heap_size_bytes'] is None:
        raise ExplainError('tcmalloc in process %d answers no statistics' % t.pid)
    out['releasable_bytes'] = out['pageheap_free_bytes'] or 0
    return out


def tcmalloc_release(t):
    f = t.sym('MallocExtension_ReleaseFreeMemory')
    if f is None:
        raise ExplainError('tcmalloc\'s MallocExtension_ReleaseFreeMemory not found in %s' % t.obj)
    t.call('((void (*)(void))0x%x)()' % f)
    return 'MallocExtension_ReleaseFreeMemory() called', True


# ---------------------------------------------------------------- mimalloc

MIMALLOC_INFO = ('elapsed_ms', 'user_ms', 'system_ms', 'rss_bytes', 'peak_rss_bytes', 'commit_bytes',
                 'peak_commit_bytes', 'page_faults')


def mimalloc_figures(t):
    f = t.sym('mi_process_info')
    if f is None:
        raise ExplainError('mimalloc\'s mi_process_info not found in %s' % t.obj)
    t.put(0, b'\0' * 64)
    args = ', '.join('0x%x' % (t.scratch + 8 * i) for i in range(8))
    t.call('((void (*)(unsigned long *, unsigned long *, unsigned long *, unsigned long *, unsigned long *, '
           'unsigned long *, unsigned long *, unsigned long *))0x%x)(%s)' % (f, args))
    out = OrderedDict()
    for i, key in enumerate(MIMALLOC_INFO):
        out[key] = t.get_u64(8 * i)
    out['releasable_bytes'] = None
    return out


def mimalloc_release(t):
    f = t.sym('mi_collect')
    if f is None:
        raise ExplainError('mimalloc\'s mi_collect not found in %s' % t.obj)
    t.call('((void (*)(int))0x%x)(1)' % f)
    return 'mi_collect(true) called', True


READERS = {'jemalloc': (jemalloc_figures, jemalloc_release),
           'tcmalloc': (tcmalloc_figures, tcmalloc_release),
           'mimalloc': (mimalloc_figures, mimalloc_release)}
RELEASE_NAMES = {'jemalloc': 'mallctl("arena.<all>.purge")', 'tcmalloc': 'MallocExtension_ReleaseFreeMemory()',
                 'mimalloc': 'mi_collect(true)'}


def report(name, figs, split):
    """The verdict's inputs from an allocator's own figures: live, free and resident, what its
    release call would return."""
    f = OrderedDict()
    f['rss_bytes'] = split['rss']
    f['rss_anon_bytes'] = split['anon']
    f['rss_shmem_bytes'] = split['shmem']
    f['rss_file_bytes'] = split['file']
    if name == 'jemalloc':
        live = figs['allocated_bytes']
        fr = max(0, figs['resident_bytes'] - live - (figs['metadata_bytes'] or 0))
        trim = figs['releasable_bytes']
    elif name == 'tcmalloc':
        live = figs['allocated_bytes']
        fr = max(0, figs['heap_size_bytes'] - (figs['pageheap_unmapped_bytes'] or 0) - live)
        trim = figs['releasable_bytes']
    else:
        live = None
        fr = None
        trim = None
    f['live_bytes'] = live
    f['free_resident_bytes'] = fr
    f['trimmable_bytes'] = trim
    f['would_return_bytes'] = trim
    return f
