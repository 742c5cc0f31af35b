"""The environment every case program runs in: the caller's, less every variable that changes
what malloc does or what runs in the process (MALLOC_*, GLIBC_TUNABLES, LD_PRELOAD, ...).

The one list of those variables, for the runner and for bench/shim-bench alike. A leaf module
(standard library only, nothing of this package, no work at import), so a script outside the
runner can import it alone."""

import os
from collections import OrderedDict

# Variables that change what malloc does (or what runs) and must never leak in from the caller.
SCRUB_PREFIXES = ('MALLOC_', 'TRIMSHIM_', 'VALGRIND_')
SCRUB_NAMES = ('GLIBC_TUNABLES', 'LD_PRELOAD', 'LD_AUDIT')
# VALGRIND_LIB only says where valgrind's own tools live (a valgrind outside /usr needs it).
SCRUB_KEEP = ('VALGRIND_LIB',)


def scrubbed_env(environ=None):
    environ = os.environ if environ is None else environ
    out = OrderedDict()
    for k in sorted(environ):
        if k in SCRUB_KEEP:
            out[k] = environ[k]
        elif k in SCRUB_NAMES or k.startswith(SCRUB_PREFIXES):
            continue
        else:
            out[k] = environ[k]
    return out


def scrubbed_names(environ=None):
    environ = os.environ if environ is None else environ
    return sorted(k for k in environ if k not in scrubbed_env(environ))
