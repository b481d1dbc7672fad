"""The settings that define a diffusion run, filled in, and how long it trains.

Options left None take the resumed run's value, else the default (engine/catalogue.py DIFFUSION_DEFAULTS).
The settings are stored in the run's checkpoint, its measuring and picture schedule among them, and so is
its target length: `--out DIR --resume` alone continues the very run that stopped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from a3cli.engine.catalogue import DIFFUSION_DEFAULTS, DIGIT_SIZE, GAN_IMAGE_SIZES, PHOTO_SIZE
from a3cli.engine.diffusion.config import DiffusionConfig
from a3cli.engine.errors import A3Error
from a3cli.engine.options import run_settings
from a3cli.engine.runs import merge_settings

LABELLED = ("mnist", "fashion-mnist")  # the data sets whose labels --classes learns


def resolve_settings(config: DiffusionConfig, saved: dict[str, Any] | None, precision: str) -> DiffusionConfig:
    """The config with every run setting filled in from the resumed run and the defaults, checked. `precision`:
    the default for this machine's device."""
    values = merge_settings({name: value for name, value in run_settings(config).items() if name != "seed"}, saved)
    defaults: dict[str, Any] = dict(DIFFUSION_DEFAULTS)
    filled = {name: defaults[name] if value is None and name in defaults else value for name, value in values.items()}
    filled["classes"] = bool(filled["classes"])
    filled["precision"] = filled["precision"] or precision
    check_data(filled["dataset"], filled["image_size"], filled["channels"], filled["classes"])
    seed = saved["seed"] if saved is not None else config.seed
    return dataclasses.replace(config, **filled, seed=seed)  # checked again as it is made


def check_data(dataset: str, image_size: int, channels: int, classes: bool) -> None:
    """28 px: the digits' (or Fashion-MNIST's) grayscale; 64 px: a folder of pictures, gray or RGB."""
    if image_size not in GAN_IMAGE_SIZES:
        raise A3Error(f"--image-size {image_size}: choose {' or '.join(map(str, GAN_IMAGE_SIZES))}")
    if channels not in (1, 3):
        raise A3Error(f"--channels {channels}: choose 1 (gray) or 3 (RGB)")
    if image_size == DIGIT_SIZE and channels != 1:
        raise A3Error("--channels 3 needs --image-size 64: 28-px images are grayscale")
    if image_size == PHOTO_SIZE and dataset in LABELLED:
        raise A3Error("--image-size 64 trains on your own pictures: give --dataset FOLDER")
    if classes and dataset not in LABELLED:
        raise A3Error(f"--classes learns the labels of {' or '.join(LABELLED)}; a folder has none")


def target_iterations(config: DiffusionConfig, saved_total: int | None, batches_per_epoch: int) -> int:
    """--iterations, else --epochs of the data, else the resumed run's own target, else the default length."""
    if config.iterations is not None:
        return config.iterations
    if config.epochs is not None:
        return math.ceil(config.epochs * batches_per_epoch)
    if saved_total is not None:
        return int(saved_total)
    return DIFFUSION_DEFAULTS["iterations"]
