"""Runs case x cell and judges each result against the bounds of expected/NAME.exp."""

import os
import shutil
import sys
import tempfile
import time
from collections import OrderedDict

from . import cells as cellmod
from . import execute, metrics, paths, report, scrubenv, watch
from .casefile import load_case
from .errors import ConfigError
from .expfile import load_expected, select_bounds, unmatched_sections
from .lines import display_path
from .memcheck import MemcheckError


class Context(object):
    def __init__(self, repo, build_dir, cases_dir, expected_dir, platform, valgrind=None,
                 search_path=None, verbose=False, environ=None, log=None, cells=None, extra_env=None):
        self.repo = repo
        self.build_dir = build_dir
        self.cases_dir = cases_dir
        self.expected_dir = expected_dir
        self.platform = platform
        self.valgrind = valgrind
        self.environ = os.environ if environ is None else environ
        self.search_path = self.environ.get('PATH', os.defpath) if search_path is None else search_path
        self.verbose = verbose
        self.cells = cellmod.CELLS if cells is None else cells
        # run --env NAME=VALUE: set explicitly for every cell, after the case's own env (for
        # showing that a bound fails when the behaviour is broken, e.g. MALLOC_MMAP_THRESHOLD_).
        self.extra_env = OrderedDict(extra_env or ())
        self._log = log

    def log(self, msg):
        if self.verbose:
            out = self._log or sys.stderr
            out.write(msg + '\n')
            out.flush()

    def show(self, path):
        return display_path(path, self.repo)


def new_result(case, cell):
    r = OrderedDict()
    r['case'] = case
    r['cell'] = cell
    r['status'] = 'fail'
    r['reason'] = ''
    r['duration_s'] = 0.0
    r['reference'] = False
    r['command'] = None
    r['env'] = OrderedDict()
    r['exit_status'] = None
    r['signal'] = None
    r['timed_out'] = False
    r['run_ok'] = False
    r['phases'] = OrderedDict()
    r['samples'] = []
    r['metrics'] = OrderedDict()
    r['metric_errors'] = OrderedDict()
    r['checks'] = []
    r['memcheck'] = None
    r['bounds_from'] = []
    r['bounds_override'] = []
    r['thp_disabled'] = False
    r['stderr_tail'] = ''
    return r


def cells_to_run(case, wanted, table, skipped=()):
    """The wanted cells plus the cells they need as references (only for wanted cells that are
    not skipped anyway), refs first, else in the case's order. Returns [(cell, is_reference)]."""
    needed = set(wanted)

    def need_refs(c):
        for ref in table[c].refs:
            if ref not in needed:
                needed.add(ref)
                need_refs(ref)
    for c in wanted:
        if c not in skipped:
            need_refs(c)
    order = []

    def add(c):
        for ref in table[c].refs:
            if ref in needed:
                add(ref)
        if c not in order:
            order.append(c)
    for c in case.cells:
        if c in needed:
            add(c)
    for c in sorted(needed - set(order)):
        add(c)
    return [(c, c not in wanted) for c in order]


class Progress(object):
    """Where a run is, for the report of one that is interrupted: the results so far (done), and
    the cell running now (running: (case, cell) or None)."""

    def __init__(self):
        self.done = []
        self.running = None


def planned_cells(ctx, name, cell_filter=None):
    """The cells a case would run when selected (its cells, filtered): ['-'] for a case file that
    does not load, as run_case reports it."""
    try:
        case = load_case(ctx.cases_dir, name, ctx.repo, ctx.cells)
    except ConfigError:
        return ['-']
    return [c for c in case.cells if not cell_filter or c in cell_filter]


