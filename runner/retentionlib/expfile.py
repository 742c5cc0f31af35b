"""expected/NAME.exp: the bounds per cell, with explicit platform override sections.

    # file comment
    [native]
    # why this bound has this value (every bound or group of adjacent bounds has one)
    retained >= 0.90

    [native glibc<2.26]               override: all selectors must match the platform
    # tcache absent before 2.26, so ...
    retained >= 0.80

Selectors: glibc<OP>VERSION (OP one of < <= == >= >, versions compared numerically),
distro=ID or distro=ID-VERSION (/etc/os-release), allocator=NAME (the cell's allocator),
thp=always|madvise|never, arch=MACHINE. An override replaces the bounds with the same metric
from the [cell] section; two matching overrides that set the same metric are an error naming
both lines. Bound: METRIC OP VALUE, VALUE a number or a figure the case reported
(live_objects, live_bytes, floor_kb), optionally times a number ('live_bytes * 1')."""

import operator
import os
import re

from . import cells as cellmod
from .errors import ConfigError
from .lines import CONTENT, SECTION, parse_lines, read_text

OPS = {
    '<': operator.lt,
    '<=': operator.le,
    '==': operator.eq,
    '>=': operator.ge,
    '>': operator.gt,
}
FIGURES = ('live_objects', 'live_bytes', 'floor_kb')
THP_MODES = ('always', 'madvise', 'never')

_NUM = r'[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?'
_BOUND_RE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|<|>)\s*(.*)$')
_NUM_RE = re.compile(r'^(%s)$' % _NUM)
_FIG_RE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)(?:\s*\*\s*(%s))?$' % _NUM)
_GLIBC_RE = re.compile(r'^glibc(<=|>=|==|<|>)(\d+(?:\.\d+)*)$')
_KV_RE = re.compile(r'^(distro|allocator|thp|arch)=(\S+)$')

SELECTOR_HELP = ('glibc<OP>VERSION, distro=ID or distro=ID-VERSION, allocator=NAME, '
                 'thp=always|madvise|never, arch=MACHINE')


def _num(text):
    f = float(text)
    if re.match(r'^[-+]?\d+$', text):
        return int(text)
    return f


def version_tuple(text):
    """'2.36' -> (2, 36); None when text has no leading numeric version."""
    if not text:
        return None
    m = re.match(r'^(\d+(?:\.\d+)*)', text)
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
        return Selector(text, key, '=', value)
    raise ConfigError(where, lineno, "unknown selector %r (known: %s)" % (text, SELECTOR_HELP))


class Section(object):
    def __init__(self, cell, selectors, header, lineno, why):
        self.cell = cell
        self.selectors = selectors
        self.header = header
        self.lineno = lineno
        self.why = why
        self.bounds = []

    @property
    def is_override(self):
        return bool(self.selectors)

    def matches(self, platform, allocator):
        return all(s.matches(platform, allocator) for s in self.selectors)

    def label(self):
        return '[%s]' % self.header


class Bound(object):
    def __init__(self, metric, op, expr, number, figure, factor, where, lineno, why, section):
        self.metric = metric
        self.op = op
        self.expr = expr
        self.number = number
        self.figure = figure
        self.factor = factor
        self.where = where
        self.lineno = lineno
        self.why = why
        self.section = section

    @property
    def location(self):
        return '%s:%d' % (self.where, self.lineno)

    def text(self):
        return '%s %s %s' % (self.metric, self.op, self.expr)


class Expected(object):
    def __init__(self, path, where):
        self.path = path
        self.where = where
        self.sections = []


def parse_expected_text(text, where, path=None, known_cells=None, known_metrics=None):
    """Parses an expected file; raises ConfigError('expected/x.exp:LINE: ...')."""
    if known_cells is None:
        known_cells = cellmod.CELLS
    if known_metrics is None:
        from . import metrics
        known_metrics = metrics.METRICS
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
                raise ConfigError(where, n, 'duplicate section [%s] (first on line %d)' % (line.text, headers[key]))
            headers[key] = n
            current = Section(cell, selectors, ' '.join(words), n, line.why)
            exp.sections.append(current)
            continue
        if line.kind != CONTENT:
            continue
        if current is None:
            raise ConfigError(where, n, "bound %r before any section header such as [native]" % line.text)
        m = _BOUND_RE.match(line.text)
        if not m:
            raise ConfigError(where, n, "expected 'METRIC OP VALUE' with OP one of < <= == >= >, got %r" % line.text)
        metric, op, expr = m.group(1), m.group(2), m.group(3).strip()
        if metric not in known_metrics:
            raise ConfigError(where, n, "unknown metric '%s' (known: %s)" % (metric, ', '.join(known_metrics)))
        if not expr:
            raise ConfigError(where, n, "missing value after '%s %s'" % (metric, op))
        number, figure, factor = None, None, None
        mm = _NUM_RE.match(expr)
        if mm:
            number = _num(expr)
        else:
            mf = _FIG_RE.match(expr)
            if not mf:
                raise ConfigError(where, n, "bad value %r (a number, or a figure such as live_objects, "
                                  "optionally '* NUMBER')" % expr)
            figure = mf.group(1)
            if figure not in FIGURES:
                raise ConfigError(where, n, "unknown figure '%s' in value %r (known: %s)"
                                  % (figure, expr, ', '.join(FIGURES)))
            factor = _num(mf.group(2)) if mf.group(2) else 1
        for other in current.bounds:
            if other.metric == metric and other.op == op:
                raise ConfigError(where, n, "'%s %s' given twice in [%s] (first on line %d)"
                                  % (metric, op, current.header, other.lineno))
        if not line.why:
            raise ConfigError(where, n, "bound %r has no comment right above it saying why" % line.text)
        current.bounds.append(Bound(metric, op, expr, number, figure, factor, where, n, line.why, current))
    return exp


def load_expected(expected_dir, name, repo, known_cells=None):
    """Returns the parsed expected file, or None when it does not exist."""
    from .casefile import display_path
    path = os.path.join(expected_dir, name + '.exp')
    where = display_path(path, repo)
    if not os.path.exists(path):
        return None
    return parse_expected_text(read_text(path, where), where, path, known_cells)


def select_bounds(exp, cell, platform, allocator):
    """The bounds for one cell on this platform: the [cell] section, with the bounds of every
    matching override section replacing the same metric. Returns (bounds, applied sections).
    Raises ConfigError when two matching overrides set the same metric."""
    default = None
    overrides = []
    for sec in exp.sections:
        if sec.cell != cell:
            continue
        if not sec.is_override:
            default = sec
        elif sec.matches(platform, allocator):
            overrides.append(sec)
    owner = {}
    for sec in overrides:
        for b in sec.bounds:
            prev = owner.get(b.metric)
            if prev is not None and prev is not sec:
                first = [x for x in prev.bounds if x.metric == b.metric][0]
                raise ConfigError(exp.where, b.lineno,
                                  "metric '%s' is set by two matching overrides: %s on line %d and %s on line %d"
                                  % (b.metric, prev.label(), first.lineno, sec.label(), b.lineno))
            owner[b.metric] = sec
    bounds = []
    if default is not None:
        bounds.extend(b for b in default.bounds if b.metric not in owner)
    for sec in overrides:
        bounds.extend(sec.bounds)
    bounds.sort(key=lambda b: b.lineno)
    applied = ([default] if default is not None else []) + overrides
    return bounds, applied


def unmatched_sections(exp, cell, platform, allocator):
    return [s for s in exp.sections if s.cell == cell and s.is_override and not s.matches(platform, allocator)]
