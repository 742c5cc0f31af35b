"""A strict parser of the Prometheus text exposition format (0.0.4), for the files libtrimshim
writes (TRIMSHIM_STATS): what a scraper would refuse, it refuses, with one error naming the file
and the line.

Checks: UTF-8 text, every line ending in a newline; "# HELP name text" and "# TYPE name type"
(counter, gauge, untyped, summary, histogram) at most once per family, before its samples;
sample lines `name{label="value",...} value` with valid metric and label names, only the escapes
\\\\ \\" \\n, no label twice in a sample; a value that is a float (or +Inf, -Inf, NaN); no
timestamp (node_exporter's textfile collector, what the shim's files are for, refuses them); a
family's samples in one group; no series twice. Other comments and empty lines are allowed, as the
format allows them. Pure: a function of the text (shim/tests/promparse.h is the C twin the shim's
own tests use on its output)."""

import re
from collections import OrderedDict

TYPES = ('counter', 'gauge', 'untyped', 'summary', 'histogram')

_METRIC_NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')
_LABEL_NAME = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
# Go's ParseFloat as the format uses it, without what Python's float() accepts beyond it
# ('1_000', 'infinity', ' 1 ').
_FLOAT = re.compile(r'[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$')
_SPECIAL = {'+Inf': float('inf'), 'Inf': float('inf'), '-Inf': float('-inf'), 'NaN': float('nan')}
_BLANKS = ' \t'
# the samples of a summary or histogram family carry these suffixes
_SUFFIXES = ('_bucket', '_count', '_sum')


class PromError(Exception):
    """A malformed exposition. str() is 'SOURCE:LINE: message' (one line)."""

    def __init__(self, source, lineno, message):
        Exception.__init__(self, message)
        self.source = source
        self.lineno = lineno
        self.message = message

    def __str__(self):
        if self.lineno:
            return '%s:%d: %s' % (self.source, self.lineno, self.message)
        return '%s: %s' % (self.source, self.message)


class Sample(object):
    __slots__ = ('name', 'labels', 'value', 'lineno')

    def __init__(self, name, labels, value, lineno):
        self.name = name
        self.labels = labels
        self.value = value
        self.lineno = lineno

    def __repr__(self):
        return 'Sample(%s%r %r)' % (self.name, dict(self.labels), self.value)


class Exposition(object):
    """The parsed text: families {name: {'type', 'help'}} and samples, in file order."""

    def __init__(self, source):
        self.source = source
        self.families = OrderedDict()
        self.samples = []

    def find(self, name, **labels):
        """The samples of metric `name` whose labels include `labels`."""
        out = []
        for s in self.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append(s)
        return out

    def value(self, name, **labels):
        """The one sample's value; None when there is none; PromError when several match."""
        got = self.find(name, **labels)
        if not got:
            return None
        if len(got) > 1:
            raise PromError(self.source, got[1].lineno, '%s%s has %d samples where one was expected'
                            % (name, labels_text(labels), len(got)))
        return got[0].value


def labels_text(labels):
    if not labels:
        return ''
    return '{%s}' % ','.join('%s="%s"' % kv for kv in sorted(labels.items()))


def _skip_blanks(line, i):
    while i < len(line) and line[i] in _BLANKS:
        i += 1
    return i


def _unescape(text, i, allowed, fail):
    """text[i] is a backslash: (the character it stands for, the index after)."""
    c = text[i + 1] if i + 1 < len(text) else ''
    if c not in allowed:
        fail('bad escape \\%s (only %s are allowed)' % (c or '<end of line>',
                                                         ' '.join('\\' + a for a in allowed)))
    return ('\n' if c == 'n' else c), i + 2


def _parse_labels(line, i, fail):
    """line[i] is '{': (OrderedDict of labels, index after '}')."""
    labels = OrderedDict()
    i = _skip_blanks(line, i + 1)
    while True:
        if i < len(line) and line[i] == '}':
            return labels, i + 1
        m = _LABEL_NAME.match(line, i)
        if not m:
            fail('bad label name at column %d' % (i + 1))
        name = m.group(0)
        if name in labels:
            fail('label %s twice in one sample' % name)
        i = _skip_blanks(line, m.end())
        if line[i:i + 1] != '=':
            fail('label %s not followed by =' % name)
        i = _skip_blanks(line, i + 1)
        if line[i:i + 1] != '"':
            fail('the value of label %s does not start with "' % name)
        i += 1
        value = []
        while True:
            if i >= len(line):
                fail('the value of label %s is not terminated' % name)
            c = line[i]
            if c == '"':
                i += 1
                break
            if c == '\\':
                c, i = _unescape(line, i, '\\"n', fail)
            else:
                i += 1
            value.append(c)
        labels[name] = ''.join(value)
        i = _skip_blanks(line, i)
        if line[i:i + 1] == ',':
            i = _skip_blanks(line, i + 1)
        elif line[i:i + 1] != '}':
            fail('label %s not followed by , or }' % name)


