#!/usr/bin/env python3
"""Deterministic mutation fuzzing of the runner's parsers of outside input (runner/retentionlib).

    fuzz_parsers.py [--iterations N] [--seconds T] [--seed S] [--artifacts DIR] [TARGET...]
    fuzz_parsers.py --list

Every target first replays its seeds and fuzz/regressions/<target>/ (each file an input that once
found a bug), then runs N mutants (or as many as fit in T seconds, whichever comes first), from a
fixed-seed PRNG: the same seed gives the same inputs. Mutations: bit flips, random bytes, deleted,
duplicated and spliced lines, boundary and huge numbers, NUL bytes, invalid UTF-8, very long lines.

The contract each target checks: an input ends in a result or in the parser's one documented error
type, whose message names the file (and the line, when the error is about one); never another
exception (a traceback), never more than PER_INPUT_S seconds on one input, never a malformed value
taken silently (each target's checks say what that means for its results). A broken contract
prints the traceback, saves the input as DIR/crash-<target>-<sha1> and exits 1.

Python 3.6+, standard library only, like the runner."""

import argparse
import glob
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.dirname(HERE)
REPO = os.path.dirname(FUZZ)
sys.path.insert(0, os.path.join(REPO, 'runner'))

from retentionlib import casefile, cells, elf, execute, expfile, memcheck, platforminfo, promtext, watch  # noqa: E402
from retentionlib.errors import ConfigError, ExplainError  # noqa: E402
from retentionlib.explain import elfsyms, gdb, mallocinfo, procfs, shim, target  # noqa: E402

# One input of a few KiB parses in well under a millisecond; 2 s means a hang (or a quadratic
# blow-up), not a slow machine.
PER_INPUT_S = 2.0
# Mutants stay under this size: real inputs are at most a few dozen KiB (smaps), and a cap keeps
# each input fast enough for thousands per second.
MAX_LEN = 64 * 1024

ASCII_NUMBER = re.compile(r'^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$')


class Broken(Exception):
    """A parser broke its contract."""


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang('no answer within %g s' % PER_INPUT_S)


def check(cond, what):
    if not cond:
        raise Broken(what)


def config_error_names(e, where, nlines):
    """A ConfigError must name the file, and a line inside it when it names one."""
    s = str(e)
    check(s.startswith(where), 'ConfigError does not name %s: %s' % (where, s))
    if e.lineno is not None:
        check(1 <= e.lineno <= max(1, nlines), 'ConfigError line %r outside the file (%d lines): %s'
              % (e.lineno, nlines, s))
        check(s.startswith('%s:%d: ' % (where, e.lineno)), 'ConfigError message without its line: %s' % s)


def nlines_of(data):
    try:
        return len(data.decode('utf-8').splitlines())
    except UnicodeDecodeError:
        return 0


