"""The line parser shared by case files (cases/NAME.case) and expected files (expected/NAME.exp).

Both formats are line based: blank lines, full-line '#' comments, '[section]' headers and content
lines ('key = value' in case files, 'METRIC OP VALUE' in expected files). A '#' starts a comment
only at the start of a line. Each content or section line carries the comment block right above
it (its "why"): a block of adjacent comment lines, shared by a group of adjacent content lines, and
cut by a blank line or a section header.

Also how both are read (read_text: UTF-8, errors naming the file) and named in messages
(display_path: relative to the repo)."""

import io
import os

from .errors import ConfigError

BLANK = 'blank'
COMMENT = 'comment'
SECTION = 'section'
CONTENT = 'content'


class Line(object):
    __slots__ = ('lineno', 'kind', 'text', 'why')

    def __init__(self, lineno, kind, text, why=''):
        self.lineno = lineno
        self.kind = kind
        self.text = text
        self.why = why

    def __repr__(self):
        return 'Line(%d, %s, %r, why=%r)' % (self.lineno, self.kind, self.text, self.why)


def read_text(path, where):
    """Reads a config file as UTF-8; any failure is a ConfigError naming the file."""
    try:
        with io.open(path, 'r', encoding='utf-8') as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ConfigError(where, None, 'not UTF-8 text (%s)' % e.reason)
    except (IOError, OSError) as e:
        raise ConfigError(where, None, 'cannot read: %s' % (e.strerror or e))


def parse_lines(text, where):
    """Splits text into Line objects (every physical line, numbered from 1)."""
    out = []
    block = []
    prev = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if '\0' in s:
            raise ConfigError(where, lineno, 'NUL byte in line')
        if not s:
            out.append(Line(lineno, BLANK, ''))
            block = []
            prev = BLANK
            continue
        if s.startswith('#'):
            if prev != COMMENT:
                block = []
            body = s[1:].strip()
            block.append(body)
            out.append(Line(lineno, COMMENT, body))
            prev = COMMENT
            continue
        if s.startswith('['):
            if not s.endswith(']'):
                raise ConfigError(where, lineno, "section header without a closing ']': %r" % s)
            inner = s[1:-1].strip()
            if not inner:
                raise ConfigError(where, lineno, 'empty section header []')
            why = ' '.join(b for b in block if b) if prev == COMMENT else ''
            out.append(Line(lineno, SECTION, inner, why))
            block = []
            prev = SECTION
            continue
        why = ' '.join(b for b in block if b) if prev in (COMMENT, CONTENT) else ''
        out.append(Line(lineno, CONTENT, s, why))
        prev = CONTENT
    return out


def display_path(path, repo):
    """How a config file is named in messages: cases/x.case when path is inside the repo, else
    the path as given."""
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(repo))
    except ValueError:
        return path
    if rel.startswith(os.pardir):
        return path
    return rel
