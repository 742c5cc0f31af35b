"""One explanation of one process: what /proc says before gdb attaches (Snapshot), then a stop of
the process in which every thread's stack is looked at, the heap is read from memory (glibc) and,
only if no thread is inside the allocator, a call is made (--trim, another allocator's API, or
malloc_info where the walk cannot be done); the report document (explain(): --json) made of it.

A stop whose threads are inside the allocator is let go (detach), and the process stopped again a
moment later, STOP_TRIES times at most."""

import os
import time
from collections import OrderedDict

from .. import paths
from ..errors import ExplainError, ProcessGone, UsageError
from . import elfsyms, glibc, others, safety, shim, walk
from .gdb import DEFAULT_TIMEOUT_S, GdbSession
from .heaps import MemReader, arena_chain, arena_groups, exe_word_size, find_heaps
from .mallocinfo import parse_malloc_info
from .procfs import object_of, parse_maps, parse_stat_state, parse_status, shared_memory, tracer_pid
from .target import ensure_running, read_proc, read_rss, read_rss_split, state_of
from .verdict import VERDICT_NOT_GLIBC, allocator_name, judge, judge_other, not_glibc_fixes

# How many times a process is stopped before explain gives up waiting for its threads to leave
# the allocator (or for a heap read that adds up), and how long it runs between two stops.
STOP_TRIES = 6
STOP_PAUSES_S = (0.05, 0.1, 0.2, 0.4, 0.8)


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
        tracer = tracer_pid(status)
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


class Stop(object):
    """The process as it is while gdb holds it: mappings, threads, which are in the allocator."""

    def __init__(self, sess, pid, code_for):
        self.t0 = time.monotonic()
        self.mappings = parse_maps(read_proc(pid, 'smaps'))
        self.threads = sess.threads()
        self.code = code_for(self.mappings)
        self.busy = []
        for t in self.threads:
            w = safety.inside(t, self.code, self.mappings)
            if w:
                self.busy.append((t, w))

    def busy_text(self):
        return '; '.join(safety.describe(t, w) for t, w in self.busy)


def _call_thread(stop):
    """The thread to make calls on: the main thread unless it is gone."""
    for t in stop.threads:
        if str(t.num) == '1':
            return t
    return stop.threads[0]


def explain(pid, trim=False, gdb=None, timeout=DEFAULT_TIMEOUT_S, environ=None, log=None, transcript=None,
            stop_tries=STOP_TRIES):
    """Everything explain reports, as an OrderedDict (the --json document)."""
    environ = os.environ if environ is None else environ
    snap = Snapshot(pid)
    with Explainer(snap, gdb, timeout, environ, log, transcript) as ex:
        return ex.reading(trim, stop_tries)


class Explainer(object):
    """One gdb for one process, for one reading or several (--watch): each reading attaches,
    reads, detaches. Leaving the with block ends gdb and makes sure the process runs."""

    def __init__(self, snap, gdb=None, timeout=DEFAULT_TIMEOUT_S, environ=None, log=None, transcript=None):
        self.snap = snap
        self.environ = os.environ if environ is None else environ
        gdb_path, why = paths.find_gdb(gdb, self.environ)
        if gdb_path is None:
            raise ExplainError(why)
        self.gdb_path = gdb_path
        self.timeout = timeout
        self.log = log
        self.transcript = transcript
        self.sess = None
        self.notes = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pid = self.snap.pid
        if self.sess is not None:
            self.sess.close()
            self.sess = None
        # On every path, also ^C and errors: the target must not stay stopped.
        if os.path.exists('/proc/%d' % pid):
            note = ensure_running(pid, self.snap.state)
            if note:
                self.notes.append(note)

    def reading(self, trim=False, stop_tries=STOP_TRIES):
        pid = self.snap.pid
        # the same list as the document's: a note __exit__ adds (SIGCONT) shows in it
        self.notes = notes = list(self.snap.notes)
        try:
            if self.sess is None:
                self.sess = GdbSession(self.gdb_path, pid, self.environ, self.timeout, self.log, self.transcript)
            self.sess.attach()
            doc = _explain(self.sess, self.snap, trim, notes, self.environ, stop_tries)
            self.sess.detach()
            return doc
        except ProcessGone:
            raise
        except ExplainError:
            if _gone(pid):
                raise ProcessGone('process %d exited while gdb was attached' % pid)
            raise


