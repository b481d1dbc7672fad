"""Training a GAN (vanilla, least squares, DCGAN, WGAN-GP) on the shared run skeleton (engine/runs.py).

One iteration is one generator step after `n_critic` discriminator (critic) steps,
each on a fresh real batch: 1 for the assignment's GANs, 5 for WGAN-GP as in its
paper. The batches come from a per-epoch permutation that depends only on the seed
and the epoch, and the checkpoint holds both networks, both optimisers, the
averaged generator, every RNG state, the step, the run's target length and the
Fréchet distance history with its best, so `resume=True` continues the very same
run: stopping and resuming gives the same weights, history and best as running
straight through.

Every `eval_every` iterations the live and the averaged generator are measured
(generative/judge.py) and the better of the two, when it beats every earlier one, is
written to `best.pt`: a GAN's last iterate is often not its best (DCGAN collapses
when trained long on the 5,000 offline digits).

A run folder holds `checkpoint.pt` (the whole run: the live and the averaged
generator, the discriminator, the optimisers...) and `best.pt` (only the generator
with the lowest tracked Fréchet distance, live or averaged, ready to sample).
`gan-sample --checkpoint RUN_DIR` takes the best; given a checkpoint file it takes
the averaged generator when the run has one.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from a3cli.engine.catalogue import PHOTO_SIZE, GanVariant
from a3cli.engine.checkpoints import load_state, save_checkpoint
from a3cli.engine.device import seed_everything, seeded_generator, set_rng_state
from a3cli.engine.distributed import World, parallel, sync_batch_norm
from a3cli.engine.errors import A3Error
from a3cli.engine.files import write_json
from a3cli.engine.gan.augment import Draws, augment, parse_policy
from a3cli.engine.gan.batchnorm import fit_batchnorm
from a3cli.engine.gan.config import GanConfig
from a3cli.engine.gan.networks import (
    LOSSES,
    generate_images,
    initializer,
    judge_noise,
    make_discriminator,
    make_generator,
    sample_noise,
)
from a3cli.engine.gan.outputs import KIND, load_generator
from a3cli.engine.gan.results import GanResult, Measurement
from a3cli.engine.gan.settings import resolve_settings, target_iterations
from a3cli.engine.generative.data import Batches, FolderBatches, ImageFolder, ImageSet, load_dataset, to_model_range
from a3cli.engine.generative.ema import ema_decay, update_ema
from a3cli.engine.generative.estimates import measuring_of
from a3cli.engine.generative.folder import BEST_NAME, run_files, write_stopped_metrics
from a3cli.engine.generative.judge import PHOTO_FEATURES, Judge, digit_judge, judge_classifier, photo_judge
from a3cli.engine.generative.pictures import (
    distance_at,
    grid_path,
    log_measurement,
    model_title,
    save_grid,
    write_pictures,
)
from a3cli.engine.generative.quality import Quality
from a3cli.engine.layers.losses import gradient_penalty
from a3cli.engine.options import run_settings
from a3cli.engine.progress import Progress
from a3cli.engine.runs import open_run, save_run, train_loop
from a3cli.engine.tensorboard import RunLog

__all__ = [
    "GanConfig",
    "GanNetworks",
    "GanTraining",
    "build_networks",
    "train_step",
    "prepare_gan",
    "resolve_settings",
]

GRID_SIZE = 64  # fixed-noise samples in each grid
# What a run's checkpoint must hold to be resumed.
CHECKPOINT_KEYS = (
    "run",
    "step",
    "seconds",
    "generator",
    "discriminator",
    "g_optimizer",
    "d_optimizer",
    "fixed_noise",
    "history",
    "rng",
)


@dataclass
class RunInputs:
    """What a run learns from and is judged against, at its size."""

    data: ImageSet | ImageFolder  # its `source` says where the images came from
    batches: Batches | FolderBatches
    judge: Optional[Judge]  # None: no Fréchet distance
    judge_facts: dict[str, Any]  # for metrics.json


def open_inputs(settings: GanConfig, world: World) -> RunInputs:
    """The data, its batches and the judge (rank 0 only: it alone measures). User mistakes end here.

    28 px: MNIST, Fashion-MNIST or a folder, in memory as the assignment's flattened
    grayscale digits, judged (MNIST) by the project's digit classifier. 64 px: a folder
    of your own pictures read lazily by DataLoader workers, judged by EfficientNet-Lite0
    features. Either way batch b is this rank's share of the run's global batch b.
    """
    judged, device = settings.fid and world.main, world.device
    noise = partial(judge_noise, noise_dim=settings.noise_dim, seed=settings.seed)
    if settings.image_size == PHOTO_SIZE:
        folder = ImageFolder(settings.dataset, settings.image_size, settings.channels)
        batches: Batches | FolderBatches = FolderBatches(folder, settings.batch_size, settings.seed, world)
        if not judged:
            return RunInputs(folder, batches, None, {})
        judge = photo_judge(folder, noise, settings.seed, settings.fid_samples, device)
        return RunInputs(folder, batches, judge, {"frechet_features": PHOTO_FEATURES})
    classifier, facts = judge_classifier(settings.dataset, settings.classifier, device) if judged else (None, {})
    data = load_dataset(settings.dataset, settings.data_root, settings.download)
    if len(data) < settings.batch_size:
        raise A3Error(f"the data set has {len(data)} images, fewer than --batch-size {settings.batch_size}")
    batches = Batches(to_model_range(data.images), settings.batch_size, settings.seed, world)
    digits = (
        None
        if classifier is None
        else digit_judge(classifier, data.images, noise, settings.seed, settings.fid_samples, device)
    )
    return RunInputs(data, batches, digits, facts)


@dataclass
class GanNetworks:
    """The two networks, their optimisers and losses, the averaged generator and the noise of the grids."""

    variant: GanVariant
    generator: nn.Module
    discriminator: nn.Module
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    fixed_noise: Tensor
    ema: Optional[nn.Module] = None
    world: World = field(default_factory=World)
    discriminator_loss: Any = field(init=False)
    generator_loss: Any = field(init=False)
    g_train: nn.Module = field(init=False)  # what training steps call: DDP-wrapped under torchrun
    d_train: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.discriminator_loss = LOSSES[self.variant.discriminator_loss]
        self.generator_loss = LOSSES[self.variant.generator_loss]
        self.g_train = parallel(self.generator, self.world)
        self.d_train = parallel(self.discriminator, self.world)


def build_networks(settings: GanConfig, variant: GanVariant, world: World = World()) -> GanNetworks:
    """The variant's networks at the run's size on this rank's device, initialised as in the assignment (or
    the DCGAN paper), from the run's seed. Under torchrun their BatchNorm layers use the statistics of the
    global batch.
    """
    device = world.device
    seed_everything(settings.seed)  # the seeding rule (engine/device.py): what ran before cannot matter
    size, channels = settings.image_size, settings.channels
    G = make_generator(variant, settings.noise_dim, size, channels).to(device)
    D = make_discriminator(variant, size, channels).to(device)
    G.apply(initializer(size))
    D.apply(initializer(size))
    ema = copy.deepcopy(G).requires_grad_(False) if settings.ema > 0 else None
    if world.distributed:  # after the copy: the average is used outside training steps, on rank 0 alone
        G, D = sync_batch_norm(G, device), sync_batch_norm(D, device)
    betas = (settings.beta1, settings.beta2)
    fixed = sample_noise(GRID_SIZE, settings.noise_dim, generator=seeded_generator(settings.seed))
    return GanNetworks(
        variant,
        G,
        D,
        torch.optim.Adam(G.parameters(), lr=settings.lr, betas=betas),
        torch.optim.Adam(D.parameters(), lr=settings.lr, betas=betas),
        fixed,
        ema,
        world,
    )


def train_step(
    settings: GanConfig, nets: GanNetworks, batches: Batches | FolderBatches, step: int
) -> tuple[float, float]:
    """n_critic discriminator steps, then one generator step; returns (d_loss, g_loss) of the global batch.

    Under torchrun each rank takes its share of the global batch (`batches` gives it) and of the
    global batch's noise (drawn whole on every rank from the same RNG state), so that N ranks
    train what one process would.
    """
    G, D, world = nets.g_train, nets.d_train, nets.world
    policy, draws = parse_policy(settings.augment or "none", settings.channels), Draws(settings.batch_size, world)

    def noise() -> Tensor:
        return world.shard(sample_noise(settings.batch_size, settings.noise_dim, world.device))

    def seen(images: Tensor) -> Tensor:
        """What the discriminator sees: the images, augmented by the run's policy (none: as they are)."""
        return augment(images, policy, settings.image_size, draws)

    for j in range(settings.n_critic):
        real = batches[step * settings.n_critic + j]
        with torch.no_grad():
            fake = G(noise())
        real, fake = seen(real), seen(fake)
        scores_real, scores_fake = D(real), D(fake)
        if nets.variant.gradient_penalty:
            # the global batch's mixing weights, drawn whole on every rank as the noise is
            mix = torch.rand(settings.batch_size, *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
            penalty = gradient_penalty(D, real, fake, world.shard(mix))
            d_loss = nets.discriminator_loss(scores_real, scores_fake, penalty, settings.gp_weight)
        else:
            d_loss = nets.discriminator_loss(scores_real, scores_fake)
        nets.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        nets.d_optimizer.step()
    g_loss = nets.generator_loss(D(seen(G(noise()))))
    nets.g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    nets.g_optimizer.step()
    d_value, g_value = world.average([d_loss.item(), g_loss.item()])
    return d_value, g_value


class GanTraining:
    """A run ready to train: settings checked, data loaded, networks built or restored.

    Made by `prepare_gan` so that every user mistake is reported before training
    starts, and so that the caller knows `total` and `step` (for a progress bar).
    Under torchrun every rank makes one; rank 0 alone measures and writes files.
    """

    command = "gan-train"
    final_reuses_evaluation = False  # its pictures are cheap to draw again

    def __init__(self, config: GanConfig, world: World = World()) -> None:
        self.out, self.world = Path(config.out), world
        saved = open_run(self.out, KIND, config.resume, world, required=CHECKPOINT_KEYS)
        self.settings, self.variant = resolve_settings(config, saved["run"] if saved else None)
        if self.settings.batch_size % world.world_size:
            raise A3Error(
                f"--batch-size {self.settings.batch_size} must be a multiple of the number of "
                f"processes ({world.world_size}): each takes an equal share"
            )
        inputs = open_inputs(self.settings, world)
        if self.settings.augment is None:  # a new run, no --augment: the default for its data
            self.settings.augment = self.variant.default_augment(len(inputs.data))
        self.data, self.batches, self.judge, self.judge_facts = (
            inputs.data,
            inputs.batches,
            inputs.judge,
            inputs.judge_facts,
        )
        self.nets = build_networks(self.settings, self.variant, world)
        self.step, self.seconds, self.eval_seconds = 0, 0.0, 0.0
        self.fitted_step: Optional[int] = None  # the step whose averaged weights the BatchNorm statistics fit
        self.history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
        self.frechet_history: list[dict[str, Any]] = []
        self.best: Optional[dict[str, Any]] = None  # iteration, source, frechet_distance of best.pt
        self.measured: Optional[Measurement] = None  # the latest measurement while training
        if saved is not None:
            self.restore(saved)
        self.total = target_iterations(self.settings, saved.get("total") if saved else None, self.batches.per_epoch)
        self.log = RunLog(self.out, config.tensorboard, world.main, self.step)

    def restore(self, saved: dict[str, Any]) -> None:
        nets = self.nets
        for target, key in (
            (nets.generator, "generator"),
            (nets.discriminator, "discriminator"),
            (nets.g_optimizer, "g_optimizer"),
            (nets.d_optimizer, "d_optimizer"),
        ):
            load_state(target, saved[key], f"the {key} of the checkpoint in '{self.out}'")
        if nets.ema is not None:  # a run saved without one starts averaging now
            load_state(nets.ema, saved.get("ema_generator", saved["generator"]), "the checkpoint's averaged generator")
        nets.fixed_noise = saved["fixed_noise"]
        self.step, self.seconds = int(saved["step"]), float(saved["seconds"])
        self.eval_seconds = float(saved.get("eval_seconds", 0.0))
        self.history = {name: list(values) for name, values in saved["history"].items()}
        self.frechet_history = list(saved.get("frechet_history", []))
        self.best = saved.get("best")
        set_rng_state(saved["rng"])

    def save(self) -> None:
        if not self.world.main:
            return
        nets = self.nets
        ema = {"ema_generator": self.sampling_generator().state_dict()} if nets.ema is not None else {}
        save_run(
            self.out,
            KIND,
            {
                "run": run_settings(self.settings),
                "step": self.step,
                "total": self.total,
                "seconds": self.seconds,
                "eval_seconds": self.eval_seconds,
                "generator": nets.generator.state_dict(),
                "discriminator": nets.discriminator.state_dict(),
                "g_optimizer": nets.g_optimizer.state_dict(),
                "d_optimizer": nets.d_optimizer.state_dict(),
                **ema,
                "fixed_noise": nets.fixed_noise,
                "history": self.history,
                "frechet_history": self.frechet_history,
                "best": self.best,
            },
        )

    def sampling_generator(self) -> nn.Module:
        """What samples are drawn from: the averaged generator with BatchNorm statistics of its own, else G.

        Refitting the statistics in place is harmless: the next average update copies the live ones.
        """
        if self.nets.ema is None:
            return self.nets.generator
        if self.fitted_step != self.step:  # once per step, however many grids, measurements and saves use it
            fit_batchnorm(self.nets.ema, self.settings.noise_dim, self.settings.seed + 3)
            self.fitted_step = self.step
        return self.nets.ema

    def save_grid(self) -> None:
        if self.world.main:
            source = "generator" if self.nets.ema is None else "ema"
            distance = distance_at(self.frechet_history, self.step, source)
            title = model_title(self.settings.variant, self.step, distance, self.settings.eval_samples)
            images = generate_images(self.sampling_generator(), self.nets.fixed_noise)
            save_grid(images, grid_path(self.out, self.step), title, self.log, self.step)

    def evaluate(self, judge: Judge) -> Measurement:
        """Measure G (and the averaged G) on `eval_samples` images; keep the best in best.pt."""
        started = time.perf_counter()
        generators = {"generator": self.nets.generator}
        if self.nets.ema is not None:
            generators["ema"] = self.sampling_generator()
        row: dict[str, Any] = {
            "iteration": self.step,
            **{key: judge(partial(generate_images, G), self.settings.eval_samples) for key, G in generators.items()},
        }
        self.frechet_history.append(row)
        log_measurement(self.log, self.step, row)
        source = min(reversed(generators), key=lambda key: row[key]["frechet_distance"])  # a tie: the average
        distance = row[source]["frechet_distance"]
        if self.best is None or distance < self.best["frechet_distance"]:
            self.best = {"iteration": self.step, "source": source, "frechet_distance": distance}
            G = generators[source]
            save_checkpoint(
                {
                    "kind": KIND,
                    "run": run_settings(self.settings),
                    "step": self.step,
                    "source": source,
                    "generator": G.state_dict(),
                    "frechet_distance": distance,
                    "frechet_samples": self.settings.eval_samples,
                },
                self.out / BEST_NAME,
            )
        self.eval_seconds += time.perf_counter() - started
        measured = row[source]
        self.measured = Measurement(
            iteration=self.step,
            fid=row["generator"]["frechet_distance"],
            best_fid=self.best["frechet_distance"],
            ema_fid=row["ema"]["frechet_distance"] if "ema" in row else None,
            precision=measured.get("precision"),
            recall=measured.get("recall"),
            kl=measured.get("kl_to_uniform"),
            digits=measured.get("digits_covered"),
        )
        return self.measured

    def train_step(self) -> dict[str, float]:
        started = time.perf_counter()
        d_loss, g_loss = train_step(self.settings, self.nets, self.batches, self.step)
        if self.nets.ema is not None:
            update_ema(self.nets.ema, self.nets.generator, ema_decay(self.settings.ema, self.step + 1))
        self.step += 1
        self.seconds += time.perf_counter() - started
        self.history["d_loss"].append(d_loss)
        self.history["g_loss"].append(g_loss)
        numbers = {"d_loss": d_loss, "g_loss": g_loss}
        self.log.scalars(self.step, numbers, "loss")
        if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
            return numbers  # train_loop stops the run
        last = self.step == self.total
        if self.judge is not None and self.settings.eval_every and (self.step % self.settings.eval_every == 0 or last):
            self.evaluate(self.judge)
        if self.step % self.settings.sample_every == 0 or last:
            self.save_grid()
        return {**numbers, **measuring_of(self)}

    def stopped(self) -> None:
        self.save_grid()
        self.write_pictures()
        if self.world.main:
            so_far = {"interrupted": True, "frechet_history": self.frechet_history, "best": self.best}
            write_stopped_metrics(self.out, {**self.run_metrics(), **so_far})
        self.log.close()

    def write_pictures(self) -> None:
        if self.world.main:
            title = f"{self.settings.variant} (iteration {self.step})"
            samples = (self.settings.eval_samples, self.settings.fid_samples)
            write_pictures(self.out, self.history, self.frechet_history, title, samples)

    def final_report(self) -> dict[str, Any]:
        """The Fréchet distance and coverage of the final, averaged and best generators on `fid_samples` images."""
        if self.judge is None:
            return {"frechet_distance": None, **self.judge_facts}
        samples = self.settings.fid_samples
        final = self.judge(partial(generate_images, self.nets.generator), samples)
        report: dict[str, Any] = {"frechet_distance": final["frechet_distance"]}
        measured: dict[str, Any] = {"final": final}
        if self.nets.ema is not None:
            measured["ema"] = self.judge(partial(generate_images, self.sampling_generator()), samples)
            report["ema_frechet_distance"] = measured["ema"]["frechet_distance"]
        if self.best is not None and (self.out / BEST_NAME).is_file():
            if self.best["iteration"] == self.step:  # best.pt holds the weights just measured: once is enough
                best = measured["ema" if self.best["source"] == "ema" else "final"]
            else:
                G = load_generator(self.out / BEST_NAME, self.world.device)[0]
                best = self.judge(partial(generate_images, G), samples)
            measured["best"] = {
                **best,
                "iteration": self.best["iteration"],
                "source": self.best["source"],
                "tracked_frechet_distance": self.best["frechet_distance"],
            }
            report.update(
                best_frechet_distance=best["frechet_distance"],
                best_iteration=self.best["iteration"],
                best_source=self.best["source"],
            )
        return {
            **report,
            **measured,
            **self.judge_facts,
            "frechet_samples": {"real": self.judge.n_real, "generated": samples, "tracked": self.settings.eval_samples},
            "frechet_history": self.frechet_history,
        }

    def train(self, progress: Progress | None = None) -> GanResult:
        """Train up to `total`; write grids, curves, GIF, checkpoint, best.pt and metrics.json; say what it made.

        A non-finite loss raises A3Error and leaves the last good checkpoint. Ctrl-C
        finishes the current iteration, writes the checkpoint and pictures, then re-raises.
        """
        config = self.settings
        if self.step == 0:
            self.save_grid()
        # The loop writes the last checkpoint too: nothing rewrites it after.
        train_loop(self, self.total, config.checkpoint_every or config.sample_every, progress, self.world)
        self.write_pictures()
        metrics = {**self.run_metrics(), "interrupted": False}
        if config.fid:
            metrics.update(self.final_report())
            ends: dict[str, Any] = {model: metrics[model] for model in ("final", "ema", "best") if model in metrics}
            log_measurement(self.log, self.step, ends, "final report")
        metrics["files"] = run_files(self.out)
        if self.world.main:
            write_json(self.out / "metrics.json", metrics)
        self.log.close()
        return self.result(metrics)

    def result(self, metrics: dict[str, Any]) -> GanResult:
        history = self.history
        measured = {key: Quality.of(metrics[key]) for key in ("final", "ema", "best") if key in metrics}
        best = metrics.get("best", {})
        return GanResult(
            metrics,
            self.settings,
            self.step,
            self.seconds,
            str(self.world.device),
            (history["d_loss"][-1], history["g_loss"][-1]) if history["d_loss"] else None,
            [Path(path) for path in metrics["files"].values()] + [self.out / "metrics.json"],
            samples=self.settings.fid_samples,
            best_iteration=best.get("iteration", 0),
            best_source=best.get("source", "generator"),
            **measured,
        )

    def run_metrics(self) -> dict[str, Any]:
        """What the run did so far: settings, length, time, losses, device (metrics.json, also when stopped)."""
        settings = self.settings
        return {
            "variant": settings.variant,
            "dataset": self.data.source,
            "iterations": self.step,
            "total_iterations": self.total,
            "settings": run_settings(settings),
            "train_seconds": round(self.seconds, 2),
            "evaluation_seconds": round(self.eval_seconds, 2),
            "iterations_per_second": round(self.step / self.seconds, 3) if self.seconds > 0 else None,
            "final_d_loss": self.history["d_loss"][-1] if self.history["d_loss"] else None,
            "final_g_loss": self.history["g_loss"][-1] if self.history["g_loss"] else None,
            "device": str(self.world.device),
            "world_size": self.world.world_size,
            "batch_size_per_rank": settings.batch_size // self.world.world_size,
        }


def prepare_gan(config: GanConfig, world: World = World()) -> GanTraining:
    """Check the settings, load the data, build (or restore) the networks on world.device: everything but
    training. One process on another device than the CPU: `World(device=...)`."""
    return GanTraining(config, world)
