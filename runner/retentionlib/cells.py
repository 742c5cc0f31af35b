"""The cell table: the ways a case is run. A cell is a name plus
  - how it builds argv and env (extra case arguments, fixed env, an LD_PRELOAD library, a wrapper
    command such as valgrind),
  - which phases the case must report in it,
  - which metrics it computes (a bound on any other metric fails: "not computed in this cell"),
  - which other cells of the same run it needs as a reference (the shim cell needs trim),
  - the allocator it runs (for allocator=NAME selectors in expected files),
  - whether its RSS figures mean anything (not under valgrind).
Adding a cell is one more Cell(...) in CELLS below, with a preload function that finds the
library or says why it is skipped (allocator_library does for a distro's allocator)."""

import copy
import os
import platform
import shlex
from collections import OrderedDict

from . import elf, memcheck, paths
from .vocab import MEMCHECK_METRICS

BASE_PHASES = ('baseline', 'peak', 'after_free')


class Prepared(object):
    """What it takes to run one case in one cell: argv and env additions, or a skip reason."""

    def __init__(self, argv=None, env=None, skip=None, notes=None):
        self.argv = argv
        self.env = env or OrderedDict()
        self.skip = skip
        self.notes = notes or []


class Cell(object):
    def __init__(self, name, doc, phases, metrics, extra_args=(), env=None, preload=None,
                 wrapper=None, post=None, refs=(), allocator='glibc', measures_rss=True,
                 args_key='args', needs_dynamic=False):
        self.name = name
        self.doc = doc
        self.phases = tuple(phases)
        self.metrics = tuple(metrics)
        self._extra_args = extra_args
        self.env = OrderedDict(env or ())
        self.preload = preload
        self.wrapper = wrapper
        self.post = post
        self.refs = tuple(refs)
        self.allocator = allocator
        self.measures_rss = measures_rss
        self.args_key = args_key
        self.needs_dynamic = needs_dynamic or preload is not None
        # The table's cell this one is made from (a user's tunable cell names its base).
        self.base = name

    def extra_args(self, case):
        if callable(self._extra_args):
            return list(self._extra_args(case))
        return list(self._extra_args)

    def preflight(self, ctx, program):
        """Why this cell cannot run here (a skip reason), or None. Cheap: no process is started."""
        if self.needs_dynamic and elf.has_interp(program) is False:
            return '%s is a static binary: %s' % (
                os.path.basename(program),
                'nothing can be preloaded into it' if self.preload else 'valgrind cannot replace its malloc')
        if self.preload is not None:
            lib, why = self.preload(ctx)
            if lib is None:
                return why
        if self.wrapper is not None:
            prefix, why = self.wrapper(ctx, None)
            if prefix is None:
                return why
        return None

    def prepare(self, ctx, case, program, tmpdir):
        """Builds the command for this cell, or a skip reason. A program outside the build tree
        (case.external) gets no harness flags: its cell's steps come as environment (steps_env)."""
        why = self.preflight(ctx, program)
        if why:
            return Prepared(skip=why)
        env = OrderedDict(self.env)
        if self.preload is not None:
            env['LD_PRELOAD'] = self.preload(ctx)[0]
        prefix = []
        if self.wrapper is not None:
            prefix = self.wrapper(ctx, tmpdir)[0]
        external = getattr(case, 'external', False)
        extra = [] if external else self.extra_args(case)
        if external:
            env.update(steps_env(self, case, 'phase'))
        argv = prefix + [program] + case.args_for(self.args_key) + extra
        return Prepared(argv=argv, env=env)


def shim_library(ctx):
    path = paths.shim_library(ctx.build_dir)
    if not os.path.isfile(path):
        return None, 'shim not built: %s' % path
    return path, None


def memcheck_xml_path(tmpdir):
    return os.path.join(tmpdir or '.', 'memcheck.xml')


def memcheck_wrapper(ctx, tmpdir):
    vg, why = paths.find_valgrind(ctx.valgrind, ctx.search_path)
    if vg is None:
        return None, why
    return [vg, '--tool=memcheck', '--xml=yes', '--xml-file=%s' % memcheck_xml_path(tmpdir),
            '--leak-check=full', '--show-leak-kinds=all'], None


def memcheck_post(ctx, tmpdir, result):
    result['memcheck'] = memcheck.parse_xml_file(memcheck_xml_path(tmpdir))


def _idle_args(case):
    return ['--idle', '%d' % case.idle]


