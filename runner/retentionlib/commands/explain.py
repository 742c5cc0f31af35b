"""`retention explain PID`: the command line of explain/ (what it does: explain/__init__.py)."""

import json
import re
import sys

from ..errors import ExplainError, UsageError
from ..explain import render, session, watch
from ..explain.gdb import DEFAULT_TIMEOUT_S


def add_arguments(p):
    p.add_argument('pid', metavar='PID', help='the process to explain')
    p.add_argument('--trim', action='store_true', help='call the allocator\'s release in the process (glibc: '
                                                       'malloc_trim(0)) and report RSS before and after')
    p.add_argument('--watch', type=float, metavar='SECONDS',
                   help='sample the process for this long and tell a leak (live bytes growing) from a plateau '
                        'or churn')
    p.add_argument('--json', action='store_true', help='print the report as JSON')
    p.add_argument('--gdb', metavar='PATH', help='the gdb executable (default: $RETENTION_GDB, else gdb in PATH)')
    p.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT_S, metavar='SECONDS',
                   help='give up on a call in the process after this long (default %d); a call waiting on a '
                        'lock is interrupted and unwound' % DEFAULT_TIMEOUT_S)


def parse_pid(text):
    s = (text or '').strip()
    if not re.match(r'^\d+$', s):
        raise UsageError("PID must be a process id (a positive number), not '%s'" % text)
    pid = int(s)
    if pid <= 0:
        raise UsageError('PID must be a positive process id, not %s' % text)
    return pid


def run(args):
    """0 explained; a process that cannot be explained is an ExplainError (one line, exit 1); so
    is a --trim that was refused (after the report)."""
    out, err = sys.stdout, sys.stderr
    pid = parse_pid(args.pid)
    if not args.timeout > 0:
        raise UsageError('--timeout must be a positive number of seconds')
    if args.watch is not None and not (watch.MIN_WATCH_S <= args.watch <= watch.MAX_WATCH_S):
        raise UsageError('--watch must be between %g and %g seconds' % (watch.MIN_WATCH_S, watch.MAX_WATCH_S))
    if args.watch is not None and args.trim:
        raise UsageError('--watch and --trim do not go together: watch first, then trim')
    try:
        # A progress note for someone watching; a script sees one error line or none.
        tty = hasattr(err, 'isatty') and err.isatty()
        log = (lambda msg: (err.write('retention: %s\n' % msg), err.flush())) if tty else None
        if args.watch is not None:
            doc = watch.watch(pid, args.watch, gdb=args.gdb, timeout=args.timeout, log=log)
        else:
            doc = session.explain(pid, trim=args.trim, gdb=args.gdb, timeout=args.timeout, log=log)
    except (OSError, IOError, ValueError) as e:
        raise ExplainError('explain %d failed: %s' % (pid, e))
    if args.json:
        out.write(json.dumps(doc, indent=2) + '\n')
    else:
        for line in render.render(doc):
            out.write(line + '\n')
    out.flush()
    t = doc.get('trim')
    if t is not None and t.get('refused'):
        raise ExplainError('process %d: %s not called: %s; nothing was called, the process carries on untouched'
                           % (pid, t.get('call') or 'the release', t['why']))
    return 0