def _gone(pid, wait_s=1.0):
    """Has the process exited? A process killed while gdb fails may take a moment to be gone:
    this tells "it exited" from a gdb problem."""
    deadline = time.monotonic() + wait_s
    while True:
        if state_of(pid) in (None, 'Z', 'X'):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _malloc_object(sess, mappings, exe):
    """Which mapped object the process's `malloc` resolves to (gdb looks it up as the dynamic
    linker does: the executable, preloaded libraries, then the others)."""
    v = sess.evaluate('(unsigned long)&malloc')
    addr = others.value_int(v) if v is not None else None
    if addr is None:
        raise ExplainError('gdb cannot find malloc in process %d (a static binary without symbols?)' % sess.pid)
    return addr, object_of(addr, mappings) or exe


def _explain(sess, snap, trim, notes, environ, stop_tries):
    pid = snap.pid
    maps0 = parse_maps(read_proc(pid, 'smaps'))
    lib = glibc.libc_path(maps0, snap.exe)
    malloc_addr, malloc_obj = _malloc_object(sess, maps0, snap.exe)
    libc_lo, libc_hi = _object_range(maps0, lib)
    is_glibc = lib is not None and libc_lo <= malloc_addr < libc_hi
    name = 'glibc' if is_glibc else allocator_name(malloc_obj)
    libc_elf = elfsyms.load(lib, pid) if lib else None
    if is_glibc:
        code_for = (lambda maps: safety.glibc_code(maps, lib, pid, libc_elf))
    else:
        code_for = (lambda maps: safety.library_code(maps, malloc_obj, name))
    doc = OrderedDict()
    doc['pid'] = pid
    doc['command'] = snap.comm
    doc['exe'] = snap.exe
    alloc = OrderedDict()
    alloc['malloc_object'] = malloc_obj
    alloc['glibc'] = is_glibc
    alloc['name'] = name
    alloc['libc'] = lib
    doc['allocator'] = alloc
    # /proc and the shim's own file only: nothing is asked of the process for it
    doc['shim'] = shim.inspect(pid, maps0, (is_glibc, '%s (%s)' % (name, malloc_obj)))
    stops = []
    result = None
    last_err = None
    t_first = time.monotonic()
    for attempt in range(stop_tries):
        if attempt:
            sess.detach()
            time.sleep(STOP_PAUSES_S[min(attempt - 1, len(STOP_PAUSES_S) - 1)])
            if state_of(pid) in (None, 'Z', 'X'):
                raise ProcessGone('process %d exited while explain was looking at it' % pid)
            sess.attach()
        stop = Stop(sess, pid, code_for)
        stops.append(stop)
        last = attempt == stop_tries - 1
        if stop.busy and not last:
            continue
        if not is_glibc:
            result = stop
            break
        try:
            result = (stop, _read_glibc(sess, stop, snap, lib, libc_elf))
            break
        except walk.WalkUnsupported as e:
            last_err = e
            if not stop.busy:
                break
        except walk.WalkError as e:
            last_err = e
            if stop.busy:
                break
    stop = stops[-1]
    waited = time.monotonic() - t_first
    doc['stops'] = OrderedDict([('count', len(stops)), ('seconds', round(waited, 3)),
                                ('threads', len(stop.threads)),
                                ('inside_allocator', [OrderedDict([('thread', t.num), ('tid', t.tid), ('where', w)])
                                                      for t, w in stop.busy])])
    busy_why = None
    if stop.busy:
        busy_why = ('%s at each of %d stops over %.1f s' % (stop.busy_text(), len(stops), waited))
    split = read_rss_split(pid)
    if not is_glibc:
        return _finish_other(sess, doc, stop, snap, name, malloc_obj, lib, split, trim, busy_why, notes)
    if result is None and last_err is not None and busy_why:
        raise ExplainError('process %d: the heap could not be read consistently (%s): %s; nothing was called, '
                           'the process carries on untouched' % (pid, last_err, busy_why))
    if result is None:
        # The walk is not possible here (a 32-bit process, a glibc layout not known): malloc_info,
        # called only because no thread is inside the allocator.
        notes.append('the heap walk was not possible (%s): figures from malloc_info' % last_err)
        f = _malloc_info_figures(sess, stop, snap, lib, libc_elf, split)
    else:
        stop, (f, hw) = result
        _name_pinned(sess, f, hw, stop.mappings)
        if busy_why:
            notes.append('%s; the heap read adds up all the same' % busy_why)
    doc.update(f)
    verdict, why, fixes = judge(f, pid, paths.shim_library(paths.build_dir(environ=environ)))
    doc['verdict'] = verdict
    doc['why'] = why
    doc['fixes'] = _shim_fixes(fixes, doc['shim'])
    if trim:
        doc['trim'] = _trim_glibc(sess, stop, pid, lib, libc_elf, busy_why)
    doc['calls'] = list(sess.call_log)
    doc['notes'] = notes
    return doc


