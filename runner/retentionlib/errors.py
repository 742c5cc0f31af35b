"""Errors that end up in front of a user, each as one line 'retention: MESSAGE' (cli.main):
each says where (file:line) and what."""


class ConfigError(Exception):
    """A malformed case or expected file. str() is 'FILE:LINE: message'. Exit status 2."""

    def __init__(self, where, lineno, message):
        Exception.__init__(self, message)
        self.where = where
        self.lineno = lineno
        self.message = message

    def __str__(self):
        if self.lineno:
            return '%s:%d: %s' % (self.where, self.lineno, self.message)
        return '%s: %s' % (self.where, self.message)


class UsageError(Exception):
    """A bad command line (unknown case or cell, ...): exit status 2."""


class Failure(Exception):
    """A command that could not do its job, for a reason outside the command line: exit status 1."""


class ExplainError(Failure):
    """`retention explain` could not explain the process (no gdb, no ptrace access, ...)."""


class ProcessGone(ExplainError):
    """The process to explain does not exist, or exited meanwhile."""
