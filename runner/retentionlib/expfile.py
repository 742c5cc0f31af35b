"""expected/: the bounds each case must meet in each cell, with explicit platform sections.

Two kinds of file in one format:

  expected/cells.exp   the cell bounds: what every case gets in a cell (the shim matches an explicit
                       trim, memcheck finds nothing lost, ...), each with its why written once
  expected/CASE.exp    the case's own bounds: what is particular to it (required for every case
                       that is run; 'cells' is therefore no case name)

    # file comment
    [native]
    # why this bound has this value (every bound, drop or group of adjacent ones has one)
    retained >= 0.90

    [native glibc<2.26]               platform section: all selectors must match the platform
    # tcache absent before 2.26, so ...
    retained >= 0.80

    [jemalloc]
    # why this case has no bound on a metric that a less specific section bounds
    drop retained

Selectors: glibc<OP>VERSION (OP one of < <= == >= >, versions compared numerically),
distro=ID or distro=ID-VERSION (/etc/os-release), allocator=NAME (the cell's allocator),
thp=always|madvise|never, arch=MACHINE, tcache=on|off (off: glibc < 2.26, or the run's --env
GLIBC_TUNABLES sets glibc.malloc.tcache_count=0). Bound: METRIC OP VALUE, VALUE a number or a figure the
case reported (live_objects, live_bytes, floor_kb), optionally times a number ('live_bytes * 1').
'drop METRIC': no bound on METRIC here, whatever a less specific section says.

Which bounds judge a case in a cell on a platform: each metric is decided by the first of these
that mentions it (bounds it or drops it), most specific first:

  1. a platform section of the case's file that matches
  2. the case's [cell] section
  3. a platform section of cells.exp that matches
  4. cells.exp's [cell] section

The section that decides a metric gives all its bounds on that metric (a band's two ends are
replaced together), a drop gives none; bounds on different metrics add up. Errors, each a
ConfigError naming file:line: a bound without a comment above it, a section given twice or one
'METRIC OP' twice in a section (both lines named), two matching platform sections of one file
deciding the same metric (both named, when the platform is known), a metric both bounded and
dropped in one section, a drop that no less specific section gives a bound to drop."""

import os
import re

from . import cells as cellmod
from . import platforminfo
from .errors import ConfigError
from .lines import CONTENT, SECTION, display_path, parse_lines, read_text
from .vocab import FIGURES, METRIC_NAMES, OPS

# The file of cell bounds, next to the case files: expected/cells.exp.
CELL_BOUNDS_NAME = 'cells'

THP_MODES = ('always', 'madvise', 'never')
TCACHE_STATES = ('on', 'off')

# [0-9], not \d: \d takes other scripts' digits, which no bound means. Integers of at most 20
# digits and versions of at most 9 per component: int() refuses 4300+ digits (Python 3.11+).
_NUMBER = r'[-+]?(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][-+]?[0-9]{1,4})?'
_BOUND_RE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|<|>)\s*(.*)$')
_DROP_RE = re.compile(r'^drop(?:\s+(.*))?$')
_NUMBER_RE = re.compile(r'^(%s)$' % _NUMBER)
_INTEGER_RE = re.compile(r'^[-+]?[0-9]+$')
_FIGURE_RE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)(?:\s*\*\s*(%s))?$' % _NUMBER)
_GLIBC_RE = re.compile(r'^glibc(<=|>=|==|<|>)([0-9]{1,9}(?:\.[0-9]{1,9})*)$')
_KV_RE = re.compile(r'^(distro|allocator|thp|arch|tcache)=(\S+)$')

SELECTOR_HELP = ('glibc<OP>VERSION, distro=ID or distro=ID-VERSION, allocator=NAME, '
                 'thp=always|madvise|never, arch=MACHINE, tcache=on|off')


def parse_number(text):
    """A bound's number: an int when written as one ('0' stays 0, so '== 0' prints as 0), else a
    float."""
    if _INTEGER_RE.match(text):
        return int(text)
    return float(text)


def version_tuple(text):
    """'2.36' -> (2, 36); None when text has no leading numeric version."""
    if not text:
        return None
    m = re.match(r'^([0-9]{1,9}(?:\.[0-9]{1,9})*)', text)
    if not m:
        return None
    return tuple(int(x) for x in m.group(1).split('.'))


def _cmp_versions(a, b):
    n = max(len(a), len(b))
    a = a + (0,) * (n - len(a))
    b = b + (0,) * (n - len(b))
    return (a > b) - (a < b)


