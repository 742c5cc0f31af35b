"""The platform key that selects bounds: glibc version, distro, THP mode, page size, arch, and
whether glibc's per-thread cache (tcache) is on for the run."""

import os
import platform as _platform
import re
from collections import OrderedDict

OS_RELEASE = ('/etc/os-release', '/usr/lib/os-release')
THP_ENABLED = '/sys/kernel/mm/transparent_hugepage/enabled'


def glibc_version():
    """'2.36', or None when the C library is not glibc (or cannot be told)."""
    try:
        v = os.confstr('CS_GNU_LIBC_VERSION')  # 'glibc 2.36'
    except (AttributeError, ValueError, OSError):
        v = None
    if v:
        parts = v.split()
        if len(parts) == 2 and parts[0] == 'glibc':
            return parts[1]
    lib, ver = _platform.libc_ver()
    if lib == 'glibc' and ver:
        return ver
    return None


def parse_os_release(text):
    """KEY=VALUE lines, values optionally quoted (os-release(5))."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#') or '=' not in line:
            continue
        k, v = line.split('=', 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in '"\'':
            v = v[1:-1]
            v = re.sub(r'\\(.)', r'\1', v)
        out[k.strip()] = v
    return out


def read_os_release(paths=OS_RELEASE):
    for p in paths:
        try:
            with open(p) as f:
                return parse_os_release(f.read())
        except (IOError, OSError, UnicodeDecodeError):
            continue
    return {}


def parse_thp(text):
    """'always [madvise] never' -> 'madvise'; 'unknown' when nothing is bracketed."""
    m = re.search(r'\[(\w+)\]', text or '')
    return m.group(1) if m else 'unknown'


def read_thp(path=THP_ENABLED):
    try:
        with open(path) as f:
            return parse_thp(f.read())
    except (IOError, OSError):
        return 'unknown'


def page_size():
    try:
        return os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError, AttributeError):
        return None


# glibc's per-thread cache (tcache) arrived in 2.26; before, freed small chunks went straight to
# the fastbins and bins (EL 7's glibc 2.17 has none).
TCACHE_SINCE = (2, 26)
TCACHE_TUNABLE = 'glibc.malloc.tcache_count'


def parse_tunables(text):
    """GLIBC_TUNABLES 'name=value:name=value' -> OrderedDict; a later setting of a name wins, as
    in glibc's own parsing; items without '=' are ignored, as glibc ignores them."""
    out = OrderedDict()
    for item in (text or '').split(':'):
        name, sep, value = item.partition('=')
        if sep and name:
            out.pop(name, None)
            out[name] = value
    return out


def _tunable_number(value):
    """glibc's reading of a numeric tunable (decimal, 0x hex, leading-0 octal), None if it is
    not a number (glibc then keeps the default)."""
    v = value.strip()
    try:
        if re.match(r'^0[xX][0-9a-fA-F]+$', v):
            return int(v, 16)
        if re.match(r'^0[0-7]*$', v):
            return int(v, 8)
        if re.match(r'^[1-9][0-9]*$', v):
            return int(v)
    except ValueError:
        pass
    return None


def tcache_state(glibc, env=None):
    """'off' when glibc predates tcache (< 2.26) or env (the variables the run sets in every
    cell, e.g. run --env GLIBC_TUNABLES=glibc.malloc.tcache_count=0) sets its count to 0; 'on'
    for any other glibc; None when the C library is not glibc (or its version is unknown)."""
    if not glibc:
        return None
    m = re.match(r'^(\d+)\.(\d+)', glibc)
    if not m:
        return None
    if (int(m.group(1)), int(m.group(2))) < TCACHE_SINCE:
        return 'off'
    count = parse_tunables((env or {}).get('GLIBC_TUNABLES')).get(TCACHE_TUNABLE)
    if count is not None and _tunable_number(count) == 0:
        return 'off'
    return 'on'


def detect(os_release_paths=OS_RELEASE, thp_path=THP_ENABLED, env=None):
    """The platform of this machine; env: the variables the run sets in every cell (its
    --env), which may turn tcache off."""
    rel = read_os_release(os_release_paths)
    p = OrderedDict()
    p['glibc'] = glibc_version()
    p['tcache'] = tcache_state(p['glibc'], env)
    p['distro_id'] = rel.get('ID') or None
    p['distro_version'] = rel.get('VERSION_ID') or None
    p['distro_name'] = rel.get('PRETTY_NAME') or None
    p['thp'] = read_thp(thp_path)
    p['page_size'] = page_size()
    # os.uname(), not platform.machine(): older pythons' platform.uname() runs `uname -p`.
    u = os.uname()
    p['arch'] = u.machine or None
    p['kernel'] = u.release or None
    p['python'] = _platform.python_version()
    p['key'] = key(p)
    return p


def key(p):
    """One line: 'glibc=2.36 distro=debian-12 thp=madvise page_size=4096 arch=x86_64', then
    ' tcache=on' or ' tcache=off' when the platform says (glibc only)."""
    distro = p.get('distro_id') or 'unknown'
    if p.get('distro_version'):
        distro += '-' + p['distro_version']
    k = 'glibc=%s distro=%s thp=%s page_size=%s arch=%s' % (
        p.get('glibc') or 'none', distro, p.get('thp') or 'unknown',
        p.get('page_size') or 'unknown', p.get('arch') or 'unknown')
    if p.get('tcache'):
        k += ' tcache=%s' % p['tcache']
    return k