def _shim_fixes(fixes, sh):
    """The fixes, without "preload the shim" where it is loaded already: what it does there is
    the trim shim section's, not a fix to try."""
    if not sh.get('loaded'):
        return fixes
    out = []
    for fx in fixes:
        if 'LD_PRELOAD=' in fx and 'libtrimshim' in fx:
            state = sh.get('state')
            out.append('the trim shim is loaded in this process already (%s): see "trim shim" above'
                       % (shim.state_words(state, sh.get('mode')) if state else 'its state not known'))
        else:
            out.append(fx)
    return out


def _object_range(mappings, path):
    ms = [m for m in mappings if m.path == path]
    if not ms:
        return 0, 0
    return min(m.start for m in ms), max(m.end for m in ms)


def _read_glibc(sess, stop, snap, lib, libc_elf):
    """The heap walk at this stop: (figures, HeapWalk). WalkError when it does not add up."""
    pid = snap.pid
    if snap.word != 8:
        raise walk.WalkUnsupported('the heap walk reads 64-bit processes only')
    maps = stop.mappings
    version = elfsyms.glibc_version(libc_elf)
    if version is not None and version < (2, 26):
        raise walk.WalkUnsupported('glibc %d.%d is older than the walk knows (2.26)' % version)
    with MemReader(pid) as mr:
        if mr.fd is None:
            raise walk.WalkError('/proc/%d/mem is not readable' % pid)
        found = find_heaps(maps, mr.read, snap.word, snap.page)
        groups = arena_groups(found)
        chain = arena_chain(groups, mr.read, snap.word)
        if chain is None:
            raise walk.WalkError('the thread arenas do not form one chain')
        heap_maps = [m for m in maps if m.path == '[heap]']
        hstart = min(m.start for m in heap_maps) if heap_maps else None
        main, layout, mp = walk.discover(mr.read, maps, lib, chain, hstart)
        if hstart and mp is None:
            raise walk.WalkError('mp_ (malloc_par) not found in libc\'s data')
        thread_heaps = {}
        for h in found:
            thread_heaps.setdefault(h['ar_ptr'], []).append(h)
        protected = version >= (2, 32) if version else None
        hw = walk.walk_heap(pid, mr.read, maps, main, layout, thread_heaps, hstart if mp else None, protected,
                            snap.page)
        rows, pinned = walk.summarize(hw, snap.page)
        if mp is not None:
            mmapped = (mp['mmapped_mem'], mp['n_mmaps'])
        else:
            exclude = [(h['start'], h['end']) for h in found]
            mmapped = glibc.scan_mmapped(hw.mem, maps, exclude, snap.page)
        split = read_rss_split(pid)
        f = glibc.walk_figures(rows, pinned, chain[0], mp, split, mmapped, snap.page)
        f['shared_memory'] = [OrderedDict([('name', n), ('rss_bytes', r), ('mappings', c)])
                              for n, r, c in shared_memory(maps)]
        hwinfo = OrderedDict()
        hwinfo['source'] = 'heap walk'
        hwinfo['glibc_version'] = '%d.%d' % version if version else None
        hwinfo['main_arena'] = '%x' % main
        hwinfo['safe_linking'] = protected
        hwinfo['tcaches'] = sum(len(a.tcaches) for a in hw.arenas)
        hwinfo['reads'] = hw.mem.reads
        f['heap_walk'] = hwinfo
        return f, hw


