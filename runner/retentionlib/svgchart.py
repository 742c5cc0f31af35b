"""A line chart as one self-contained SVG document, from the standard library only: no network, no
script, no fonts or images to fetch. Made for paper as much as for a screen: black text, a
white background, and each series drawn with its own dash pattern and marker shape as well as
its own colour, so the lines stay apart in grey-scale print.

    svg = line_chart([Series('glibc', [(0, 3.1), (1.5, 660), ...], markers=[(0, 3.1)]), ...],
                     marks=[Mark('span', -5, 0, 'allocate'), Mark('line', 0, None, 'free')],
                     title=..., subtitle=..., x_label='time (s)', y_label='RSS (MB)')

Marks are the phases: a 'line' is a vertical line at x, a 'span' a shaded band from x to x1; their
labels go above the plot area, never over the data."""

import math
import xml.etree.ElementTree as ET

SVG_NS = 'http://www.w3.org/2000/svg'
FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif'

# (colour, dash pattern, line width, marker shape): Okabe-Ito colours, dark enough to print.
STYLES = (
    ('#D55E00', None, 2.5, 'circle'),
    ('#0072B2', '9,5', 2.5, 'square'),
    ('#009E73', '2,4', 3.0, 'triangle'),
    ('#6A3D9A', '12,4,3,4', 2.5, 'diamond'),
    ('#000000', '5,3', 2.0, 'circle'),
    ('#E69F00', '1,3', 3.0, 'square'),
)


class Series(object):
    def __init__(self, label, points, markers=()):
        self.label = label
        self.points = list(points)       # [(x, y)] in data units, drawn as one line in x order
        self.markers = list(markers)     # [(x, y)] marked with the series' marker shape


class Mark(object):
    def __init__(self, kind, x, x1=None, label=''):
        if kind not in ('line', 'span'):
            raise ValueError('mark kind must be line or span, got %r' % kind)
        self.kind = kind
        self.x = x
        self.x1 = x1
        self.label = label


def nice_step(span, target=6):
    """A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks over span."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / float(target)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def ticks(lo, hi, target=6):
    """(axis_lo, axis_hi, [tick values]) with axis ends on ticks, covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    step = nice_step(hi - lo, target)
    a = math.floor(lo / step + 1e-9) * step
    b = math.ceil(hi / step - 1e-9) * step
    out = []
    v = a
    while v <= b + step * 1e-6:
        out.append(round(v, 10))
        v += step
    return a, b, out


def fmt_tick(v, step):
    if step >= 1 and float(v).is_integer():
        return '{:,}'.format(int(v)).replace('-', '\u2212')
    decimals = max(0, -int(math.floor(math.log10(step))))
    return ('%.*f' % (decimals, v)).replace('-', '\u2212')


def _text_width(text, size):
    return len(text) * size * 0.58


def _coord(v):
    """A coordinate or length as an attribute value: at most two decimals, no trailing zeros."""
    return ('%.2f' % v).rstrip('0').rstrip('.')


def _el(parent, tag, attrs=None, text=None):
    e = ET.SubElement(parent, tag, dict((k, str(v)) for k, v in (attrs or {}).items()))
    if text is not None:
        e.text = text
    return e


def _marker(parent, shape, x, y, colour, size=4.5):
    common = {'fill': '#ffffff', 'stroke': colour, 'stroke-width': '1.8'}
    if shape == 'circle':
        a = {'cx': _coord(x), 'cy': _coord(y), 'r': _coord(size)}
        a.update(common)
        return _el(parent, 'circle', a)
    if shape == 'square':
        s = size * 0.9
        a = {'x': _coord(x - s), 'y': _coord(y - s), 'width': _coord(2 * s), 'height': _coord(2 * s)}
        a.update(common)
        return _el(parent, 'rect', a)
    if shape == 'triangle':
        pts = [(x, y - size * 1.2), (x + size * 1.1, y + size * 0.8), (x - size * 1.1, y + size * 0.8)]
    else:  # diamond
        pts = [(x, y - size * 1.3), (x + size, y), (x, y + size * 1.3), (x - size, y)]
    a = {'points': ' '.join('%s,%s' % (_coord(px), _coord(py)) for px, py in pts)}
    a.update(common)
    return _el(parent, 'polygon', a)