class Selector(object):
    def __init__(self, text, key, op, value):
        self.text = text
        self.key = key
        self.op = op
        self.value = value

    def matches(self, platform, allocator):
        if self.key == 'glibc':
            have = version_tuple(platform.get('glibc'))
            if have is None:
                return False
            c = _cmp_versions(have, version_tuple(self.value))
            return OPS[self.op](c, 0)
        if self.key == 'distro':
            did = platform.get('distro_id') or ''
            ver = platform.get('distro_version') or ''
            return self.value == did or (bool(ver) and self.value == '%s-%s' % (did, ver))
        if self.key == 'allocator':
            return self.value == allocator
        if self.key == 'thp':
            return self.value == platform.get('thp')
        if self.key == 'tcache':
            # A platform recorded without the key (an older runner's JSON) still has its glibc.
            have = platform.get('tcache') or platforminfo.tcache_state(platform.get('glibc'))
            return self.value == have
        if self.key == 'arch':
            return self.value == platform.get('arch')
        return False


def parse_selector(text, where, lineno):
    m = _GLIBC_RE.match(text)
    if m:
        return Selector(text, 'glibc', m.group(1), m.group(2))
    if text.startswith('glibc'):
        raise ConfigError(where, lineno, "bad glibc selector %r (expected glibc<OP>VERSION, OP one of "
                          "< <= == >= >, e.g. glibc<2.26)" % text)
    m = _KV_RE.match(text)
    if m:
        key, value = m.group(1), m.group(2)
        if key == 'thp' and value not in THP_MODES:
            raise ConfigError(where, lineno, "bad thp selector %r (thp=always|madvise|never)" % text)
        if key == 'tcache' and value not in TCACHE_STATES:
            raise ConfigError(where, lineno, "bad tcache selector %r (tcache=on|off)" % text)
        return Selector(text, key, '=', value)
    raise ConfigError(where, lineno, "unknown selector %r (known: %s)" % (text, SELECTOR_HELP))


class Section(object):
    def __init__(self, cell, selectors, header, where, lineno, why):
        self.cell = cell
        self.selectors = selectors
        self.header = header
        self.where = where
        self.lineno = lineno
        self.why = why
        self.bounds = []
        self.drops = []

    @property
    def is_override(self):
        return bool(self.selectors)

    @property
    def location(self):
        return '%s:%d' % (self.where, self.lineno)

    @property
    def origin(self):
        """'expected/cells.exp:12 [shim]': the file and line a section starts on, and its header."""
        return '%s %s' % (self.location, self.label())

    def matches(self, platform, allocator):
        return all(s.matches(platform, allocator) for s in self.selectors)

    def label(self):
        return '[%s]' % self.header

    def decided(self):
        """The metrics this section bounds or drops, each with the first line that does."""
        out = {}
        for item in self.bounds + self.drops:
            if item.metric not in out or item.lineno < out[item.metric].lineno:
                out[item.metric] = item
        return out


class _Entry(object):
    """A line of a section that decides a metric: a bound or a drop, with where it stands and why."""

    def __init__(self, metric, where, lineno, why, section):
        self.metric = metric
        self.where = where
        self.lineno = lineno
        self.why = why
        self.section = section

    @property
    def location(self):
        return '%s:%d' % (self.where, self.lineno)


class Bound(_Entry):
    def __init__(self, metric, op, expr, number, figure, factor, where, lineno, why, section):
        _Entry.__init__(self, metric, where, lineno, why, section)
        self.op = op
        self.expr = expr
        self.number = number
        self.figure = figure
        self.factor = factor

    def text(self):
        return '%s %s %s' % (self.metric, self.op, self.expr)


class Drop(_Entry):
    """'drop METRIC': the metric has no bound where this section decides it."""

    def text(self):
        return 'drop %s' % self.metric


class Expected(object):
    def __init__(self, path, where):
        self.path = path
        self.where = where
        self.sections = []
        # The parsed cells.exp whose bounds this case's sections refine (None: no such file).
        self.cell_bounds = None


def _parse_value(expr, where, n):
    """A bound's VALUE: (number, figure, factor), one of number and figure None."""
    if _NUMBER_RE.match(expr):
        return parse_number(expr), None, None
    mf = _FIGURE_RE.match(expr)
    if not mf:
        raise ConfigError(where, n, "bad value %r (a number, or a figure such as live_objects, "
                          "optionally '* NUMBER')" % expr)
    figure = mf.group(1)
    if figure not in FIGURES:
        raise ConfigError(where, n, "unknown figure '%s' in value %r (known: %s)"
                          % (figure, expr, ', '.join(FIGURES)))
    return None, figure, parse_number(mf.group(2)) if mf.group(2) else 1


