"""`retention demo`: the teaching demo. Runs one case (default seed_std_list) step by step and tells
the story in plain sentences with the figures it measured: allocate (RSS climbs), free (RSS
stays), valgrind's verdict (no leak, only still reachable), what the allocator holds (live vs free
vs resident), the explicit trim (down to the page floor, and why a floor remains), the shim (the
same without a code change) and another allocator. --svg / --html draw the RSS timeline of the
native, trim, shim and other-allocator runs on one chart.

Every figure comes from runner.measure_cell, the code path of `retention run`; the demo only
chooses the cells and their arguments through the case and cell machinery: native and trim
idle after the free like the shim (so each has a timeline after the free), and a case with a
--count runs a smaller count by default, so the whole demo ends within a minute."""

import copy
import html
import os
import re
import textwrap
from collections import OrderedDict

from . import cells as cellmod
from . import paths, report, runner, svgchart
from .report import is_number

DEFAULT_CASE = 'seed_std_list'
# seed_std_list at 3,000 x 64 KiB = 197 MB: the whole demo (native, memcheck, trim, shim and one
# other allocator, each idling 2 s) took 23-35 s here on a machine busy with other builds (45 s at
# 4,000; malloc_trim alone takes ~1 ms per freed block there); the case file's 10,000 took 57 s,
# more when the machine is busier. --count 10000 runs the full count.
DEMO_COUNT = 3000
OTHER_ALLOCATORS = ('jemalloc', 'tcmalloc', 'mimalloc')
WRAP = 92
NBSP = '\u00a0'
_UNIT_RE = re.compile(r'(\d) (?=(?:s|ms|B|kB|MB|GB|KiB|bytes|blocks)\b)')

SERIES_LABELS = OrderedDict([
    ('native', 'glibc, the program as written (native)'),
    ('trim', 'glibc + malloc_trim(0) after the free (trim)'),
    ('shim', 'glibc + LD_PRELOAD=libtrimshim.so (shim)'),
])


# ---------------------------------------------------------------------------------------------
# What the demo runs: the case's own cells, adjusted through the case and cell machinery.

def idle_seconds(case):
    return case.idle if case.idle > 0 else cellmod.ALLOCATOR_SETTLE_S


def with_count(case, count=None):
    """The case with --count N in its args (and memcheck_args): N = count if given, else the case
    file's own count capped at DEMO_COUNT. Returns (case, count used, the case file's count); the
    counts are None when the case has no --count."""
    def value(args):
        if '--count' in args:
            i = args.index('--count')
            if i + 1 < len(args):
                try:
                    return int(args[i + 1])
                except ValueError:
                    return None
        return None

    def replaced(args, n):
        i = args.index('--count')
        return args[:i + 1] + [str(n)] + args[i + 2:]

    own = value(case.args)
    if own is None:
        return case, None, None
    n = count if count is not None else min(own, DEMO_COUNT)
    c = copy.copy(case)
    c.args = replaced(case.args, n)
    if case.memcheck_args is not None and value(case.memcheck_args) is not None:
        c.memcheck_args = replaced(case.memcheck_args, n)
    return c, n, own


def with_idle(cell, seconds):
    """The cell, idling `seconds` after the free (and after the trim) like the shim does, so its
    run has a timeline after the free: --idle appended to its case arguments, after_idle required.
    A copy: the cell table is not changed."""
    c = copy.copy(cell)
    base = cell.extra_args

    def extra(case):
        args = base(case)
        return args if '--idle' in args else args + ['--idle', '%d' % seconds]
    c._extra_args = extra
    if 'after_idle' not in c.phases:
        c.phases = tuple(cell.phases) + ('after_idle',)
    return c


def pick_other(ctx, case):
    """(cell name, None) of the first other allocator installed, or (None, why none is)."""
    program = paths.case_program(ctx.build_dir, case.program)
    why = []
    for name in OTHER_ALLOCATORS:
        cell = ctx.cells.get(name)
        if cell is None:
            continue
        reason = cell.preflight(ctx, program) if os.path.isfile(program) else None
        if reason is None:
            return name, None
        why.append(reason)
    return None, '; '.join(why) or 'no allocator cell (%s)' % ', '.join(OTHER_ALLOCATORS)