# The distros' allocator libraries by soname, for LD_PRELOAD. Debian and Ubuntu put them in the
# multiarch directory, the EL family in /usr/lib64. RETENTION_PRELOAD_<NAME> (e.g.
# RETENTION_PRELOAD_JEMALLOC=/opt/jemalloc/lib/libjemalloc.so.2) points at a build of your own.
ALLOCATOR_SONAMES = OrderedDict([
    ('jemalloc', ('libjemalloc.so.2', 'libjemalloc.so.1')),
    ('tcmalloc', ('libtcmalloc_minimal.so.4', 'libtcmalloc.so.4')),
    ('mimalloc', ('libmimalloc.so.2', 'libmimalloc.so.2.0', 'libmimalloc.so.3', 'libmimalloc.so.1')),
])


def library_dirs():
    machine = platform.machine()
    return ['/usr/lib/%s-linux-gnu' % machine, '/lib/%s-linux-gnu' % machine, '/usr/lib64', '/lib64',
            '/usr/local/lib64', '/usr/local/lib', '/usr/lib']


def allocator_library(name):
    def find(ctx):
        override = ctx.environ.get('RETENTION_PRELOAD_%s' % name.upper())
        if override:
            if os.path.isfile(override):
                return override, None
            return None, 'RETENTION_PRELOAD_%s=%s: no such file' % (name.upper(), override)
        for d in library_dirs():
            for soname in ALLOCATOR_SONAMES[name]:
                path = os.path.join(d, soname)
                if os.path.isfile(path):
                    return path, None
        return None, '%s not installed (looked for %s in %s; ci/install-deps installs it where the distro has it)' % (
            name, ' or '.join(ALLOCATOR_SONAMES[name]), ', '.join(library_dirs()))
    return find


# How long an allocator cell idles after the free before its settled figure. Without a background
# thread, jemalloc, tcmalloc and mimalloc return nothing while the program makes no calls, so 2 s
# shows the idle state; jemalloc's background thread purges dirty pages over dirty_decay_ms
# (10 s by default), so it gets 15 s.
ALLOCATOR_SETTLE_S = 2
JEMALLOC_BG_SETTLE_S = 15


def _allocator_cell(name, doc, allocator, settle, env=None):
    return Cell(name, doc, phases=BASE_PHASES + ('after_idle',),
                metrics=('retained', 'settled_retained', 'free_over_floor'),
                extra_args=['--idle', '%d' % settle], env=env, preload=allocator_library(allocator),
                allocator=allocator)


CELLS = OrderedDict((c.name, c) for c in [
    Cell('native', 'the case as written: what glibc keeps after free',
         phases=BASE_PHASES, metrics=('retained', 'free_over_floor')),
    Cell('trim', 'an explicit malloc_trim(0) after the free: what can be given back',
         phases=BASE_PHASES + ('after_trim',), metrics=('retained', 'floor_ratio', 'trim_retained'),
         extra_args=['--trim']),
    Cell('shim', 'libtrimshim.so preloaded, idling after the free: the shim gives it back on its own',
         phases=BASE_PHASES + ('after_idle',), metrics=('retained', 'shim_over_trim'),
         extra_args=_idle_args, preload=shim_library, refs=('trim',)),
    Cell('memcheck', 'under valgrind memcheck: what a leak checker says about the same program',
         phases=BASE_PHASES, metrics=MEMCHECK_METRICS, env={'CK_FORK': 'no'},
         wrapper=memcheck_wrapper, post=memcheck_post, measures_rss=False,
         args_key='memcheck_args', needs_dynamic=True),
    _allocator_cell('jemalloc', "the distro's jemalloc preloaded: what it keeps at once and after "
                    '%d s idle' % ALLOCATOR_SETTLE_S, 'jemalloc', ALLOCATOR_SETTLE_S),
    _allocator_cell('jemalloc_bg', "jemalloc with background_thread:true: its purging thread gives "
                    'pages back while the program idles (%d s)' % JEMALLOC_BG_SETTLE_S, 'jemalloc',
                    JEMALLOC_BG_SETTLE_S, env={'MALLOC_CONF': 'background_thread:true'}),
    _allocator_cell('tcmalloc', "the distro's tcmalloc (minimal) preloaded", 'tcmalloc', ALLOCATOR_SETTLE_S),
    _allocator_cell('mimalloc', "the distro's mimalloc preloaded", 'mimalloc', ALLOCATOR_SETTLE_S),
])