class Work(object):
    """A scratch repository: cases/ and expected/ under a temporary directory."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix='fuzz-parsers-')
        for d in ('cases', 'expected'):
            os.mkdir(os.path.join(self.root, d))

    def write(self, rel, data):
        path = os.path.join(self.root, rel)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


# ---- targets -------------------------------------------------------------------------------

def t_casefile(data, work):
    """cases/NAME.case through load_case (UTF-8 decoding included): a Case or a ConfigError."""
    work.write('cases/fz.case', data)
    try:
        case = casefile.load_case(os.path.join(work.root, 'cases'), 'fz', work.root)
    except ConfigError as e:
        config_error_names(e, 'cases/fz.case', nlines_of(data))
        return
    # Numbers taken only as written in ASCII digits ('1_0' and other scripts' digits are
    # malformed, not 10): the value on the line is what the case got.
    for key in ('timeout', 'idle'):
        if key in case.lines:
            v = casefile._value_of(casefile.parse_lines(data.decode('utf-8'), 'x'), case.lines[key])
            check(ASCII_NUMBER.match(v) is not None, '%s = %r taken as %r' % (key, v, getattr(case, key)))
    check(case.timeout > 0 and case.timeout != float('inf'), 'timeout %r' % case.timeout)
    check(isinstance(case.idle, int) and case.idle >= 0, 'idle %r' % case.idle)
    check(case.program and case.cells, 'a case without program or cells')


_CELLS_EXP = os.path.join(REPO, 'expected', 'cells.exp')
_PLATFORMS = [
    {'glibc': '2.36', 'distro_id': 'debian', 'distro_version': '12', 'thp': 'madvise', 'arch': 'x86_64',
     'tcache': 'on'},
    {'glibc': '2.17', 'distro_id': 'centos', 'distro_version': '7', 'thp': 'always', 'arch': 'x86_64',
     'tcache': 'off'},
    {'glibc': None, 'distro_id': None, 'thp': 'unknown', 'arch': 'aarch64'},
]


def _check_exp(exp, data):
    for sec in exp.sections:
        for b in sec.bounds:
            if b.number is not None:
                check(ASCII_NUMBER.match(b.expr) is not None, 'bound value %r taken as %r' % (b.expr, b.number))
        for s in sec.selectors:
            if s.key == 'glibc':
                check(re.match(r'^[0-9]+(\.[0-9]+)*$', s.value) is not None,
                      'glibc selector %r taken' % s.text)


def t_expfile(data, work):
    """expected/NAME.exp joined to the real cells.exp, then the bounds of every cell on a few
    platforms: an Expected and bounds, or a ConfigError naming the file and line."""
    with open(_CELLS_EXP, 'rb') as f:
        work.write('expected/cells.exp', f.read())
    work.write('expected/fz.exp', data)
    edir = os.path.join(work.root, 'expected')
    try:
        exp = expfile.load_expected(edir, 'fz', work.root)
        _check_exp(exp, data)
        for cell in cells.CELLS:
            for p in _PLATFORMS:
                for alloc in ('glibc', 'jemalloc'):
                    expfile.select_bounds(exp, cell, p, alloc)
                    expfile.unmatched_sections(exp, cell, p, alloc)
    except ConfigError as e:
        where = 'expected/cells.exp' if str(e).startswith('expected/cells.exp') else 'expected/fz.exp'
        config_error_names(e, where, nlines_of(data) if where.endswith('fz.exp') else 10 ** 6)


def t_cellbounds(data, work):
    """expected/cells.exp itself (mutated), with a real case file beside it."""
    work.write('expected/cells.exp', data)
    with open(os.path.join(REPO, 'expected', 'top_pinned.exp'), 'rb') as f:
        work.write('expected/top_pinned.exp', f.read())
    edir = os.path.join(work.root, 'expected')
    try:
        exp = expfile.load_expected(edir, 'top_pinned', work.root)
        _check_exp(exp.cell_bounds, data)
        for cell in cells.CELLS:
            for p in _PLATFORMS:
                expfile.select_bounds(exp, cell, p, 'glibc')
    except ConfigError as e:
        if str(e).startswith('expected/cells.exp'):
            config_error_names(e, 'expected/cells.exp', nlines_of(data))
        else:
            check(str(e).startswith('expected/top_pinned.exp:'), 'ConfigError names no file: %s' % e)


_XML_NUMBER = re.compile(r'^[0-9]+$')


def t_malloc_info(data, work):
    """malloc_info's XML as explain decodes it: a dict, or an ExplainError; every figure taken
    from an attribute written as a plain decimal number."""
    text = data.decode('utf-8', 'replace')
    try:
        info = mallocinfo.parse_malloc_info(text)
    except ExplainError as e:
        check(str(e).startswith('malloc_info'), 'ExplainError does not say malloc_info: %s' % e)
        return
    for a in info['arenas']:
        for k in ('nr', 'system', 'free_bytes', 'fast_bytes', 'free_chunks', 'in_use'):
            check(isinstance(a[k], int) and a[k] >= 0, 'arena %s = %r' % (k, a[k]))
        for row in a['sizes']:
            check(all(isinstance(x, int) and x >= 0 for x in row), 'size class %r' % (row,))
        mallocinfo.pinned_free(a)
    mallocinfo.large_free_share(info['arenas'])


def t_memcheck(data, work):
    """valgrind's XML (bytes, as read from its file): figures, or a MemcheckError."""
    try:
        out = memcheck.parse_xml_text(data)
    except memcheck.MemcheckError:
        return
    for k, v in out.items():
        if k != 'error_kinds':
            check(isinstance(v, int) and v >= 0, 'memcheck %s = %r' % (k, v))


