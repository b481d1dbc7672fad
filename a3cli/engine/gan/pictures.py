"""What people look at of a GAN run: sample grids of fixed noise, their animation, the loss and Fréchet curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from a3cli.engine.images import make_grid, save_gif, save_image


@torch.no_grad()
def generate_images(G: nn.Module, noise: Tensor) -> Tensor:
    """Images (N, C, H, W) in [0, 1] from noise, with BatchNorm in eval mode (its running statistics)."""
    was_training = G.training
    G.eval()
    try:
        images = G(noise.to(next(G.parameters()).device))
    finally:
        G.train(was_training)
    if images.dim() == 2:  # the assignment's networks draw flattened 28×28 digits
        images = images.reshape(-1, 1, 28, 28)
    return images.add(1).div(2).clamp(0, 1).cpu()


def save_grid(G: nn.Module, noise: Tensor, path: Path) -> Path:
    return save_image(make_grid(generate_images(G, noise)), path)


def write_pictures(out: Path, history: dict[str, list[float]], frechet_history: list[dict[str, Any]],
                   title: str) -> None:
    """The latest grid as samples.png, every grid so far as samples.gif, the loss and Fréchet curves."""
    from PIL import Image

    from a3cli.engine.figures import loss_curves_figure

    frames = []
    for path in sorted((out / "samples").glob("iter_*.png")):
        with Image.open(path) as picture:
            frames.append(picture.convert("RGB"))
    if frames:
        save_image(frames[-1], out / "samples.png")
        save_gif(frames, out / "samples.gif", duration_ms=300)
    if history["d_loss"]:
        loss_curves_figure(history, out / "losses.png", title=f"{title}: losses")
    if frechet_history:
        frechet_figure(frechet_history, out / "frechet.png", title=f"{title}: Fréchet distance and mode coverage")


def frechet_figure(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """The tracked Fréchet distance (log scale) of the live and averaged generator, and their KL to uniform."""
    from a3cli.engine.figures import pyplot, save_figure

    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=(2, 1))
    iterations = [row["iteration"] for row in rows]
    coverage = "kl_to_uniform" in rows[0]["generator"]  # digits are counted on MNIST only
    for key, label in (("generator", "generator"), ("ema", "averaged generator (EMA)")):
        if key in rows[0]:
            top.plot(iterations, [row[key]["frechet_distance"] for row in rows], "o-", label=label)
            if coverage:
                bottom.plot(iterations, [row[key]["kl_to_uniform"] for row in rows], "o-", label=label)
    best = min((row[key]["frechet_distance"], row["iteration"]) for row in rows for key in ("generator", "ema")
               if key in row)
    top.plot([best[1]], [best[0]], "*", color="black", markersize=14, label=f"best: {best[0]:.1f} (best.pt)")
    from matplotlib.ticker import LogLocator, ScalarFormatter

    top.set_yscale("log")
    top.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    top.yaxis.set_major_formatter(ScalarFormatter())
    top.yaxis.set_minor_formatter(ScalarFormatter() if top.get_ylim()[1] < 3 * top.get_ylim()[0] else "")
    top.set_ylabel("Fréchet distance")
    bottom.axhline(math.log(10), color="grey", linestyle="--", linewidth=1)
    bottom.set_ylim(0, 2.5)
    bottom.set_ylabel("KL to uniform\n(ln 10: one digit)")
    bottom.set_xlabel("iteration")
    top.set_title(title)
    if not coverage:
        bottom.set_visible(False)
        top.set_xlabel("iteration")
        top.xaxis.set_tick_params(labelbottom=True)
    for ax in (top, bottom):
        ax.grid(alpha=0.3, which="both")
    top.legend()
    fig.tight_layout()
    return save_figure(fig, path)
