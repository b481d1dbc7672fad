"""What diffusion-sample draws: samples by DDIM or ancestral steps, one class guided, the denoising as a strip
and an animation, and samples beside their nearest training images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from a3cli.engine.catalogue import DIFFUSION_DEFAULTS, NEAREST_SAMPLES
from a3cli.engine.diffusion.config import DiffusionSampleConfig
from a3cli.engine.diffusion.gaussian import GaussianDiffusion
from a3cli.engine.diffusion.model import NUM_CLASSES, draw_images
from a3cli.engine.errors import A3Error
from a3cli.engine.generative.inspection import Nearest, nearest_training_images
from a3cli.engine.generative.pictures import model_title, sample_grid, save_npy
from a3cli.engine.images import save_gif, save_image

CHUNK = 500  # pictures whose noise is drawn at once


@dataclass(frozen=True)
class Request:
    """How to sample: DDIM in `steps` steps with noise `eta`, or ancestral DDPM (steps None); one class,
    guided by `guidance`, or none; autoguided by the run's guide with weight `autoguidance` (0: not)."""

    steps: Optional[int]
    eta: float
    sample_class: Optional[int]
    guidance: float
    timesteps: int
    autoguidance: float = 0.0

    def describe(self) -> str:
        how = (
            f"DDIM in {self.steps} steps, eta {self.eta:g}"
            if self.steps
            else f"ancestral DDPM in {self.timesteps} steps"
        )
        if self.sample_class is not None:
            how += f", class {self.sample_class} with guidance {self.guidance:g}"
        if self.autoguidance:
            how += f", autoguidance {self.autoguidance:g}"
        return how

    def classes(self, n: int) -> Optional[Tensor]:
        return None if self.sample_class is None else torch.full((n,), self.sample_class, dtype=torch.long)


def check_request(config: DiffusionSampleConfig, run: dict[str, Any]) -> Request:
    """The sampling asked for, checked against the model (its T, whether it learnt classes) before any work."""
    timesteps = run["timesteps"]
    ancestral = config.sampler == "ddpm"
    if ancestral and (config.steps is not None or config.eta):
        raise A3Error("--sampler ddpm takes all T steps with the posterior's noise: leave out --steps and --eta")
    steps = None if ancestral else (config.steps or DIFFUSION_DEFAULTS["steps"])
    if steps is not None and steps > timesteps:
        raise A3Error(f"--steps {steps} is more than the model's {timesteps} diffusion steps (--timesteps)")
    if config.sample_class is not None:
        if not run["classes"]:
            raise A3Error("--class and --guidance need a model trained with --classes; this one learnt no labels")
        if config.sample_class >= NUM_CLASSES:
            raise A3Error(f"--class {config.sample_class}: the model's classes are 0 to {NUM_CLASSES - 1}")
    guidance = DIFFUSION_DEFAULTS["guidance"] if config.guidance is None else config.guidance
    if config.autoguidance and run["guide_iteration"] is None:
        raise A3Error("--autoguidance needs a model trained with it: this one has no guide")
    autoguidance = run.get("autoguidance", 0.0) if config.autoguidance is None else config.autoguidance
    if run["guide_iteration"] is None or (config.sample_class is not None and guidance):
        autoguidance = 0.0  # no guide, or classifier-free guidance instead
    return Request(steps, config.eta, config.sample_class, guidance, timesteps, autoguidance)


def sheet_title(run: dict[str, Any], request: Request) -> str:
    """What a sheet of a loaded model says of it: the model, its iteration and distance, how it sampled."""
    which = "averaged diffusion model" if run["source"] == "ema" else "diffusion model"
    return f"{model_title(which, run['step'], run.get('frechet_distance'))}; {request.describe()}"


def initial(n: int, run: dict[str, Any], generator: torch.Generator) -> Tensor:
    return torch.randn(n, run["channels"], run["image_size"], run["image_size"], generator=generator)


def draw(
    diffusion: GaussianDiffusion, run: dict[str, Any], request: Request, n: int, generator: torch.Generator
) -> Tensor:
    """n pictures (N, C, H, W) in [0, 1], CHUNK at a time."""
    chunks = []
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        noise = initial(count, run, generator)
        chunks.append(
            draw_images(
                diffusion, noise, request.steps, request.eta, request.classes(count), request.guidance, generator
            )
        )
    return torch.cat(chunks)


def save_samples(images: Tensor, out: Path, nrow: Optional[int], npy: Optional[Path], title: str) -> list[Path]:
    """The grid (PNG), and with `npy` the array too."""
    paths = [save_image(sample_grid(images, nrow, title), out)]
    if npy is not None:
        paths.append(save_npy(images, npy))
    return paths


def save_chain(
    diffusion: GaussianDiffusion,
    run: dict[str, Any],
    request: Request,
    samples: int,
    frames: int,
    out: Path,
    generator: torch.Generator,
) -> tuple[Path, Path]:
    """The denoising of `samples` pictures: a strip (a row per picture, `frames` moments from noise to the
    end) at `out`, and every step as an animation beside it (.gif)."""
    chain: list[Tensor] = []
    noise = initial(samples, run, generator)
    draw_images(
        diffusion, noise, request.steps, request.eta, request.classes(samples), request.guidance, generator, chain
    )
    moments = [noise] + chain  # x_T, then x after each step, in [−1, 1] (noisy ones beyond it)
    pictures = [moment.add(1).div(2).clamp(0, 1) for moment in moments]
    picked = torch.linspace(0, len(pictures) - 1, frames).round().long().tolist()
    strip = torch.stack([pictures[i] for i in picked], dim=1).flatten(0, 1)  # row by row: one picture's moments
    title = f"denoising, noise (left) to sample (right): {sheet_title(run, request)}"
    save_image(sample_grid(strip, frames, title), out)
    every = max(1, len(pictures) // 100)  # at most about 100 frames
    shown = pictures[::every] + ([pictures[-1]] if (len(pictures) - 1) % every else [])
    animation = save_gif([sample_grid(frame, samples) for frame in shown], out.with_suffix(".gif"), duration_ms=80)
    return out, animation


def show_nearest(
    diffusion: GaussianDiffusion,
    run: dict[str, Any],
    request: Request,
    config: DiffusionSampleConfig,
    device: torch.device,
    generator: torch.Generator,
) -> Nearest:
    """NEAREST_SAMPLES samples beside their nearest training images, saved at `config.out`."""
    samples = draw(diffusion, run, request, NEAREST_SAMPLES, generator)
    found = nearest_training_images(samples, run, device, config.data_root)
    title = f"samples, each beside its nearest training image: {sheet_title(run, request)}"
    save_image(sample_grid(found.pictures, 8, title), config.out)
    return found
