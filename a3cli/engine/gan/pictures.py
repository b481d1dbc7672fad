"""What people look at of a GAN run: sample grids of fixed noise, their animation, the loss and Fréchet curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from a3cli.engine.gan.networks import generate_images
from a3cli.engine.images import make_grid, save_gif, save_image

GRIDS = "samples"  # the run folder's sub-folder of grids, one per sampled iteration
# What write_pictures leaves in the run folder.
PICTURES = {"samples": "samples.png", "animation": "samples.gif", "losses": "losses.png", "frechet": "frechet.png"}


def grid_path(out: Path, step: int) -> Path:
    return out / GRIDS / f"iter_{step:06d}.png"


def save_grid(G: nn.Module, noise: Tensor, path: Path) -> Path:
    return save_image(make_grid(generate_images(G, noise)), path)


def write_pictures(
    out: Path, history: dict[str, list[float]], frechet_history: list[dict[str, Any]], title: str
) -> None:
    """The latest grid as samples.png, every grid so far as samples.gif, the loss and Fréchet curves."""
    from PIL import Image

    from a3cli.engine.figures import loss_curves_figure

    frames: list[Image.Image | Tensor] = []
    for path in sorted((out / GRIDS).glob("iter_*.png")):
        with Image.open(path) as picture:
            frames.append(picture.convert("RGB"))
    if frames:
        save_image(frames[-1], out / PICTURES["samples"])
        save_gif(frames, out / PICTURES["animation"], duration_ms=300)
    if history["d_loss"]:
        loss_curves_figure(dict(history), out / PICTURES["losses"], title=f"{title}: losses")
    if frechet_history:
        frechet_figure(frechet_history, out / PICTURES["frechet"], title=f"{title}: Fréchet distance and mode coverage")


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
    best = min(
        (row[key]["frechet_distance"], row["iteration"]) for row in rows for key in ("generator", "ema") if key in row
    )
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
