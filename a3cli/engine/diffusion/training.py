"""Training a denoising diffusion model on the shared run skeleton (engine/runs.py), judged as the GANs are.

One iteration is one Adam step on the loss of one batch at random timesteps and noise (and, for a model
with --classes, labels hidden at random). The batches come from a per-epoch permutation that depends only
on the seed and the epoch, and the timesteps, noise and hidden labels are drawn for the whole global batch
from the global RNG, which the checkpoint keeps: stopping and resuming gives the same weights, history and
best as running straight through, and N torchrun ranks train what one process would.

Every `eval_every` iterations the averaged model (the live one without averaging) draws `eval_samples`
pictures with DDIM in `eval_steps` steps from fixed noise and the judge (generative/judge.py) measures them;
the best is kept in `best.pt`. A run folder holds `checkpoint.pt` (the whole run) and `best.pt`;
`diffusion-sample --checkpoint RUN_DIR` takes the best.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from a3cli.engine.catalogue import DIFFUSION_DEFAULTS, PHOTO_SIZE
from a3cli.engine.checkpoints import load_state, save_checkpoint
from a3cli.engine.device import autocast, native_bfloat16, seed_everything, set_rng_state
from a3cli.engine.diffusion.config import DiffusionConfig
from a3cli.engine.diffusion.gaussian import GaussianDiffusion
from a3cli.engine.diffusion.model import (
    KIND,
    attach_guide,
    build_diffusion,
    draw_images,
    initial_noise,
    load_diffusion,
)
from a3cli.engine.diffusion.results import DiffusionResult
from a3cli.engine.diffusion.settings import resolve_settings, target_iterations
from a3cli.engine.distributed import World, parallel
from a3cli.engine.errors import A3Error
from a3cli.engine.files import write_json
from a3cli.engine.generative.data import BatchOrder, FolderBatches, ImageFolder, ImageSet, load_dataset
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
from a3cli.engine.options import run_settings
from a3cli.engine.progress import Progress
from a3cli.engine.runs import open_run, save_run, train_loop
from a3cli.engine.tensorboard import RunLog

GRID_ROWS = 8  # the grids: 8 × 8 samples of fixed noise; a model with classes: a row per class
CHECKPOINT_KEYS = ("run", "step", "seconds", "model", "optimizer", "fixed_noise", "history", "rng")


class DigitBatches:
    """Batch b of 28-px pictures (N, 1, 28, 28) in [−1, 1] and their labels, in the order of BatchOrder."""

    def __init__(self, data: ImageSet, batch_size: int, seed: int, world: World) -> None:
        self.images = data.images.unsqueeze(1).to(torch.get_default_dtype()).div(127.5).sub(1.0)
        self.labels, self.device = data.labels, world.device
        self.order = BatchOrder(len(data), batch_size, seed, world)
        self.per_epoch = self.order.per_epoch

    def __getitem__(self, b: int) -> tuple[Tensor, Optional[Tensor]]:
        index = self.order(b)
        labels = None if self.labels is None else self.labels[index].to(self.device)
        return self.images[index].to(self.device), labels


class PictureBatches:
    """Batch b of a folder's pictures (N, C, 64, 64) in [−1, 1], read lazily; no labels."""

    def __init__(self, batches: FolderBatches) -> None:
        self.batches, self.per_epoch = batches, batches.per_epoch

    def __getitem__(self, b: int) -> tuple[Tensor, Optional[Tensor]]:
        return self.batches[b], None


@dataclass
class RunInputs:
    data: ImageSet | ImageFolder
    batches: DigitBatches | PictureBatches
    judge: Optional[Judge]  # None: no Fréchet distance
    judge_facts: dict[str, Any]  # for metrics.json


