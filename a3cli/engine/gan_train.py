"""Training a GAN (vanilla, least squares, DCGAN, WGAN-GP): the loop, its pictures and its checkpoints.

One iteration is one generator step after `n_critic` discriminator (critic) steps,
each on a fresh real batch: 1 for the assignment's GANs, 5 for WGAN-GP as in its
paper. The batches come from a per-epoch permutation that depends only on the seed
and the epoch, and the checkpoint holds both networks, both optimisers, every RNG
state and the step, so `resume=True` continues the very same run: stopping and
resuming gives the same weights as running straight through.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from a3cli.engine import losses
from a3cli.engine.checkpoints import load_checkpoint, save_checkpoint
from a3cli.engine.device import rng_state, set_rng_state
from a3cli.engine.errors import A3Error
from a3cli.engine.files import write_json
from a3cli.engine.gan import (NOISE_DIM, dc_discriminator, dc_generator, discriminator, generator,
                              initialize_weights, sample_noise, wgan_critic)
from a3cli.engine.gan_data import ImageSet, load_dataset, to_model_range
from a3cli.engine.progress import Progress, report

__all__ = ["Variant", "VARIANTS", "GanConfig", "GanTraining", "prepare_gan", "train_gan", "load_generator", "generate", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
KIND = "gan"


@dataclass(frozen=True)
class Variant:
    """Which networks, which losses, and the optimiser settings its paper (or the assignment) uses."""

    make_discriminator: Callable[[], nn.Module]
    make_generator: Callable[[int], nn.Module]
    discriminator_loss: Callable[..., Tensor]
    generator_loss: Callable[[Tensor], Tensor]
    lr: float
    betas: tuple[float, float]
    n_critic: int
    gradient_penalty: bool = False


VARIANTS: dict[str, Variant] = {
    "gan": Variant(discriminator, generator, losses.discriminator_loss, losses.generator_loss, 1e-3, (0.5, 0.999), 1),
    "lsgan": Variant(discriminator, generator, losses.ls_discriminator_loss, losses.ls_generator_loss,
                     1e-3, (0.5, 0.999), 1),
    "dcgan": Variant(dc_discriminator, dc_generator, losses.discriminator_loss, losses.generator_loss,
                     1e-3, (0.5, 0.999), 1),
    # Gulrajani et al. 2017, Algorithm 1: alpha 1e-4, beta1 0, beta2 0.9, n_critic 5, lambda 10.
    "wgan-gp": Variant(wgan_critic, dc_generator, losses.wgan_critic_loss, losses.wgan_generator_loss,
                       1e-4, (0.0, 0.9), 5, gradient_penalty=True),
}

# Settings that define a run. None means: the checkpoint's value when resuming, else the default.
RUN_SETTINGS = ("variant", "dataset", "batch_size", "lr", "beta1", "beta2", "noise_dim", "n_critic", "gp_weight")


@dataclass
class GanConfig:
    out: Path = Path("runs/gan")
    variant: Optional[str] = None          # gan | lsgan | dcgan | wgan-gp (default gan)
    dataset: Optional[str] = None          # mnist | fashion-mnist | folder (default mnist)
    batch_size: Optional[int] = None       # default 128
    lr: Optional[float] = None             # default: the variant's
    beta1: Optional[float] = None
    beta2: Optional[float] = None
    noise_dim: Optional[int] = None        # default 96
    n_critic: Optional[int] = None         # default: the variant's
    gp_weight: Optional[float] = None      # default 10 (WGAN-GP only)
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
    grid_size: int = 64


@dataclass
class Run:
    """The settings of a run, fixed when it starts."""

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


@dataclass
class State:
    generator: nn.Module
    discriminator: nn.Module
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    fixed_noise: Tensor
    step: int = 0
    seconds: float = 0.0
    history: dict[str, list[float]] = field(default_factory=lambda: {"d_loss": [], "g_loss": []})


def resolve_run(config: GanConfig, saved: dict[str, Any] | None) -> Run:
    """Settings from the options, the resumed checkpoint and the variant's defaults, checked."""
    values: dict[str, Any] = {}
    for name in RUN_SETTINGS:
        given = getattr(config, name)
        if saved is not None:
            if given is not None and given != saved[name]:
                flag = "--" + name.replace("_", "-")
                raise A3Error(f"{flag} {given} differs from the run being resumed ({saved[name]}); "
                              "leave it out, or start a new run in another --out")
            values[name] = saved[name]
        else:
            values[name] = given
    variant_name = values["variant"] or "gan"
    if variant_name not in VARIANTS:
        raise A3Error(f"--variant {variant_name!r} is not one of {', '.join(VARIANTS)}")
    variant = VARIANTS[variant_name]
    run = Run(
        variant=variant_name,
        dataset=values["dataset"] or "mnist",
        batch_size=values["batch_size"] or 128,
        lr=values["lr"] if values["lr"] is not None else variant.lr,
        beta1=values["beta1"] if values["beta1"] is not None else variant.betas[0],
        beta2=values["beta2"] if values["beta2"] is not None else variant.betas[1],
        noise_dim=values["noise_dim"] or NOISE_DIM,
        n_critic=values["n_critic"] or variant.n_critic,
        gp_weight=values["gp_weight"] if values["gp_weight"] is not None else 10.0,
        seed=saved["seed"] if saved is not None else config.seed,
    )
    for name in ("batch_size", "noise_dim", "n_critic"):
        if getattr(run, name) < 1:
            raise A3Error(f"--{name.replace('_', '-')} must be at least 1")
    if not run.lr > 0:
        raise A3Error("--lr must be positive")
    if not (0 <= run.beta1 < 1 and 0 <= run.beta2 < 1):
        raise A3Error("Adam betas must be in [0, 1)")
    return run