def _name_pinned(sess, f, hw, mappings):
    """points_to for each pinning group: what the first words of its example chunks point at,
    named by gdb where it can (a C++ vtable names the type). Reads only: no call."""
    heap_ranges = []
    for aw in hw.arenas:
        for s, e, _ in aw.regions:
            heap_ranges.append((s, e))

    def mapped(addr):
        for m in mappings:
            if m.start <= addr < m.end:
                return m.path
        return None
    for g in f.get('pinned', [])[:8]:
        words = [hw.mem.words(int(e, 16), 2) for e in g['examples']]
        what = walk.classify_pointers(words, heap_ranges, mapped)
        if what == 'heap pointers':
            g['points_to'] = 'two heap pointers first (a list or tree node?)'
        elif isinstance(what, tuple):
            text = sess.info_symbol(what[1])
            if text:
                sym = text.split(' in section ')[0]
                if sym.startswith('vtable for '):
                    g['points_to'] = 'a %s (C++ object: its vtable)' % sym[len('vtable for '):].split(' + ')[0]
                else:
                    g['points_to'] = 'a pointer to %s' % sym
            else:
                g['points_to'] = 'a pointer into %s' % os.path.basename(mapped(what[1]) or '?')


def _libc_sym(libc_elf, mappings, lib, *names):
    if libc_elf is None:
        return None
    bias = elfsyms.load_bias(mappings, lib, libc_elf)
    if bias is None:
        return None
    want = set(names)
    for n, v, _ in libc_elf.symbols:
        if n.split('@', 1)[0] in want:
            return bias + v
    return None


def _trim_glibc(sess, stop, pid, lib, libc_elf, busy_why):
    t = OrderedDict()
    rss_before, _ = read_rss(pid)
    t['rss_before_bytes'] = rss_before
    t['call'] = 'malloc_trim(0)'
    if busy_why:
        t['called'] = False
        t['refused'] = True
        t['why'] = '%s: a call now could find the heap half-way through an update, or wait for good on a ' \
                   'lock that thread holds' % busy_why
        t['rss_after_bytes'] = None
        return t
    f = _libc_sym(libc_elf, stop.mappings, lib, 'malloc_trim', '__malloc_trim')
    th = _call_thread(stop)
    expr = ('((int (*)(unsigned long))0x%x)(0)' % f) if f else '(int)malloc_trim((unsigned long)0)'
    v = sess.call(expr, th.num, th.tid)
    rss_after, _ = read_rss(pid)
    t['called'] = True
    t['returned'] = others.value_int(v)
    t['rss_after_bytes'] = rss_after
    t['released_bytes'] = rss_before - rss_after
    return t