def open_inputs(settings: DiffusionConfig, world: World) -> RunInputs:
    """The data, its batches and the judge (rank 0 only: it alone measures). User mistakes end here."""
    judged, device = settings.fid and world.main, world.device
    noise = partial(initial_noise, run=run_settings(settings), seed=settings.seed + 2)
    if settings.image_size == PHOTO_SIZE:
        folder = ImageFolder(settings.dataset, settings.image_size, settings.channels)
        batches = PictureBatches(FolderBatches(folder, settings.batch_size, settings.seed, world))
        if not judged:
            return RunInputs(folder, batches, None, {})
        judge = photo_judge(folder, noise, settings.seed, settings.fid_samples, device)
        return RunInputs(folder, batches, judge, {"frechet_features": PHOTO_FEATURES})
    classifier, facts = judge_classifier(settings.dataset, settings.classifier, device) if judged else (None, {})
    data = load_dataset(settings.dataset, settings.data_root, settings.download)
    if len(data) < settings.batch_size:
        raise A3Error(f"the data set has {len(data)} images, fewer than --batch-size {settings.batch_size}")
    if settings.classes and data.labels is None:
        raise A3Error(f"--classes: the data set {data.name} has no labels")
    digits = DigitBatches(data, settings.batch_size, settings.seed, world)
    if classifier is None:
        return RunInputs(data, digits, None, facts)
    return RunInputs(
        data, digits, digit_judge(classifier, data.images, noise, settings.seed, settings.fid_samples, device), facts
    )


def training_inputs(
    diffusion: GaussianDiffusion, batch_size: int, shape: torch.Size, dropout: float, world: World
) -> tuple[Tensor, Tensor, Tensor]:
    """This rank's share of the global batch's timesteps, noise and hidden labels (drawn whole on every rank
    from the same RNG state)."""
    device = world.device
    t = torch.randint(0, diffusion.num_timesteps, (batch_size,), device=device)
    noise = torch.randn(batch_size, *shape[1:], device=device)
    hidden = torch.rand(batch_size, device=device) < dropout
    return world.shard(t), world.shard(noise), world.shard(hidden)