def build(run: Run, device: torch.device) -> State:
    variant = VARIANTS[run.variant]
    G = variant.make_generator(run.noise_dim).to(device)
    D = variant.make_discriminator().to(device)
    G.apply(initialize_weights)
    D.apply(initialize_weights)
    betas = (run.beta1, run.beta2)
    fixed = sample_noise(64, run.noise_dim, generator=torch.Generator().manual_seed(run.seed))
    return State(G, D, torch.optim.Adam(G.parameters(), lr=run.lr, betas=betas),
                 torch.optim.Adam(D.parameters(), lr=run.lr, betas=betas), fixed)


def checkpoint_dict(run: Run, state: State) -> dict[str, Any]:
    return {
        "kind": KIND, "run": asdict(run), "step": state.step, "seconds": state.seconds,
        "generator": state.generator.state_dict(), "discriminator": state.discriminator.state_dict(),
        "g_optimizer": state.g_optimizer.state_dict(), "d_optimizer": state.d_optimizer.state_dict(),
        "fixed_noise": state.fixed_noise, "history": state.history, "rng": rng_state(),
    }


def restore(state: State, saved: dict[str, Any]) -> None:
    state.generator.load_state_dict(saved["generator"])
    state.discriminator.load_state_dict(saved["discriminator"])
    state.g_optimizer.load_state_dict(saved["g_optimizer"])
    state.d_optimizer.load_state_dict(saved["d_optimizer"])
    state.fixed_noise = saved["fixed_noise"]
    state.step, state.seconds = int(saved["step"]), float(saved["seconds"])
    state.history = {name: list(values) for name, values in saved["history"].items()}
    set_rng_state(saved["rng"])


class Batches:
    """Batch b of the run: epoch b // per_epoch of a permutation seeded by (seed, epoch); full batches only."""

    def __init__(self, images: Tensor, batch_size: int, seed: int, device: torch.device) -> None:
        self.images, self.batch_size, self.seed, self.device = images, batch_size, seed, device
        self.per_epoch = images.shape[0] // batch_size
        self.epoch, self.order = -1, None

    def __getitem__(self, b: int) -> Tensor:
        epoch, position = divmod(b, self.per_epoch)
        if epoch != self.epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self.epoch, self.order = epoch, torch.randperm(self.images.shape[0], generator=g)
        index = self.order[position * self.batch_size:(position + 1) * self.batch_size]
        return self.images[index].to(self.device, non_blocking=True)


def train_step(run: Run, state: State, batches: Batches, device: torch.device) -> tuple[float, float]:
    """n_critic discriminator steps, then one generator step; returns (d_loss, g_loss)."""
    variant = VARIANTS[run.variant]
    G, D = state.generator, state.discriminator
    for j in range(run.n_critic):
        real = batches[state.step * run.n_critic + j]
        fake = G(sample_noise(run.batch_size, run.noise_dim, device)).detach()
        scores_real, scores_fake = D(real), D(fake)
        if variant.gradient_penalty:
            penalty = losses.gradient_penalty(D, real, fake)
            d_loss = variant.discriminator_loss(scores_real, scores_fake, penalty, run.gp_weight)
        else:
            d_loss = variant.discriminator_loss(scores_real, scores_fake)
        state.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        state.d_optimizer.step()
    g_loss = variant.generator_loss(D(G(sample_noise(run.batch_size, run.noise_dim, device))))
    state.g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    state.g_optimizer.step()
    return d_loss.item(), g_loss.item()