def t_procfs(data, work):
    """/proc/PID/{status,smaps_rollup,smaps,maps,stat} text as explain decodes it: the parsers
    have no error type (what /proc does not say is absent), so every input must give a result;
    and the live readers of target.py fed the same text."""
    text = data.decode('utf-8', 'replace')
    st = procfs.parse_status(text)
    procfs.tracer_pid(st)
    procfs.parse_stat_state(text)
    kb = procfs.parse_kb_fields(text)
    for k, v in kb.items():
        check(isinstance(v, int) and v >= 0, 'kb field %s = %r' % (k, v))
    maps = procfs.parse_maps(text)
    for m in maps:
        procfs.shmem_name(m)
    procfs.shared_memory(maps)
    procfs.object_range(maps, '/usr/lib/libc.so.6')
    procfs.object_of(0x1000, maps)
    procfs.rss_split(kb, st)
    # parsers added to procfs.py since this target was written are fed too, when present
    for name in ('parse_stat_starttime', 'parse_btime'):
        if hasattr(procfs, name):
            getattr(procfs, name)(text)
    if hasattr(procfs, 'innermost_pid'):
        procfs.innermost_pid(st, 1)
    if hasattr(procfs, 'environ_lookup'):
        procfs.environ_lookup(data, 'TRIMSHIM_STATS')
    real = target.read_proc
    target.read_proc = lambda pid, name: text
    try:
        for fn in (target.read_rss, target.read_rss_split):
            try:
                fn(1)
            except ExplainError:
                pass
    finally:
        target.read_proc = real
    real_w = watch._read_proc
    watch._read_proc = lambda pid, name: text
    try:
        watch.outside_sample(1, 0)
    finally:
        watch._read_proc = real_w
    watch.allocators_in_maps(text)


def t_watch_samples(data, work):
    """The watch probe's sample file as `retention watch` reads it (SampleFile.poll: complete
    JSON lines), then every figure made of the records: no exception, whatever the file holds."""
    path = work.write('samples', data)
    sf = watch.SampleFile(path)
    sf.poll()
    run = OrderedDict([('records', sf.records), ('maps', None), ('wall_s', 1.5), ('static', False)])
    starts = [x for x in sf.records if x.get('ev') == 'start']
    run['probe'] = starts[0] if starts else None
    for settle in (None, 0.0, 0.5):
        figures, rows = watch.summarize(run, settle)
        watch.phases(run, figures, rows)


def t_phases(data, work):
    """A harness program's stdout (phase JSON lines), as the runner decodes it."""
    text = data.decode('utf-8', 'replace')
    execute.parse_phases(text)
    execute.last_stderr_line(text)


def t_platform(data, work):
    """/etc/os-release, the THP mode file and GLIBC_TUNABLES: no error type, always a result."""
    text = data.decode('utf-8', 'replace')
    platforminfo.parse_os_release(text)
    platforminfo.parse_thp(text)
    tun = platforminfo.parse_tunables(text)
    for v in tun.values():
        platforminfo._tunable_number(v)
    for g in ('2.36', '2.17', text[:20]):
        platforminfo.tcache_state(g, {'GLIBC_TUNABLES': text})


