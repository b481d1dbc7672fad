"""A diffusion model from a run's settings, drawing pictures from it, and reading one back from its run.

A run's settings (`run` in its checkpoints) say everything the model is built from, so a checkpoint holds
the U-Net's weights alone and a sampler rebuilds the rest.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from a3cli.engine.catalogue import DIFFUSION_DEFAULTS, DIGIT_SIZE
from a3cli.engine.checkpoints import load_checkpoint, load_state
from a3cli.engine.device import autocast, seeded_generator
from a3cli.engine.diffusion.gaussian import GaussianDiffusion
from a3cli.engine.diffusion.unet import UNet
from a3cli.engine.errors import A3Error
from a3cli.engine.files import SHIPPED_DIFFUSION
from a3cli.engine.generative.folder import model_file

KIND = "diffusion"  # the checkpoints' kind
NUM_CLASSES = 10  # the digits' and Fashion-MNIST's labels
CPU_AT_ONCE = 128  # pictures denoised at once on a CPU: a third faster than 500, whose activations overflow its caches


def build_diffusion(run: Mapping[str, Any]) -> GaussianDiffusion:
    """The U-Net and its Gaussian diffusion that a run's settings describe (weights freshly drawn)."""
    multipliers = DIFFUSION_DEFAULTS["multipliers" if run["image_size"] == DIGIT_SIZE else "photo_multipliers"]
    net = UNet(
        run["channels"],
        run["width"],
        multipliers,
        DIFFUSION_DEFAULTS["blocks"],
        num_classes=NUM_CLASSES if run["classes"] else 0,
    )
    diffusion = GaussianDiffusion(
        net,
        run["image_size"],
        run["channels"],
        run["timesteps"],
        run["objective"],
        run["schedule"],
        run["min_snr"],
        run["precision"],
    )
    diffusion.autoguidance = run.get("autoguidance", 0.0)  # runs from before autoguidance have no guide
    return diffusion


def attach_guide(diffusion: GaussianDiffusion, weights: Optional[Mapping[str, Tensor]] = None) -> None:
    """Give the model its guide for autoguidance: its own network as it is now, or with `weights`."""
    guide = copy.deepcopy(diffusion.model).requires_grad_(False)
    if weights is not None:
        load_state(guide, weights, "the guide of the checkpoint")
    diffusion.guide = guide


def initial_noise(samples: int, run: Mapping[str, Any], seed: int) -> Tensor:
    """x_T for `samples` pictures: the first `samples` of one fixed Gaussian sequence of the seed."""
    shape = (samples, run["channels"], run["image_size"], run["image_size"])
    return torch.randn(shape, generator=seeded_generator(seed))


@torch.no_grad()
def draw_images(
    diffusion: GaussianDiffusion,
    noise: Tensor,
    steps: Optional[int],
    eta: float = 0.0,
    classes: Optional[Tensor] = None,
    guidance: float = 0.0,
    generator: Optional[torch.Generator] = None,
    chain: Optional[list[Tensor]] = None,
) -> Tensor:
    """Pictures (N, C, H, W) in [0, 1] on the CPU from x_T = noise: DDIM in `steps` steps, or ancestral
    sampling when `steps` is None; on a CPU, CPU_AT_ONCE at a time."""
    device = diffusion.betas.device
    if device.type == "cpu" and chain is None and len(noise) > CPU_AT_ONCE:
        parts = [slice(start, start + CPU_AT_ONCE) for start in range(0, len(noise), CPU_AT_ONCE)]
        labels = [None if classes is None else classes[part] for part in parts]
        drawn = [draw_images(diffusion, noise[p], steps, eta, c, guidance, generator) for p, c in zip(parts, labels)]
        return torch.cat(drawn)
    was_training = diffusion.training
    diffusion.eval()
    try:
        with autocast(device, diffusion.precision):
            images = diffusion.sample(
                noise.to(device),
                steps,
                eta,
                None if classes is None else classes.to(device),
                guidance,
                generator,
                chain,
            )
    finally:
        diffusion.train(was_training)
    return images.float().add(1).div(2).clamp(0, 1).cpu()


def load_diffusion(path: str | Path, device: torch.device | str = "cpu") -> tuple[GaussianDiffusion, dict[str, Any]]:
    """The model of a diffusion-train run (folder or file) on `device`, in eval mode, and facts about it: the
    run's settings plus "step", "source" (ema or model) and "file". A whole run's checkpoint gives its averaged
    model when it has one."""
    if Path(path) == SHIPPED_DIFFUSION and not SHIPPED_DIFFUSION.is_file():
        raise A3Error(f"the shipped model '{path}' is missing: run 'make weights' or pass --checkpoint")
    file = model_file(path, "diffusion-train")
    saved = load_checkpoint(file, kind=KIND, required=("run", "step"))
    if "ema_model" in saved:
        weights, source = saved["ema_model"], "ema"
    elif "model" in saved:
        weights, source = saved["model"], saved.get("source", "model")
    else:
        raise A3Error(f"'{file}' holds no model weights")
    diffusion = build_diffusion(saved["run"])
    load_state(diffusion.model, weights, f"the model in '{file}'")
    if "guide_model" in saved:
        attach_guide(diffusion, saved["guide_model"])
    facts = {
        **saved["run"],
        "step": int(saved["step"]),
        "source": source,
        "file": str(file),
        "frechet_distance": saved.get("frechet_distance"),
        "guide_iteration": saved.get("guide_iteration"),
    }
    return diffusion.to(device).eval(), facts
