"""How the report names this command and the shim in the fixes it prints: as the user ran it
(`retention` when found in $PATH as the same file, else the absolute path run), never relative
to a checkout the user may not be in."""

import os
import shutil
import sys

from .. import paths


def command_name(argv0=None, environ=None):
    environ = os.environ if environ is None else environ
    argv0 = argv0 if argv0 is not None else (sys.argv[0] if sys.argv else '')
    if not argv0 or argv0.startswith('-') or not os.path.basename(argv0):
        return os.path.join(paths.RUNNER_DIR, 'retention')
    if os.sep not in argv0:
        found = shutil.which(argv0, path=environ.get('PATH', os.defpath))
        if found:
            return argv0
    full = os.path.abspath(argv0)
    base = os.path.basename(full)
    found = shutil.which(base, path=environ.get('PATH', os.defpath))
    if found and os.path.realpath(found) == os.path.realpath(full):
        return base
    if base in ('__main__.py', 'cli.py'):
        return os.path.join(paths.RUNNER_DIR, 'retention')
    return full
