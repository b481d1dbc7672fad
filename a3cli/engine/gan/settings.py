"""The options of a GAN run, the settings that define it, and how long it trains.

Options left None take the resumed run's value, else the variant's or the
assignment's default (engine/catalogue.py). The settings are stored in the run's
checkpoint; so is the run's target length, so that `--resume` without
`--iterations` finishes the run it resumes rather than starting a new count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from a3cli.engine.catalogue import DIGIT_SIZE, GAN_DEFAULTS, GAN_IMAGE_SIZES, GAN_VARIANTS, PHOTO_SIZE
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.augment import parse_policy
from a3cli.engine.runs import merge_settings


@dataclass
class GanConfig:
    """The options of `a3 gan-train`; a setting left None takes the resumed run's value, else the default."""

    out: Path = Path(GAN_DEFAULTS["out"])
    variant: Optional[str] = None  # gan | lsgan | dcgan | wgan-gp
    dataset: Optional[str] = None  # mnist | fashion-mnist | folder
    image_size: Optional[int] = None  # 28 (the assignment's networks) or 64 (the DCGAN paper's, folders)
    channels: Optional[int] = None  # 1 (gray) or 3 (RGB, 64 px only)
    batch_size: Optional[int] = None
    lr: Optional[float] = None  # default: the variant's
    beta1: Optional[float] = None
    beta2: Optional[float] = None
    noise_dim: Optional[int] = None
    n_critic: Optional[int] = None  # default: the variant's
    gp_weight: Optional[float] = None  # WGAN-GP only
    ema: Optional[float] = None  # decay of the averaged generator; 0: none
    augment: Optional[str] = None  # DiffAugment policy; default: catalogue.default_augment once the data are known
    epochs: Optional[int] = None  # passes over the data, instead of the default length
    iterations: Optional[int] = None  # overrides epochs; default: the run's, else the assignment's
    sample_every: int = GAN_DEFAULTS["sample_every"]
    checkpoint_every: Optional[int] = None  # default: sample_every
    eval_every: Optional[int] = None  # Fréchet distance while training; 0: only at the end
    eval_samples: Optional[int] = None  # generated images for it
    seed: int = 0
    resume: bool = False
    data_root: Optional[Path] = None
    download: bool = True
    fid: bool = True
    fid_samples: int = GAN_DEFAULTS["fid_samples"]  # the final distance's
    classifier: Optional[Path] = None

    def check(self) -> None:
        """Refuse values no run can use (the CLI's own limits say the same; library callers get this)."""
        for name, least in (
            ("sample_every", 1),
            ("fid_samples", 2),
            ("epochs", 1),
            ("iterations", 1),
            ("checkpoint_every", 1),
            ("eval_every", 0),
            ("eval_samples", 2),
        ):
            value = getattr(self, name)
            if value is not None and value < least:
                raise A3Error(f"--{name.replace('_', '-')} must be at least {least}")


@dataclass
class GanSettings:
    """The settings that define a run, fixed when it starts (stored in its checkpoint)."""

    variant: str
    dataset: str
    batch_size: int
    lr: float
    beta1: float
    beta2: float
    noise_dim: int
    n_critic: int
    gp_weight: float
    ema: float
    seed: int
    image_size: int = GAN_DEFAULTS["image_size"]  # defaults: runs saved before these settings existed
    channels: int = GAN_DEFAULTS["channels"]
    augment: Optional[str] = "none"  # None until the data are known (GanTraining fills in the default)


def resolve_settings(config: GanConfig, saved: dict[str, Any] | None) -> GanSettings:
    """Settings from the options, the resumed run and the variant's defaults, checked."""
    names = (
        "variant",
        "dataset",
        "batch_size",
        "lr",
        "beta1",
        "beta2",
        "noise_dim",
        "n_critic",
        "gp_weight",
        "ema",
        "image_size",
        "channels",
        "augment",
    )
    values = merge_settings({name: getattr(config, name) for name in names}, saved)
    variant_name = values["variant"] or GAN_DEFAULTS["variant"]
    if variant_name not in GAN_VARIANTS:
        raise A3Error(f"--variant {variant_name!r} is not one of {', '.join(GAN_VARIANTS)}")
    variant = GAN_VARIANTS[variant_name]
    default = lambda name, value: values[name] if values[name] is not None else value  # noqa: E731
    dataset, image_size = default("dataset", GAN_DEFAULTS["dataset"]), default("image_size", GAN_DEFAULTS["image_size"])
    channels = default("channels", GAN_DEFAULTS["channels"])
    check_image_size(variant_name, dataset, image_size, channels)
    settings = GanSettings(
        variant=variant_name,
        dataset=dataset,
        image_size=image_size,
        channels=channels,
        batch_size=default("batch_size", GAN_DEFAULTS["batch_size"]),
        lr=default("lr", variant.lr64 if image_size == PHOTO_SIZE and variant.lr64 else variant.lr),
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
    )
    if settings.augment is not None:
        parse_policy(settings.augment, settings.channels)
    for name in ("batch_size", "noise_dim", "n_critic"):
        if getattr(settings, name) < 1:
            raise A3Error(f"--{name.replace('_', '-')} must be at least 1")
    if not settings.lr > 0:
        raise A3Error("--lr must be positive")
    if not (0 <= settings.beta1 < 1 and 0 <= settings.beta2 < 1):
        raise A3Error("Adam betas must be in [0, 1)")
    if not 0 <= settings.ema < 1:
        raise A3Error(f"--ema {settings.ema} must be in [0, 1) (0: no averaged generator)")
    return settings


def check_image_size(variant: str, dataset: str, image_size: int, channels: int) -> None:
    """28 px: the assignment's grayscale networks; 64 px: the DCGAN paper's, on a folder of pictures."""
    if image_size not in GAN_IMAGE_SIZES:
        raise A3Error(f"--image-size {image_size}: choose {' or '.join(map(str, GAN_IMAGE_SIZES))}")
    if channels not in (1, 3):
        raise A3Error(f"--channels {channels}: choose 1 (gray) or 3 (RGB)")
    if image_size == DIGIT_SIZE and channels != 1:
        raise A3Error("--channels 3 needs --image-size 64: the assignment's 28-px networks draw grayscale digits")
    if image_size == PHOTO_SIZE and GAN_VARIANTS[variant].generator64 is None:
        with64 = ", ".join(v.name for v in GAN_VARIANTS.values() if v.generator64)
        raise A3Error(f"--image-size 64: the 64-px networks are for {with64}, not {variant}")
    if image_size == PHOTO_SIZE and dataset in ("mnist", "fashion-mnist"):
        raise A3Error("--image-size 64 trains on your own pictures: give --dataset FOLDER")


def target_iterations(config: GanConfig, saved_total: int | None, batches_per_epoch: int, n_critic: int) -> int:
    """--iterations, else --epochs of the data, else the resumed run's own target, else the assignment's length."""
    if config.iterations is not None:
        return config.iterations
    if config.epochs is not None:
        return math.ceil(config.epochs * batches_per_epoch / n_critic)
    if saved_total is not None:
        return int(saved_total)
    return GAN_DEFAULTS["iterations"]
