"""Atomic file writing, used for every output: images, JSON, checkpoints.

Write to a temporary file in the target's folder, then rename over the target:
a crash or Ctrl-C never leaves a half-written file, and an existing file is
replaced only by a complete one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from a3cli.engine.errors import A3Error


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(file)` on a temporary file, then move it to `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise A3Error(f"cannot write {str(path)!r}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise A3Error(f"cannot write {str(path)!r}: {error.strerror or error}") from None
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=2) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