class Facts(object):
    """What the narration and the chart are made of: the case, the platform and the results."""

    def __init__(self, case, platform, count=None, case_count=None, idle=2, other=(None, 'not looked for'),
                 results=None):
        self.case = case
        self.platform = platform
        self.count = count
        self.case_count = case_count
        self.idle = idle
        self.other = other
        self.results = OrderedDict(results or ())
        self.page_size = (platform or {}).get('page_size') or 4096

    def demo_cell(self, ctx, role):
        if role in ('native', 'trim'):
            return with_idle(ctx.cells[role], self.idle)
        return ctx.cells[role]


# ---------------------------------------------------------------------------------------------
# Running the steps.

def _role_cells(facts, roles):
    out = []
    for role in roles:
        if role == 'other':
            if facts.other[0]:
                out.append(facts.other[0])
        else:
            out.append(role)
    return out


def run_cells(ctx, facts, roles, err):
    refs = dict((k, v) for k, v in facts.results.items() if v is not None)
    for name in _role_cells(facts, roles):
        if name in facts.results:
            continue
        cell = facts.demo_cell(ctx, name)
        err.write('demo: running %s in cell %s ...\n' % (facts.case.name, name))
        err.flush()
        r, _ = runner.measure_cell(ctx, facts.case, cell, refs)
        refs[name] = r
        facts.results[name] = r
        state = 'skipped' if r['status'] == 'skip' else 'FAILED' if failed_run(r) else 'done'
        err.write('demo:   %s in %.1f s%s\n' % (state, r['duration_s'], ': %s' % r['reason'] if r['reason'] else ''))
        err.flush()


def wait_for_enter(out, stdin):
    """Waits for Enter when stdin is a terminal; without a terminal returns at once, reading
    nothing. Returns True when it waited."""
    try:
        tty = stdin.isatty()
    except (AttributeError, ValueError, OSError):
        tty = False
    if not tty:
        return False
    out.write('    [Enter: next step] ')
    out.flush()
    stdin.readline()
    return True


def run(ctx, facts, out, err, pause=False, stdin=None):
    """Runs and narrates each step; returns [(title, text)] with the header first."""
    story = [('', header(facts))]
    out.write(header(facts) + '\n')
    out.flush()
    for i, (key, title, roles, narrate) in enumerate(STEPS):
        if pause and i > 0:
            wait_for_enter(out, stdin)
        run_cells(ctx, facts, roles, err)
        text = narrate(facts)
        story.append(('%d. %s' % (i + 1, title), text))
        out.write('\n%d. %s\n%s\n' % (i + 1, title, wrap(text)))
        out.flush()
    text = in_short(facts)
    if text:
        if pause:
            wait_for_enter(out, stdin)
        story.append(('In short', text))
        out.write('\nIn short\n%s\n' % wrap(text))
        out.flush()
    return story


def wrap(text, indent='   '):
    # A figure and its unit stay on one line.
    text = _UNIT_RE.sub('\\1' + NBSP, text)
    return '\n'.join(textwrap.fill(p, WRAP, initial_indent=indent, subsequent_indent=indent)
                     for p in text.split('\n')).replace(NBSP, ' ')


# ---------------------------------------------------------------------------------------------
# The narration: plain sentences around the measured figures. Each function takes Facts and
# copes with a skipped or failed run, or a figure the case did not report.

def fig(r, phase, key='rss_kb'):
    v = (r or {}).get('phases', {}).get(phase, {}).get(key)
    return v if is_number(v) and v >= 0 else None


def heap(r, phase, key):
    h = (r or {}).get('phases', {}).get(phase, {}).get('heap')
    if not isinstance(h, dict) or h.get('source') in (None, 'none'):
        return None
    v = h.get(key)
    return v if is_number(v) and v >= 0 else None


def mb(kb):
    # A no-break space keeps '2.8 MB' on one line when wrapped; wrap() turns it back into a space.
    return report.human_kb(kb).replace(' ', NBSP)


def hb(b):
    return report.human_bytes(b).replace(' ', NBSP)


def n(v):
    return report.thousands(v)


def plural(count, noun, number=True):
    """'3,000 live objects', '1 block'; number=False: 'live object' / 'live objects'."""
    word = noun if count == 1 else noun + 's'
    return '%s %s' % (n(count), word) if number else word


def failed_run(r):
    """measure_cell does not judge: a run that went clean has run_ok, whatever its status."""
    return r['status'] != 'skip' and not r['run_ok']


def usable(r):
    return r is not None and r['status'] != 'skip' and r['run_ok']


