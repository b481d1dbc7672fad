"""The generator of a gan-train run folder, loaded back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from a3cli.engine.catalogue import GAN_DEFAULTS, GAN_VARIANTS
from a3cli.engine.checkpoints import load_checkpoint, load_state
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.networks import make_generator
from a3cli.engine.generative.folder import model_file

KIND = "gan"  # the checkpoints' kind


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a run folder, best.pt or checkpoint.pt, in eval mode, with the run's settings.

    The returned facts add "step" (its iteration), "source" ("ema": the averaged
    generator; "generator": the live one) and "file".
    """
    path = model_file(path, "gan-train")
    saved = load_checkpoint(path, kind=KIND, required=("run", "step", "generator"))
    run = saved["run"]
    variant = GAN_VARIANTS.get(str(run.get("variant"))) if isinstance(run, dict) else None
    if variant is None or "noise_dim" not in run:
        raise A3Error(f"'{path}' is a gan checkpoint without a known variant and noise size")
    key = "ema_generator" if "ema_generator" in saved else "generator"
    # a run saved before the image size and channels were settings has the defaults
    size, channels = run.get("image_size", GAN_DEFAULTS["image_size"]), run.get("channels", GAN_DEFAULTS["channels"])
    G = make_generator(variant, run["noise_dim"], size, channels)
    load_state(G, saved[key], f"the generator in '{path}'")
    source = saved.get("source", "ema" if key == "ema_generator" else "generator")
    return G.to(device).eval(), {
        **run,
        "step": saved["step"],
        "source": source,
        "file": str(path),
        "frechet_distance": saved.get("frechet_distance"),
    }