def run_case(ctx, name, cell_filter=None, progress=None):
    """All selected cells of one case. A malformed case file is one FAIL result (cell '-').
    progress (a Progress): kept up to date as each cell starts and ends."""
    try:
        case = load_case(ctx.cases_dir, name, ctx.repo, ctx.cells)
    except ConfigError as e:
        r = new_result(name, '-')
        r['reason'] = str(e)
        if progress is not None:
            progress.done.append(r)
        return [r]
    wanted = [c for c in case.cells if not cell_filter or c in cell_filter]
    if not wanted:
        return []
    exp, exp_error, exp_where = None, None, ctx.show(os.path.join(ctx.expected_dir, name + '.exp'))
    try:
        exp = load_expected(ctx.expected_dir, name, ctx.repo, ctx.cells)
    except ConfigError as e:
        exp_error = str(e)
    program = program_of(ctx, case)
    skipped = set()
    if os.path.isfile(program):
        skipped = set(c for c in wanted if ctx.cells[c].preflight(ctx, program))
    done = OrderedDict()
    for cell_name, is_ref in cells_to_run(case, wanted, ctx.cells, skipped):
        if progress is not None:
            progress.running = (name, cell_name)
        r = run_cell(ctx, case, ctx.cells[cell_name], exp, exp_error, exp_where, done)
        r['reference'] = is_ref
        done[cell_name] = r
        if progress is not None:
            progress.running = None
            progress.done.append(r)
    return list(done.values())


def _finish(r, t0, status, reason):
    r['status'] = status
    r['reason'] = reason
    r['duration_s'] = round(time.monotonic() - t0, 3)
    return r


