"""The cell table: the ways a case is run. A cell is a name plus
  - how it builds argv and env (extra case arguments, fixed env, an LD_PRELOAD library, a wrapper
    command such as valgrind),
  - which phases the case must report in it,
  - which metrics it computes (a bound on any other metric fails: "not computed in this cell"),
  - which other cells of the same run it needs as a reference (the shim cell needs trim),
  - the allocator it runs (for allocator=NAME selectors in expected files),
  - whether its RSS figures mean anything (not under valgrind).
Adding a cell (issue 4's jemalloc, tcmalloc, ...) is one more Cell(...) in CELLS below, with a
preload function that finds the library or says why it is skipped."""

import os
import platform
import shutil
from collections import OrderedDict

from . import elf

BASE_PHASES = ('baseline', 'peak', 'after_free')
MEMCHECK_METRICS = (
    'definitely_lost_bytes', 'indirectly_lost_bytes', 'possibly_lost_bytes',
    'still_reachable_bytes', 'still_reachable_blocks',
    'definitely_lost_blocks', 'indirectly_lost_blocks', 'possibly_lost_blocks', 'errors',
)


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
        """Builds the command for this cell, or a skip reason."""
        why = self.preflight(ctx, program)
        if why:
            return Prepared(skip=why)
        env = OrderedDict(self.env)
        if self.preload is not None:
            env['LD_PRELOAD'] = self.preload(ctx)[0]
        prefix = []
        if self.wrapper is not None:
            prefix = self.wrapper(ctx, tmpdir)[0]
        argv = prefix + [program] + case.args_for(self.args_key) + self.extra_args(case)
        return Prepared(argv=argv, env=env)


def shim_library(ctx):
    path = os.path.join(ctx.build_dir, 'shim', 'libtrimshim.so')
    if not os.path.isfile(path):
        return None, 'shim not built: %s' % path
    return path, None


def find_valgrind(ctx):
    """The valgrind executable: --valgrind / $RETENTION_VALGRIND if given, else PATH."""
    if ctx.valgrind:
        if os.path.isfile(ctx.valgrind) and os.access(ctx.valgrind, os.X_OK):
            return ctx.valgrind, None
        found = shutil.which(ctx.valgrind, path=ctx.search_path)
        if found and os.sep not in ctx.valgrind:
            return found, None
        return None, 'valgrind not found: %s' % ctx.valgrind
    found = shutil.which('valgrind', path=ctx.search_path)
    if not found:
        return None, 'valgrind not found'
    return found, None


def memcheck_xml_path(tmpdir):
    return os.path.join(tmpdir or '.', 'memcheck.xml')


def memcheck_wrapper(ctx, tmpdir):
    vg, why = find_valgrind(ctx)
    if vg is None:
        return None, why
    return [vg, '--tool=memcheck', '--xml=yes', '--xml-file=%s' % memcheck_xml_path(tmpdir),
            '--leak-check=full', '--show-leak-kinds=all'], None


def memcheck_post(ctx, tmpdir, result):
    from . import memcheck
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