def _check_metric(metric, known_metrics, where, n):
    if metric not in known_metrics:
        raise ConfigError(where, n, "unknown metric '%s' (known: %s)" % (metric, ', '.join(known_metrics)))


def _parse_drop(text, section, known_metrics, where, n, why):
    words = (_DROP_RE.match(text).group(1) or '').split()
    if len(words) != 1:
        raise ConfigError(where, n, "expected 'drop METRIC' (one metric), got %r" % text)
    metric = words[0]
    _check_metric(metric, known_metrics, where, n)
    for other in section.drops:
        if other.metric == metric:
            raise ConfigError(where, n, "'drop %s' given twice in %s (first at %s)"
                              % (metric, section.label(), other.location))
    for other in section.bounds:
        if other.metric == metric:
            raise ConfigError(where, n, "'%s' is both bounded (at %s) and dropped in %s"
                              % (metric, other.location, section.label()))
    if not why:
        raise ConfigError(where, n, "%r has no comment right above it saying why" % text)
    return Drop(metric, where, n, why, section)


def _parse_bound(m, text, section, known_metrics, where, n, why):
    metric, op, expr = m.group(1), m.group(2), m.group(3).strip()
    _check_metric(metric, known_metrics, where, n)
    if not expr:
        raise ConfigError(where, n, "missing value after '%s %s'" % (metric, op))
    number, figure, factor = _parse_value(expr, where, n)
    for other in section.bounds:
        if other.metric == metric and other.op == op:
            raise ConfigError(where, n, "'%s %s' given twice in %s (first at %s)"
                              % (metric, op, section.label(), other.location))
    for other in section.drops:
        if other.metric == metric:
            raise ConfigError(where, n, "'%s' is both dropped (at %s) and bounded in %s"
                              % (metric, other.location, section.label()))
    if not why:
        raise ConfigError(where, n, "bound %r has no comment right above it saying why" % text)
    return Bound(metric, op, expr, number, figure, factor, where, n, why, section)


def parse_expected_text(text, where, path=None, known_cells=None, known_metrics=None):
    """Parses one expected file (a case's or cells.exp) on its own; raises
    ConfigError('expected/x.exp:LINE: ...'). with_cell_bounds joins a case's file to cells.exp."""
    if known_cells is None:
        known_cells = cellmod.CELLS
    if known_metrics is None:
        known_metrics = METRIC_NAMES
    exp = Expected(path, where)
    current = None
    headers = {}
    for line in parse_lines(text, where):
        n = line.lineno
        if line.kind == SECTION:
            words = line.text.split()
            cell = words[0]
            if cell not in known_cells:
                raise ConfigError(where, n, "unknown cell '%s' in section header (known: %s)"
                                  % (cell, ', '.join(known_cells)))
            selectors = []
            seen_sel = set()
            for w in words[1:]:
                sel = parse_selector(w, where, n)
                if sel.text in seen_sel:
                    raise ConfigError(where, n, 'selector %r given twice' % w)
                seen_sel.add(sel.text)
                selectors.append(sel)
            key = (cell, tuple(sorted(seen_sel)))
            if key in headers:
                raise ConfigError(where, n, 'duplicate section [%s] (first at %s:%d)'
                                  % (line.text, where, headers[key]))
            headers[key] = n
            current = Section(cell, selectors, ' '.join(words), where, n, line.why)
            exp.sections.append(current)
            continue
        if line.kind != CONTENT:
            continue
        if current is None:
            raise ConfigError(where, n, "bound %r before any section header such as [native]" % line.text)
        m = _BOUND_RE.match(line.text)
        if m:
            current.bounds.append(_parse_bound(m, line.text, current, known_metrics, where, n, line.why))
        elif _DROP_RE.match(line.text):
            current.drops.append(_parse_drop(line.text, current, known_metrics, where, n, line.why))
        else:
            raise ConfigError(where, n, "expected 'METRIC OP VALUE' with OP one of < <= == >= >, or "
                              "'drop METRIC', got %r" % line.text)
    return exp


def _files(exp):
    """(rank, file): cells.exp first (0), the case's file (1): least specific first."""
    return [(i, f) for i, f in enumerate((exp.cell_bounds, exp)) if f is not None]


