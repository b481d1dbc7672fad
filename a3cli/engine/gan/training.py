"""Training a GAN (vanilla, least squares, DCGAN, WGAN-GP) on the shared run skeleton (engine/runs.py).

One iteration is one generator step after `n_critic` discriminator (critic) steps,
each on a fresh real batch: 1 for the assignment's GANs, 5 for WGAN-GP as in its
paper. The batches come from a per-epoch permutation that depends only on the seed
and the epoch, and the checkpoint holds both networks, both optimisers, every RNG
state and the step, so `resume=True` continues the very same run: stopping and
resuming gives the same weights as running straight through.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from a3cli.engine.catalogue import GAN_DEFAULTS, GAN_VARIANTS, GanVariant, load
from a3cli.engine.checkpoints import load_checkpoint
from a3cli.engine.device import seed_everything, seeded_generator, set_rng_state
from a3cli.engine.errors import A3Error
from a3cli.engine.files import write_json
from a3cli.engine.gan.data import Batches, load_dataset, to_model_range
from a3cli.engine.gan.frechet import frechet_report
from a3cli.engine.gan.networks import initialize_weights, sample_noise
from a3cli.engine.gan.pictures import save_grid, write_pictures
from a3cli.engine.layers.losses import gradient_penalty
from a3cli.engine.progress import Progress
from a3cli.engine.runs import checkpoint_path, merge_settings, open_run, save_run, train_loop

KIND = "gan"
GRID_SIZE = 64  # fixed-noise samples in each grid


@dataclass
class GanConfig:
    """The options of `a3 gan-train`; a setting left None takes the resumed run's value, else the default."""

    out: Path = Path("runs/gan")
    variant: Optional[str] = None          # gan | lsgan | dcgan | wgan-gp
    dataset: Optional[str] = None          # mnist | fashion-mnist | folder
    batch_size: Optional[int] = None
    lr: Optional[float] = None             # default: the variant's
    beta1: Optional[float] = None
    beta2: Optional[float] = None
    noise_dim: Optional[int] = None
    n_critic: Optional[int] = None         # default: the variant's
    gp_weight: Optional[float] = None      # WGAN-GP only
    epochs: int = 10
    iterations: Optional[int] = None       # overrides epochs
    sample_every: int = 250
    checkpoint_every: Optional[int] = None  # default: sample_every
    seed: int = 0
    resume: bool = False
    data_root: Optional[Path] = None
    download: bool = True
    fid: bool = True
    fid_samples: int = 5000
    classifier: Optional[Path] = None


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
    seed: int


def resolve_settings(config: GanConfig, saved: dict[str, Any] | None) -> GanSettings:
    """Settings from the options, the resumed run and the variant's defaults, checked."""
    names = ("variant", "dataset", "batch_size", "lr", "beta1", "beta2", "noise_dim", "n_critic", "gp_weight")
    values = merge_settings({name: getattr(config, name) for name in names}, saved)
    variant_name = values["variant"] or GAN_DEFAULTS["variant"]
    if variant_name not in GAN_VARIANTS:
        raise A3Error(f"--variant {variant_name!r} is not one of {', '.join(GAN_VARIANTS)}")
    variant = GAN_VARIANTS[variant_name]
    default = lambda name, value: values[name] if values[name] is not None else value  # noqa: E731
    settings = GanSettings(
        variant=variant_name, dataset=default("dataset", GAN_DEFAULTS["dataset"]),
        batch_size=default("batch_size", GAN_DEFAULTS["batch_size"]), lr=default("lr", variant.lr),
        beta1=default("beta1", variant.betas[0]), beta2=default("beta2", variant.betas[1]),
        noise_dim=default("noise_dim", GAN_DEFAULTS["noise_dim"]), n_critic=default("n_critic", variant.n_critic),
        gp_weight=default("gp_weight", GAN_DEFAULTS["gp_weight"]),
        seed=saved["seed"] if saved is not None else config.seed,
    )
    for name in ("batch_size", "noise_dim", "n_critic"):
        if getattr(settings, name) < 1:
            raise A3Error(f"--{name.replace('_', '-')} must be at least 1")
    if not settings.lr > 0:
        raise A3Error("--lr must be positive")
    if not (0 <= settings.beta1 < 1 and 0 <= settings.beta2 < 1):
        raise A3Error("Adam betas must be in [0, 1)")
    return settings


