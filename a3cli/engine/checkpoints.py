"""Checkpoints: written atomically, read without running code.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts with a
"kind" entry (say "captioner" or "gan") so a command can refuse another command's file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from a3cli.engine.errors import A3Error
from a3cli.engine.files import atomic_write


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Written atomically: a crash never leaves half a checkpoint."""
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, kind: str | None = None, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with weights_only=True; with `kind`, refuse a checkpoint made by another command."""
    path = Path(path)
    if not path.is_file():
        raise A3Error(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        first_line = (str(error).splitlines() or [type(error).__name__])[0]
        raise A3Error(f"cannot load checkpoint {str(path)!r}: {first_line}") from None
    if not isinstance(state, dict):
        raise A3Error(f"{str(path)!r} is not an a3 checkpoint")
    if kind is not None and state.get("kind") != kind:
        found = state.get("kind", "not an a3 checkpoint")
        raise A3Error(f"{str(path)!r} is a {found} checkpoint, expected a {kind} checkpoint")
    return state
