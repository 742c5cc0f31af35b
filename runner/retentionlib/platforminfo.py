"""The platform key that selects bounds: glibc version, distro, THP mode, page size, arch."""

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


def detect(os_release_paths=OS_RELEASE, thp_path=THP_ENABLED):
    rel = read_os_release(os_release_paths)
    p = OrderedDict()
    p['glibc'] = glibc_version()
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
    """One line: 'glibc=2.36 distro=debian-12 thp=madvise page_size=4096 arch=x86_64'."""
    distro = p.get('distro_id') or 'unknown'
    if p.get('distro_version'):
        distro += '-' + p['distro_version']
    return 'glibc=%s distro=%s thp=%s page_size=%s arch=%s' % (
        p.get('glibc') or 'none', distro, p.get('thp') or 'unknown',
        p.get('page_size') or 'unknown', p.get('arch') or 'unknown')
