"""valgrind --tool=memcheck --xml=yes output, parsed with xml.etree (never the text output).

valgrind's XML has no leak summary element: the figures are summed from the loss records,
<error><kind>Leak_*</kind><xwhat><leakedbytes/><leakedblocks/></xwhat></error>. A definitely or
possibly lost record that owns indirectly lost blocks reports direct + indirect bytes in
<leakedbytes> ("32 (16 direct, 16 indirect) bytes in 1 blocks ..."), while the indirect bytes also
appear in their own Leak_IndirectlyLost record; so the direct part is taken from the record's
text when it carries one, and the sums then equal valgrind's LEAK SUMMARY. Every other error kind
counts as an error, weighted by its <errorcounts> count (valgrind's "N errors")."""

import re
import xml.etree.ElementTree as ET
from collections import OrderedDict

LEAK_KINDS = OrderedDict([
    ('Leak_DefinitelyLost', 'definitely_lost'),
    ('Leak_IndirectlyLost', 'indirectly_lost'),
    ('Leak_PossiblyLost', 'possibly_lost'),
    ('Leak_StillReachable', 'still_reachable'),
])
_DIRECT_RE = re.compile(r'\(([\d,]+) direct, ([\d,]+) indirect\)')


class MemcheckError(Exception):
    pass


_COUNT = re.compile(r'[0-9]{1,20}\Z')


def _int(elem, tag, default=None):
    child = elem.find(tag)
    if child is None or child.text is None:
        if default is not None:
            return default
        raise MemcheckError('<%s> missing in a loss record' % tag)
    text = child.text.strip()
    # a count: plain ASCII decimal (int() also takes '-1', '1_0' and other scripts' digits)
    if not _COUNT.match(text):
        raise MemcheckError('<%s> is not a count: %r' % (tag, child.text))
    return int(text)


def parse_xml_text(data):
    """Parses the XML (bytes or str); returns an OrderedDict of figures. Raises MemcheckError."""
    if not data or not data.strip():
        raise MemcheckError('valgrind wrote an empty XML file')
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise MemcheckError('valgrind XML is malformed or incomplete (%s); was valgrind killed?' % e)
    if root.tag != 'valgrindoutput':
        raise MemcheckError('not valgrind XML output (root element <%s>)' % root.tag)
    tool = root.findtext('protocoltool') or root.findtext('tool')
    if tool and tool.strip() != 'memcheck':
        raise MemcheckError("valgrind XML is from tool '%s', not memcheck" % tool.strip())
    states = [s.findtext('state', '').strip() for s in root.findall('status')]
    if 'FINISHED' not in states:
        raise MemcheckError('valgrind XML has no FINISHED status (the run did not complete)')

    out = OrderedDict()
    for name in LEAK_KINDS.values():
        out[name + '_bytes'] = 0
        out[name + '_blocks'] = 0
    out['errors'] = 0
    out['error_contexts'] = 0
    out['error_kinds'] = OrderedDict()
    out['leak_records'] = 0

    counts = {}
    ec = root.find('errorcounts')
    if ec is not None:
        for pair in ec.findall('pair'):
            u = (pair.findtext('unique') or '').strip()
            try:
                counts[u] = int((pair.findtext('count') or '0').strip())
            except ValueError:
                raise MemcheckError('bad <count> in <errorcounts>')

    for err in root.findall('error'):
        kind = (err.findtext('kind') or '').strip()
        if kind in LEAK_KINDS:
            name = LEAK_KINDS[kind]
            xwhat = err.find('xwhat')
            if xwhat is None:
                raise MemcheckError('loss record of kind %s without <xwhat>' % kind)
            nbytes = _int(xwhat, 'leakedbytes')
            nblocks = _int(xwhat, 'leakedblocks')
            m = _DIRECT_RE.search(xwhat.findtext('text') or '')
            if m:
                nbytes = int(m.group(1).replace(',', ''))
            out[name + '_bytes'] += nbytes
            out[name + '_blocks'] += nblocks
            out['leak_records'] += 1
        else:
            unique = (err.findtext('unique') or '').strip()
            n = counts.get(unique, 1)
            out['errors'] += n
            out['error_contexts'] += 1
            out['error_kinds'][kind or 'unknown'] = out['error_kinds'].get(kind or 'unknown', 0) + n
    return out


def parse_xml_file(path):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except (IOError, OSError) as e:
        raise MemcheckError('valgrind wrote no XML file (%s)' % (e.strerror or e))
    return parse_xml_text(data)
