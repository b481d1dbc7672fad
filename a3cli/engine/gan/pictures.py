"""What people look at of a GAN run: sample grids of fixed noise, their animation, the loss curves."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from a3cli.engine.images import make_grid, save_gif, save_image


@torch.no_grad()
def generate_images(G: nn.Module, noise: Tensor) -> Tensor:
    """Images (N, 1, 28, 28) in [0, 1] from noise, with BatchNorm in eval mode (its running statistics)."""
    was_training = G.training
    G.eval()
    try:
        images = G(noise.to(next(G.parameters()).device))
    finally:
        G.train(was_training)
    return images.reshape(-1, 1, 28, 28).add(1).div(2).clamp(0, 1).cpu()


def save_grid(G: nn.Module, noise: Tensor, path: Path) -> Path:
    return save_image(make_grid(generate_images(G, noise)), path)


def write_pictures(out: Path, history: dict[str, list[float]], title: str) -> None:
    """The latest grid as samples.png, every grid so far as samples.gif, and the loss curves."""
    from PIL import Image

    from a3cli.engine.plots import loss_curves_figure

    frames = []
    for path in sorted((out / "samples").glob("iter_*.png")):
        with Image.open(path) as picture:
            frames.append(picture.convert("RGB"))
    if frames:
        save_image(frames[-1], out / "samples.png")
        save_gif(frames, out / "samples.gif", duration_ms=300)
    if history["d_loss"]:
        loss_curves_figure(history, out / "losses.png", title=title)
