"""What the install tests share: running a command, and an installed retention as a user gets it:
`cmake --install` into a DESTDIR, the staged prefix then moved elsewhere, so that nothing can point
back at the build tree or the checkout (relocatable), and an environment without the runner's own
variables."""
import os
import shutil
import subprocess


def run(argv, cwd='/', env=None, check=True):
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if check and proc.returncode != 0:
        raise AssertionError('%s exited %d:\n%s' % (' '.join(argv), proc.returncode, proc.stdout))
    return proc


def install_moved(build, tmp, prefix):
    """Installs build for `prefix` into tmp/stage, moves it to tmp/moved; returns that directory
    and the environment to run it in."""
    stage = os.path.join(tmp, 'stage')
    run(['cmake', '--install', build, '--prefix', prefix], env=dict(os.environ, DESTDIR=stage))
    moved = os.path.join(tmp, 'moved')
    shutil.move(stage + prefix, moved)
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith('RETENTION_') and k != 'PYTHONPATH')
    return moved, env
