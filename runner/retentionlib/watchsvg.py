"""`retention watch --svg`: the timeline as one self-contained SVG. Native is drawn as stacked
areas, bottom to top: live bytes (what the program holds, per its allocator), free memory the
allocator keeps resident, and the rest of RSS (code, libraries, stacks, other mappings); so the
top of the stack is native's RSS. Every other cell is one RSS line. The axes, ticks, colours and
dash patterns are svgchart's, so watch and demo pictures read alike."""

import xml.etree.ElementTree as ET

from .report import human_kb
from .svgchart import FONT, STYLES, SVG_NS, fmt_tick, ticks

AREAS = (('live', 'live bytes (native)', '#0072B2'),
         ('free', 'free, kept by the allocator (native)', '#E69F00'),
         ('other', 'other RSS (native): code, libraries, stacks', '#BBBBBB'))


def _c(v):
    return ('%.2f' % v).rstrip('0').rstrip('.')


def _el(parent, tag, attrs=None, text=None):
    e = ET.SubElement(parent, tag, dict((k, str(v)) for k, v in (attrs or {}).items()))
    if text is not None:
        e.text = text
    return e


def native_layers(rows):
    """[(t, live MB, live+free MB, rss MB)] for the stacked areas, from native's timeline rows."""
    out = []
    for r in rows:
        rss = r['rss_kb'] * 1024 / 1e6
        live = (r['live_bytes'] or 0) / 1e6
        free = (r['free_bytes'] or 0) / 1e6
        live = min(live, rss)
        out.append((r['t'], live, min(rss, live + free), rss))
    return out