def not_run(r, what, when_run=None):
    """A sentence for a run that gave no figures: skipped (and why, then when_run: what the step
    shows where the run can be made) or failed (and why)."""
    if r is None:
        return 'Skipped: %s did not run.' % what
    if r['status'] == 'skip':
        return 'Skipped: %s.' % r['reason'] + (' ' + when_run if when_run else '')
    return 'The %s run failed, so there are no figures for this step: %s.' % (what, r['reason'])


def seconds(us):
    if not is_number(us) or us < 0:
        return None
    s = us / 1e6
    return '%.1f s' % s if s >= 0.1 else '%.0f ms' % max(1, round(us / 1e3))


def _share(r, phase):
    b, p, t = fig(r, 'baseline'), fig(r, 'peak'), fig(r, phase)
    if None in (b, p, t) or p <= b:
        return None
    return float(t - b) / (p - b)


def _pages(facts, floor_kb):
    return int(round(floor_kb * 1024.0 / facts.page_size))


def platform_words(p):
    """['glibc 2.36', 'Debian GNU/Linux 12 (bookworm)', 'x86_64']: what the platform has of these."""
    p = p or {}
    words = []
    if p.get('glibc'):
        words.append('glibc %s' % p['glibc'])
    if p.get('distro_name') or p.get('distro_id'):
        words.append(p.get('distro_name') or p.get('distro_id'))
    if p.get('arch'):
        words.append(p['arch'])
    return words


def header(facts):
    c = facts.case
    lines = ['retention demo: %s' % c.name, c.description]
    where = platform_words(facts.platform)
    if where:
        lines.append('Measured on %s.' % ', '.join(where))
    if facts.count is not None and facts.case_count is not None and facts.count != facts.case_count:
        lines.append('The demo runs --count %s where the case file runs %s, so that it ends within a minute; '
                     '`retention run` measures the full count (same code, larger figures).'
                     % (n(facts.count), n(facts.case_count)))
    elif facts.count is not None:
        lines.append('The demo runs --count %s, as the case file does.' % n(facts.count))
    return '\n'.join(wrap(l, '') for l in lines)


def narrate_allocate(facts):
    r = facts.results.get('native')
    if not usable(r):
        return not_run(r, 'native')
    b, p = fig(r, 'baseline'), fig(r, 'peak')
    took = seconds(fig(r, 'peak', 'work_us'))
    count = ' (--count %s)' % n(facts.count) if facts.count is not None else ''
    text = 'The program allocates its data%s and writes every byte: RSS climbs from %s at the start to %s at ' \
           'the peak' % (count, mb(b), mb(p))
    if b is not None and p is not None:
        text += ' (+%s' % mb(p - b) + (' in %s)' % took if took else ')')
    text += '. Every page it wrote is resident: this is the RES figure top shows.'
    return text


def narrate_free(facts):
    r = facts.results.get('native')
    if not usable(r):
        return not_run(r, 'native')
    af, ai = fig(r, 'after_free'), fig(r, 'after_idle')
    share = _share(r, 'after_free')
    live, live_b = fig(r, 'after_free', 'live_objects'), fig(r, 'after_free', 'live_bytes')
    if live:
        text = 'Then it frees everything except its %s (%s bytes in all). ' % (
            plural(live, 'live object'), n(live_b or 0))
    else:
        text = 'Then it frees what it allocated. '
    text += 'RSS right after the free: %s' % mb(af)
    if share is not None:
        text += ', %s of what the allocation added' % report.pct(share)
    if ai is not None:
        text += '; after %d s of doing nothing it is %s%s' % (facts.idle, 'still ' if af and abs(ai - af) <= 0.02 * af else '',
                                                             mb(ai))
    text += '.'
    if share is not None and share >= 0.5:
        text += ' The program no longer uses that memory, yet the process still holds it.'
    elif share is not None:
        text += ' Here most of it went back to the system at once.'
    return text