def t_promstats(data, work):
    """A TRIMSHIM_STATS file as explain reads it (promtext.parse, then explain.shim.figures for
    process 4242): figures, or a PromError or StatsProblem naming the file; and the first line
    taken as a TRIMSHIM_STATS template: expand refuses exactly what check_template refuses."""
    src = '/run/trimshim-4242.prom'
    try:
        expo = promtext.parse(data, src)
        f = shim.figures(expo, 4242)
    except (promtext.PromError, shim.StatsProblem) as e:
        check(str(e).startswith(src), 'error does not name the file: %s' % e)
        check('\n' not in str(e), 'error of more than one line: %r' % str(e))
    else:
        for k in ('returned_bytes', 'futile_trims', 'probes', 'heap_free_bytes', 'resident_bytes'):
            check(isinstance(f[k], (int, float)) and f[k] >= 0, '%s = %r' % (k, f[k]))
        check(f['trims']['total'] == sum(v for k, v in f['trims'].items() if k != 'total'),
              'trims total %r' % (f['trims'],))
    template = data.split(b'\n', 1)[0].decode('utf-8', 'replace')
    why = shim.check_template(template)
    try:
        path = shim.expand(template, 4242)
    except ValueError:
        check(why is not None, 'expand refused a template check_template accepts: %r' % template)
    else:
        check(why is None, 'expand took a template check_template refuses (%s): %r' % (why, template))
        check(path.startswith('/'), 'expanded to %r' % path)


def t_elf(data, work):
    """elf.has_interp on any file: True, False or None (not ELF, truncated, unreadable)."""
    path = work.write('prog', data)
    r = elf.has_interp(path)
    check(r in (True, False, None), 'has_interp -> %r' % (r,))


def t_elfsyms(data, work):
    """explain's reading of a mapped object's file (libc's, in the target's file system, which
    the target's owner controls): parsed or not (.ok), never an exception; what it gives is
    well-formed, and the tail-call scan that safety.py builds its stop-anywhere ranges from stays
    inside the file's functions."""
    e = elfsyms.ElfFile(data)
    check(e.ok in (True, False), 'ok = %r' % (e.ok,))
    check(all(isinstance(n, str) and isinstance(v, int) and isinstance(z, int) and v > 0
              for n, v, z in e.symbols), 'symbols %r' % (e.symbols[:5],))
    check(e.func_starts == sorted(e.func_starts), 'function starts not sorted')
    starts = set(e.func_starts)
    for name, value, size in e.symbols[:64]:
        tails = elfsyms.tail_targets(e, value, size)
        check(all(t in starts and not value <= t < value + size for t in tails),
              '%s: tail targets %r' % (name, tails[:5]))
        end = elfsyms.function_end(e, value)
        check(isinstance(end, int) and end > value, '%s: function end %r' % (name, end))
    v = elfsyms.glibc_version(e)
    check(v is None or (len(v) == 2 and all(isinstance(x, int) for x in v)), 'version %r' % (v,))
    libc = procfs.Mapping(0x7f0000000000, 0x7f0000200000, 'r--p', 0, 1, '/lib/x.so')
    bias = elfsyms.load_bias([libc], '/lib/x.so', e)
    check(isinstance(bias, int), 'load bias %r' % (bias,))


def t_gdb_mi(data, work):
    """gdb's MI result records (what explain's gdb session parses): a dict, or the ValueError or
    IndexError its caller catches."""
    text = data.decode('utf-8', 'replace')
    for line in text.splitlines() or [text]:
        try:
            gdb.parse_results(line)
        except (ValueError, IndexError):
            pass
        if line.startswith(('~', '&')):
            try:
                gdb._cstring(line, 1)
            except (ValueError, IndexError):
                pass


def _seed_files(*patterns):
    out = []
    for p in patterns:
        out.extend(sorted(glob.glob(os.path.join(REPO, p))))
    return out