# ---- cells for a program without the harness: `retention watch`, and case files whose program
# lives outside the build tree. Such a program gets exactly its own arguments: a cell's harness
# flags (--trim, --idle N) become the environment of what measures it instead.

# The cells that measure RSS and can run any dynamically linked program; memcheck cannot (under
# valgrind RSS is valgrind's).
WATCH_CELLS = ('native', 'trim', 'shim', 'jemalloc', 'jemalloc_bg', 'tcmalloc', 'mimalloc')


def harness_steps(cell, case):
    """(trim, idle seconds or None): what the cell's harness flags ask of a program after its free.
    case: the case (anything with .idle, the settle seconds, for watch)."""
    args = cell.extra_args(case)
    trim = '--trim' in args
    idle = None
    if '--idle' in args:
        idle = int(args[args.index('--idle') + 1])
    return trim, idle


def steps_env(cell, case, kind):
    """The cell's steps as environment: for the watch probe (kind 'watch': RETENTION_WATCH_TRIM=1
    makes the probe call malloc_trim(0) when the program goes quiet; the settle time is the
    runner's business), or for rssprobe_phase (kind 'phase': after the program's after_free
    phase, RSSPROBE_PHASE_TRIM=1 trims and reports after_trim, RSSPROBE_PHASE_IDLE=N idles N s
    and reports after_idle, as the harness does for --trim and --idle N)."""
    trim, idle = harness_steps(cell, case)
    env = OrderedDict()
    if kind == 'watch':
        if trim:
            env['RETENTION_WATCH_TRIM'] = '1'
    else:
        if trim:
            env['RSSPROBE_PHASE_TRIM'] = '1'
        if idle is not None:
            env['RSSPROBE_PHASE_IDLE'] = '%d' % idle
    return env


def _env_name_ok(name):
    return bool(name) and (name[0].isalpha() or name[0] == '_') and \
        all(ch.isalnum() or ch == '_' for ch in name)


def user_cell(spec, table=None, allowed=WATCH_CELLS):
    """A tunable cell a user declares, 'BASE:NAME=VALUE [NAME=VALUE...]' (native:MALLOC_ARENA_MAX=2,
    jemalloc:MALLOC_CONF=dirty_decay_ms:0): the base cell with that environment added. A plain
    cell name is that cell. Raises ValueError with the reason."""
    table = CELLS if table is None else table
    base, sep, rest = spec.partition(':')
    if base not in table or base not in allowed:
        raise ValueError("unknown cell '%s' in %r (known: %s; add tunables as CELL:NAME=VALUE)"
                         % (base, spec, ', '.join(c for c in table if c in allowed)))
    if not sep:
        return table[base]
    try:
        tokens = shlex.split(rest)
    except ValueError as e:
        raise ValueError('bad quoting in cell %r: %s' % (spec, e))
    if not tokens:
        raise ValueError("cell %r: nothing after ':' (expected NAME=VALUE)" % spec)
    env = OrderedDict(table[base].env)
    for token in tokens:
        name, eq, value = token.partition('=')
        if not eq or not _env_name_ok(name):
            raise ValueError('cell %r: bad entry %r (expected NAME=VALUE)' % (spec, token))
        if name in ('LD_PRELOAD', 'LD_AUDIT') or name.startswith('RETENTION_WATCH_'):
            raise ValueError('cell %r: %s is set by the cell itself' % (spec, name))
        env[name] = value
    cell = copy.copy(table[base])
    cell.name = spec
    cell.doc = '%s, with %s' % (table[base].name, ' '.join(tokens))
    cell.env = env
    cell.base = base
    return cell


def watch_view(cell):
    """The cell as it measures an unmodified program (measure = watch): the phases the watch probe
    sees are required (baseline, peak, end; after_trim in the trim cell) and the metrics it
    computes are those they allow: settled_retained everywhere (after_idle, when the program was
    quiet for the settle time), trim_retained in trim, shim_over_trim in shim."""
    view = copy.copy(cell)
    trim, _ = harness_steps(cell, _NoCase())
    view.phases = ('baseline', 'peak', 'end') + (('after_trim',) if trim else ())
    metrics = ['settled_retained']
    if trim:
        metrics.append('trim_retained')
    if 'shim_over_trim' in cell.metrics:
        metrics.append('shim_over_trim')
    view.metrics = tuple(metrics)
    return view


class _NoCase(object):
    idle = 0
