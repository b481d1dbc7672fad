"""The one exception type for mistakes a user can make.

The CLI turns an `A3Error` into one line on stderr and exit status 2; anything
else is a bug and keeps its traceback.
"""


class A3Error(Exception):
    """A user-facing error: bad input, missing file, unavailable weights or device."""


def first_line(error: BaseException) -> str:
    """An exception's message for a one-line report: its first non-empty line, else its type's name."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
