"""The one exception type for mistakes a user can make.

The CLI turns an `A3Error` into one line on stderr and exit status 2; anything
else is a bug and keeps its traceback.
"""


class A3Error(Exception):
    """A user-facing error: bad input, missing file, unavailable weights or device."""