TARGETS = OrderedDict([
    ('casefile', (t_casefile, ['cases/*.case'])),
    ('expfile', (t_expfile, ['expected/*.exp', 'runner/tests/data/cellbounds/*.exp'])),
    ('cellbounds', (t_cellbounds, ['expected/cells.exp', 'runner/tests/data/cellbounds/cells.exp'])),
    ('malloc_info', (t_malloc_info, ['fuzz/seeds/malloc_info/*', 'runner/tests/data/explain/*.xml'])),
    ('memcheck', (t_memcheck, ['runner/tests/data/memcheck_*.xml'])),
    ('procfs', (t_procfs, ['fuzz/seeds/status/*', 'fuzz/seeds/smaps_rollup/*', 'fuzz/seeds/statm/*',
                           'fuzz/seeds/smaps/*', 'fuzz/seeds/maps/*', 'runner/tests/data/explain/*.rollup',
                           'fuzz/seeds/stat/*'])),
    ('watch_samples', (t_watch_samples, ['fuzz/seeds/watch_samples/*'])),
    ('phases', (t_phases, ['fuzz/seeds/phases/*'])),
    ('platform', (t_platform, ['fuzz/seeds/platform/*'])),
    ('promstats', (t_promstats, ['fuzz/seeds/promstats/*', 'runner/tests/data/promtext/*'])),
    ('elf', (t_elf, ['fuzz/seeds/elf/*'])),
    ('elfsyms', (t_elfsyms, ['fuzz/seeds/elfsyms/*', 'fuzz/seeds/elf/*'])),
    ('gdb_mi', (t_gdb_mi, ['fuzz/seeds/gdb_mi/*'])),
])


# ---- mutation ------------------------------------------------------------------------------

TOKENS = [b'0', b'1', b'-1', b'+1', b'2', b'4096', b'2147483647', b'2147483648', b'4294967296',
          b'9223372036854775807', b'9223372036854775808', b'18446744073709551616', b'9' * 5000,
          b'1e308', b'1e309', b'1e-400', b'nan', b'inf', b'-inf', b'0x10', b'1_000', b'\xd9\xa3',
          b'\xef\xbc\x91', b'\xc2\xb2', b'\x00', b'\xff', b'\xc3', b'\xed\xa0\x80', b'#', b'=', b'[', b']',
          b'[native]', b'[shim glibc<2.26]', b'glibc>=2.', b'drop ', b' * ', b'live_bytes', b'"', b"'",
          b'\\', b'{', b'}', b'[' * 3000, b'{"a":' * 1500, b'<', b'>', b'/>', b'<heap nr="0">', b'</heap>',
          b'size="', b'kB', b' kB', b':', b'\n', b'\r\n', b'\t', b' ', b'\x0b', b'\x0c', b'\x1c', b'\x85',
          b'\xe2\x80\xa8', b'&amp;', b'<!DOCTYPE x [<!ENTITY a "aaaa">]>', b'&a;', b'"watch":1',
          b'"rss_kb":', b'"t_us":', b'"heap":', b'null', b'true', b'"x"', b'[]', b'{}']


