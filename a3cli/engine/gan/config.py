"""The settings of a GAN run, each written once: its default, its help and whether it defines the run.

A field left None is filled in by `settings.resolve_settings`: the resumed run's value, else the
variant's or the assignment's default (engine/catalogue.py), which --help shows. The fields marked
`run=True` define the run: they are stored in its checkpoint and refused when changed on --resume.
Plain data (no torch): `a3 --help` reads it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, Optional

from a3cli.engine.catalogue import (
    AUGMENT_POLICIES,
    DIGIT_SIZE,
    GAN_DEFAULTS,
    GAN_VARIANTS,
    NEAREST_SAMPLES,
    PHOTO_SIZE,
    WALK_STEPS,
    augment_help,
    gan_default,
)
from a3cli.engine.errors import A3Error
from a3cli.engine.options import (
    INPUTS,
    LOSS,
    MODEL,
    OPTIMISATION,
    RUN,
    check_limits,
    checkpoint_every_setting,
    resume_setting,
    run_folder_setting,
    seed_setting,
    setting,
)


def data_root_setting() -> Any:
    return setting(None, "Where MNIST's files are, or are downloaded to.", panel=INPUTS)


FRECHET = "Fréchet distance"  # gan-train's own panel, between OPTIMISATION and RUN
UNTIL = 100_000_000  # the most iterations a count may name


@dataclass
class GanConfig:
    """The options of `a3 gan-train`; a setting left None takes the resumed run's value, else the default."""

    variant: str = setting(None, " | ".join(GAN_VARIANTS), panel=MODEL, shown=GAN_DEFAULTS["variant"], run=True)
    dataset: str = setting(
        None, "mnist | fashion-mnist | a folder of images", panel=INPUTS, shown=GAN_DEFAULTS["dataset"], run=True
    )
    batch_size: int = setting(
        None,
        "Images per batch",
        panel=OPTIMISATION,
        shown=GAN_DEFAULTS["batch_size"],
        min=1,
        max=4096,
        metavar="N",
        run=True,
    )
    lr: float = setting(None, "Adam learning rate", panel=OPTIMISATION, shown=gan_default("lr"), run=True)
    beta1: float = setting(None, "Adam beta1", panel=OPTIMISATION, shown=gan_default("beta1"), run=True)
    beta2: float = setting(None, "Adam beta2", panel=OPTIMISATION, shown=gan_default("beta2"), run=True)
    noise_dim: int = setting(
        None, "Noise dimension", panel=MODEL, shown=GAN_DEFAULTS["noise_dim"], min=1, max=4096, metavar="N", run=True
    )
    n_critic: int = setting(
        None,
        "Critic steps per generator step",
        panel=OPTIMISATION,
        shown=gan_default("n_critic"),
        min=1,
        max=100,
        metavar="N",
        run=True,
    )
    gp_weight: float = setting(
        None, "WGAN-GP gradient penalty weight λ", panel=LOSS, shown=GAN_DEFAULTS["gp_weight"], min=0.0, run=True
    )
    ema: float = setting(
        None,
        "Decay of the averaged generator, warmed up as min(DECAY, (1 + t) / (10 + t)) at update t; 0: none",
        panel=MODEL,
        shown=GAN_DEFAULTS["ema"],
        min=0.0,
        max=0.99999,
        metavar="DECAY",
        run=True,
    )
    seed: int = seed_setting(run=True)
    image_size: int = setting(
        None,
        f"{DIGIT_SIZE}, or {PHOTO_SIZE}: the DCGAN paper's, on a folder",
        panel=MODEL,
        shown=GAN_DEFAULTS["image_size"],
        run=True,
    )
    channels: int = setting(
        None, "1: grayscale; 3: RGB (at 64 px)", panel=MODEL, shown=GAN_DEFAULTS["channels"], run=True
    )
    # The DiffAugment policy; a new run's default depends on its data (catalogue.GanVariant.augment_below).
    augment: Optional[str] = setting(
        None,
        f"DiffAugment of every image the discriminator sees: none, or {','.join(AUGMENT_POLICIES)} (RGB)",
        panel=OPTIMISATION,
        shown=augment_help(),
        metavar="POLICY",
        run=True,
    )
    out: Path = run_folder_setting(GAN_DEFAULTS["out"], "grids, curves, metrics.json, checkpoint")
    resume: bool = resume_setting()
    data_root: Optional[Path] = data_root_setting()
    download: bool = setting(
        True, "Let torchvision download MNIST or Fashion-MNIST.", "--download/--no-download", panel=INPUTS
    )
    epochs: Optional[int] = setting(
        None,
        "Passes over the data, instead of the default length.",
        panel=OPTIMISATION,
        min=1,
        max=100000,
        metavar="N",
    )
    iterations: Optional[int] = setting(
        None,
        "Generator steps; overrides --epochs",
        panel=OPTIMISATION,
        shown=GAN_DEFAULTS["iterations"],
        min=1,
        max=UNTIL,
        metavar="N",
    )
    sample_every: int = setting(
        GAN_DEFAULTS["sample_every"],
        "Draw a grid of fixed noise every N iterations.",
        panel=RUN,
        min=1,
        max=UNTIL,
        metavar="N",
    )
    checkpoint_every: Optional[int] = checkpoint_every_setting("iterations", "--sample-every")
    fid: bool = setting(True, "Measure the distance while training and at the end.", "--fid/--no-fid", panel=FRECHET)
    eval_every: int = setting(
        None,
        "Measure every N iterations; 0: at the end",
        panel=FRECHET,
        shown=GAN_DEFAULTS["eval_every"],
        min=0,
        max=UNTIL,
        metavar="N",
    )
    eval_samples: int = setting(
        None,
        "Generated images per measurement",
        panel=FRECHET,
        shown=GAN_DEFAULTS["eval_samples"],
        min=2,
        max=50000,
        metavar="N",
    )
    fid_samples: int = setting(
        GAN_DEFAULTS["fid_samples"],
        "Generated and real images at the end.",
        panel=FRECHET,
        min=2,
        max=50000,
        metavar="N",
    )
    classifier: Optional[Path] = setting(
        None, "MNIST classifier whose features it takes", panel=FRECHET, shown="shipped MNIST classifier"
    )

    def __post_init__(self) -> None:
        """Checked when made, and again when `resolve_settings` fills in the defaults."""
        check_limits(self)
        if self.lr is not None and not self.lr > 0:
            raise A3Error("--lr must be positive")
        if not all(0 <= beta < 1 for beta in (self.beta1, self.beta2) if beta is not None):
            raise A3Error("Adam betas must be in [0, 1)")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise A3Error(f"--ema {self.ema} must be in [0, 1) (0: no averaged generator)")


