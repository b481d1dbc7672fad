"""The generators a GAN run leaves, and loading one to sample from.

A run folder holds `checkpoint.pt` (the whole run: the live and the averaged
generator, the discriminator, the optimisers...) and `best.pt` (only the generator
with the lowest tracked Fréchet distance, live or averaged, ready to sample).
`gan-sample --checkpoint RUN_DIR` takes the best; given a checkpoint file it takes
the averaged generator when the run has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from a3cli.engine.catalogue import GAN_VARIANTS
from a3cli.engine.checkpoints import load_checkpoint, load_state
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.networks import make_generator
from a3cli.engine.runs import CHECKPOINT_NAME, checkpoint_path

KIND = "gan"
BEST_NAME = "best.pt"


def run_files(out: Path) -> dict[str, str]:
    """What a run folder holds, for metrics.json."""
    names = {"checkpoint": CHECKPOINT_NAME, "best": BEST_NAME, "samples": "samples.png", "animation": "samples.gif",
             "losses": "losses.png", "frechet": "frechet.png"}
    return {what: str(out / name) for what, name in names.items() if (out / name).is_file()}


def generator_file(path: str | Path) -> Path:
    """A file as given; a run folder's best.pt, else its checkpoint.pt."""
    path = Path(path)
    if not path.is_dir():
        return path
    for candidate in (path / BEST_NAME, checkpoint_path(path)):
        if candidate.is_file():
            return candidate
    raise A3Error(f"'{path}' is a folder without {BEST_NAME} or {CHECKPOINT_NAME}: not a gan-train run folder")


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a run folder, best.pt or checkpoint.pt, in eval mode, with the run's settings.

    The returned facts add "step" (its iteration), "source" ("ema": the averaged
    generator; "generator": the live one) and "file".
    """
    path = generator_file(path)
    saved = load_checkpoint(path, kind=KIND, required=("run", "step", "generator"))
    run = saved["run"]
    if not isinstance(run, dict) or run.get("variant") not in GAN_VARIANTS or "noise_dim" not in run:
        raise A3Error(f"'{path}' is a gan checkpoint without a known variant and noise size")
    key = "ema_generator" if "ema_generator" in saved else "generator"
    G = make_generator(GAN_VARIANTS[run["variant"]], run["noise_dim"], run.get("image_size", 28), run.get("channels", 1))
    load_state(G, saved[key], f"the generator in '{path}'")
    source = saved.get("source", "ema" if key == "ema_generator" else "generator")
    return G.to(device).eval(), {**run, "step": saved["step"], "source": source, "file": str(path),
                                 "frechet_distance": saved.get("frechet_distance")}
