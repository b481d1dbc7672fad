"""Atomic file writing, used for every output: images, JSON, checkpoints.

Write to a temporary file in the target's folder, then rename over the target:
a crash or Ctrl-C never leaves a half-written file, and an existing file is
replaced only by a complete one.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Optional

from a3cli.engine.errors import A3Error, WriteError


def shipped_dir(name: str) -> Path:
    """A top-level folder the project ships: weights/ (the small weights it trains itself, weights/README.md)
    or examples/ (the photos its examples name).

    A wheel carries each as the package data a3cli/NAME (pyproject.toml maps it); a source checkout has it
    beside the package.
    """
    package = Path(__file__).resolve().parents[1]
    installed = package / name
    return installed if installed.is_dir() else package.parent / name


WEIGHTS_DIR = shipped_dir("weights")
EXAMPLES_DIR = shipped_dir("examples")
SHIPPED_CAPTIONER = WEIGHTS_DIR / "caption_shapes.pt"  # caption-sample's default (make weights)
SHIPPED_MNIST_CLASSIFIER = WEIGHTS_DIR / "mnist_classifier.pt"  # the GANs' Fréchet distance (make weights)
SHIPPED_DIFFUSION = WEIGHTS_DIR / "diffusion_digits.pt"  # diffusion-sample's default (make weights)


def not_a_file(path: str | Path) -> Optional[str]:
    """Why `path` is not a file to read, or None: it is a folder, does not exist, or is something else
    (a FIFO, a device such as /dev/zero, or a link to one) that reading would hang on or never finish."""
    path = Path(path)
    if path.is_dir():
        return "is a folder"
    if not path.exists():
        return "does not exist"
    return None if path.is_file() else "is not a regular file"


def os_error_beneath(error: BaseException) -> Optional[OSError]:
    """The OSError behind a failed write: the error itself, or one chained beneath it (torch.save raises
    RuntimeError with the file's OSError as its context)."""
    seen: Optional[BaseException] = error
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def cannot_write(path: str | Path, error: OSError) -> WriteError:
    return WriteError(f"cannot write '{path}': {error.strerror or error}")


def probe_folder(folder: str | Path) -> Optional[str]:
    """Why no file can be created in `folder` (an existing folder), or None: a temporary file is made and
    removed, which finds what permission bits do not (a read-only or special file system, a full disk)."""
    probe = Path(folder) / f".a3-probe.{uuid.uuid4().hex}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as error:
        return error.strerror or str(error)
    probe.unlink(missing_ok=True)
    return None


def unwritable(folder: str | Path) -> Optional[str]:
    """Why files cannot be written into `folder` (made if missing), or None: its nearest existing parent
    must be a folder in which a file can be made."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"'{existing}' is not a folder"
    failure = probe_folder(existing)
    return None if failure is None else f"{failure} in '{existing}'"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(file)` (its result is ignored) on a temporary file beside `path`, then rename it to `path`.

    Any failure to write (disk full, file too large, permission) is a WriteError, with no temporary file left.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Mode 0o666 (less the umask) gives the usual permissions, unlike mkstemp's 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as error:
        raise cannot_write(path, error) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        cause = os_error_beneath(error) if isinstance(error, (OSError, RuntimeError)) else None
        if cause is not None:  # disk full, file too large, permission denied, path is a folder
            raise cannot_write(path, cause) from None
        raise
    return path


MAX_JSON_BYTES = 4 * 2**30  # the largest JSON file read: COCO's and Karpathy's caption files are under 200 MB


def read_json(path: Path, what: str) -> Any:
    """A JSON file, read defensively: one that is missing, too large, not UTF-8, not JSON or nested deeper
    than Python's parser goes is an A3Error that names it (`what`: how the user gave it, e.g. "--karpathy")."""
    if not path.is_file():
        raise A3Error(f"{what} '{path}': no such file")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise A3Error(f"{what} '{path}' is larger than {MAX_JSON_BYTES // 2**30} GiB: not a caption file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise A3Error(f"{what} '{path}' is not valid JSON: {error}") from None
    except RecursionError:
        raise A3Error(f"{what} '{path}' is nested too deeply to read: not a caption file") from None


def inside_folder(folder: Path, name: str, listed_in: Path) -> Path:
    """folder/name for a file name a list gives, refused in one line when it is no file name (empty, or with a
    NUL byte, which no file system takes) or leads outside `folder`; links are followed without failing
    on a loop (a looping link is then a missing image)."""
    if not name or "\x00" in name:
        raise A3Error(f"'{listed_in}': image {name!r} is not a file name")
    path = folder / name
    if Path(name).is_absolute() or not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder)):
        raise A3Error(f"'{listed_in}': image {name!r} points outside --images '{folder}'")
    return path


def write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=2) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
