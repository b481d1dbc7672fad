"""The pictures a generative run leaves in its folder: grids of fixed noise, their animation, the loss and
Fréchet curves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from a3cli.engine.files import atomic_write
from a3cli.engine.images import enlarged, make_grid, save_gif, save_image, titled
from a3cli.engine.tensorboard import RunLog

GRIDS = "samples"  # the run folder's sub-folder of grids, one per sampled iteration
# What write_pictures leaves in the run folder.
PICTURES = {"samples": "samples.png", "animation": "samples.gif", "losses": "losses.png", "frechet": "frechet.png"}
# Grids of samples are enlarged to at least this width: 64 digits of 28 px make 242 px, too small to look at.
GRID_MIN_WIDTH = 512


def grid_path(out: Path, step: int) -> Path:
    return out / GRIDS / f"iter_{step:06d}.png"


def sample_grid(images: Tensor, nrow: int | None = None, title: str = "") -> Tensor:
    """Samples (N, C, H, W) tiled into one picture at least GRID_MIN_WIDTH wide, each pixel a crisp square,
    under its title."""
    grid = enlarged(make_grid(images, nrow=nrow), GRID_MIN_WIDTH)
    return titled(grid, title) if title else grid


def save_grid(images: Tensor, path: Path, title: str = "", log: RunLog | None = None, step: int = 0) -> Path:
    """Samples (N, C, H, W) in [0, 1] as one grid picture, also in the run's TensorBoard log."""
    grid = sample_grid(images, title=title)
    if log is not None:
        log.picture(step, GRIDS, grid)
    return save_image(grid, path)


def log_measurement(log: RunLog, step: int, measured: Mapping[str, Any], group: str = "frechet") -> None:
    """Measurements in the TensorBoard log: each model's numbers (a row of the Fréchet history, or the final
    report's final, averaged and best models) under group/model."""
    for model, numbers in measured.items():
        if isinstance(numbers, dict):
            values = {name: value for name, value in numbers.items() if isinstance(value, (int, float))}
            log.scalars(step, values, f"{group}/{model}")


def model_title(name: str, step: int, frechet_distance: float | None, samples: int | None = None) -> str:
    """'dcgan, iteration 4,000, Fréchet distance 15.6 (1,000 samples)': what a grid of a model says of it."""
    title = f"{name}, iteration {step:,}"
    if frechet_distance is not None:
        title += f", Fréchet distance {frechet_distance:.1f}" + (f" ({samples:,} samples)" if samples else "")
    return title


def distance_at(frechet_history: list[dict[str, Any]], step: int, source: str) -> float | None:
    """The Fréchet distance of the `source` model measured at `step`, if it was."""
    row = frechet_history[-1] if frechet_history else {}
    return row[source]["frechet_distance"] if row.get("iteration") == step and source in row else None


def write_pictures(
    out: Path,
    history: dict[str, list[float]],
    frechet_history: list[dict[str, Any]],
    title: str,
    samples: tuple[int, int],
) -> None:
    """The latest grid as samples.png, every grid so far as samples.gif, the loss and Fréchet curves.

    `history`: the losses by name, one value per iteration. `samples`: the generated images of each tracked
    Fréchet distance and of the final report.
    """
    from PIL import Image

    from a3cli.engine.figures import frechet_figure, loss_curves_figure

    frames: list[Image.Image | Tensor] = []
    for path in sorted((out / GRIDS).glob("iter_*.png")):
        with Image.open(path) as picture:
            frames.append(picture.convert("RGB"))
    if frames:
        save_image(frames[-1], out / PICTURES["samples"])
        save_gif(frames, out / PICTURES["animation"], duration_ms=300)
    if any(history.values()):
        loss_curves_figure(dict(history), out / PICTURES["losses"], title=f"{title}: losses")
    if frechet_history:
        frechet_figure(
            frechet_history, out / PICTURES["frechet"], f"{title}: Fréchet distance and mode coverage", samples
        )


def save_npy(images: Tensor, path: Path) -> Path:
    """Samples (N, C, H, W) in [0, 1] as a uint8 NumPy array, (N, H, W) for gray and (N, H, W, 3) for RGB: the
    layout MNIST's and most image arrays use, for evaluating them elsewhere."""
    import numpy as np

    pixels = images.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    array = pixels[:, 0] if pixels.shape[1] == 1 else pixels.permute(0, 2, 3, 1)
    return atomic_write(path, lambda f: np.save(f, array.contiguous().numpy()))