@dataclass
class GanNetworks:
    """The two networks, their optimisers and losses, and the noise of the sample grids."""

    variant: GanVariant
    generator: nn.Module
    discriminator: nn.Module
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    fixed_noise: Tensor
    discriminator_loss: Any = field(init=False)
    generator_loss: Any = field(init=False)

    def __post_init__(self) -> None:
        self.discriminator_loss = load(self.variant.discriminator_loss)
        self.generator_loss = load(self.variant.generator_loss)


def build_networks(settings: GanSettings, device: torch.device) -> GanNetworks:
    """The variant's networks with the assignment's initialisation, from the run's seed."""
    seed_everything(settings.seed)  # the seeding rule (engine/device.py): what ran before cannot matter
    variant = GAN_VARIANTS[settings.variant]
    G = load(variant.generator)(settings.noise_dim).to(device)
    D = load(variant.discriminator)().to(device)
    G.apply(initialize_weights)
    D.apply(initialize_weights)
    betas = (settings.beta1, settings.beta2)
    fixed = sample_noise(GRID_SIZE, settings.noise_dim, generator=seeded_generator(settings.seed))
    return GanNetworks(variant, G, D, torch.optim.Adam(G.parameters(), lr=settings.lr, betas=betas),
                       torch.optim.Adam(D.parameters(), lr=settings.lr, betas=betas), fixed)


def train_step(settings: GanSettings, nets: GanNetworks, batches: Batches, step: int,
               device: torch.device) -> tuple[float, float]:
    """n_critic discriminator steps, then one generator step; returns (d_loss, g_loss)."""
    G, D = nets.generator, nets.discriminator
    for j in range(settings.n_critic):
        real = batches[step * settings.n_critic + j]
        fake = G(sample_noise(settings.batch_size, settings.noise_dim, device)).detach()
        scores_real, scores_fake = D(real), D(fake)
        if nets.variant.gradient_penalty:
            penalty = gradient_penalty(D, real, fake)
            d_loss = nets.discriminator_loss(scores_real, scores_fake, penalty, settings.gp_weight)
        else:
            d_loss = nets.discriminator_loss(scores_real, scores_fake)
        nets.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        nets.d_optimizer.step()
    g_loss = nets.generator_loss(D(G(sample_noise(settings.batch_size, settings.noise_dim, device))))
    nets.g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    nets.g_optimizer.step()
    return d_loss.item(), g_loss.item()


