"""The one exception type for mistakes a user can make.

The CLI turns an `A3Error` into one line on stderr and exit status 2; anything
else is a bug and keeps its traceback.
"""


class A3Error(Exception):
    """A user-facing error: bad input, missing file, unavailable weights or device."""


class WriteError(A3Error):
    """A file could not be written (disk full, file too large, a place that takes no files): what was
    there before is untouched, so a training run can say which checkpoint is kept."""


class RankLost(A3Error):
    """Under torchrun, another rank died or could not be reached, so this one stops too. Only the first
    survivor to stop says so (`report`); the process group cannot be left cleanly, so the CLI ends the
    process at once after the line."""

    def __init__(self, message: str, report: bool = True) -> None:
        super().__init__(message)
        self.report = report


class A3Note(UserWarning):
    """Something a user should know that does not stop the command (a cache that cannot be written):
    the CLI shows it as one `note:` line."""


def first_line(error: BaseException) -> str:
    """An exception's message for a one-line report: its first non-empty line, else its type's name."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
