"""The text report of an explanation (the --json document, as lines)."""

import os

from ..report import human_bytes, pct
from .shim import ENABLE, state_words
from .verdict import pinned_words

UNITS = 'units: 1 kB = 10^3 bytes, 1 MB = 10^6 bytes (decimal); /proc\'s "kB" are KiB, converted to bytes'


def _col(v):
    return '?' if v is None else human_bytes(v)


def _rss_line(doc):
    rss, anon = doc.get('rss_bytes'), doc.get('rss_anon_bytes')
    if anon is None:
        return '  %-34s %s' % ('RSS', _col(rss))
    parts = ['anonymous %s' % human_bytes(anon)]
    if doc.get('rss_shmem_bytes'):
        parts.append('shared memory %s' % human_bytes(doc['rss_shmem_bytes']))
    if doc.get('rss_file_bytes') is not None:
        parts.append('file-backed %s' % human_bytes(doc['rss_file_bytes']))
    else:
        parts.append('file-backed %s' % human_bytes(rss - anon))
    return '  %-34s %s  (%s)' % ('RSS', _col(rss), ', '.join(parts))


def render(doc):
    """The text report: figures, arenas, what pins, verdict, fixes, trim."""
    out = []
    alloc = doc['allocator']
    out.append('process %d (%s)  malloc: %s%s' % (
        doc['pid'], doc['command'], alloc['name'],
        '' if alloc['name'] == os.path.basename(alloc['malloc_object'] or '') else ' (%s)' % alloc['malloc_object']))
    out.append(_rss_line(doc))
    for sm in doc.get('shared_memory') or ():
        out.append('  %-34s %-6s %s%s' % ('  shared memory', human_bytes(sm['rss_bytes']), sm['name'],
                                         '' if sm['mappings'] == 1 else ' (%d mappings)' % sm['mappings']))
    anon = doc.get('rss_anon_bytes') or doc.get('rss_bytes') or 1
    if alloc['glibc'] and 'arenas' in doc:
        n = doc['mmapped_chunks']
        tc = doc.get('tcache_bytes')
        out.append('  %-34s %s  (in arenas %s%s, %s)' % (
            'live bytes (per the allocator)', human_bytes(doc['live_bytes']), human_bytes(doc['in_use_arena_bytes']),
            ', of which cached in tcache %s' % human_bytes(tc) if tc else '',
            'no mmapped chunks' if not n else 'mmapped chunks %s in %d' % (human_bytes(doc['mmapped_bytes']), n)))
        n = len(doc['arenas'])
        out.append('  %-34s %s  in %d arena%s' % ('free bytes held by malloc', human_bytes(doc['free_bytes']),
                                                   n, '' if n == 1 else 's'))
        out.append('  %-34s %s' % ('resident in arena mappings', human_bytes(doc['arena_resident_bytes'])))
        out.append('  %-34s %s  = %s of anonymous RSS' % ('  of which free (resident - live)',
                                                          human_bytes(doc['free_resident_bytes']),
                                                          pct(float(doc['free_resident_bytes']) / anon)))
        walked = doc.get('would_return_bytes') is not None
        if walked:
            out.append('  %-34s %s  (the heap walk: resident pages that hold no live byte)'
                       % ('malloc_trim(0) would return', human_bytes(doc['would_return_bytes'])))
            out.append('  %-34s %s  (resident pages that live chunks keep)' % ('the floor after a trim',
                                                                             human_bytes(doc['floor_bytes'])))
        else:
            out.append('  %-34s ~%s (est. from malloc_info)' % ('malloc_trim(0) would return',
                                                              human_bytes(doc['trimmable_bytes'])))
        out.append('')
        if walked:
            out.append('  arena  kind    heaps   size      in use    free      resident  trim gives  floor')
        else:
            out.append('  arena  kind    heaps   size      in use    free      resident')
        for r in doc['arenas']:
            line = '  %-5d  %-6s  %6s  %-8s  %-8s  %-8s  %-8s' % (
                r['nr'], r['kind'], '[heap]' if r['kind'] == 'main' else r['heaps'], human_bytes(r['size_bytes']),
                human_bytes(r['in_use_bytes']), human_bytes(r['free_bytes']), _col(r['resident_bytes']))
            if walked:
                line += '  %-10s  %s' % (human_bytes(r['would_return_bytes']), human_bytes(r['floor_bytes']))
            out.append(line.rstrip())
        if any(r['resident_bytes'] is None for r in doc['arenas']):
            out.append('  (? = arenas of the same size could not be told apart; the total above counts them)')
        pinned = doc.get('pinned') or []
        if pinned:
            out.append('')
            out.append('  what keeps the floor (live chunks on pages otherwise free):')
            # the groups that matter: the largest, and any with a hundredth of its pages
            for g in [g for g in pinned if g['pages'] * 100 >= pinned[0]['pages']][:5]:
                out.append('    %s; e.g. %s' % (pinned_words(g), ', '.join(g['examples'][:3])))
    elif doc.get('allocator_figures'):
        figs = doc['allocator_figures']
        shown = ', '.join('%s %s' % (k[:-6].replace('_', ' '), human_bytes(v))
                          for k, v in figs.items() if k.endswith('_bytes') and v is not None and k != 'page_bytes')
        out.append('  %-34s %s' % ('%s\'s own figures' % alloc['name'], shown))
        if doc.get('live_bytes') is not None:
            out.append('  %-34s %s' % ('live bytes (per the allocator)', human_bytes(doc['live_bytes'])))
            out.append('  %-34s %s  = %s of anonymous RSS' % ('free and resident in it',
                                                              human_bytes(doc['free_resident_bytes']),
                                                              pct(float(doc['free_resident_bytes']) / anon)))
            out.append('  %-34s %s' % ('its release call would return', human_bytes(doc['trimmable_bytes'])))
    sh = doc.get('shim')
    if sh and sh.get('loaded'):
        out.append('')
        out.extend(render_shim(sh, alloc))
    out.append('')
    out.append('verdict: %s' % doc['verdict'])
    out.append('  %s' % doc['why'])
    if doc['fixes']:
        out.append('fix:')
        for fx in doc['fixes']:
            out.append('  - %s' % fx)
    t = doc.get('trim')
    if t is not None:
        out.append('')
        if not t['called']:
            out.append('trim: not called (%s)' % t.get('why', 'gdb did not reach it'))
        else:
            what = t['returned'] if t.get('call') != 'malloc_trim(0)' else 'malloc_trim(0) returned %s' % t['returned']
            pred = doc.get('would_return_bytes') if alloc['glibc'] else doc.get('trimmable_bytes')
            out.append('trim: %s; RSS %s -> %s (%s%s)%s; the figures above are from before it' % (
                what, human_bytes(t['rss_before_bytes']), human_bytes(t['rss_after_bytes']),
                '-' if t['released_bytes'] >= 0 else '+', human_bytes(abs(t['released_bytes'])),
                '; predicted %s' % human_bytes(pred) if pred is not None else ''))
    w = doc.get('watch')
    if w is not None:
        out.append('')
        out.extend(render_watch(w))
    for n in doc.get('notes') or ():
        out.append('note: %s' % n)
    out.append(UNITS)
    return out


