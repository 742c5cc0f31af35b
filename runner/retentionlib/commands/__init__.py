"""The commands of `retention`, one module each, named as the command.

Each has add_arguments(parser), which declares its options on its argparse subparser, and
run(args) -> exit status. cli.COMMANDS lists them; cli.main runs one and turns the errors of
errors.py into one line on stderr. options.py holds what several commands share: the directory
options and the case selection."""
