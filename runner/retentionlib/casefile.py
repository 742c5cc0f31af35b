"""cases/NAME.case: what a case runs, in which cells, with which environment.

    # <one line: what behaviour it pins and why>          (first line, mandatory)
    program = seed_std_list
    args = --count 10000
    cells = native trim shim memcheck
    timeout = 120
    memcheck_args = --count 10000      (optional; default: args)
    idle = 2                           (optional; shim cell settle seconds, default 2)
    env = NAME=VALUE NAME2=VALUE       (optional; every cell)
    env.CELL = NAME=VALUE              (optional; one cell)
    thp = disable                      (optional; run every cell with transparent hugepages
                                        disabled for the case: prctl(PR_SET_THP_DISABLE), inherited
                                        across fork and exec; default 'system': the system's mode)
    measure = rssprobe                 (optional; how the program reports, see below)

`program` is one of:
  - a file name (no '/'): a program of this project, in <build>/cases (or installed in
    libexec/retention); it links the case harness (cases/scenario.h) and takes its flags;
  - a path: your own program, outside the build tree, absolute or relative to the case file's own
    directory (so a repository keeps cases/, expected/ and its programs together). It gets exactly
    `args`, never the harness's flags, and it reports either with
      measure = rssprobe   (the default) calls to rssprobe_phase() (rssprobe_phase.h): the runner
                           passes it a file descriptor; what the harness does after the free in a
                           cell (--trim, --idle N) it asks through the environment instead;
      measure = watch      nothing: an unmodified program, sampled by the watch probe, whose
                           phases are baseline (before main), peak, end (the last sample while it
                           ran), after_trim (trim cell: right after the probe's malloc_trim(0)),
                           after_idle (quiet for `idle` seconds, the cell's settle time for
                           allocator cells).

'#' starts a comment only at the start of a line; a '#' inside a value is refused, since it
would otherwise be passed to the program as an argument."""

import os
import re
import shlex
from collections import OrderedDict

from . import cells as cellmod
from .errors import ConfigError
from .lines import COMMENT, CONTENT, SECTION, display_path, parse_lines, read_text

KEYS = ('program', 'args', 'cells', 'timeout', 'memcheck_args', 'idle', 'env', 'thp', 'measure')
REQUIRED = ('program', 'cells')
MAY_BE_EMPTY = ('args', 'memcheck_args', 'env')
DEFAULT_TIMEOUT = 120.0
DEFAULT_IDLE = 2
THP_VALUES = ('system', 'disable')
# How a program outside the build tree reports its phases (the harness's own programs: 'harness').
MEASURE_VALUES = ('rssprobe', 'watch')
# Cells that cannot measure an unmodified program: under valgrind RSS is valgrind's.
NOT_FOR_WATCH = ('memcheck',)

_KEY_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)?$')
_ENV_NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


class Case(object):
    """A parsed case file."""

    def __init__(self, name, path, where):
        self.name = name
        self.path = path
        self.where = where
        self.description = ''
        self.program = None
        self.args = []
        self.memcheck_args = None
        self.cells = []
        self.timeout = DEFAULT_TIMEOUT
        self.idle = DEFAULT_IDLE
        self.env = OrderedDict()
        self.cell_env = {}
        self.thp = 'system'
        self.measure = 'harness'
        # The program's file when it lives outside the build tree (program = a path), else None.
        self.program_path = None
        self.lines = {}

    @property
    def external(self):
        return self.program_path is not None

    def args_for(self, key):
        if key == 'memcheck_args' and self.memcheck_args is not None:
            return list(self.memcheck_args)
        return list(self.args)

    def env_for(self, cell):
        env = OrderedDict(self.env)
        env.update(self.cell_env.get(cell, {}))
        return env


# What int() and float() would take beyond these (digits of other scripts, '1_0', ' nan') is no
# number a case file means.
_INTEGER_RE = re.compile(r'^[-+]?[0-9]+$')
_FLOAT_RE = re.compile(r'^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$')


def _parse_number(where, lineno, key, value, integer=False):
    try:
        if not (_INTEGER_RE if integer else _FLOAT_RE).match(value):
            raise ValueError(value)
        n = int(value) if integer else float(value)
    except ValueError:
        kind = 'a whole number' if integer else 'a number'
        raise ConfigError(where, lineno, "bad number for '%s': %r (expected %s)" % (key, value, kind))
    if n != n or n in (float('inf'), float('-inf')):
        raise ConfigError(where, lineno, "bad number for '%s': %r" % (key, value))
    return n


def _split(where, lineno, key, value):
    try:
        return shlex.split(value)
    except ValueError as e:
        raise ConfigError(where, lineno, "bad quoting in '%s': %s" % (key, e))


def _env(where, lineno, key, value):
    env = OrderedDict()
    for token in _split(where, lineno, key, value):
        name, sep, val = token.partition('=')
        if not sep or not _ENV_NAME_RE.match(name):
            raise ConfigError(where, lineno, "bad entry %r in '%s' (expected NAME=VALUE)" % (token, key))
        if name in env:
            raise ConfigError(where, lineno, "variable '%s' set twice in '%s'" % (name, key))
        env[name] = val
    return env


