"""Checkpoints: written atomically, read without running code, checked before use.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts with a
"kind" entry (say "captioner" or "gan") so a command can refuse another command's
file. Everything that reads one goes through `load_checkpoint` (kind and required
keys) and `load_state` (a state_dict into a module or optimiser), so a damaged or
foreign file ends in one `error:` line, never a traceback.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from a3cli.engine.errors import A3Error, first_line
from a3cli.engine.files import atomic_write, not_a_file


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Written atomically: a crash never leaves half a checkpoint."""
    return atomic_write(path, lambda f: torch.save(state, f))


def read_weights_only(path: str | Path, what: str = "checkpoint", map_location: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only=True; a file it refuses (a pickle that would run code) is an A3Error.

    torch's warning about such files, with its advice to load them unsafely, is not shown.
    """
    path = Path(path)
    if path.is_dir():
        raise A3Error(f"{str(path)!r} is a folder, not a {what} file")
    if not path.is_file():
        raise A3Error(f"{what} file {str(path)!r} {not_a_file(path)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise A3Error(f"cannot load {what} {str(path)!r}: {why_unreadable(path, error)}") from None


# The first bytes of files people give by mistake, and what they are.
MAGIC = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip file",
}
PICKLE = b"\x80"  # the PROTO opcode that starts a pickle of protocol 2 and later (old-format PyTorch files too)


def why_unreadable(path: Path, error: Exception) -> str:
    """What a file torch.load(weights_only=True) refused is, in words a user can act on: not a PyTorch file at
    all (naming what it looks like), or a PyTorch file or pickle that needs code to load, which a3 never runs."""
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(512)
        archive = zipfile.is_zipfile(path)
        names = zipfile.ZipFile(path).namelist() if archive else []
    except (OSError, zipfile.BadZipFile):
        return first_line(error)
    needs_code = "it needs code to load (objects, not only tensors), and a3 never runs code from a file"
    if any(name.endswith("data.pkl") for name in names):
        return f"a PyTorch file of another program: {needs_code}"
    if head.startswith(PICKLE):
        return "it is a Python pickle, not an a3 file (a3 reads PyTorch files of tensors and plain values)"
    found = next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)
    if found is None:
        found = "a zip archive" if archive else "a text file" if head and is_text(head) else "not a PyTorch file"
        return found if found == "not a PyTorch file" else f"it is {found}, not a PyTorch file"
    return f"it is {found}, not a PyTorch file"


def is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def load_checkpoint(
    path: str | Path, kind: str | None = None, map_location: str | torch.device = "cpu", required: Iterable[str] = ()
) -> dict[str, Any]:
    """Load with weights_only=True; with `kind`, refuse a checkpoint made by another command; refuse one
    that lacks any of the `required` keys."""
    state = read_weights_only(path, "checkpoint", map_location)
    if not isinstance(state, dict):
        raise A3Error(f"{str(path)!r} is not an a3 checkpoint")
    if kind is not None and "kind" not in state:
        raise A3Error(f'{str(path)!r} is a PyTorch file of another program (no a3 "kind"), not an a3 checkpoint')
    if kind is not None and state["kind"] != kind:
        raise A3Error(f"{str(path)!r} is a {state['kind']} checkpoint, expected a {kind} checkpoint")
    missing = [key for key in required if key not in state]
    if missing:
        raise A3Error(f"{str(path)!r} is an incomplete {kind or 'a3'} checkpoint: it lacks {', '.join(missing)}")
    return state


def load_state(target: torch.nn.Module | torch.optim.Optimizer, state: Any, what: str) -> None:
    """`target.load_state_dict(state)`, with a mismatch (missing keys, other shapes) as one A3Error line."""
    try:
        target.load_state_dict(state)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else first_line(error)  # torch's first line only says "Error(s) in ..."
        raise A3Error(f"{what} does not fit: {detail}") from None