def narrate_valgrind(facts):
    r = facts.results.get('memcheck')
    mc = (r or {}).get('memcheck')
    if not usable(r) or not mc:
        return not_run(r, 'memcheck', 'With valgrind installed, this step runs the same program under memcheck '
                                      'and shows its leak summary.')
    lost = mc['definitely_lost_bytes'] + mc['indirectly_lost_bytes'] + mc['possibly_lost_bytes']
    blocks, sr = mc['still_reachable_blocks'], mc['still_reachable_bytes']
    live = fig(r, 'after_free', 'live_objects')
    if lost == 0:
        text = 'Under valgrind memcheck the same program ends with 0 bytes definitely, indirectly or possibly lost'
    else:
        text = 'Under valgrind memcheck the same program ends with %s bytes lost (%s definitely, %s indirectly, ' \
               '%s possibly)' % (n(lost), n(mc['definitely_lost_bytes']), n(mc['indirectly_lost_bytes']),
                                 n(mc['possibly_lost_bytes']))
    text += ', and %s bytes in %s "still reachable"' % (n(sr), plural(blocks, 'block'))
    if live and blocks == live:
        text += ': exactly the %s it still holds when it exits' % plural(live, 'live object', number=live > 1)
    text += '.'
    native = facts.results.get('native')
    share = _share(native, 'after_free') if usable(native) else None
    if lost == 0 and share is not None and share >= 0.5:
        text += ' For a leak checker there is no leak, and it is right: what top shows is not lost, it is ' \
                'free memory that the allocator keeps.'
    elif lost == 0:
        text += ' For a leak checker there is no leak.'
    else:
        text += ' This program does leak, on top of whatever the allocator keeps.'
    if mc.get('errors'):
        text += ' valgrind also reports %s memory errors.' % n(mc['errors'])
    return text


