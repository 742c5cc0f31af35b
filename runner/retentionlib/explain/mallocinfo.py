"""malloc_info(3)'s XML, parsed, and what its free-chunk size classes say about what a trim can
return."""

import re
import xml.etree.ElementTree as ET
from collections import OrderedDict

from ..errors import ExplainError


# The mmap threshold fix fits when most free bytes (outside fastbins and the top chunk) are in
# chunks of at least this size.
LARGE_CHUNK = 32 * 1024


# malloc_info prints unsigned decimals (size_t): int() alone would also take '-1', ' 7', '1_0' and
# other scripts' digits, and refuse 4300+ digits with a ValueError of its own.
_DECIMAL = re.compile(r'^[0-9]{1,20}$')


def _int(el, attr):
    try:
        if not _DECIMAL.match(el.get(attr)):
            raise ValueError(attr)
        return int(el.get(attr))
    except (TypeError, ValueError):
        raise ExplainError('malloc_info: bad %s=%r in <%s>' % (attr, el.get(attr), el.tag))


def _typed(el, tag, typ, attr='size'):
    for c in el.findall(tag):
        if c.get('type') == typ:
            return _int(c, attr)
    return None


def parse_malloc_info(text):
    """malloc_info(0, fp)'s XML -> {'version', 'arenas': [...], 'totals': {...}}. Each arena:
    nr, system (bytes from the system), max_system, fast_bytes/fast_chunks, free_bytes (fast +
    rest, the top chunk included), free_chunks, in_use (system - free), aspace, subheaps, sizes
    [(from, to, total, count)]."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ExplainError('malloc_info output is not XML (%s)' % e)
    if root.tag != 'malloc':
        raise ExplainError('malloc_info output: root element <%s>, expected <malloc>' % root.tag)
    arenas = []
    for h in root.findall('heap'):
        fast = _typed(h, 'total', 'fast') or 0
        fast_n = _typed(h, 'total', 'fast', 'count') or 0
        rest = _typed(h, 'total', 'rest') or 0
        rest_n = _typed(h, 'total', 'rest', 'count') or 0
        system = _typed(h, 'system', 'current')
        if system is None:
            raise ExplainError('malloc_info: <heap nr="%s"> without <system type="current">' % h.get('nr'))
        sizes = []
        for s in h.findall('sizes/*'):
            sizes.append((_int(s, 'from'), _int(s, 'to'), _int(s, 'total'), _int(s, 'count')))
        a = OrderedDict()
        a['nr'] = _int(h, 'nr')
        a['system'] = system
        a['max_system'] = _typed(h, 'system', 'max')
        a['free_bytes'] = fast + rest
        a['fast_bytes'] = fast
        a['free_chunks'] = fast_n + rest_n
        a['in_use'] = max(0, system - fast - rest)
        a['aspace'] = _typed(h, 'aspace', 'total')
        a['subheaps'] = _typed(h, 'aspace', 'subheaps')
        a['sizes'] = sizes
        arenas.append(a)
    totals = OrderedDict()
    totals['mmap_bytes'] = _typed(root, 'total', 'mmap') or 0
    totals['mmap_chunks'] = _typed(root, 'total', 'mmap', 'count') or 0
    totals['system'] = _typed(root, 'system', 'current')
    if not arenas:
        raise ExplainError('malloc_info output has no <heap> (no arena)')
    return {'version': root.get('version'), 'arenas': arenas, 'totals': totals}


def pinned_free(arena, page=4096):
    """Free bytes malloc_trim(0) cannot return, estimated: each free chunk in a bin keeps about
    one partial page at its ends (shared with the live chunks around it), a chunk smaller than a
    page all of it. Fastbin chunks are consolidated by malloc_trim first, so they do not count."""
    pinned = sum(min(total, count * page) for _, _, total, count in arena['sizes'])
    return max(0, pinned - arena['fast_bytes'])


def large_free_share(arenas, large=LARGE_CHUNK):
    """(share of binned free bytes in chunks >= large, the smallest chunk size of the size class
    that holds most of them) over all arenas."""
    total = big = 0
    best = None
    for a in arenas:
        for frm, _, tot, _ in a['sizes']:
            total += tot
            if frm >= large:
                big += tot
                if best is None or tot > best[1]:
                    best = (frm, tot)
    return (float(big) / total if total else 0.0), (best[0] if best else None)
