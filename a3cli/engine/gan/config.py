"""The settings of a GAN run, each written once: its default, its help and whether it defines the run.

A field left None is filled in by `settings.resolve_settings`: the resumed run's value, else the
variant's or the assignment's default (engine/catalogue.py), which --help shows. The fields marked
`run=True` define the run: they are stored in its checkpoint and refused when changed on --resume.
Plain data (no torch): `a3 --help` reads it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Optional

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
from a3cli.engine.generative.settings import (
    batch_size_setting,
    channels_setting,
    classifier_setting,
    data_root_setting,
    dataset_setting,
    download_setting,
    ema_setting,
    epochs_setting,
    eval_every_setting,
    eval_samples_setting,
    fid_samples_setting,
    fid_setting,
    image_size_setting,
    iterations_setting,
    npy_setting,
    sample_every_setting,
)
from a3cli.engine.options import (
    IMAGE_TYPES,
    INPUTS,
    LOSS,
    MODEL,
    OPTIMISATION,
    check_limits,
    checkpoint_every_setting,
    resume_setting,
    run_folder_setting,
    seed_setting,
    setting,
    tensorboard_setting,
)


@dataclass
class GanConfig:
    """The options of `a3 gan-train`; a setting left None takes the resumed run's value, else the default."""

    variant: str = setting(None, " | ".join(GAN_VARIANTS), panel=MODEL, shown=GAN_DEFAULTS["variant"], run=True)
    dataset: str = dataset_setting(GAN_DEFAULTS["dataset"])
    batch_size: int = batch_size_setting(GAN_DEFAULTS["batch_size"])
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
    ema: float = ema_setting("generator", GAN_DEFAULTS["ema"])
    seed: int = seed_setting(run=True)
    image_size: int = image_size_setting(
        f"{DIGIT_SIZE}, or {PHOTO_SIZE}: the DCGAN paper's, on a folder", GAN_DEFAULTS["image_size"]
    )
    channels: int = channels_setting(GAN_DEFAULTS["channels"])
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
    download: bool = download_setting()
    epochs: Optional[int] = epochs_setting()
    iterations: Optional[int] = iterations_setting("Generator steps", GAN_DEFAULTS["iterations"])
    sample_every: int = sample_every_setting(None, GAN_DEFAULTS["sample_every"], run=True)
    checkpoint_every: Optional[int] = checkpoint_every_setting("iterations", "--sample-every")
    tensorboard: bool = tensorboard_setting()
    fid: bool = fid_setting()
    eval_every: int = eval_every_setting(GAN_DEFAULTS["eval_every"], run=True)
    eval_samples: int = eval_samples_setting(GAN_DEFAULTS["eval_samples"], run=True)
    fid_samples: int = fid_samples_setting(GAN_DEFAULTS["fid_samples"])
    classifier: Optional[Path] = classifier_setting()

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
    out: Path = setting(Path("samples.png"), f"The grid ({IMAGE_TYPES}).", "--out", "-o", panel=INPUTS)
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
    npy: Optional[Path] = npy_setting()
    data_root: Optional[Path] = data_root_setting()
    seed: int = seed_setting()

    def __post_init__(self) -> None:
        check_limits(self)
        if self.npy is not None and (self.interpolate is not None or self.nearest):
            raise A3Error("--npy writes the samples of a grid: leave out --interpolate and --nearest")
        if self.interpolate is not None and self.nearest:
            raise A3Error("--interpolate and --nearest draw different sheets: give one of them")
