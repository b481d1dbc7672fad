"""The options gan-train and diffusion-train share, declared once: the data, the run's length and pictures,
and the Fréchet distance measured while it trains. Plain data (no torch): `a3 --help` reads it.

A field left None is filled in by the family's `resolve_settings` (the resumed run's value, else the
family's default, which `shown` gives to --help).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from a3cli.engine.catalogue import DIGIT_SIZE, PHOTO_SIZE
from a3cli.engine.options import INPUTS, MODEL, OPTIMISATION, RUN, setting

FRECHET = "Fréchet distance"  # the trainers' own panel, between OPTIMISATION and RUN
UNTIL = 100_000_000  # the most iterations a count may name


def dataset_setting(shown: str) -> Any:
    return setting(None, "mnist | fashion-mnist | a folder of images", panel=INPUTS, shown=shown, run=True)


def data_root_setting() -> Optional[Path]:
    return setting(None, "Where MNIST's files are, or are downloaded to.", panel=INPUTS)


def download_setting() -> bool:
    return setting(True, "Let torchvision download MNIST or Fashion-MNIST.", "--download/--no-download", panel=INPUTS)


def image_size_setting(help: str, shown: int) -> Any:
    return setting(None, help, panel=MODEL, shown=shown, run=True)


def channels_setting(shown: int) -> Any:
    return setting(None, f"1: grayscale; 3: RGB (at {PHOTO_SIZE} px)", panel=MODEL, shown=shown, run=True)


def batch_size_setting(shown: int) -> Any:
    return setting(None, "Images per batch", panel=OPTIMISATION, shown=shown, min=1, max=4096, metavar="N", run=True)


def ema_setting(what: str, shown: float) -> Any:
    return setting(
        None,
        f"Decay of the averaged {what}, warmed up as min(DECAY, (1 + t) / (10 + t)) at update t; 0: none",
        panel=MODEL,
        shown=shown,
        min=0.0,
        max=0.99999,
        metavar="DECAY",
        run=True,
    )


def epochs_setting() -> Optional[int]:
    return setting(
        None, "Passes over the data, instead of the default length.", panel=OPTIMISATION, min=1, max=100000, metavar="N"
    )


def iterations_setting(what: str, shown: int) -> Optional[int]:
    return setting(None, f"{what}; overrides --epochs", panel=OPTIMISATION, shown=shown, min=1, max=UNTIL, metavar="N")


def sample_every_setting(default: Optional[int], shown: Optional[int] = None, run: bool = False) -> Any:
    return setting(
        default,
        "Draw a grid of fixed noise every N iterations.",
        panel=RUN,
        shown=shown,
        min=1,
        max=UNTIL,
        metavar="N",
        run=run,
    )


def fid_setting() -> bool:
    return setting(True, "Measure the distance while training and at the end.", "--fid/--no-fid", panel=FRECHET)


def eval_every_setting(shown: int, run: bool = False) -> Any:
    return setting(
        None,
        "Measure every N iterations; 0: at the end",
        panel=FRECHET,
        shown=shown,
        min=0,
        max=UNTIL,
        metavar="N",
        run=run,
    )


def eval_samples_setting(shown: int, run: bool = False) -> Any:
    return setting(
        None, "Generated images per measurement", panel=FRECHET, shown=shown, min=2, max=50000, metavar="N", run=run
    )


def fid_samples_setting(default: int) -> int:
    return setting(default, "Generated and real images at the end.", panel=FRECHET, min=2, max=50000, metavar="N")


def classifier_setting() -> Optional[Path]:
    return setting(None, "MNIST classifier whose features it takes", panel=FRECHET, shown="shipped MNIST classifier")


def npy_setting() -> Optional[Path]:
    return setting(
        None, "Also write the samples as a uint8 array (N, H, W) or (N, H, W, 3).", panel=INPUTS, metavar="FILE"
    )


def image_sizes_help() -> str:
    return f"{DIGIT_SIZE}, or {PHOTO_SIZE} on a folder"