@dataclass
class GanSampleConfig:
    """The options of `a3 gan-sample`: which generator, and which sheet it draws (a grid, latent walks or
    samples beside their nearest training images)."""

    checkpoint: Path = setting(
        MISSING, "A gan-train run folder (its best.pt), or a checkpoint.", "--checkpoint", "-c", panel=INPUTS
    )
    n: int = setting(64, "How many samples.", "-n", "--num", panel=INPUTS, min=1, max=10000, metavar="N")
    out: Path = setting(Path("samples.png"), "The grid (PNG).", "--out", "-o", panel=INPUTS)
    nrow: Optional[int] = setting(None, "Images per row", panel=INPUTS, shown="√n", min=1, max=10000, metavar="N")
    interpolate: Optional[int] = setting(
        None,
        f"Instead: ROWS latent walks, each {WALK_STEPS} steps between two noise vectors.",
        panel=INPUTS,
        min=1,
        max=64,
        metavar="ROWS",
    )
    nearest: bool = setting(
        False,
        f"Instead: {NEAREST_SAMPLES} samples, each beside its nearest training image (in feature space).",
        panel=INPUTS,
    )
    data_root: Optional[Path] = data_root_setting()
    seed: int = seed_setting()

    def __post_init__(self) -> None:
        check_limits(self)
        if self.interpolate is not None and self.nearest:
            raise A3Error("--interpolate and --nearest draw different sheets: give one of them")