def measure_cell(ctx, case, cell, refs):
    """Runs one case in one cell and computes its metrics, without judging them. Returns the result
    and why the run itself failed (None when it ran clean), or marks the result skipped."""
    t0 = time.monotonic()
    r = new_result(case.name, cell.name)
    program = program_of(ctx, case)
    if not os.path.isfile(program):
        if case.external:
            return _finish(r, t0, 'fail', 'no such program: %s (program = %s, %s:%d)' % (
                program, case.program, case.where, case.lines.get('program', 0))), True
        return _finish(r, t0, 'fail', 'not built: %s; %s' % (program, paths.how_to_get_programs(ctx.build_dir))), True
    if not os.access(program, os.X_OK):
        return _finish(r, t0, 'fail', 'not executable: %s' % program), True
    if case.measure == 'watch':
        return measure_watch_cell(ctx, case, cell, refs, program, r, t0)
    tmpdir = tempfile.mkdtemp(prefix='retention-%s-%s-' % (case.name, cell.name))
    report_file = None
    try:
        prep = cell.prepare(ctx, case, program, tmpdir)
        if not prep.skip and case.thp == 'disable':
            prep.skip = execute.thp_disable_unsupported()
        if prep.skip:
            ctx.log('[%s %s] skipped: %s' % (case.name, cell.name, prep.skip))
            return _finish(r, t0, 'skip', prep.skip), True
        r['thp_disabled'] = case.thp == 'disable'
        env = scrubenv.scrubbed_env(ctx.environ)
        added = OrderedDict(prep.env)
        added.update(case.env_for(cell.name))
        added.update(ctx.extra_env)
        env.update(added)
        r['command'] = prep.argv
        r['env'] = added
        ctx.log('[%s %s] $ %s%s' % (case.name, cell.name,
                                    ''.join('%s=%s ' % kv for kv in added.items()), ' '.join(prep.argv)))
        dropped = scrubenv.scrubbed_names(ctx.environ)
        if dropped:
            ctx.log('[%s %s]   scrubbed from the environment: %s' % (case.name, cell.name, ' '.join(dropped)))
        if r['thp_disabled']:
            ctx.log('[%s %s]   transparent hugepages disabled for it (thp = disable)' % (case.name, cell.name))
        pass_fds = ()
        if case.external:
            # rssprobe_phase writes to this descriptor, and checks by dev:ino that it still is ours.
            report_file = open(os.path.join(tmpdir, 'phases'), 'w+b')
            st = os.fstat(report_file.fileno())
            env['RSSPROBE_PHASE_FD'] = '%d' % report_file.fileno()
            env['RSSPROBE_PHASE_ID'] = '%d:%d' % (st.st_dev, st.st_ino)
            pass_fds = (report_file.fileno(),)
        proc = execute.run_process(prep.argv, env, case.timeout, tmpdir, thp_disable=r['thp_disabled'],
                                   pass_fds=pass_fds)
        r['exit_status'] = proc.returncode
        r['timed_out'] = proc.timed_out
        r['stderr_tail'] = '\n'.join(proc.stderr.splitlines()[-20:])
        reported = proc.stdout
        if report_file is not None:
            report_file.seek(0)
            reported = report_file.read().decode('utf-8', 'replace')
        phases, samples, problems = execute.parse_phases(reported)
        r['phases'] = phases
        r['samples'] = samples
        run_error = None
        if proc.start_error:
            run_error = 'cannot start: %s' % proc.start_error
        elif proc.timed_out:
            run_error = 'timed out after %g s, killed' % case.timeout
        elif proc.returncode < 0:
            r['signal'] = execute.signal_name(-proc.returncode)
            run_error = 'killed by signal %s' % r['signal']
        elif proc.returncode > 0:
            run_error = 'exited with status %d' % proc.returncode
            last = execute.last_stderr_line(proc.stderr)
            if last:
                run_error += ': %s' % last
        elif problems:
            run_error = problems[0]
        else:
            missing = [p for p in cell.phases if p not in phases]
            if missing and not phases and case.external:
                run_error = ("no '%s' phase reported (no phase at all: does %s call rssprobe_phase(), and "
                             "is it linked with the rssprobe of this retention?)" % (missing[0], case.program))
            elif missing and not phases:
                run_error = "no '%s' phase reported (no JSON phase line on stdout at all)" % missing[0]
            elif missing:
                run_error = "no '%s' phase reported" % missing[0]
        if cell.post is not None and not proc.timed_out and not proc.start_error:
            try:
                cell.post(ctx, tmpdir, r)
            except MemcheckError as e:
                if run_error is None:
                    run_error = str(e)
        r['run_ok'] = run_error is None
        ctx.log('[%s %s]   %s in %.2f s; phases: %s' % (
            case.name, cell.name,
            'exit %s' % proc.returncode if not proc.timed_out else 'timed out',
            proc.duration, ', '.join('%s %s' % (k, report.human_kb(v.get('rss_kb'))) for k, v in phases.items())
            or 'none'))
        values, errors = metrics.compute_all(cell, r, refs)
        r['metrics'] = values
        r['metric_errors'] = errors
        if run_error is not None:
            return _finish(r, t0, 'fail', run_error), True
        r['duration_s'] = round(time.monotonic() - t0, 3)
        return r, False
    finally:
        if report_file is not None:
            report_file.close()
        shutil.rmtree(tmpdir, ignore_errors=True)


def program_of(ctx, case):
    """The executable a case runs: its own path (a program outside the build tree), or the
    project's program in the build tree or the installation."""
    return case.program_path if case.external else paths.case_program(ctx.build_dir, case.program)


