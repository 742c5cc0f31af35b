"""The command line: the table of commands, and the one place their errors become exit statuses.

Every command is a module of commands/ with add_arguments(parser) and run(args) -> exit status.
Adding one is that module and its row in COMMANDS; the rows' order is the order of --help."""

import argparse
import os
import sys

from . import execute, report
from .commands import compare, demo, explain, matrix, platform, run, watch
from .commands import list as list_
from .errors import ConfigError, Failure, UsageError

# (name, add_arguments, run, the line --help shows for it)
COMMANDS = (
    ('run', run.add_arguments, run.run, 'run cases in cells and compare with expected/'),
    ('compare', compare.add_arguments, compare.run,
     'one table, cases x allocators: RSS after free, its ratio to the page floor, alloc/free time over glibc'),
    ('matrix', matrix.add_arguments, matrix.run,
     'one table, platform x case x cell, from the --json files of several runs (ci/local-matrix, CI artifacts)'),
    ('demo', demo.add_arguments, demo.run,
     'the teaching demo: run one case step by step, narrate what it measures, draw its RSS timeline'),
    ('list', list_.add_arguments, list_.run, 'list the cases, their cells and what each pins'),
    ('platform', platform.add_arguments, platform.run,
     'the platform key that selects bounds, and the sections that apply'),
    ('watch', watch.add_arguments, watch.run,
     'run your own program (-- CMD ARGS) in each cell under a sampling probe: peak, end and mean RSS, '
     'free memory the allocator keeps, time over native, the allocator that ran; a verdict and its fix'),
    ('explain', explain.add_arguments, explain.run,
     'attach to a live process with gdb: is its RSS a leak, or memory glibc malloc keeps after free? '
     '(--trim gives it back)'),
)


# Every exit status a command returns, for --help's epilog and the man page.
EXIT_STATUS = (
    (0, 'success: every check that ran passed (or the command did what it was asked)'),
    (1, 'a failure: a case x cell failed its bounds, crashed or timed out; explain could not '
        'attach or read the process'),
    (2, 'a usage error: an unknown flag, case or cell, a malformed case or expected file '
        '(named by file:line), an output file that cannot be written (checked before anything '
        'runs; a write that fails at the end, a full disk, leaves the previous file as it was)'),
    (129, 'interrupted by SIGHUP (128 + the signal number, as a shell reports it)'),
    (130, 'interrupted by SIGINT (Ctrl-C)'),
    (143, 'interrupted by SIGTERM. On any of the three the running case is killed with its '
          'process group; run prints the table of the cells that finished and writes --json '
          '("interrupted": the signal, the cell cut short, the cells not run) and --junit'),
)
EXIT_USAGE = 2
EXIT_FAILURE = 1

# The options that name a file a command writes. Every command's are checked before it starts
# (check_outputs), so that a typo in a directory costs a second, not the run. An option of the
# same name that takes no value (explain --json: print JSON) is no file.
OUTPUT_OPTIONS = ('--json', '--junit', '--svg', '--html')


def make_parser():
    ap = argparse.ArgumentParser(
        prog='retention',
        description='Runs the retention cases: what glibc malloc keeps resident after a program frees it.',
        epilog='exit status:\n' + ''.join('  %-4d %s\n' % row for row in EXIT_STATUS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name, add_arguments, _, help_text in COMMANDS:
        add_arguments(sub.add_parser(name, help=help_text))
    return ap


def output_files(parser, args):
    """The (option, path) pairs of the files the chosen command will write."""
    sub = [a for a in parser._actions if a.dest == 'command'][0].choices[args.command]
    named = []
    for action in sub._actions:
        flags = [f for f in action.option_strings if f in OUTPUT_OPTIONS]
        value = getattr(args, action.dest, None)
        if flags and action.nargs != 0 and isinstance(value, str):
            named.append((flags[0], value))
    return named


def main(argv=None):
    """Runs one command: its exit status (EXIT_STATUS), or for an error one line 'retention: ...'
    on stderr."""
    parser = make_parser()
    args = parser.parse_args(argv)
    runs = dict((name, run_command) for name, _, run_command, _ in COMMANDS)
    try:
        with execute.interruptible():
            report.check_outputs(output_files(parser, args))
            return runs[args.command](args)
    except execute.Interrupted as e:
        sys.stderr.write('retention: %s\n' % e)
        return e.status
    except (UsageError, ConfigError) as e:
        sys.stderr.write('retention: %s\n' % e)
        return EXIT_USAGE
    except Failure as e:
        sys.stderr.write('retention: %s\n' % e)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        sys.stderr.write('retention: interrupted\n')
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, 'w')
        except OSError:
            pass
        return 1