def parse_case_text(text, name, where, path=None, known_cells=None):
    """Parses the text of a case file; raises ConfigError('cases/x.case:LINE: ...')."""
    if known_cells is None:
        known_cells = cellmod.CELLS
    case = Case(name, path, where)
    lines = parse_lines(text, where)
    if not lines:
        raise ConfigError(where, 1, "empty file; line 1 must be '# <what this case pins and why>'")
    first = lines[0]
    if first.kind != COMMENT or not first.text:
        raise ConfigError(where, 1, "line 1 must be a comment saying what this case pins and why: "
                          "'# <one line>'")
    case.description = first.text
    seen = {}
    for line in lines:
        n = line.lineno
        if line.kind == SECTION:
            raise ConfigError(where, n, "sections belong in expected files; a case file has only "
                              "'key = value' lines")
        if line.kind != CONTENT:
            continue
        key, sep, value = line.text.partition('=')
        key = key.strip()
        value = value.strip()
        if not sep or not key:
            raise ConfigError(where, n, "expected 'key = value', got %r" % line.text)
        if not _KEY_RE.match(key):
            raise ConfigError(where, n, 'bad key %r' % key)
        base, dot, sub = key.partition('.')
        if base not in KEYS or (dot and base != 'env'):
            raise ConfigError(where, n, "unknown key '%s' (known: %s, env.CELL)" % (key, ', '.join(KEYS)))
        if key in seen:
            raise ConfigError(where, n, "duplicate key '%s' (first set on line %d)" % (key, seen[key]))
        seen[key] = n
        if '#' in value:
            raise ConfigError(where, n, "'#' in the value of '%s': comments go on their own line "
                              "(no trailing comments)" % key)
        if not value and base not in MAY_BE_EMPTY:
            raise ConfigError(where, n, "empty value for '%s'" % key)
        if key == 'program':
            if len(value.split()) != 1:
                raise ConfigError(where, n, "'program' is one file name in <build>/cases or one path, got %r"
                                  % value)
            case.program = value
            if '/' in value:
                base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
                case.program_path = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
        elif key == 'measure':
            if value not in MEASURE_VALUES:
                raise ConfigError(where, n, "bad value for 'measure': %r (expected %s)"
                                  % (value, ' or '.join(MEASURE_VALUES)))
        elif key == 'args':
            case.args = _split(where, n, key, value)
        elif key == 'memcheck_args':
            case.memcheck_args = _split(where, n, key, value)
        elif key == 'cells':
            for cell in value.split():
                if cell not in known_cells:
                    raise ConfigError(where, n, "unknown cell '%s' (known: %s)" % (cell, ', '.join(known_cells)))
                if cell in case.cells:
                    raise ConfigError(where, n, "cell '%s' listed twice" % cell)
                case.cells.append(cell)
        elif key == 'timeout':
            t = _parse_number(where, n, key, value)
            if t <= 0:
                raise ConfigError(where, n, "'timeout' must be > 0 seconds, got %r" % value)
            case.timeout = t
        elif key == 'idle':
            t = _parse_number(where, n, key, value, integer=True)
            if t < 0:
                raise ConfigError(where, n, "'idle' must be >= 0 seconds, got %r" % value)
            case.idle = t
        elif key == 'env':
            case.env = _env(where, n, key, value)
        elif key == 'thp':
            if value not in THP_VALUES:
                raise ConfigError(where, n, "bad value for 'thp': %r (expected %s)"
                                  % (value, ' or '.join(THP_VALUES)))
            case.thp = value
        else:  # env.CELL
            if sub not in known_cells:
                raise ConfigError(where, n, "unknown cell '%s' in '%s' (known: %s)" % (sub, key, ', '.join(known_cells)))
            case.cell_env[sub] = _env(where, n, key, value)
    case.lines = seen
    last = lines[-1].lineno
    for key in REQUIRED:
        if key not in seen:
            raise ConfigError(where, last, "missing required key '%s'" % key)
    if 'measure' in seen:
        if not case.external:
            raise ConfigError(where, seen['measure'], "'measure' is for a program outside the build tree "
                              "(program = a path); %r is a program of this project, which reports through "
                              "its harness" % case.program)
        case.measure = _value_of(lines, seen['measure'])
    elif case.external:
        case.measure = 'rssprobe'
    if case.measure == 'watch':
        for cell in case.cells:
            if known_cells[cell].base in NOT_FOR_WATCH:
                raise ConfigError(where, seen['cells'], "cell '%s' cannot measure an unmodified program (under "
                                  "valgrind RSS is valgrind's); use measure = rssprobe" % cell)
    for cell in case.cells:
        for ref in known_cells[cell].refs:
            if ref not in case.cells:
                raise ConfigError(where, seen['cells'], "cell '%s' needs cell '%s' (its reference) in 'cells'"
                                  % (cell, ref))
    return case


def _value_of(lines, lineno):
    for line in lines:
        if line.lineno == lineno:
            return line.text.partition('=')[2].strip()
    return None


def case_names(cases_dir):
    """Case names (file stems of *.case), sorted."""
    names = []
    for entry in os.listdir(cases_dir):
        if entry.endswith('.case') and not entry.startswith('.'):
            names.append(entry[:-len('.case')])
    return sorted(names)


def load_case(cases_dir, name, repo, known_cells=None):
    path = os.path.join(cases_dir, name + '.case')
    where = display_path(path, repo)
    text = read_text(path, where)
    return parse_case_text(text, name, where, path, known_cells)
