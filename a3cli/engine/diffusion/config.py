"""The settings of a diffusion run and of sampling from one, each written once: its default, its help and
whether it defines the run.

A field left None is filled in by `settings.resolve_settings`: the resumed run's value, else the default
(engine/catalogue.py DIFFUSION_DEFAULTS), which --help shows. The fields marked `run=True` define the run,
its measuring and picture schedule included: they are stored in its checkpoint, taken from it on --resume and
refused when changed. Plain data (no torch): `a3 --help` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from a3cli.engine.catalogue import DIFFUSION_DEFAULTS, DIFFUSION_OBJECTIVES, DIFFUSION_SCHEDULES, PRECISIONS
from a3cli.engine.errors import A3Error
from a3cli.engine.files import SHIPPED_DIFFUSION
from a3cli.engine.generative.settings import (
    FRECHET,
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
    image_sizes_help,
    iterations_setting,
    npy_setting,
    sample_every_setting,
)
from a3cli.engine.options import (
    IMAGE_TYPES,
    INPUTS,
    LOSS,
    METHOD,
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

D = DIFFUSION_DEFAULTS


@dataclass
class DiffusionConfig:
    """The options of `a3 diffusion-train`; a setting left None takes the resumed run's value, else the default."""

    dataset: str = dataset_setting(D["dataset"])
    timesteps: int = setting(
        None, "Diffusion steps T", panel=MODEL, shown=D["timesteps"], min=2, max=10000, metavar="T", run=True
    )
    schedule: str = setting(
        None, " | ".join(DIFFUSION_SCHEDULES) + " (β_t)", panel=MODEL, shown=D["schedule"], run=True
    )
    objective: str = setting(
        None,
        "What the network predicts: noise (ε) | x0 (the image) | v (√ᾱ ε − √(1−ᾱ) x0)",
        panel=LOSS,
        shown=D["objective"],
        run=True,
    )
    min_snr: float = setting(
        None,
        "Weight each step's loss by min(SNR, γ) (min-SNR); 0: the plain mean squared error",
        panel=LOSS,
        shown=D["min_snr"],
        min=0.0,
        metavar="γ",
        run=True,
    )
    width: int = setting(
        None, "The U-Net's channels at full size", panel=MODEL, shown=D["width"], min=8, max=512, metavar="N", run=True
    )
    classes: bool = setting(
        None,
        "Learn the labels too (digits, Fashion-MNIST), for --class and --guidance when sampling",
        "--classes/--no-classes",
        panel=MODEL,
        shown="no",
        run=True,
    )
    class_dropout: float = setting(
        None,
        "With --classes: how often a label is hidden while training (classifier-free guidance)",
        panel=MODEL,
        shown=D["class_dropout"],
        min=0.0,
        max=1.0,
        metavar="P",
        run=True,
    )
    ema: float = ema_setting("model", D["ema"])
    autoguidance: float = setting(
        None,
        f"Autoguidance a: the samples are (1 + a)·f − a·g, g the model as it was at {D['guide_at']:.0%} of the run; "
        "0: none",
        panel=METHOD,
        shown=D["autoguidance"],
        min=0.0,
        metavar="A",
        run=True,
    )
    precision: str = setting(
        None,
        "float32 | bfloat16 (autocast: products and convolutions in bfloat16), training and sampling",
        panel=OPTIMISATION,
        shown="bfloat16 where the CPU or GPU computes it, else float32",
        run=True,
    )
    batch_size: int = batch_size_setting(D["batch_size"])
    lr: float = setting(None, "Adam learning rate", panel=OPTIMISATION, shown=D["lr"], run=True)
    seed: int = seed_setting(run=True)
    image_size: int = image_size_setting(image_sizes_help(), D["image_size"])
    channels: int = channels_setting(D["channels"])
    out: Path = run_folder_setting(D["out"], "grids, curves, metrics.json, checkpoint")
    resume: bool = resume_setting()
    data_root: Optional[Path] = data_root_setting()
    download: bool = download_setting()
    epochs: Optional[int] = epochs_setting()
    iterations: Optional[int] = iterations_setting("Training steps", D["iterations"])
    sample_every: int = sample_every_setting(None, D["sample_every"], run=True)
    checkpoint_every: Optional[int] = checkpoint_every_setting("iterations", "--sample-every")
    tensorboard: bool = tensorboard_setting()
    fid: bool = fid_setting()
    eval_every: int = eval_every_setting(D["eval_every"], run=True)
    eval_samples: int = eval_samples_setting(D["eval_samples"], run=True)
    eval_steps: int = setting(
        None,
        "DDIM steps of the samples measured",
        panel=FRECHET,
        shown=D["eval_steps"],
        min=1,
        max=10000,
        metavar="K",
        run=True,
    )
    fid_samples: int = fid_samples_setting(D["fid_samples"])
    classifier: Optional[Path] = classifier_setting()

    def __post_init__(self) -> None:
        """Checked when made, and again when `resolve_settings` fills in the defaults."""
        check_limits(self)
        if self.lr is not None and not self.lr > 0:
            raise A3Error("--lr must be positive")
        if self.schedule is not None and self.schedule not in DIFFUSION_SCHEDULES:
            raise A3Error(f"--schedule {self.schedule!r} is not one of {', '.join(DIFFUSION_SCHEDULES)}")
        if self.objective is not None and self.objective not in DIFFUSION_OBJECTIVES:
            raise A3Error(f"--objective {self.objective!r} is not one of {', '.join(DIFFUSION_OBJECTIVES)}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise A3Error(f"--ema {self.ema} must be in [0, 1) (0: no averaged model)")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise A3Error(f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if None not in (self.eval_steps, self.timesteps) and self.eval_steps > self.timesteps:
            raise A3Error(f"--eval-steps {self.eval_steps} is more than --timesteps {self.timesteps}")


@dataclass
class DiffusionSampleConfig:
    """The options of `a3 diffusion-sample`: which model, how it samples, and what it draws."""

    checkpoint: Path = setting(
        SHIPPED_DIFFUSION,
        "A diffusion-train run folder (its best.pt), or a checkpoint.",
        "--checkpoint",
        "-c",
        panel=INPUTS,
        shown="shipped digits model, trained with --classes",
    )
    n: int = setting(64, "How many samples.", "-n", "--num", panel=INPUTS, min=1, max=100000, metavar="N")
    out: Path = setting(Path("samples.png"), f"The grid ({IMAGE_TYPES}).", "--out", "-o", panel=INPUTS)
    nrow: Optional[int] = setting(None, "Images per row", panel=INPUTS, shown="√n", min=1, max=10000, metavar="N")
    sampler: str = setting("ddim", "ddim | ddpm (ancestral: all T steps, as the model was trained)", panel=METHOD)
    steps: Optional[int] = setting(None, "DDIM steps", panel=METHOD, shown=D["steps"], min=1, max=10000, metavar="K")
    eta: float = setting(0.0, "DDIM's noise: 0 deterministic, 1 as DDPM", panel=METHOD, min=0.0, max=1.0)
    sample_class: Optional[int] = setting(
        None, "Draw this class only (a model trained with --classes)", "--class", panel=METHOD, min=0, metavar="C"
    )
    guidance: Optional[float] = setting(
        None,
        "Classifier-free guidance w: (1 + w)·ε(x, c) − w·ε(x)",
        panel=METHOD,
        shown=f"{D['guidance']} with --class",
        min=0.0,
        metavar="W",
    )
    autoguidance: Optional[float] = setting(
        None,
        "Autoguidance a: (1 + a)·f − a·g, g the run's weaker model (without --guidance)",
        panel=METHOD,
        shown="the run's",
        min=0.0,
        metavar="A",
    )
    chain: bool = setting(
        False, "Instead: the denoising of a few samples, as a strip (PNG) and an animation (GIF).", panel=INPUTS
    )
    npy: Optional[Path] = npy_setting()
    nearest: bool = setting(
        False, "Instead: samples, each beside its nearest training image (in feature space).", panel=INPUTS
    )
    data_root: Optional[Path] = data_root_setting()
    seed: int = seed_setting()

    def __post_init__(self) -> None:
        check_limits(self)
        if self.sampler not in ("ddim", "ddpm"):
            raise A3Error(f"--sampler {self.sampler!r}: choose ddim or ddpm")
        if self.chain and self.nearest:
            raise A3Error("--chain and --nearest draw different sheets: give one of them")
        if self.npy is not None and (self.chain or self.nearest):
            raise A3Error("--npy writes the samples of a grid: leave out --chain and --nearest")
        if self.guidance is not None and self.sample_class is None:
            raise A3Error("--guidance steers towards a class: give --class C too")