@torch.no_grad()
def generate(G: nn.Module, noise: Tensor) -> Tensor:
    """Images (N, 1, 28, 28) in [0, 1] from noise, with BatchNorm in eval mode (its running statistics)."""
    was_training = G.training
    G.eval()
    try:
        images = G(noise.to(next(G.parameters()).device))
    finally:
        G.train(was_training)
    return images.reshape(-1, 1, 28, 28).add(1).div(2).clamp(0, 1).cpu()


def save_grid(G: nn.Module, noise: Tensor, path: Path) -> Path:
    from a3cli.engine.images import make_grid, save_image

    images = generate(G, noise)
    return save_image(make_grid(images, nrow=int(math.ceil(math.sqrt(len(images))))), path)


class DeferredInterrupt:
    """Ctrl-C during an iteration is held until the iteration ends, so the checkpoint is consistent.

    A second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self) -> "DeferredInterrupt":
        try:
            self.previous = signal.signal(signal.SIGINT, self.handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def frechet_for(run: Run, data: ImageSet, G: nn.Module, config: GanConfig) -> dict[str, Any]:
    """The Fréchet distance (our MNIST classifier's features) of fid_samples generated vs real images."""
    if run.dataset != "mnist":
        return {"frechet_distance": None,
                "frechet_note": "computed only for --dataset mnist (the features are an MNIST classifier's)"}
    from a3cli.engine.frechet import frechet_distance, load_classifier

    try:
        classifier, info = load_classifier(config.classifier, next(G.parameters()).device)
    except A3Error as error:
        return {"frechet_distance": None, "frechet_note": str(error)}
    g = torch.Generator().manual_seed(run.seed + 1)
    n_real = min(config.fid_samples, len(data))
    real01 = data.images[torch.randperm(len(data), generator=g)[:n_real]].reshape(n_real, 784).float().div(255)
    fake01 = torch.cat([generate(G, sample_noise(len(chunk), run.noise_dim, generator=g)).reshape(-1, 784)
                        for chunk in torch.arange(config.fid_samples).split(500)])
    return {"frechet_distance": frechet_distance(real01, fake01, classifier),
            "frechet_samples": {"real": n_real, "generated": config.fid_samples},
            "classifier_test_accuracy": info.get("test_accuracy")}


class GanTraining:
    """A run ready to train: settings checked, data loaded, networks built or restored.

    Made by `prepare_gan` so that every user mistake is reported before training
    starts, and so that the caller knows `total` and `step` (for a progress bar).
    """

    def __init__(self, config: GanConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        self.out = Path(config.out)
        self.checkpoint_path = self.out / CHECKPOINT_NAME
        saved = None
        if config.resume:
            saved = load_checkpoint(self.checkpoint_path, kind=KIND)
        elif self.checkpoint_path.exists():
            raise A3Error(f"'{self.out}' already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, "
                          "or choose another --out")
        self.run = resolve_run(config, saved["run"] if saved else None)
        for name in ("epochs", "sample_every", "fid_samples"):
            if getattr(config, name) < 1:
                raise A3Error(f"--{name.replace('_', '-')} must be at least 1")
        if config.iterations is not None and config.iterations < 1:
            raise A3Error("--iterations must be at least 1")
        if config.fid and config.classifier is not None and not Path(config.classifier).is_file():
            raise A3Error(f"--classifier '{config.classifier}' does not exist")
        self.data = load_dataset(self.run.dataset, config.data_root, config.download)
        if len(self.data) < self.run.batch_size:
            raise A3Error(f"the data set has {len(self.data)} images, fewer than --batch-size {self.run.batch_size}")
        self.state = build(self.run, device)
        if saved is not None:
            restore(self.state, saved)
        self.batches = Batches(to_model_range(self.data.images), self.run.batch_size, self.run.seed, device)
        self.total = config.iterations or math.ceil(config.epochs * self.batches.per_epoch / self.run.n_critic)

    @property
    def step(self) -> int:
        return self.state.step

    def save(self) -> None:
        save_checkpoint(checkpoint_dict(self.run, self.state), self.checkpoint_path)

    def train(self, progress: Progress | None = None) -> dict[str, Any]:
        """Train up to `total`; write grids, curves, GIF, checkpoint and metrics.json; return the metrics.

        A non-finite loss raises A3Error and leaves the last good checkpoint. Ctrl-C
        finishes the current iteration, writes the checkpoint and pictures, then re-raises.
        """
        config, run, state = self.config, self.run, self.state
        checkpoint_every = config.checkpoint_every or config.sample_every
        samples = self.out / "samples"
        if state.step == 0:
            save_grid(state.generator, state.fixed_noise, samples / f"iter_{0:06d}.png")
        with DeferredInterrupt() as interrupt:
            while state.step < self.total:
                started = time.perf_counter()
                d_loss, g_loss = train_step(run, state, self.batches, self.device)
                if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                    kept = (f"the last good checkpoint, '{self.checkpoint_path}', is kept"
                            if self.checkpoint_path.exists() else "no checkpoint was written yet")
                    raise A3Error(f"non-finite loss at iteration {state.step + 1} (d_loss {d_loss}, g_loss "
                                  f"{g_loss}): training stopped; {kept}; try a smaller --lr")
                state.step += 1
                state.seconds += time.perf_counter() - started
                state.history["d_loss"].append(d_loss)
                state.history["g_loss"].append(g_loss)
                report(progress, state.step, {"d_loss": d_loss, "g_loss": g_loss})
                last = state.step == self.total or interrupt.requested
                if state.step % config.sample_every == 0 or last:
                    save_grid(state.generator, state.fixed_noise, samples / f"iter_{state.step:06d}.png")
                if state.step % checkpoint_every == 0 or last:
                    self.save()
                if interrupt.requested:
                    write_pictures(self.out, state, run.variant)
                    raise KeyboardInterrupt
        self.save()
        write_pictures(self.out, state, run.variant)
        metrics: dict[str, Any] = {
            "variant": run.variant, "dataset": self.data.source, "iterations": state.step,
            "settings": asdict(run),
            "train_seconds": round(state.seconds, 2),
            "iterations_per_second": round(state.step / state.seconds, 3) if state.seconds > 0 else None,
            "final_d_loss": state.history["d_loss"][-1] if state.history["d_loss"] else None,
            "final_g_loss": state.history["g_loss"][-1] if state.history["g_loss"] else None,
            "device": str(self.device),
        }
        if config.fid:
            metrics.update(frechet_for(run, self.data, state.generator, config))
        metrics["files"] = {"checkpoint": str(self.checkpoint_path), "samples": str(self.out / "samples.png"),
                            "animation": str(self.out / "samples.gif"), "losses": str(self.out / "losses.png")}
        write_json(self.out / "metrics.json", metrics)
        return metrics


def prepare_gan(config: GanConfig, device: torch.device) -> GanTraining:
    """Check the settings, load the data, build (or restore) the networks: everything but training."""
    return GanTraining(config, device)


def train_gan(config: GanConfig, device: torch.device, progress: Progress | None = None) -> dict[str, Any]:
    """Train (or resume) a GAN in config.out and return its metrics (see GanTraining.train)."""
    return prepare_gan(config, device).train(progress)


def write_pictures(out: Path, state: State, variant: str) -> None:
    """The latest grid as samples.png, every grid so far as samples.gif, and the loss curves."""
    from PIL import Image

    from a3cli.engine.images import save_gif, save_image
    from a3cli.engine.plots import loss_curves_figure

    frames = []
    for path in sorted((out / "samples").glob("iter_*.png")):
        with Image.open(path) as picture:
            frames.append(picture.convert("RGB"))
    if frames:
        save_image(frames[-1], out / "samples.png")
        save_gif(frames, out / "samples.gif", duration_ms=300)
    if state.history["d_loss"]:
        loss_curves_figure(state.history, out / "losses.png", title=f"{variant} losses (iteration {state.step})")


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a `gan` checkpoint, in eval mode, with the run's settings."""
    saved = load_checkpoint(path, kind=KIND)
    run = saved["run"]
    G = VARIANTS[run["variant"]].make_generator(run["noise_dim"])
    G.load_state_dict(saved["generator"])
    return G.to(device).eval(), {**run, "step": saved["step"]}
