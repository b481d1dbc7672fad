"""What a generative run leaves in its folder besides its pictures (pictures.py): checkpoint.pt, best.pt and
the list of its files; and which file of a folder a sampler reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from a3cli.engine.errors import A3Error
from a3cli.engine.files import write_json
from a3cli.engine.generative.pictures import PICTURES
from a3cli.engine.runs import CHECKPOINT_NAME, checkpoint_path

BEST_NAME = "best.pt"  # the model with the lowest tracked Fréchet distance


def run_files(out: Path) -> dict[str, str]:
    """What a run folder holds, for metrics.json."""
    names = {"checkpoint": CHECKPOINT_NAME, "best": BEST_NAME, **PICTURES}
    return {what: str(out / name) for what, name in names.items() if (out / name).is_file()}


def write_stopped_metrics(out: Path, so_far: dict[str, Any]) -> None:
    """metrics.json of a run stopped early: its numbers so far, marked interrupted, and the files it holds."""
    write_json(out / "metrics.json", {**so_far, "files": run_files(out)})


def model_file(path: str | Path, command: str) -> Path:
    """A file as given; a run folder's best.pt, else its checkpoint.pt. `command`: what makes such folders."""
    path = Path(path)
    if not path.is_dir():
        return path
    for candidate in (path / BEST_NAME, checkpoint_path(path)):
        if candidate.is_file():
            return candidate
    raise A3Error(f"'{path}' is a folder without {BEST_NAME} or {CHECKPOINT_NAME}: not a {command} run folder")