class DiffusionTraining:
    """A run ready to train: settings checked, data loaded, model built or restored.

    Made by `prepare_diffusion` so that every user mistake is reported before training starts. Under torchrun
    every rank makes one; rank 0 alone measures and writes files.
    """

    command = "diffusion-train"
    final_reuses_evaluation = True  # `draw` takes the last evaluation's pictures again

    def __init__(self, config: DiffusionConfig, world: World = World()) -> None:
        self.out, self.world = Path(config.out), world
        saved = open_run(self.out, KIND, config.resume, world, required=CHECKPOINT_KEYS)
        native = "bfloat16" if native_bfloat16(world.device) else "float32"
        self.settings = resolve_settings(config, saved["run"] if saved else None, native)
        if self.settings.batch_size % world.world_size:
            raise A3Error(
                f"--batch-size {self.settings.batch_size} must be a multiple of the number of "
                f"processes ({world.world_size}): each takes an equal share"
            )
        inputs = open_inputs(self.settings, world)
        self.data, self.batches, self.judge, self.judge_facts = (
            inputs.data,
            inputs.batches,
            inputs.judge,
            inputs.judge_facts,
        )
        self.run = run_settings(self.settings)
        seed_everything(self.settings.seed)  # the seeding rule (engine/device.py): what ran before cannot matter
        self.diffusion = build_diffusion(self.run).to(world.device)
        self.ema = copy.deepcopy(self.diffusion).requires_grad_(False) if self.settings.ema > 0 else None
        self.train_model = parallel(self.diffusion, world)
        self.optimizer = torch.optim.Adam(self.diffusion.model.parameters(), lr=self.settings.lr)
        self.fixed_noise = initial_noise(GRID_ROWS * GRID_ROWS, self.run, self.settings.seed)
        self.step, self.seconds, self.eval_seconds = 0, 0.0, 0.0
        self.history: dict[str, list[float]] = {"loss": []}
        self.frechet_history: list[dict[str, Any]] = []
        self.best: Optional[dict[str, Any]] = None  # iteration, source, frechet_distance of best.pt
        self.measured: Optional[dict[str, Any]] = None  # the latest measurement while training
        self.kept: dict[int, list[tuple[Tensor, Tensor]]] = {}  # iteration → the noise and pictures measured there
        self.guide_iteration: Optional[int] = None  # when the sampling model's guide was taken (autoguidance)
        if saved is not None:
            self.restore(saved)
        self.total = target_iterations(self.settings, saved.get("total") if saved else None, self.batches.per_epoch)
        self.log = RunLog(self.out, config.tensorboard, world.main, self.step)

    def restore(self, saved: dict[str, Any]) -> None:
        load_state(self.diffusion.model, saved["model"], f"the model of the checkpoint in '{self.out}'")
        load_state(self.optimizer, saved["optimizer"], f"the optimizer of the checkpoint in '{self.out}'")
        if self.ema is not None:
            load_state(self.ema.model, saved["ema_model"], "the checkpoint's averaged model")
        self.fixed_noise = saved["fixed_noise"]
        self.step, self.seconds = int(saved["step"]), float(saved["seconds"])
        self.eval_seconds = float(saved.get("eval_seconds", 0.0))
        self.history = {name: list(values) for name, values in saved["history"].items()}
        self.frechet_history = list(saved.get("frechet_history", []))
        self.best = saved.get("best")
        if "guide_model" in saved:
            attach_guide(self.sampling_model, saved["guide_model"])
            self.guide_iteration = int(saved["guide_iteration"])
        set_rng_state(saved["rng"])

    def save(self) -> None:
        if not self.world.main:
            return
        ema = {"ema_model": self.ema.model.state_dict()} if self.ema is not None else {}
        save_run(
            self.out,
            KIND,
            {
                "run": self.run,
                "step": self.step,
                "total": self.total,
                "seconds": self.seconds,
                "eval_seconds": self.eval_seconds,
                "model": self.diffusion.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                **ema,
                "fixed_noise": self.fixed_noise,
                "history": self.history,
                "frechet_history": self.frechet_history,
                "best": self.best,
                **self.guide_state(),
            },
        )

    def guide_state(self) -> dict[str, Any]:
        """The guide's weights and iteration, for a checkpoint (nothing before it is taken)."""
        guide = self.sampling_model.guide
        if guide is None:
            return {}
        return {"guide_model": guide.state_dict(), "guide_iteration": self.guide_iteration}

    def take_guide_when_due(self) -> None:
        """Autoguidance's weaker model: the sampling model as it is at `guide_at` of the run, kept from then on
        (taken after that iteration's measurement, which it would not change)."""
        due = max(1, round(self.total * DIFFUSION_DEFAULTS["guide_at"]))
        if self.settings.autoguidance and self.sampling_model.guide is None and self.step >= due:
            attach_guide(self.sampling_model)
            self.guide_iteration = self.step
            self.kept = {}  # drawn without the guide

    @property
    def sampling_model(self) -> GaussianDiffusion:
        """What samples are drawn from: the averaged model, else the live one."""
        return self.ema if self.ema is not None else self.diffusion

    @property
    def source(self) -> str:
        return "ema" if self.ema is not None else "model"

    def grid_classes(self) -> Optional[Tensor]:
        """A model with classes draws its grid a row per class (the first eight), guided."""
        if not self.settings.classes:
            return None
        return torch.arange(GRID_ROWS).repeat_interleave(GRID_ROWS)

    def save_grid(self) -> None:
        if self.world.main:
            classes = self.grid_classes()
            guidance = 0.0 if classes is None else DIFFUSION_DEFAULTS["guidance"]
            images = draw_images(
                self.sampling_model, self.fixed_noise, self.settings.eval_steps, classes=classes, guidance=guidance
            )
            distance = distance_at(self.frechet_history, self.step, self.source)
            if classes is None:
                title = model_title("diffusion", self.step, distance, self.settings.eval_samples)
            else:  # the judge measures unguided samples
                title = model_title(f"diffusion, a row per class by guidance {guidance:g}", self.step, None)
                title += f"; unguided, Fréchet distance {distance:.1f}" if distance is not None else ""
            save_grid(images, grid_path(self.out, self.step), title, self.log, self.step)

    def draw(self, noise: Tensor) -> Tensor:
        """The judge's pictures: unconditional DDIM samples in `eval_steps` steps (η = 0). Those the latest
        evaluation drew from the same noise with the same weights are taken again, not drawn: the final
        measurement's noise begins with the last evaluation's."""
        for known, images in self.kept.get(self.step, []):
            if len(known) <= len(noise) and torch.equal(known, noise[: len(known)]):
                rest = noise[len(known) :]
                return torch.cat([images, self.draw(rest)]) if len(rest) else images
        return draw_images(self.sampling_model, noise, self.settings.eval_steps)

    def draw_and_keep(self, noise: Tensor) -> Tensor:
        images = self.draw(noise)
        self.kept[self.step].append((noise, images))
        return images

    def evaluate(self, judge: Judge) -> dict[str, Any]:
        """Measure the sampling model on `eval_samples` pictures; keep the best in best.pt."""
        started = time.perf_counter()
        self.kept = {self.step: []}
        measured = judge(self.draw_and_keep, self.settings.eval_samples)
        self.frechet_history.append({"iteration": self.step, self.source: measured})
        log_measurement(self.log, self.step, self.frechet_history[-1])
        distance = measured["frechet_distance"]
        if self.best is None or distance < self.best["frechet_distance"]:
            self.best = {"iteration": self.step, "source": self.source, "frechet_distance": distance}
            save_checkpoint(
                {
                    "kind": KIND,
                    "run": self.run,
                    "step": self.step,
                    "source": self.source,
                    "model": self.sampling_model.model.state_dict(),
                    "frechet_distance": distance,
                    "frechet_samples": self.settings.eval_samples,
                    **self.guide_state(),
                },
                self.out / BEST_NAME,
            )
        self.eval_seconds += time.perf_counter() - started
        self.measured = {"iteration": self.step, "best_frechet_distance": self.best["frechet_distance"], **measured}
        return self.measured

    def train_step(self) -> dict[str, float]:
        started = time.perf_counter()
        images, labels = self.batches[self.step]
        t, noise, hidden = training_inputs(
            self.diffusion, self.settings.batch_size, images.shape, self.settings.class_dropout, self.world
        )
        classes = None
        if self.settings.classes:
            assert labels is not None  # a model with classes trains on labelled data (open_inputs)
            classes = labels.masked_fill(hidden, self.diffusion.num_classes)
        with autocast(self.world.device, self.diffusion.precision):
            loss = self.train_model(images, t, noise, classes)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            update_ema(self.ema.model, self.diffusion.model, ema_decay(self.settings.ema, self.step + 1))
        (value,) = self.world.average([loss.item()])
        self.step += 1
        self.seconds += time.perf_counter() - started
        self.history["loss"].append(value)
        self.log.scalars(self.step, {"loss": value}, "loss")
        if not math.isfinite(value):
            return {"loss": value}  # train_loop stops the run
        last = self.step == self.total
        if self.judge is not None and self.settings.eval_every and (self.step % self.settings.eval_every == 0 or last):
            self.evaluate(self.judge)
        if self.step % self.settings.sample_every == 0 or last:
            self.save_grid()
        self.take_guide_when_due()
        return {"loss": value, **measuring_of(self)}

    def stopped(self) -> None:
        self.save_grid()
        self.write_pictures()
        if self.world.main:
            so_far = {"interrupted": True, "frechet_history": self.frechet_history, "best": self.best}
            write_stopped_metrics(self.out, {**self.run_metrics(), **so_far})
        self.log.close()

    def write_pictures(self) -> None:
        if self.world.main:
            title = f"diffusion, {self.settings.objective} (iteration {self.step})"
            samples = (self.settings.eval_samples, self.settings.fid_samples)
            write_pictures(self.out, self.history, self.frechet_history, title, samples)

    def final_report(self) -> dict[str, Any]:
        """The Fréchet distance and coverage of the final (averaged) and the best model on `fid_samples`."""
        if self.judge is None:
            return {"frechet_distance": None, **self.judge_facts}
        samples = self.settings.fid_samples
        final = self.judge(self.draw, samples)
        measured: dict[str, Any] = {"final": final}
        report: dict[str, Any] = {"frechet_distance": final["frechet_distance"]}
        if self.best is not None and (self.out / BEST_NAME).is_file():
            if self.best["iteration"] == self.step:  # best.pt holds the weights just measured
                best = final
            else:
                model, _ = load_diffusion(self.out / BEST_NAME, self.world.device)
                best = self.judge(partial(draw_images, model, steps=self.settings.eval_steps), samples)
            measured["best"] = {**best, "iteration": self.best["iteration"], "source": self.best["source"]}
            report.update(best_frechet_distance=best["frechet_distance"], best_iteration=self.best["iteration"])
        return {
            **report,
            **measured,
            **self.judge_facts,
            "frechet_samples": {"real": self.judge.n_real, "generated": samples, "tracked": self.settings.eval_samples},
            "sampler": self.sampler(),
            "frechet_history": self.frechet_history,
        }

    def sampler(self) -> str:
        """How the judge's samples are drawn, in words (metrics.json)."""
        how = f"DDIM, {self.settings.eval_steps} steps, eta 0"
        if self.guide_iteration is None:
            return how
        return f"{how}, autoguidance {self.settings.autoguidance:g} by the model of iteration {self.guide_iteration}"

    def train(self, progress: Progress | None = None) -> DiffusionResult:
        """Train up to `total`; write grids, curves, GIF, checkpoint, best.pt and metrics.json; say what it made.

        A non-finite loss raises A3Error and leaves the last good checkpoint. Ctrl-C finishes the current
        iteration, writes the checkpoint and pictures, then re-raises.
        """
        settings = self.settings
        if self.step == 0:
            self.save_grid()
        # The loop writes the last checkpoint too: nothing rewrites it after.
        train_loop(self, self.total, settings.checkpoint_every or settings.sample_every, progress, self.world)
        self.write_pictures()
        metrics = {**self.run_metrics(), "interrupted": False}
        if settings.fid:
            metrics.update(self.final_report())
            ends: dict[str, Any] = {model: metrics[model] for model in ("final", "ema", "best") if model in metrics}
            log_measurement(self.log, self.step, ends, "final report")
        metrics["files"] = run_files(self.out)
        if self.world.main:
            write_json(self.out / "metrics.json", metrics)
        self.log.close()
        return DiffusionResult(
            metrics,
            settings,
            self.step,
            self.seconds,
            str(self.world.device),
            self.history["loss"][-1] if self.history["loss"] else None,
            [Path(path) for path in metrics["files"].values()] + [self.out / "metrics.json"],
            samples=settings.fid_samples,
            final=Quality.of(metrics["final"]) if "final" in metrics else None,
            best=Quality.of(metrics["best"]) if "best" in metrics else None,
            best_iteration=metrics.get("best_iteration", 0),
        )

    def run_metrics(self) -> dict[str, Any]:
        """What the run did so far: settings, length, time, loss, device (metrics.json, also when stopped)."""
        return {
            "model": "diffusion",
            "dataset": self.data.source,
            "iterations": self.step,
            "total_iterations": self.total,
            "settings": self.run,
            "parameters": sum(p.numel() for p in self.diffusion.model.parameters()),
            "train_seconds": round(self.seconds, 2),
            "evaluation_seconds": round(self.eval_seconds, 2),
            "iterations_per_second": round(self.step / self.seconds, 3) if self.seconds > 0 else None,
            "final_loss": self.history["loss"][-1] if self.history["loss"] else None,
            "device": str(self.world.device),
            "world_size": self.world.world_size,
            "batch_size_per_rank": self.settings.batch_size // self.world.world_size,
        }


def prepare_diffusion(config: DiffusionConfig, world: World = World()) -> DiffusionTraining:
    """Check the settings, load the data, build (or restore) the model on world.device: everything but
    training."""
    return DiffusionTraining(config, world)