def parse_value(text):
    """A sample value as the format writes it, or None."""
    if text in _SPECIAL:
        return _SPECIAL[text]
    if _FLOAT.match(text):
        return float(text)
    return None


def parse(data, source):
    """The exposition in data (bytes or str) -> Exposition; PromError naming source and the line."""
    if isinstance(data, bytes):
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError as e:
            lineno = data[:e.start].count(b'\n') + 1
            raise PromError(source, lineno, 'not UTF-8 text (byte 0x%02x)' % data[e.start])
    else:
        text = data
    out = Exposition(source)
    if not text:
        raise PromError(source, 0, 'empty')
    lines = text.split('\n')
    if lines[-1] != '':
        raise PromError(source, len(lines), 'the last line does not end in a newline (a file cut short?)')
    lines.pop()
    seen_series = set()
    done = set()        # families whose group of samples is over
    current = None      # the family of the samples being read
    for lineno, line in enumerate(lines, 1):
        def fail(message, lineno=lineno):
            raise PromError(source, lineno, message)
        if '\0' in line:
            fail('a NUL byte')
        if not line.strip(_BLANKS):
            continue
        if line.lstrip(_BLANKS).startswith('#'):
            _comment(out, line.lstrip(_BLANKS), fail)
            continue
        m = _METRIC_NAME.match(line)
        if not m:
            fail('not a sample, a HELP or TYPE line, or a comment: %r' % line[:60])
        name = m.group(0)
        i = _skip_blanks(line, m.end())
        labels = OrderedDict()
        if line[i:i + 1] == '{':
            labels, i = _parse_labels(line, i, fail)
        if i >= len(line) or (line[i] not in _BLANKS and i == m.end()):
            fail('no value after %s' % name)
        rest = line[i:].strip(_BLANKS).split()
        if not rest:
            fail('no value after %s' % name)
        value = parse_value(rest[0])
        if value is None:
            fail('bad value %r for %s' % (rest[0][:40], name))
        if len(rest) > 1:
            fail('something after the value of %s (%r: a timestamp? the textfile collector refuses them)'
                 % (name, ' '.join(rest[1:])[:40]))
        fam = _family_of(out, name)
        if fam != current:
            if fam in done:
                fail('samples of %s apart from its first group (a family\'s samples come together)' % fam)
            if current is not None:
                done.add(current)
            current = fam
        out.families.setdefault(fam, {'type': None, 'help': None, 'samples': 0})
        out.families[fam]['samples'] += 1
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            fail('series %s%s twice' % (name, labels_text(dict(labels))))
        seen_series.add(key)
        out.samples.append(Sample(name, labels, value, lineno))
    return out


def _family_of(out, name):
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            base = name[:-len(suffix)]
            fam = out.families.get(base)
            if fam is not None and fam['type'] in ('summary', 'histogram'):
                return base
    return name


def _comment(out, line, fail):
    if not (line.startswith('# HELP ') or line.startswith('# TYPE ')):
        if line.startswith('# HELP') or line.startswith('# TYPE'):
            fail('%s without a metric name' % line[2:6])
        return  # any other comment
    kind = line[2:6]
    rest = line[7:].lstrip(_BLANKS)
    m = _METRIC_NAME.match(rest)
    if not m:
        fail('bad metric name in %s' % kind)
    name = m.group(0)
    tail = rest[m.end():]
    if tail and tail[0] not in _BLANKS:
        fail('bad metric name in %s: %r' % (kind, rest[:60]))
    tail = tail.lstrip(_BLANKS)
    fam = out.families.setdefault(name, {'type': None, 'help': None, 'samples': 0})
    if fam['samples']:
        fail('%s of %s after its samples' % (kind, name))
    if kind == 'HELP':
        if fam['help'] is not None:
            fail('a second HELP for %s' % name)
        text, i = [], 0
        while i < len(tail):
            if tail[i] == '\\':
                c, i = _unescape(tail, i, '\\n', fail)
            else:
                c, i = tail[i], i + 1
            text.append(c)
        fam['help'] = ''.join(text)
    else:
        if fam['type'] is not None:
            fail('a second TYPE for %s' % name)
        t = tail.rstrip(_BLANKS)
        if t not in TYPES:
            fail('unknown TYPE %r for %s (want %s)' % (t[:30], name, ', '.join(TYPES)))
        fam['type'] = t