class Mutator(object):
    def __init__(self, rng, pool):
        self.rng = rng
        self.pool = pool

    def line_bounds(self, b):
        if not b:
            return 0, 0
        i = self.rng.randrange(len(b))
        s = b.rfind(b'\n', 0, i) + 1
        e = b.find(b'\n', i)
        return s, (len(b) if e < 0 else e + 1)

    def once(self, b):
        r = self.rng
        n = len(b)
        pos = r.randrange(n + 1)
        what = r.randrange(12)
        if what == 0 and n:
            i = r.randrange(n)
            return b[:i] + bytes([b[i] ^ (1 << r.randrange(8))]) + b[i + 1:]
        if what == 1 and n:
            i = r.randrange(n)
            return b[:i] + bytes([r.randrange(256)]) + b[i + 1:]
        if what == 2 and n:
            i = r.randrange(n)
            return b[:i] + b[i + 1 + r.randrange(min(16, n - i)):]
        if what == 3:
            return b[:pos] + r.choice(TOKENS) + b[pos:]
        if what == 4:
            # a token in place of the number (or word) here
            m = re.compile(rb'[0-9A-Za-z_.]*').match(b, pos)
            return b[:pos] + r.choice(TOKENS) + b[m.end():]
        if what == 5:
            s, e = self.line_bounds(b)
            return b[:e] + b[s:e] + b[e:]
        if what == 6:
            s, e = self.line_bounds(b)
            return b[:s] + b[e:]
        if what == 7:
            o = r.choice(self.pool)
            if o:
                s = r.randrange(len(o))
                piece = o[s:s + 1 + r.randrange(min(400, len(o) - s))]
                return b[:pos] + piece + b[pos:]
        if what == 8:
            # splice: this file's head, another's tail
            o = r.choice(self.pool)
            return b[:pos] + o[r.randrange(len(o) + 1):]
        if what == 9:
            return b[:pos] + bytes([r.choice(b'9a #:[{<-\xff')]) * (64 + r.randrange(8192)) + b[pos:]
        if what == 10:
            return b[:r.randrange(n + 1)]
        if what == 11:
            s, e = self.line_bounds(b)
            o = r.choice(self.pool)
            s2, e2 = Mutator(r, self.pool).line_bounds(o)
            return b[:s] + o[s2:e2] + b[e:]
        return b

    def mutate(self, seed):
        b = seed
        for _ in range(1 + self.rng.randrange(6)):
            b = self.once(b)
            if len(b) > MAX_LEN:
                b = b[:MAX_LEN]
        return b


def save(artifacts, name, data):
    path = os.path.join(artifacts, 'crash-%s-%s' % (name, hashlib.sha1(data).hexdigest()[:16]))
    with open(path, 'wb') as f:
        f.write(data)
    return path


def run_input(fn, data, work):
    """None, or the reason the contract broke (a traceback)."""
    signal.setitimer(signal.ITIMER_REAL, PER_INPUT_S)
    try:
        fn(data, work)
    except Broken as e:
        return 'contract broken: %s' % e
    except Hang as e:
        return 'hang: %s' % e
    except Exception:
        return 'exception:\n' + traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return None


def fuzz(name, iterations, seconds, seed, artifacts):
    fn, patterns = TARGETS[name]
    seeds = [open(p, 'rb').read()[:MAX_LEN] for p in _seed_files(*patterns)]
    regress = [open(p, 'rb').read() for p in sorted(glob.glob(os.path.join(FUZZ, 'regressions', name, '*')))]
    pool = seeds + regress or [b'']
    work = Work()
    start = time.monotonic()
    n = 0
    try:
        for data in seeds + regress:
            why = run_input(fn, data, work)
            if why:
                print('%s: a seed or regression input breaks the contract (%s)\n%s'
                      % (name, save(artifacts, name, data), why))
                return False
        rng = random.Random('%s-%d' % (name, seed))
        mut = Mutator(rng, pool)
        while n < iterations:
            if seconds and n % 16 == 0 and time.monotonic() - start >= seconds:
                break
            data = mut.mutate(rng.choice(pool))
            n += 1
            why = run_input(fn, data, work)
            if why:
                print('%s: mutant %d breaks the contract (%s)\n%s' % (name, n, save(artifacts, name, data), why))
                return False
    finally:
        work.close()
    print('%s: %d seeds, %d regression inputs, %d mutants in %.1f s: no contract broken'
          % (name, len(seeds), len(regress), n, time.monotonic() - start))
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--iterations', type=int, default=2000)
    ap.add_argument('--seconds', type=float, default=0)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--artifacts', default='.')
    ap.add_argument('--list', action='store_true')
    ap.add_argument('targets', nargs='*')
    a = ap.parse_args(argv)
    if a.list:
        print('\n'.join(TARGETS))
        return 0
    names = a.targets or list(TARGETS)
    for t in names:
        if t not in TARGETS:
            ap.error('unknown target %r (known: %s)' % (t, ', '.join(TARGETS)))
    signal.signal(signal.SIGALRM, _alarm)
    ok = True
    failed = [t for t in names if not fuzz(t, a.iterations, a.seconds, a.seed, a.artifacts)]
    print('%d passed, %d failed' % (len(names) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