def _malloc_info_figures(sess, stop, snap, lib, libc_elf, split):
    """glibc's figures from malloc_info(0, open_memstream(...)), read back from memory."""
    pid = snap.pid
    maps = stop.mappings
    th = _call_thread(stop)
    need = {}
    for n in ('malloc', 'free', 'open_memstream', 'malloc_info', 'fclose'):
        need[n] = _libc_sym(libc_elf, maps, lib, n)
    if any(v is None for v in need.values()):
        raise ExplainError('process %d: glibc\'s malloc_info or its helpers not found in %s' % (pid, lib))

    def call(expr):
        return others.value_int(sess.call(expr, th.num, th.tid))
    p = call('((void *(*)(unsigned long))0x%x)(16)' % need['malloc'])
    if not p:
        raise ExplainError('malloc in process %d returned NULL' % pid)
    sess.write_memory(p, b'\0' * 16)
    fp = call('((void *(*)(char **, unsigned long *))0x%x)(0x%x, 0x%x)' % (need['open_memstream'], p, p + 8))
    if not fp:
        raise ExplainError('open_memstream in process %d failed' % pid)
    rc = call('((int (*)(int, void *))0x%x)(0, 0x%x)' % (need['malloc_info'], fp))
    call('((int (*)(void *))0x%x)(0x%x)' % (need['fclose'], fp))
    with MemReader(pid) as mr:
        head = mr.read(p, 16)
        buf, length = (int.from_bytes(head[:8], 'little'), int.from_bytes(head[8:], 'little')) if head else (0, 0)
        xml = mr.read(buf, length) if buf and length else None
        found = find_heaps(maps, mr.read, snap.word, snap.page)
        groups = arena_groups(found)
        chain = arena_chain(groups, mr.read, snap.word)
    if buf:
        call('((void (*)(void *))0x%x)(0x%x)' % (need['free'], buf))
    call('((void (*)(void *))0x%x)(0x%x)' % (need['free'], p))
    if rc != 0 or xml is None:
        raise ExplainError('malloc_info in process %d failed (returned %s)' % (pid, rc))
    info = parse_malloc_info(xml.decode('utf-8', 'replace'))
    main_resident = sum(m.rss for m in maps if m.path == '[heap]')
    f = glibc.figures(info, groups, chain[0] if chain else None, main_resident, split['rss'], split['anon'],
                      snap.page, [(m.start, m.end) for m in maps if m.path == '[heap]'])
    f['rss_shmem_bytes'] = split['shmem']
    f['rss_file_bytes'] = split['file']
    f['shared_memory'] = [OrderedDict([('name', n), ('rss_bytes', r), ('mappings', c)])
                          for n, r, c in shared_memory(maps)]
    f['heap_walk'] = OrderedDict([('source', 'malloc_info')])
    return f


def _finish_other(sess, doc, stop, snap, name, obj, lib, split, trim, busy_why, notes):
    """Another allocator: its own figures through its API, when no thread is inside it."""
    pid = snap.pid
    reader = others.READERS.get(name)
    figs = None
    why_not = None
    if reader is None:
        why_not = 'explain knows no API of %s to ask' % name
    elif busy_why:
        why_not = busy_why
    t = None
    if reader is not None and not busy_why:
        th = _call_thread(stop)
        with MemReader(pid) as mr:
            tgt = others.Target(sess, th.num, th.tid, stop.mappings, lib, obj, mr.read, pid)
            tgt.map_scratch()
            try:
                figs = reader[0](tgt)
                if trim:
                    t = OrderedDict()
                    rss_before, _ = read_rss(pid)
                    what, ok = reader[1](tgt)
                    rss_after, _ = read_rss(pid)
                    t['called'] = True
                    t['call'] = others.RELEASE_NAMES[name]
                    t['returned'] = what
                    t['rss_before_bytes'] = rss_before
                    t['rss_after_bytes'] = rss_after
                    t['released_bytes'] = rss_before - rss_after
            finally:
                tgt.unmap_scratch()
    doc['rss_bytes'] = split['rss']
    doc['rss_anon_bytes'] = split['anon']
    doc['rss_shmem_bytes'] = split['shmem']
    doc['rss_file_bytes'] = split['file']
    doc['shared_memory'] = [OrderedDict([('name', n), ('rss_bytes', r), ('mappings', c)])
                            for n, r, c in shared_memory(stop.mappings)]
    if figs is not None:
        doc['allocator_figures'] = figs
        f = others.report(name, figs, split)
        doc.update((k, v) for k, v in f.items() if k not in doc)
        verdict, why, fixes = judge_other(f, figs, name, pid)
    else:
        verdict = VERDICT_NOT_GLIBC
        why = ('malloc in this process resolves to %s (%s), not to glibc (%s); its own figures were not read: %s'
               % (name, obj, lib, why_not))
        fixes = not_glibc_fixes(name)
    doc['verdict'] = verdict
    doc['why'] = why
    doc['fixes'] = fixes
    if trim:
        if t is None:
            t = OrderedDict([('called', False), ('refused', bool(busy_why)),
                             ('why', why_not if reader is None else busy_why),
                             ('rss_before_bytes', split['rss']), ('rss_after_bytes', None)])
        doc['trim'] = t
    doc['calls'] = list(sess.call_log)
    doc['notes'] = notes
    return doc
