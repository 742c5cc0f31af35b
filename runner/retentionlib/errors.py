"""Errors that end up in front of a user: each says where (file:line) and what."""


class ConfigError(Exception):
    """A malformed case or expected file. str() is 'FILE:LINE: message'."""

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