def render_watch(w):
    out = ['watch: %s over %.0f s (%d full readings, %d RSS samples)' % (
        w['verdict'], w['seconds'], len(w['readings']), len(w['samples']))]
    out.append('  %s' % w['why'])
    for r in w['readings']:
        out.append('  t=%5.1f s  RSS %-8s  live %-8s  free resident %s' % (
            r['t'], human_bytes(r['rss_bytes']), _col(r['live_bytes']), _col(r['free_resident_bytes'])))
    return out


def _age(s):
    if s < 120:
        return '%.0f s' % s
    if s < 7200:
        return '%.0f min' % (s / 60.0)
    return '%.1f h' % (s / 3600.0)


def render_shim(sh, alloc=None):
    """The trim shim's lines: loaded, its state, what it did (its statistics file), or why its
    figures are not there."""
    st = sh.get('stats') or {}
    other = alloc['name'] if alloc and not alloc.get('glibc') else None
    state = sh.get('state')
    if state:
        head = state_words(state, sh.get('mode'), other)
        if sh.get('policy') and state == 'running':
            head += ', policy %s' % sh['policy']
    elif not st.get('exported', True):
        head = 'loaded'
    else:
        head = 'loaded, its state not known'
    out = ['  %-34s %s; %s' % ('trim shim (libtrimshim)', head, sh['library'])]
    if sh.get('trims') is not None:
        t = sh['trims']
        kinds = ['quiet %d' % t['quiet'], 'busy %d' % t['busy']]
        kinds += ['%s %d' % (k, t[k]) for k in ('interval', 'api') if t[k]]
        out.append('  %-34s %d (%s), returned %s; futile %d, minor faults after trims %d' % (
            '  trims', t['total'], ', '.join(kinds), human_bytes(sh['returned_bytes']), sh['futile_trims'],
            sh['refault_minor_faults']))
        out.append('  %-34s heap free %s, in use %s; RSS %s when the file was written' % (
            '  at its last probe', human_bytes(sh['heap_free_bytes']), human_bytes(sh['heap_used_bytes']),
            human_bytes(sh['resident_bytes'])))
    if not st.get('exported', True) and not st.get('problem'):
        out.append('  %-34s not exported: start the program with %s (an absolute path, %%p = the PID) to have '
                   'them; TRIMSHIM_VERBOSE=1 logs each trim' % ('  its figures', ENABLE))
    elif st.get('problem'):
        out.append('  %-34s %s' % ('  statistics', st['problem']))
    elif st.get('note'):
        out.append('  %-34s %s (%s)' % ('  statistics', st['file'], st['note']))
    elif st.get('file'):
        out.append('  %-34s %s, written %s ago (TRIMSHIM_STATS from its initial environment)' % (
            '  statistics', st['file'], _age(st.get('age_seconds') or 0)))
    if st.get('warning'):
        out.append('  %-34s %s' % ('', st['warning']))
    return out
