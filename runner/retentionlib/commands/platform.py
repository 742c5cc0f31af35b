"""`retention platform`: the platform key that selects bounds, and per case and cell the sections
of expected/ that apply here."""

import json
import os
import sys
from collections import OrderedDict

from .. import cells as cellmod
from .. import paths, platforminfo
from ..casefile import case_names, load_case
from ..errors import ConfigError
from ..expfile import load_expected, select_bounds, unmatched_sections
from ..lines import display_path
from . import options
from .run import parse_env


def add_arguments(p):
    options.add_dir_options(p, expected=True)
    p.add_argument('--json', action='store_true', help='print JSON')
    p.add_argument('--env', action='append', default=[], metavar='NAME=VALUE',
                   help="the platform as `run --env NAME=VALUE` sees it (e.g. GLIBC_TUNABLES=glibc.malloc.tcache_count=0)")


def cell_sections(exp, cell_name, plat):
    """What applies to one cell of a case here: the sections, the ones that do not match, the
    bounds and a note. Raises ConfigError."""
    cell = cellmod.CELLS[cell_name]
    bounds, applied = select_bounds(exp, cell_name, plat, cell.allocator)
    info = OrderedDict()
    info['sections'] = [s.origin for s in applied]
    info['not_matching'] = [s.origin for s in unmatched_sections(exp, cell_name, plat, cell.allocator)]
    info['bounds'] = [b.text() for b in bounds]
    if not bounds:
        info['note'] = 'no bounds'
    elif all(not s.is_override for s in applied):
        info['note'] = 'defaults only'
    else:
        info['note'] = 'overrides: ' + ', '.join(s.label() for s in applied if s.is_override)
    return info


def sections_by_case(cases_dir, expected_dir, plat):
    """OrderedDict case -> cell -> what applies (or 'error'), and the errors met."""
    repo = paths.repo_dir()
    sections = OrderedDict()
    errors = []
    names = case_names(cases_dir) if os.path.isdir(cases_dir) else []
    for name in names:
        per = OrderedDict()
        sections[name] = per
        try:
            case = load_case(cases_dir, name, repo)
            exp = load_expected(expected_dir, name, repo)
        except ConfigError as e:
            per['error'] = str(e)
            errors.append(str(e))
            continue
        for cell_name in case.cells:
            if exp is None:
                per[cell_name] = OrderedDict([('error', 'no expected file %s' % display_path(
                    os.path.join(expected_dir, name + '.exp'), repo))])
                continue
            try:
                per[cell_name] = cell_sections(exp, cell_name, plat)
            except ConfigError as e:
                per[cell_name] = OrderedDict([('error', str(e))])
                errors.append(str(e))
    return sections, errors


def write_text(out, plat, sections):
    distro = plat['distro_id'] or 'unknown'
    if plat['distro_version']:
        distro += ' ' + plat['distro_version']
    if plat['distro_name']:
        distro += ' (%s)' % plat['distro_name']
    for k, v in (('glibc', plat['glibc'] or 'not glibc'), ('tcache', plat.get('tcache') or '-'),
                 ('distro', distro), ('thp', plat['thp']),
                 ('page size', plat['page_size']), ('arch', plat['arch']), ('kernel', plat['kernel']),
                 ('key', plat['key'])):
        out.write('%-10s %s\n' % (k, v))
    if not sections:
        return
    out.write('\nexpected sections that apply:\n')
    w = max(len(n) for n in sections)
    for name, per in sections.items():
        if 'error' in per and not isinstance(per['error'], dict):
            out.write('  %s  error: %s\n' % (name.ljust(w), per['error']))
            continue
        for cell_name, info in per.items():
            if 'error' in info:
                text = 'error: %s' % info['error']
            else:
                text = '%s (%s)' % (' + '.join(s.split(' ', 1)[1] for s in info['sections']) or '-',
                                    info['note'])
            out.write('  %s  %-9s %s\n' % (name.ljust(w), cell_name, text))


def run(args):
    cases_dir, expected_dir, _ = options.dirs(args)
    plat = platforminfo.detect(env=parse_env(args.env))
    sections, errors = sections_by_case(cases_dir, expected_dir, plat)
    out = sys.stdout
    if args.json:
        doc = OrderedDict([('platform', plat), ('sections', sections)])
        out.write(json.dumps(doc, indent=2) + '\n')
    else:
        write_text(out, plat, sections)
    out.flush()
    return 2 if errors else 0