def narrate_heap(facts):
    r = facts.results.get('native')
    if not usable(r):
        return not_run(r, 'native')
    rss = fig(r, 'after_free')
    used, free = heap(r, 'after_free', 'in_use_bytes'), heap(r, 'after_free', 'free_bytes')
    floor = fig(r, 'after_free', 'floor_kb')
    if used is None or free is None:
        src = ((r['phases'].get('after_free') or {}).get('heap') or {}).get('source', 'none')
        text = 'The case reports no mallinfo2 figures (heap source: %s), so the allocator\'s own books cannot ' \
               'be shown; RSS after the free is %s.' % (src, mb(rss))
    else:
        text = 'glibc\'s own books (mallinfo2) right after the free: %s in use by live objects, %s free but kept ' \
               'inside malloc\'s heap, and %s resident.' % (hb(used), hb(free), mb(rss))
        share = _share(r, 'after_free')
        if share is not None and share >= 0.5:
            text += ' glibc gives memory back by itself only from the top of the heap (and for blocks it ' \
                    'mmap\'d separately); free space below a live object stays mapped and resident.'
        elif share is not None:
            text += ' Here the freed memory did go back by itself: glibc returns free space at the top of the ' \
                    'heap, and blocks it mmap\'d separately, on the free.'
    if floor is not None:
        text += ' The live objects themselves touch only %s of pages (%s of %d KiB): the page floor.' % (
            mb(floor), plural(_pages(facts, floor), 'page'), facts.page_size // 1024)
    return text


def narrate_trim(facts):
    r = facts.results.get('trim')
    if not usable(r):
        return not_run(r, 'trim')
    b, af, at = fig(r, 'baseline'), fig(r, 'after_free'), fig(r, 'after_trim')
    took = seconds(fig(r, 'after_trim', 'work_us'))
    free_before, free_after = heap(r, 'after_free', 'free_bytes'), heap(r, 'after_trim', 'free_bytes')
    text = 'The same program with one call, malloc_trim(0), right after the free: RSS drops from %s to %s' % (
        mb(af), mb(at))
    if took:
        text += ' (the call takes %s)' % took
    if free_before and free_after is not None and free_after >= 0.9 * free_before:
        text += ', while mallinfo2 still counts %s as free: the pages go back to the kernel, the address range ' \
                'stays with malloc for reuse' % hb(free_after)
    text += '.'
    floor = fig(r, 'after_trim', 'floor_kb')
    live = fig(r, 'after_trim', 'live_objects')
    ratio = r['metrics'].get('floor_ratio')
    if floor is not None and b is not None and live:
        pages = _pages(facts, floor)
        text += ' It does not drop to the %s it started with: malloc_trim returns only whole free pages, and the ' \
                '%s %s on %s (%s)' % (mb(b), plural(live, 'live object'), 'sits' if live == 1 else 'sit',
                                      plural(pages, 'page'), mb(floor))
        if abs(pages - live) <= 0.05 * live:
            text += ', one page per live object, each alone between two freed blocks'
        text += '; so baseline + floor = %s is the least it can reach' % mb(b + floor)
        if ratio is not None:
            text += ', and it reaches %.2fx of that' % ratio
        text += '.'
    return text


def drop_time(r):
    """Seconds from the free until RSS came within 10% of its settled value (of the drop), or None
    when it did not drop."""
    af, ai = fig(r, 'after_free'), fig(r, 'after_idle')
    t_free = fig(r, 'after_free', 't_ms')
    if None in (af, ai, t_free) or af - ai <= 0.1 * af:
        return None
    limit = ai + 0.1 * (af - ai)
    for s in list(r.get('samples') or []) + [r['phases'].get('after_idle') or {}]:
        rss, t = s.get('rss_kb'), s.get('t_ms')
        if is_number(rss) and is_number(t) and rss <= limit:
            return max(0.0, (t - t_free) / 1000.0)
    return None


def narrate_shim(facts):
    r = facts.results.get('shim')
    if not usable(r):
        return not_run(r, 'shim', 'Built, libtrimshim.so is preloaded into the unchanged program with LD_PRELOAD '
                                  'and gives the memory back on its own when the program goes quiet.')
    af, ai = fig(r, 'after_free'), fig(r, 'after_idle')
    text = 'Now the unchanged program with LD_PRELOAD=libtrimshim.so: the shim starts a background thread ' \
           'that calls malloc_trim when the program goes quiet. '
    dt = drop_time(r)
    if dt is None:
        ratio = r['metrics'].get('shim_over_trim')
        text += 'While the program idles for %d s after the free, RSS stays at %s' % (facts.idle, mb(ai))
        if ratio is not None and ratio <= 1.1:
            text += ', %.2fx what the explicit trim left: there was little to give back.' % ratio
        else:
            text += ': the shim did not trim.'
        return text
    text += 'While the program idles after the free, RSS falls from %s to %s within %.1f s of the free' % (
        mb(af), mb(ai), dt)
    ratio = r['metrics'].get('shim_over_trim')
    if ratio is not None:
        text += ', %.2fx what the explicit trim left (the shim\'s own start-up memory discounted)' % ratio
    return text + '.'


def narrate_other(facts):
    name, why = facts.other
    if not name:
        return 'Skipped: no other allocator is installed (%s). Install one (Debian: libjemalloc2) to compare.' % why
    r = facts.results.get(name)
    if not usable(r):
        return not_run(r, name)
    p, af, ai = fig(r, 'peak'), fig(r, 'after_free'), fig(r, 'after_idle')
    share, settled = _share(r, 'after_free'), _share(r, 'after_idle')
    idle = r['command'][r['command'].index('--idle') + 1] if r.get('command') and '--idle' in r['command'] \
        else str(cellmod.ALLOCATOR_SETTLE_S)
    text = 'For comparison, the program as written with %s preloaded in place of glibc\'s malloc: RSS peaks at ' \
           '%s, is %s right after the free' % (name, mb(p), mb(af))
    if share is not None:
        text += ' (%s of what the allocation added)' % report.pct(share)
    if ai is not None:
        text += ' and %s after %s s idle' % (mb(ai), idle)
    text += '.'
    if share is not None and share < 0.5:
        text += ' %s keeps the small objects apart from the large blocks, so freeing the blocks empties whole ' \
                'runs of pages: %s of what the allocation added goes back at once, the rest it keeps as free ' \
                'pages for reuse.' % (name, report.pct(1 - share))
    elif share is not None and settled is not None and settled < 0.5:
        text += ' %s keeps the freed pages at first and gives them back while the program idles.' % name
    elif share is not None:
        text += ' %s keeps the freed pages cached for reuse and returns none while the program idles: another ' \
                'allocator is not by itself a fix.' % name
    return text


def in_short(facts):
    native, mc = facts.results.get('native'), facts.results.get('memcheck')
    share = _share(native, 'after_free') if usable(native) else None
    if share is None or share < 0.5:
        return ''
    parts = []
    m = (mc or {}).get('memcheck') if usable(mc) else None
    if m and m['definitely_lost_bytes'] + m['indirectly_lost_bytes'] + m['possibly_lost_bytes'] == 0:
        parts.append('valgrind is right: nothing is lost.')
    parts.append('top is right: %s stays resident after the free.' % mb(fig(native, 'after_free')))
    parts.append('Both hold because the memory is free inside malloc, not leaked: malloc_trim(0), or the shim '
                 'with no code change, gives it back down to the pages the live objects still need.')
    return ' '.join(parts)


# (key, title, the cells it needs, by role, narration)
STEPS = (
    ('allocate', 'Allocate', ('native',), narrate_allocate),
    ('free', 'Free', ('native',), narrate_free),
    ('valgrind', 'valgrind\'s verdict', ('memcheck',), narrate_valgrind),
    ('heap', 'What the allocator holds', ('native',), narrate_heap),
    ('trim', 'An explicit trim', ('trim',), narrate_trim),
    ('shim', 'The shim: no code change', ('shim',), narrate_shim),
    ('other', 'Another allocator', ('other',), narrate_other),
)


# ---------------------------------------------------------------------------------------------
# The chart.

def timeline(r):
    """The run's RSS samples as [(seconds since the end of the free, MB)], in time order, and its
    phase points {phase: (x, MB)}. MB = 10^6 bytes, as in the table."""
    t_free = fig(r, 'after_free', 't_ms')
    if t_free is None:
        return [], OrderedDict()
    samples = []
    phases = OrderedDict()
    for name, p in r['phases'].items():
        if is_number(p.get('t_ms')) and is_number(p.get('rss_kb')) and p['rss_kb'] >= 0:
            pt = ((p['t_ms'] - t_free) / 1000.0, p['rss_kb'] * 1024 / 1e6)
            samples.append(pt)
            phases[name] = pt
    for s in r.get('samples') or []:
        if is_number(s.get('t_ms')) and is_number(s.get('rss_kb')) and s['rss_kb'] >= 0:
            samples.append(((s['t_ms'] - t_free) / 1000.0, s['rss_kb'] * 1024 / 1e6))
    samples.sort(key=lambda p: p[0])
    return samples, phases


def series_label(facts, role):
    if role in SERIES_LABELS:
        return SERIES_LABELS[role]
    return '%s, LD_PRELOAD in place of glibc (%s)' % (role, role)


def chart_parts(facts):
    """(series, marks) for svgchart: native, trim, shim and the other allocator, the runs aligned
    at the end of their free; marks for the allocation, the free and the end of the trim."""
    series = []
    marks = []
    starts = []
    for role in ('native', 'trim', 'shim', facts.other[0]):
        r = facts.results.get(role) if role else None
        if not usable(r):
            continue
        points, phases = timeline(r)
        if not points:
            continue
        series.append(svgchart.Series(series_label(facts, role), points, markers=list(phases.values())))
        if 'baseline' in phases:
            starts.append(phases['baseline'][0])
    if starts:
        marks.append(svgchart.Mark('span', min(starts), 0.0, 'allocate'))
    marks.append(svgchart.Mark('line', 0.0, None, 'free'))
    trim = facts.results.get('trim')
    if usable(trim):
        _, phases = timeline(trim)
        if 'after_trim' in phases:
            marks.append(svgchart.Mark('line', phases['after_trim'][0], None, 'malloc_trim(0) done'))
    return series, marks


def chart(facts):
    series, marks = chart_parts(facts)
    bits = ['--count %s' % n(facts.count)] if facts.count is not None else []
    bits += platform_words(facts.platform)
    return svgchart.line_chart(
        series, marks, title='%s: resident memory (RSS) over time' % facts.case.name,
        subtitle=['; '.join(bits),
                  'Runs aligned at the end of their free. Markers: phase reports; while idle, RSS is sampled '
                  'every 100 ms.'],
        x_label='time since the free (s); negative: allocating',
        y_label='RSS (MB, 1 MB = 10\u2076 bytes)')


def html_page(facts, story):
    svg = chart(facts)
    svg = svg.split('\n', 1)[1] if svg.startswith('<?xml') else svg
    parts = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
             '<title>retention demo: %s</title>' % html.escape(facts.case.name),
             '<style>body{font-family:DejaVu Sans,Arial,sans-serif;color:#000;background:#fff;max-width:60em;'
             'margin:1em auto;padding:0 1em;line-height:1.45}svg{max-width:100%;height:auto}'
             'h2{font-size:1.1em;margin-top:1.4em}</style>',
             '</head>', '<body>']
    for title, text in story:
        if not title:
            lines = text.split('\n')
            parts.append('<h1>%s</h1>' % html.escape(lines[0]))
            parts.append('<p>%s</p>' % html.escape(' '.join(l.strip() for l in lines[1:])))
            parts.append(svg)
            continue
        parts.append('<h2>%s</h2>' % html.escape(title))
        parts.append('<p>%s</p>' % html.escape(text))
    parts += ['</body>', '</html>']
    return '\n'.join(parts) + '\n'
