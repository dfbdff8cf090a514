"""The package's user-error base class.

`InputError` marks an error caused by what the user gave (a file, a flag value, a config field, a
checkpoint): the command-line layer prints such errors as one line naming the culprit and exits
with status 2. Everything else (a bug) keeps its traceback, so a bare `ValueError` raised by a
programming mistake is never disguised as bad input. It subclasses `ValueError` so library callers
that catch `ValueError` keep working.
"""


class InputError(ValueError):
    """Bad input from the user: the message names the file, flag or field and what was expected."""
