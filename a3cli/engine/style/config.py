"""The settings of a style-transfer run, each written once: its default as --help shows it, and its checks.

A setting left None is filled in by `settings.resolve_settings`: the engine's default, then the
backbone's, then the --preset's (engine/catalogue.py). A list is written on the command line as
comma-separated text, which its option parses (`parse_list`). Plain data (no torch): `a3 --help`
reads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from a3cli.engine.catalogue import STYLE_DEFAULTS, style_default
from a3cli.engine.errors import A3Error
from a3cli.engine.options import INPUTS, LOSS, OPTIMISATION, setting

MIN_SIZE, MAX_SIZE = 16, 4096  # shorter side of the picture and of the style images, pixels
MAX_ITERATIONS = 100_000  # loss evaluations: hours of work already
STARTS = ("content", "random")  # --init's words; anything else names an image file
LIST = "<str>"  # what --help shows for a list option: one piece of text, a,b,c


def parse_list(text: str, option: str, number: bool) -> list:
    """ "a,b,c" -> ["a", "b", "c"] (or floats), refusing what is not a list of the right kind."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise A3Error(
            f"{option} {text!r}: give a comma-separated list such as {'1e4,500,12' if number else 'stem,block2'}"
        )
    if not number:
        return items
    try:
        values = [float(item) for item in items]
    except ValueError:
        raise A3Error(f"{option} {text!r}: every item must be a number") from None
    if any(not math.isfinite(v) for v in values):
        raise A3Error(f"{option} {text!r}: every item must be a finite number")
    return values


def parse_layers(text: str) -> list[str]:
    return parse_list(text, "--style-layers", number=False)


def parse_style_weights(text: str) -> list[float]:
    return parse_list(text, "--style-weights", number=True)


def parse_blend_weights(text: str) -> list[float]:
    return parse_list(text, "--style-blend-weights", number=True)


@dataclass
class StyleConfig:
    """Everything that decides the picture. The order of the fields is that of the JSON `a3 stylize --json` writes."""

    content_layer: str = setting(
        None, "Layer that keeps the content.", panel=LOSS, shown=style_default("content_layer")
    )
    content_weight: float = setting(
        None, "Weight of the content loss.", panel=LOSS, shown=style_default("content_weight")
    )
    style_layers: Sequence[str] = setting(
        None,
        "Layers whose Gram matrices carry the style.",
        panel=LOSS,
        shown=style_default("style_layers"),
        parser=parse_layers,
        metavar=LIST,
    )
    style_weights: Sequence[float] = setting(
        None,
        "One weight per style layer.",
        panel=LOSS,
        shown=style_default("style_weights"),
        parser=parse_style_weights,
        metavar=LIST,
    )
    tv_weight: float = setting(
        None, "Weight of the smoothness (TV) loss.", panel=LOSS, shown=style_default("tv_weight")
    )
    image_size: int = setting(None, "Output's shorter side, pixels.", panel=INPUTS, shown=style_default("image_size"))
    # None: the same as image_size
    style_size: Optional[int] = setting(None, "Style images' shorter side, pixels.", panel=INPUTS, shown="--image-size")
    init: str = setting(None, "Start from content | random | FILE.", panel=OPTIMISATION, shown=STYLE_DEFAULTS["init"])
    optimizer: str = setting(None, "lbfgs | adam.", panel=OPTIMISATION, shown=style_default("optimizer"))
    iterations: int = setting(
        None, "Loss evaluations.", "--iterations", "-n", panel=OPTIMISATION, shown=style_default("iterations")
    )
    lr: float = setting(None, "Adam's lr; L-BFGS's step scale.", panel=OPTIMISATION, shown=style_default("lr"))
    decay_lr: Optional[float] = setting(
        None, "Adam: the lr after --decay-at.", panel=OPTIMISATION, shown=style_default("decay_lr")
    )
    # The assignment switches 3.0 -> 0.1 at 180 of 200 iterations.
    decay_at: float = setting(
        None, "Fraction of the iterations before --decay-lr.", panel=OPTIMISATION, shown=STYLE_DEFAULTS["decay_at"]
    )
    # One per style image, normalised to sum 1; None: equal.
    style_blend_weights: Optional[Sequence[float]] = setting(
        None,
        "Weights of the style images, e.g. 3,1.",
        panel=LOSS,
        shown="equal",
        parser=parse_blend_weights,
        metavar=LIST,
    )
    original_colors: bool = setting(False, "Keep the content's colours (luminance only).", panel=LOSS)
    multiscale: bool = setting(False, "Coarse to fine, for large outputs.", panel=OPTIMISATION)
    min_scale_size: int = 128  # coarsest size that --multiscale starts from

    def __post_init__(self) -> None:
        """Checked when made (a setting still None passes), and again when `resolve_settings` fills it in;
        what depends on the backbone and the style images is checked when the run starts."""
        self.check_lists()
        self.check_optimiser()
        self.check_ranges()
        self.check_init()

    def check_lists(self) -> None:
        layers, weights, blend = self.style_layers, self.style_weights, self.style_blend_weights
        if layers is not None and weights is not None and len(layers) != len(weights):
            raise A3Error(f"{len(layers)} style layers but {len(weights)} style weights; give one weight per layer")
        if blend is not None and (min(blend) < 0 or sum(blend) <= 0):
            raise A3Error("--style-blend-weights must be non-negative and not all zero")

    def check_optimiser(self) -> None:
        if self.optimizer is not None and self.optimizer not in ("lbfgs", "adam"):
            raise A3Error(f"--optimizer {self.optimizer!r} is not one of adam, lbfgs")
        if self.iterations is not None and not 1 <= self.iterations <= MAX_ITERATIONS:
            raise A3Error(f"--iterations must be between 1 and {MAX_ITERATIONS}")
        bad_lr = self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0)
        if bad_lr or (self.decay_lr is not None and not self.decay_lr > 0):
            raise A3Error("--lr and --decay-lr must be positive")

    def check_ranges(self) -> None:
        sizes = [size for size in (self.image_size, self.style_size) if size is not None]
        if not all(MIN_SIZE <= size <= MAX_SIZE for size in sizes):
            raise A3Error(f"--image-size and --style-size must be between {MIN_SIZE} and {MAX_SIZE} pixels")
        if self.decay_at is not None and not 0 <= self.decay_at <= 1:
            raise A3Error("--decay-at must be a fraction between 0 and 1")
        weights = [self.content_weight, self.tv_weight, *(self.style_weights or ())]
        if any(not math.isfinite(w) or w < 0 for w in weights if w is not None):
            raise A3Error("loss weights must be finite and non-negative")

    def check_init(self) -> None:
        """An image file to start from is read now, so that a bad one is refused before the model loads."""
        if self.init is None or self.init in STARTS:
            return
        if not Path(self.init).is_file():
            raise A3Error(f"--init {self.init!r} is not content, random or an image file")
        from a3cli.engine.images import load_image  # (torch: only when a file is named)

        load_image(Path(self.init))