def _specificity(file_rank, section):
    # 0: cells.exp [cell], 1: its platform sections, 2: the case's [cell], 3: its platform sections.
    return 2 * file_rank + (1 if section.is_override else 0)


def with_cell_bounds(exp, cell_bounds):
    """Joins a case's parsed file to the parsed cells.exp (None: there is none) and checks that
    every drop in either has a bound to drop: a less specific section for the same cell that
    bounds the metric. Returns exp."""
    exp.cell_bounds = cell_bounds
    ranked = [(_specificity(fr, s), s) for fr, f in _files(exp) for s in f.sections]
    for rank, sec in ranked:
        for drop in sec.drops:
            below = [s for r, s in ranked if r < rank and s.cell == sec.cell]
            if any(b.metric == drop.metric for s in below for b in s.bounds):
                continue
            looked = ('sections for the cell: %s' % ', '.join(s.origin for s in below) if below
                      else 'there is no less specific section for the cell')
            raise ConfigError(drop.where, drop.lineno, "'%s' in %s: nothing to drop, no less specific "
                              "section bounds '%s' (%s)" % (drop.text(), sec.label(), drop.metric, looked))
    return exp


def load_cell_bounds(expected_dir, repo, known_cells=None):
    """expected/cells.exp, parsed; None when it does not exist."""
    path = os.path.join(expected_dir, CELL_BOUNDS_NAME + '.exp')
    if not os.path.exists(path):
        return None
    where = display_path(path, repo)
    return with_cell_bounds(parse_expected_text(read_text(path, where), where, path, known_cells), None)


def load_expected(expected_dir, name, repo, known_cells=None):
    """A case's expected file joined to cells.exp, or None when the case has no file (cells.exp
    alone never judges a case: its native and trim bounds are always particular)."""
    path = os.path.join(expected_dir, name + '.exp')
    where = display_path(path, repo)
    if name == CELL_BOUNDS_NAME:
        raise ConfigError(where, None, "'%s' is no case name: %s holds the bounds every case gets per cell"
                          % (name, where))
    if not os.path.exists(path):
        return None
    cell_bounds = load_cell_bounds(expected_dir, repo, known_cells)
    exp = parse_expected_text(read_text(path, where), where, path, known_cells)
    return with_cell_bounds(exp, cell_bounds)


def _refuse_two_deciders(matching):
    """Two matching platform sections of one file may not decide the same metric: there is no
    'any variant matches'."""
    owner = {}
    for sec in matching:
        for metric, item in sorted(sec.decided().items(), key=lambda kv: kv[1].lineno):
            prev = owner.get(metric)
            if prev is not None:
                raise ConfigError(item.where, item.lineno,
                                  "metric '%s' is set by two matching overrides: %s at %s and %s at %s"
                                  % (metric, prev[0].label(), prev[1].location, sec.label(), item.location))
            owner[metric] = (sec, item)


def select_bounds(exp, cell, platform, allocator):
    """The bounds for one cell on this platform (see the module docstring for which section decides
    each metric). Returns (bounds, applied): bounds in file order, cells.exp's first; applied, the
    sections that decide at least one metric, least specific first. Raises ConfigError when two
    matching platform sections of one file decide the same metric."""
    layers = []   # (file rank, sections), least specific first
    for rank, f in _files(exp):
        mine = [s for s in f.sections if s.cell == cell]
        matching = [s for s in mine if s.is_override and s.matches(platform, allocator)]
        _refuse_two_deciders(matching)
        layers.append((rank, [s for s in mine if not s.is_override]))
        layers.append((rank, matching))
    decider = {}
    for _, layer in reversed(layers):
        found = {}
        for sec in layer:
            for metric in sec.decided():
                if metric not in decider:
                    found[metric] = sec
        decider.update(found)
    deciders = list(decider.values())
    applied = []
    by_file = {}
    for rank, layer in layers:
        for sec in layer:
            if any(d is sec for d in deciders):
                applied.append(sec)
                by_file.setdefault(rank, []).extend(b for b in sec.bounds if decider[b.metric] is sec)
    bounds = []
    for rank in sorted(by_file):
        bounds.extend(sorted(by_file[rank], key=lambda b: b.lineno))
    return bounds, applied


def unmatched_sections(exp, cell, platform, allocator):
    """The platform sections for the cell, in either file, that do not match this platform."""
    return [s for _, f in _files(exp) for s in f.sections
            if s.cell == cell and s.is_override and not s.matches(platform, allocator)]