class GanTraining:
    """A run ready to train: settings checked, data loaded, networks built or restored.

    Made by `prepare_gan` so that every user mistake is reported before training
    starts, and so that the caller knows `total` and `step` (for a progress bar).
    """

    def __init__(self, config: GanConfig, device: torch.device) -> None:
        self.config, self.device, self.out = config, device, Path(config.out)
        for name in ("epochs", "sample_every", "fid_samples"):
            if getattr(config, name) < 1:
                raise A3Error(f"--{name.replace('_', '-')} must be at least 1")
        if config.iterations is not None and config.iterations < 1:
            raise A3Error("--iterations must be at least 1")
        saved = open_run(self.out, KIND, config.resume)
        self.settings = resolve_settings(config, saved["run"] if saved else None)
        if config.fid and config.classifier is not None and not Path(config.classifier).is_file():
            raise A3Error(f"--classifier '{config.classifier}' does not exist")
        self.data = load_dataset(self.settings.dataset, config.data_root, config.download)
        if len(self.data) < self.settings.batch_size:
            raise A3Error(f"the data set has {len(self.data)} images, fewer than --batch-size "
                          f"{self.settings.batch_size}")
        self.nets = build_networks(self.settings, device)
        self.step, self.seconds = 0, 0.0
        self.history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
        if saved is not None:
            self.restore(saved)
        self.batches = Batches(to_model_range(self.data.images), self.settings.batch_size, self.settings.seed, device)
        self.total = config.iterations or math.ceil(config.epochs * self.batches.per_epoch / self.settings.n_critic)

    def restore(self, saved: dict[str, Any]) -> None:
        nets = self.nets
        nets.generator.load_state_dict(saved["generator"])
        nets.discriminator.load_state_dict(saved["discriminator"])
        nets.g_optimizer.load_state_dict(saved["g_optimizer"])
        nets.d_optimizer.load_state_dict(saved["d_optimizer"])
        nets.fixed_noise = saved["fixed_noise"]
        self.step, self.seconds = int(saved["step"]), float(saved["seconds"])
        self.history = {name: list(values) for name, values in saved["history"].items()}
        set_rng_state(saved["rng"])

    def save(self) -> None:
        nets = self.nets
        save_run(self.out, KIND, {
            "run": asdict(self.settings), "step": self.step, "seconds": self.seconds,
            "generator": nets.generator.state_dict(), "discriminator": nets.discriminator.state_dict(),
            "g_optimizer": nets.g_optimizer.state_dict(), "d_optimizer": nets.d_optimizer.state_dict(),
            "fixed_noise": nets.fixed_noise, "history": self.history,
        })

    def save_grid(self) -> None:
        save_grid(self.nets.generator, self.nets.fixed_noise, self.out / "samples" / f"iter_{self.step:06d}.png")

    def train_step(self) -> dict[str, float]:
        started = time.perf_counter()
        d_loss, g_loss = train_step(self.settings, self.nets, self.batches, self.step, self.device)
        self.step += 1
        self.seconds += time.perf_counter() - started
        self.history["d_loss"].append(d_loss)
        self.history["g_loss"].append(g_loss)
        if math.isfinite(d_loss) and math.isfinite(g_loss) and (
                self.step % self.config.sample_every == 0 or self.step == self.total):
            self.save_grid()
        return {"d_loss": d_loss, "g_loss": g_loss}

    def stopped(self) -> None:
        self.save_grid()
        self.write_pictures()

    def write_pictures(self) -> None:
        write_pictures(self.out, self.history, f"{self.settings.variant} losses (iteration {self.step})")

    def train(self, progress: Progress | None = None) -> dict[str, Any]:
        """Train up to `total`; write grids, curves, GIF, checkpoint and metrics.json; return the metrics.

        A non-finite loss raises A3Error and leaves the last good checkpoint. Ctrl-C
        finishes the current iteration, writes the checkpoint and pictures, then re-raises.
        """
        config, settings = self.config, self.settings
        if self.step == 0:
            self.save_grid()
        train_loop(self, self.total, config.checkpoint_every or config.sample_every, progress)
        self.save()
        self.write_pictures()
        metrics: dict[str, Any] = {
            "variant": settings.variant, "dataset": self.data.source, "iterations": self.step,
            "settings": asdict(settings),
            "train_seconds": round(self.seconds, 2),
            "iterations_per_second": round(self.step / self.seconds, 3) if self.seconds > 0 else None,
            "final_d_loss": self.history["d_loss"][-1] if self.history["d_loss"] else None,
            "final_g_loss": self.history["g_loss"][-1] if self.history["g_loss"] else None,
            "device": str(self.device),
        }
        if config.fid:
            metrics.update(frechet_report(settings.dataset, self.data.images, self.nets.generator,
                                          settings.noise_dim, settings.seed, config.fid_samples, config.classifier))
        metrics["files"] = {"checkpoint": str(checkpoint_path(self.out)), "samples": str(self.out / "samples.png"),
                            "animation": str(self.out / "samples.gif"), "losses": str(self.out / "losses.png")}
        write_json(self.out / "metrics.json", metrics)
        return metrics


def prepare_gan(config: GanConfig, device: torch.device) -> GanTraining:
    """Check the settings, load the data, build (or restore) the networks: everything but training."""
    return GanTraining(config, device)


def train_gan(config: GanConfig, device: torch.device, progress: Progress | None = None) -> dict[str, Any]:
    """Train (or resume) a GAN in config.out and return its metrics (see GanTraining.train)."""
    return prepare_gan(config, device).train(progress)


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a `gan` checkpoint, in eval mode, with the run's settings."""
    saved = load_checkpoint(path, kind=KIND)
    run = saved["run"]
    G = load(GAN_VARIANTS[run["variant"]].generator)(run["noise_dim"])
    G.load_state_dict(saved["generator"])
    return G.to(device).eval(), {**run, "step": saved["step"]}
