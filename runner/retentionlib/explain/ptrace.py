"""May this process attach to another with ptrace (gdb does), and if not, why not: capabilities,
Yama's ptrace_scope, uids."""

from .procfs import parse_status


CAP_SYS_PTRACE = 19
YAMA_SCOPE = '/proc/sys/kernel/yama/ptrace_scope'


def cap_effective(status_text):
    v = parse_status(status_text).get('CapEff')
    try:
        return int(v, 16)
    except (TypeError, ValueError):
        return None


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        return None


def _ptrace_powers(yama_path, self_status):
    """(this process's /proc status text or None, whether it has CAP_SYS_PTRACE, Yama's
    ptrace_scope or None where unreadable)"""
    if self_status is None:
        self_status = _read_text('/proc/self/status')
    caps = cap_effective(self_status or '')
    try:
        scope = int((_read_text(yama_path) or '').strip())
    except ValueError:
        scope = None
    return self_status, caps is not None and bool(caps & (1 << CAP_SYS_PTRACE)), scope


def ptrace_hint(pid, yama_path=YAMA_SCOPE, self_status=None, target_status=None):
    """Why attaching to PID is not allowed, as far as can be told from here (one clause)."""
    self_status, has_cap, scope = _ptrace_powers(yama_path, self_status)
    my_uid = parse_status(self_status or '').get('Uid', '').split()[:1]
    if target_status is None:
        target_status = _read_text('/proc/%d/status' % pid) or ''
    their_uid = parse_status(target_status).get('Uid', '').split()[:1]
    if scope == 3:
        return 'kernel.yama.ptrace_scope=3 forbids attaching to any process until reboot'
    if scope == 2 and not has_cap:
        return 'kernel.yama.ptrace_scope=2: only a process with CAP_SYS_PTRACE (root) may attach'
    if my_uid and their_uid and my_uid != their_uid and not has_cap:
        return 'the process belongs to uid %s: run as that user or as root' % their_uid[0]
    if scope == 1 and not has_cap:
        return ('kernel.yama.ptrace_scope=1 allows attaching only to your own descendants: run as root, '
                'or set it to 0 with sysctl kernel.yama.ptrace_scope=0')
    if not has_cap:
        return ('no CAP_SYS_PTRACE (in a container: docker run --cap-add=SYS_PTRACE, or the pod\'s '
                'securityContext capabilities); a setuid or non-dumpable process needs it too')
    return ('ptrace is blocked although this process has CAP_SYS_PTRACE: a seccomp profile (containers) '
            'or a security module (SELinux deny_ptrace, AppArmor) may forbid it')


def attach_blocker(yama_path=YAMA_SCOPE, self_status=None):
    """A reason why this process cannot ptrace a sibling process (for tests to skip), or None."""
    self_status, has_cap, scope = _ptrace_powers(yama_path, self_status)
    if self_status is None or scope is None:
        return None
    if scope >= 3:
        return 'kernel.yama.ptrace_scope=%d forbids ptrace' % scope
    if scope >= 1 and not has_cap:
        return 'kernel.yama.ptrace_scope=%d and no CAP_SYS_PTRACE' % scope
    return None
