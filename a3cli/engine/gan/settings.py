"""The settings that define a GAN run, filled in, and how long it trains.

Options left None take the resumed run's value, else the variant's or the
assignment's default (engine/catalogue.py). The settings are stored in the run's
checkpoint; so is the run's target length, so that `--resume` without
`--iterations` finishes the run it resumes rather than starting a new count.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from a3cli.engine.catalogue import DIGIT_SIZE, GAN_DEFAULTS, GAN_IMAGE_SIZES, GAN_VARIANTS, PHOTO_SIZE, GanVariant
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.augment import parse_policy
from a3cli.engine.gan.config import GanConfig
from a3cli.engine.options import run_settings
from a3cli.engine.runs import merge_settings


def resolve_settings(config: GanConfig, saved: dict[str, Any] | None) -> tuple[GanConfig, GanVariant]:
    """The config with every run setting filled in from the resumed run and the variant's defaults, checked;
    and the variant's record."""
    values = merge_settings({name: value for name, value in run_settings(config).items() if name != "seed"}, saved)
    variant_name = values["variant"] or GAN_DEFAULTS["variant"]
    variant = GAN_VARIANTS.get(variant_name)
    if variant is None:
        raise A3Error(f"--variant {variant_name!r} is not one of {', '.join(GAN_VARIANTS)}")
    default = lambda name, value: values[name] if values[name] is not None else value  # noqa: E731
    dataset, image_size = default("dataset", GAN_DEFAULTS["dataset"]), default("image_size", GAN_DEFAULTS["image_size"])
    channels = default("channels", GAN_DEFAULTS["channels"])
    check_image_size(variant, dataset, image_size, channels)
    settings = dataclasses.replace(
        config,
        variant=variant_name,
        dataset=dataset,
        image_size=image_size,
        channels=channels,
        batch_size=default("batch_size", GAN_DEFAULTS["batch_size"]),
        lr=default("lr", variant.lr_at(image_size)),
        beta1=default("beta1", variant.betas[0]),
        beta2=default("beta2", variant.betas[1]),
        noise_dim=default("noise_dim", GAN_DEFAULTS["noise_dim"]),
        n_critic=default("n_critic", variant.n_critic),
        gp_weight=default("gp_weight", GAN_DEFAULTS["gp_weight"]),
        # A run made before the averaged generator existed has none (0), not the default.
        ema=default("ema", 0.0 if saved is not None else GAN_DEFAULTS["ema"]),
        seed=saved["seed"] if saved is not None else config.seed,
        # A run made before augmentation existed has none; a new one's default depends on its data.
        augment=default("augment", "none" if saved is not None else None),
        # The measuring and picture schedule: a resumed run keeps its own (one made before it was stored
        # takes the defaults).
        sample_every=default("sample_every", GAN_DEFAULTS["sample_every"]),
        eval_every=default("eval_every", GAN_DEFAULTS["eval_every"]),
        eval_samples=default("eval_samples", GAN_DEFAULTS["eval_samples"]),
    )  # checked again as it is made (GanConfig.__post_init__)
    if settings.augment is not None:
        parse_policy(settings.augment, settings.channels)
    return settings, variant


def check_image_size(variant: GanVariant, dataset: str, image_size: int, channels: int) -> None:
    """28 px: the assignment's grayscale networks; 64 px: the DCGAN paper's, on a folder of pictures."""
    if image_size not in GAN_IMAGE_SIZES:
        raise A3Error(f"--image-size {image_size}: choose {' or '.join(map(str, GAN_IMAGE_SIZES))}")
    if channels not in (1, 3):
        raise A3Error(f"--channels {channels}: choose 1 (gray) or 3 (RGB)")
    if image_size == DIGIT_SIZE and channels != 1:
        raise A3Error("--channels 3 needs --image-size 64: the assignment's 28-px networks draw grayscale digits")
    if image_size == PHOTO_SIZE and variant.photo is None:
        with64 = ", ".join(v.name for v in GAN_VARIANTS.values() if v.photo)
        raise A3Error(f"--image-size 64: the 64-px networks are for {with64}, not {variant.name}")
    if image_size == PHOTO_SIZE and dataset in ("mnist", "fashion-mnist"):
        raise A3Error("--image-size 64 trains on your own pictures: give --dataset FOLDER")


def target_iterations(config: GanConfig, saved_total: int | None, batches_per_epoch: int) -> int:
    """--iterations, else --epochs of the data, else the resumed run's own target, else the assignment's length."""
    if config.iterations is not None:
        return config.iterations
    if config.epochs is not None:
        return math.ceil(config.epochs * batches_per_epoch / config.n_critic)
    if saved_total is not None:
        return int(saved_total)
    return GAN_DEFAULTS["iterations"]