def chart(summaries, command, width=960, height=600):
    nat = summaries.get('native')
    nat_rows = nat.rows[0] if nat is not None and nat.rows and nat.rows[0] else []
    lines = []
    for name, s in summaries.items():
        if name == 'native' or s.status == 'skip' or not s.rows or not s.rows[0]:
            continue
        lines.append((name, [(r['t'], r['rss_kb'] * 1024 / 1e6) for r in s.rows[0]]))
    layers = native_layers(nat_rows)
    xs = [t for t, _, _, _ in layers] + [t for _, pts in lines for t, _ in pts]
    ys = [y for _, _, _, y in layers] + [y for _, pts in lines for _, y in pts]
    x_lo, x_hi, x_ticks = ticks(0.0, max(xs) if xs else 1.0, 8)
    y_lo, y_hi, y_ticks = ticks(0.0, max(ys) * 1.04 if ys else 1.0, 6)
    left, right, top = 88, 28, 86
    n_legend = len(AREAS) + len(lines)
    bottom = 70 + 24 * ((n_legend + 1) // 2) + 10
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x):
        return left + (x - x_lo) / ((x_hi - x_lo) or 1) * plot_w

    def py(y):
        return top + plot_h - (y - y_lo) / ((y_hi - y_lo) or 1) * plot_h

    root = ET.Element('svg', {'xmlns': SVG_NS, 'version': '1.1', 'width': str(width), 'height': str(height),
                              'viewBox': '0 0 %d %d' % (width, height), 'font-family': FONT, 'font-size': '14',
                              'role': 'img'})
    title = 'RSS over time: %s' % ' '.join(command)
    if len(title) > 110:
        title = title[:107] + '...'
    _el(root, 'title', text=title)
    end = nat.fig('end_kb') if nat is not None and nat.status == 'ok' else None
    sub = ('native as stacked areas (live, free kept by the allocator, other RSS); the other cells as RSS '
           'lines. native ends at %s.' % human_kb(end)) if end is not None else 'the cells as RSS lines.'
    _el(root, 'desc', text=sub)
    _el(root, 'rect', {'x': 0, 'y': 0, 'width': width, 'height': height, 'fill': '#ffffff'})
    _el(root, 'text', {'x': left, 'y': 28, 'font-size': 18, 'font-weight': 'bold'}, title)
    _el(root, 'text', {'x': left, 'y': 52, 'font-size': 13}, sub)

    g = _el(root, 'g', {'class': 'grid', 'stroke': '#d0d0d0', 'stroke-width': '1'})
    for v in y_ticks:
        _el(g, 'line', {'x1': left, 'x2': left + plot_w, 'y1': _c(py(v)), 'y2': _c(py(v))})
    for v in x_ticks:
        _el(g, 'line', {'x1': _c(px(v)), 'x2': _c(px(v)), 'y1': top, 'y2': top + plot_h})

    # Native's stack: each band is the polygon between its lower and its upper edge.
    g = _el(root, 'g', {'class': 'native-split'})
    if layers:
        edges = [[(t, 0.0) for t, _, _, _ in layers], [(t, a) for t, a, _, _ in layers],
                 [(t, b) for t, _, b, _ in layers], [(t, c) for t, _, _, c in layers]]
        for (key, label, colour), lower, upper in zip(AREAS, edges, edges[1:]):
            pts = upper + list(reversed(lower))
            poly = _el(g, 'polygon', {'class': 'area-%s' % key, 'fill': colour, 'fill-opacity': '0.85',
                                      'stroke': 'none',
                                      'points': ' '.join('%s,%s' % (_c(px(t)), _c(py(y))) for t, y in pts)})
            _el(poly, 'title', text=label)
    g = _el(root, 'g', {'class': 'cells', 'fill': 'none'})
    styles = [s for s in STYLES if s[0] not in ('#0072B2', '#E69F00')] or STYLES
    for i, (name, pts) in enumerate(lines):
        colour, dash, lw, _ = styles[i % len(styles)]
        a = {'class': 'rss-line', 'points': ' '.join('%s,%s' % (_c(px(t)), _c(py(y))) for t, y in pts),
             'stroke': colour, 'stroke-width': lw, 'stroke-linejoin': 'round', 'fill': 'none'}
        if dash:
            a['stroke-dasharray'] = dash
        line = _el(g, 'polyline', a)
        _el(line, 'title', text='%s RSS' % name)

    g = _el(root, 'g', {'class': 'axes'})
    _el(g, 'rect', {'x': left, 'y': top, 'width': plot_w, 'height': plot_h, 'fill': 'none', 'stroke': '#000000'})
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    for v in y_ticks:
        _el(g, 'text', {'x': left - 8, 'y': _c(py(v) + 5), 'text-anchor': 'end'}, fmt_tick(v, y_step))
    for v in x_ticks:
        _el(g, 'text', {'x': _c(px(v)), 'y': top + plot_h + 20, 'text-anchor': 'middle'}, fmt_tick(v, x_step))
    _el(g, 'text', {'x': _c(left + plot_w / 2.0), 'y': top + plot_h + 44, 'text-anchor': 'middle'},
        'time since the program started (s)')
    cy = top + plot_h / 2.0
    _el(g, 'text', {'x': 24, 'y': _c(cy), 'text-anchor': 'middle', 'transform': 'rotate(-90 24 %s)' % _c(cy)},
        'RSS (MB)')

    g = _el(root, 'g', {'class': 'legend'})
    entries = [('area', label, colour, None, 0) for _, label, colour in AREAS] + \
        [('line', '%s RSS' % name, styles[i % len(styles)][0], styles[i % len(styles)][1],
          styles[i % len(styles)][2]) for i, (name, _) in enumerate(lines)]
    col_w = plot_w / 2.0
    for i, (kind, label, colour, dash, lw) in enumerate(entries):
        lx = left + (i % 2) * col_w
        ly = top + plot_h + 74 + 24 * (i // 2)
        if kind == 'area':
            _el(g, 'rect', {'x': _c(lx), 'y': _c(ly - 12), 'width': 40, 'height': 14, 'fill': colour})
        else:
            a = {'x1': _c(lx), 'x2': _c(lx + 40), 'y1': _c(ly - 5), 'y2': _c(ly - 5), 'stroke': colour,
                 'stroke-width': lw}
            if dash:
                a['stroke-dasharray'] = dash
            _el(g, 'line', a)
        _el(g, 'text', {'x': _c(lx + 50), 'y': _c(ly)}, label)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'
