"""What a GAN run leaves in its folder besides checkpoint.pt: grids of fixed noise, their animation, the loss
and Fréchet curves, and best.pt; and the generator of a run folder, loaded back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from a3cli.engine.catalogue import GAN_DEFAULTS, GAN_VARIANTS
from a3cli.engine.checkpoints import load_checkpoint, load_state
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.networks import generate_images, make_generator
from a3cli.engine.images import enlarged, make_grid, save_gif, save_image
from a3cli.engine.runs import CHECKPOINT_NAME, checkpoint_path

KIND = "gan"  # the checkpoints' kind
BEST_NAME = "best.pt"  # the generator with the lowest tracked Fréchet distance
GRIDS = "samples"  # the run folder's sub-folder of grids, one per sampled iteration
# What write_pictures leaves in the run folder.
PICTURES = {"samples": "samples.png", "animation": "samples.gif", "losses": "losses.png", "frechet": "frechet.png"}
# Grids of samples are enlarged to at least this width: 64 digits of 28 px make 242 px, too small to look at.
GRID_MIN_WIDTH = 512


def grid_path(out: Path, step: int) -> Path:
    return out / GRIDS / f"iter_{step:06d}.png"


def sample_grid(images: Tensor, nrow: int | None = None) -> Tensor:
    """Samples (N, C, H, W) tiled into one picture at least GRID_MIN_WIDTH wide, each pixel a crisp square."""
    return enlarged(make_grid(images, nrow=nrow), GRID_MIN_WIDTH)


def save_grid(G: nn.Module, noise: Tensor, path: Path) -> Path:
    return save_image(sample_grid(generate_images(G, noise)), path)


def write_pictures(
    out: Path,
    history: dict[str, list[float]],
    frechet_history: list[dict[str, Any]],
    title: str,
    samples: tuple[int, int],
) -> None:
    """The latest grid as samples.png, every grid so far as samples.gif, the loss and Fréchet curves.

    `samples`: the generated images of each tracked Fréchet distance and of the final report.
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
    if history["d_loss"]:
        loss_curves_figure(dict(history), out / PICTURES["losses"], title=f"{title}: losses")
    if frechet_history:
        frechet_figure(
            frechet_history, out / PICTURES["frechet"], f"{title}: Fréchet distance and mode coverage", samples
        )


def run_files(out: Path) -> dict[str, str]:
    """What a run folder holds, for metrics.json."""
    names = {"checkpoint": CHECKPOINT_NAME, "best": BEST_NAME, **PICTURES}
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