def _indent(e, level=0):
    """Line breaks between elements (ElementTree.indent needs python 3.9)."""
    pad = '\n' + '  ' * level
    if len(e):
        if not e.text or not e.text.strip():
            e.text = pad + '  '
        for child in e:
            _indent(child, level + 1)
        if not child.tail or not child.tail.strip():
            child.tail = pad
    if level and (not e.tail or not e.tail.strip()):
        e.tail = pad


def line_chart(series, marks=(), title='', subtitle=(), x_label='', y_label='', width=900,
               height=560, y_min=0.0):
    """The chart as an SVG document (a str, starting with the XML declaration). subtitle: one line
    or a list of lines."""
    series = [s for s in series if s.points]
    xs = [x for s in series for x, _ in s.points] + [m.x for m in marks] + \
         [m.x1 for m in marks if m.x1 is not None]
    ys = [y for s in series for _, y in s.points]
    # A little room at both ends so that no marker sits on the frame.
    pad = 0.02 * (max(xs) - min(xs)) if xs else 0.0
    x_lo, x_hi, x_ticks = ticks(min(xs) - pad if xs else 0.0, max(xs) + pad if xs else 1.0, 8)
    y_lo, y_hi, y_ticks = ticks(min([y_min] + ys), max(ys) * 1.04 if ys else 1.0, 6)
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0

    # Label rows for the marks, above the plot: a label moves up a row when it would overlap.
    font = 14
    rows = []
    placed = []
    n_legend_cols = 2
    legend_rows = (len(series) + n_legend_cols - 1) // n_legend_cols
    subtitles = [subtitle] if isinstance(subtitle, str) else list(subtitle or ())
    subtitles = [t for t in subtitles if t]
    top_text = 34 + 20 * len(subtitles) + (4 if subtitles else 0)
    left, right = 88, 28
    plot_w = width - left - right

    def px(x):
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    for m in marks:
        if not m.label:
            continue
        centre = px((m.x + m.x1) / 2.0) if m.kind == 'span' and m.x1 is not None else px(m.x)
        w = _text_width(m.label, font)
        a, b = centre - w / 2.0, centre + w / 2.0
        if a < left:
            a, b = left, left + w
        if b > width - right:
            a, b = width - right - w, width - right
        row = 0
        while row < len(rows) and any(not (b + 8 < ra or a > rb + 8) for ra, rb in rows[row]):
            row += 1
        if row == len(rows):
            rows.append([])
        rows[row].append((a, b))
        placed.append((m, a, row))
    label_band = 20 * max(1, len(rows)) + 6
    top = top_text + label_band
    bottom = 64 + 26 * legend_rows + 10
    plot_h = height - top - bottom
    if plot_h < 200:
        height += 200 - plot_h
        plot_h = 200

    def py(y):
        return top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    root = ET.Element('svg', {
        'xmlns': SVG_NS, 'version': '1.1', 'width': str(width), 'height': str(height),
        'viewBox': '0 0 %d %d' % (width, height), 'font-family': FONT, 'font-size': str(font),
        'role': 'img'})
    _el(root, 'title', text=title or 'chart')
    if subtitles:
        _el(root, 'desc', text='. '.join(t.rstrip('.') for t in subtitles) + '.')
    _el(root, 'rect', {'x': 0, 'y': 0, 'width': width, 'height': height, 'fill': '#ffffff'})
    if title:
        _el(root, 'text', {'x': left, 'y': 26, 'font-size': 18, 'font-weight': 'bold', 'fill': '#000000'}, title)
    for i, t in enumerate(subtitles):
        _el(root, 'text', {'x': left, 'y': 48 + 20 * i, 'font-size': 13, 'fill': '#000000'}, t)

    # Phase spans under everything else.
    g = _el(root, 'g', {'class': 'phases'})
    for m in marks:
        if m.kind == 'span' and m.x1 is not None:
            a, b = sorted((px(m.x), px(m.x1)))
            _el(g, 'rect', {'x': _coord(a), 'y': _coord(top), 'width': _coord(max(b - a, 1)), 'height': _coord(plot_h),
                            'fill': '#ececec'})

    # Grid and axes.
    g = _el(root, 'g', {'class': 'grid', 'stroke': '#c8c8c8', 'stroke-width': '1'})
    for v in y_ticks:
        _el(g, 'line', {'x1': left, 'x2': left + plot_w, 'y1': _coord(py(v)), 'y2': _coord(py(v))})
    for v in x_ticks:
        _el(g, 'line', {'x1': _coord(px(v)), 'x2': _coord(px(v)), 'y1': top, 'y2': top + plot_h})
    g = _el(root, 'g', {'class': 'axes', 'fill': '#000000'})
    _el(g, 'rect', {'x': left, 'y': top, 'width': plot_w, 'height': plot_h, 'fill': 'none',
                    'stroke': '#000000', 'stroke-width': '1.2'})
    for v in y_ticks:
        _el(g, 'text', {'x': left - 8, 'y': _coord(py(v) + 5), 'text-anchor': 'end'}, fmt_tick(v, y_step))
    for v in x_ticks:
        _el(g, 'text', {'x': _coord(px(v)), 'y': top + plot_h + 20, 'text-anchor': 'middle'}, fmt_tick(v, x_step))
    if x_label:
        _el(g, 'text', {'x': _coord(left + plot_w / 2.0), 'y': top + plot_h + 44, 'text-anchor': 'middle',
                        'font-size': 15}, x_label)
    if y_label:
        cy = top + plot_h / 2.0
        _el(g, 'text', {'x': 24, 'y': _coord(cy), 'text-anchor': 'middle', 'font-size': 15,
                        'transform': 'rotate(-90 24 %s)' % _coord(cy)}, y_label)

    # Phase lines and labels.
    g = _el(root, 'g', {'class': 'phase-marks', 'fill': '#000000'})
    for m in marks:
        if m.kind == 'line':
            _el(g, 'line', {'x1': _coord(px(m.x)), 'x2': _coord(px(m.x)), 'y1': top, 'y2': top + plot_h,
                            'stroke': '#000000', 'stroke-width': '1.3', 'stroke-dasharray': '6,4'})
    for m, a, row in placed:
        y = top - 8 - 20 * row
        _el(g, 'text', {'x': _coord(a), 'y': _coord(y)}, m.label)
        centre = px((m.x + m.x1) / 2.0) if m.kind == 'span' and m.x1 is not None else px(m.x)
        _el(g, 'line', {'x1': _coord(centre), 'x2': _coord(centre), 'y1': _coord(y + 4), 'y2': top,
                        'stroke': '#000000', 'stroke-width': '1'})

    # The series, then their markers on top.
    g = _el(root, 'g', {'class': 'series', 'fill': 'none'})
    for i, s in enumerate(series):
        colour, dash, lw, shape = STYLES[i % len(STYLES)]
        pts = sorted(s.points, key=lambda p: p[0])
        a = {'points': ' '.join('%s,%s' % (_coord(px(x)), _coord(py(y))) for x, y in pts),
             'stroke': colour, 'stroke-width': lw, 'stroke-linejoin': 'round', 'stroke-linecap': 'round',
             'fill': 'none'}
        if dash:
            a['stroke-dasharray'] = dash
        line = _el(g, 'polyline', a)
        _el(line, 'title', text=s.label)
    for i, s in enumerate(series):
        colour, dash, lw, shape = STYLES[i % len(STYLES)]
        for x, y in s.markers:
            _marker(g, shape, px(x), py(y), colour)

    # The legend, under the x axis label: one entry per series, sample line and marker included.
    g = _el(root, 'g', {'class': 'legend', 'fill': '#000000'})
    col_w = plot_w / float(n_legend_cols)
    for i, s in enumerate(series):
        colour, dash, lw, shape = STYLES[i % len(STYLES)]
        lx = left + (i % n_legend_cols) * col_w
        ly = top + plot_h + 70 + 26 * (i // n_legend_cols)
        a = {'x1': _coord(lx), 'x2': _coord(lx + 48), 'y1': _coord(ly - 5), 'y2': _coord(ly - 5), 'stroke': colour,
             'stroke-width': lw, 'stroke-linecap': 'round'}
        if dash:
            a['stroke-dasharray'] = dash
        _el(g, 'line', a)
        _marker(g, shape, lx + 24, ly - 5, colour)
        _el(g, 'text', {'x': _coord(lx + 58), 'y': _coord(ly)}, s.label)

    _indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'