def measure_watch_cell(ctx, case, cell, refs, program, r, t0):
    """measure_cell for an unmodified program (measure = watch): one run under the watch probe,
    its phases as watch.phases sees them, the metrics of cellmod.watch_view."""
    view = cellmod.watch_view(cell)
    trim, idle = cellmod.harness_steps(cell, case)
    settle = idle if idle is not None else case.idle
    opts = watch.RunOptions(timeout_s=case.timeout, settle_s=settle, thp_disable=case.thp == 'disable',
                            cwd=os.path.dirname(program))
    if case.thp == 'disable':
        why = execute.thp_disable_unsupported()
        if why:
            return _finish(r, t0, 'skip', why), True
    env = OrderedDict(case.env_for(cell.name))
    env.update(ctx.extra_env)
    run = watch.run_cell(ctx, [program] + case.args_for('args'), cell, opts, case_env=env, log=ctx.log)
    r['command'] = run['command']
    r['env'] = run['env']
    r['thp_disabled'] = case.thp == 'disable'
    if run['status'] == 'skip':
        return _finish(r, t0, 'skip', run['reason']), True
    figures, rows = watch.summarize(run, settle)
    r['exit_status'] = run['exit_status']
    r['signal'] = run['signal']
    r['timed_out'] = run['ended_by'] == 'timeout'
    r['stderr_tail'] = run['stderr_tail']
    r['phases'] = watch.phases(run, figures, rows)
    r['samples'] = rows
    r['watch'] = figures
    run_error = run['reason'] if run['status'] != 'ok' else None
    if run_error is None:
        missing = [p for p in view.phases if p not in r['phases']]
        if missing:
            run_error = "no '%s' phase reported by the watch probe" % missing[0]
    r['run_ok'] = run_error is None
    values, errors = metrics.compute_all(view, r, refs)
    # The probe's settled phase needs the program to stay quiet that long before it exits; say so,
    # or the missing phase reads like a probe that failed.
    quiet = " (the program was never quiet for %g s while it ran)" % settle
    for name, why in errors.items():
        if "no 'after_idle' phase" in why:
            errors[name] = why + quiet
    r['metrics'] = values
    r['metric_errors'] = errors
    if run_error is not None:
        return _finish(r, t0, 'fail', run_error), True
    r['duration_s'] = round(time.monotonic() - t0, 3)
    return r, False


def run_cell(ctx, case, cell, exp, exp_error, exp_where, refs):
    if exp_error:
        # A malformed expected file: nothing could be judged, so nothing is run.
        return _finish(new_result(case.name, cell.name), time.monotonic(), 'fail', exp_error)
    r, done = measure_cell(ctx, case, cell, refs)
    if done:
        return r
    t0 = time.monotonic() - r['duration_s']
    values, errors = r['metrics'], r['metric_errors']
    # The bounds for this cell on this platform.
    if exp is None:
        return _finish(r, t0, 'fail', "no bounds for cell '%s': no expected file %s" % (cell.name, exp_where))
    try:
        bounds, applied = select_bounds(exp, cell.name, ctx.platform, cell.allocator)
    except ConfigError as e:
        return _finish(r, t0, 'fail', str(e))
    # Each section named by its own file: a case's bounds may come from expected/cells.exp too.
    r['bounds_from'] = [s.origin for s in applied]
    # Which platform override sections replaced a default bound (empty: the defaults only).
    r['bounds_override'] = [s.label() for s in applied if s.is_override]
    if not bounds:
        why = "no bounds for cell '%s' in %s" % (cell.name, exp.where)
        other = unmatched_sections(exp, cell.name, ctx.platform, cell.allocator)
        if other:
            why += ' (%s on line %s %s not match this platform)' % (
                ', '.join(s.label() for s in other), ', '.join(str(s.lineno) for s in other),
                'does' if len(other) == 1 else 'do')
        return _finish(r, t0, 'fail', why)
    judged = cellmod.watch_view(cell) if case.measure == 'watch' else cell
    checks = [metrics.check(b, judged, r, values, errors, refs) for b in bounds]
    r['checks'] = checks
    failed = [c for c in checks if c['ok'] is False]
    if failed:
        return _finish(r, t0, 'fail', '; '.join('%s [%s]' % (report.describe_check(c), c['where'])
                                                 for c in failed))
    if all(c.get('na') for c in checks):
        # Nothing this cell is judged on can be judged here: a skip with the reason, not a pass.
        return _finish(r, t0, 'skip', '; '.join('%s [%s]' % (report.describe_check(c), c['where'])
                                                 for c in checks))
    return _finish(r, t0, 'pass', '')


def summary(results):
    s = OrderedDict()
    s['passed'] = sum(1 for r in results if r['status'] == 'pass')
    s['failed'] = sum(1 for r in results if r['status'] == 'fail')
    s['skipped'] = sum(1 for r in results if r['status'] == 'skip')
    return s
