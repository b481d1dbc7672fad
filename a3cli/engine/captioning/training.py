"""Training a CaptioningRNN on the shared run skeleton (engine/runs.py): Adam, per-epoch decay, BLEU, CIDEr-D.

The loop follows the assignment's CaptioningSolver (Adam, lr decayed once per
epoch) with what a tool needs on top: validation every epoch, a checkpoint written
atomically after every epoch and on Ctrl-C (model, optimiser, vocabulary, data and
feature settings, position in the epoch, RNG state), so `resume=True` continues
the same run as if it had never stopped; and at the end BLEU-1..4 of greedy
captions (nltk's corpus_bleu), their CIDEr-D and how many are exactly right, metrics.json and a
loss-curve PNG.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import torch

from a3cli.engine.captioning.checkpoint import KIND, RESUMED, SCORES, CaptionCheckpoint
from a3cli.engine.captioning.config import CaptionSource, TrainConfig
from a3cli.engine.captioning.data import CaptionData, longest_word_run
from a3cli.engine.captioning.evaluation import Scores, evaluate, split_loss
from a3cli.engine.captioning.features import grid_cells
from a3cli.engine.captioning.model import CaptioningRNN, model_config
from a3cli.engine.captioning.repeats import repeat_limits_of
from a3cli.engine.captioning.sources import feature_spec, load_source
from a3cli.engine.captioning.vocab import NULL
from a3cli.engine.catalogue import CAPTION_CELLS, CAPTION_DEFAULTS, CELL_OPTIONS, caption_default
from a3cli.engine.checkpoints import save_checkpoint
from a3cli.engine.device import seed_everything, set_rng_state
from a3cli.engine.distributed import World, parallel
from a3cli.engine.errors import A3Error
from a3cli.engine.files import write_json
from a3cli.engine.options import run_settings
from a3cli.engine.progress import Progress
from a3cli.engine.runs import checkpoint_path, merge_settings, open_run, save_run, train_loop
from a3cli.engine.tensorboard import RunLog

__all__ = ["CaptionTraining", "TrainConfig", "resolve_settings", "train_captioner"]


def resolve_settings(config: TrainConfig, saved: Optional[dict[str, Any]]) -> TrainConfig:
    """The config with the resumed run's settings and the defaults filled in, checked again as it is made;
    only epochs may change on resume."""
    names = [name for name in run_settings(config) if name not in ("epochs", "max_length")]
    if saved is not None:
        # runs from before cell positions and schedules existed had none, and the assignment's step schedule
        saved = {"cell_positions": False, "lr_schedule": "step", **saved}
    values = merge_settings({name: getattr(config, name) for name in names}, saved)
    cell = CAPTION_CELLS[values["cell_type"] or CAPTION_DEFAULTS["cell_type"]]
    values = {
        name: caption_default(name, cell)
        if value is None and (name in cell.options or name not in CELL_OPTIONS)
        else value
        for name, value in values.items()
    }
    if config.lr_decay is not None and values["lr_schedule"] == "cosine":
        raise A3Error("--lr-decay is the step schedule's factor per epoch: add --lr-schedule step, or leave it out")
    epochs = config.epochs or (saved or {}).get("epochs") or caption_default("epochs", cell)
    return dataclasses.replace(config, **values, epochs=epochs)


def iterations_per_epoch(num_train: int, batch_size: int) -> int:
    return max(1, math.ceil(num_train / batch_size))


def fresh_progress() -> dict[str, Any]:
    """Where a new run stands: its epoch, the batch within it, the epoch's order, the losses and its time."""
    return {"epoch": 0, "position": 0, "perm": None, "train_loss": [], "val_loss": [], "seconds": 0.0}


class CaptionTraining:
    """A run ready to train: data loaded, settings checked, model built or restored.

    `data` is a CaptionSource (what the CLI gives: loaded here, with the resumed run's
    vocabulary and settings) or CaptionData already loaded. Under torchrun every rank
    makes one: rank 0 extracts features first (the others read its cache), each rank
    trains on its share of every batch, and rank 0 alone scores and writes files. `world` holds
    this process's rank and device (one process: `World(device=...)`).
    """

    command = "caption-train"

    def __init__(
        self,
        data: CaptionData | CaptionSource,
        config: TrainConfig,
        out: str | Path,
        world: World = World(),
        resume: bool = False,
        seed: int = 0,
        extract_progress: Progress | None = None,
        tensorboard: bool = True,
    ) -> None:
        self.out, self.world, self.device = Path(out), world, world.device
        state = open_run(self.out, KIND, resume, world, required=RESUMED)
        saved = CaptionCheckpoint.of(state) if state is not None else None
        self.seed = int(saved.seed) if saved is not None and saved.seed is not None else seed
        self.settings = resolve_settings(config, saved.settings if saved is not None else None)
        self.cell = CAPTION_CELLS[self.settings.cell_type]
        self.data = self.load_data(data, saved, extract_progress)
        self.train_split = self.data.splits["train"]
        if len(self.train_split) == 0:
            raise A3Error("the training split has no captions")
        self.model = self.build_model()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.settings.lr)
        self.loss = parallel(self.model, world)  # the model's forward is its loss
        self.state = fresh_progress()
        if saved is not None:
            self.restore(saved)
        self.per_epoch = iterations_per_epoch(len(self.train_split), self.settings.batch_size)
        self.total = self.settings.epochs * self.per_epoch
        self.step = self.state["epoch"] * self.per_epoch + self.state["position"]
        self.started = time.perf_counter() - self.state["seconds"]
        self.log = RunLog(self.out, tensorboard, world.main, self.step)

    def load_data(
        self, data: CaptionData | CaptionSource, saved: Optional[CaptionCheckpoint], progress: Progress | None
    ) -> CaptionData:
        """The data, with the resumed run's data options and vocabulary; refused if it is not the run's."""
        self.source_settings: dict[str, Any] | None = None
        if isinstance(data, CaptionSource):
            source = CaptionSource.from_settings(merge_settings(data.settings(), saved.data if saved else None))
            if self.cell.grid:
                grid_cells(feature_spec(source))  # flat features are refused before any is extracted
            vocab = (saved.word_to_idx, saved.idx_to_word) if saved else None
            self.source_settings = source.settings()
            with self.world.main_first():
                data = load_source(source, self.device, vocab, progress, self.seed)
        if saved and (saved.idx_to_word != data.idx_to_word or saved.model_config["input_dim"] != data.input_dim):
            raise A3Error(
                f"--resume: '{checkpoint_path(self.out)}' was trained on other data "
                "(different vocabulary or feature size)"
            )
        return data

    def build_model(self) -> CaptioningRNN:
        """The settings' captioner on this rank's device, initialised from the run's seed."""
        s, data = self.settings, self.data
        cells = grid_cells(data.feature_spec, needed=self.cell.grid) if self.cell.tokens else 1
        seed_everything(self.seed)  # the seeding rule (engine/device.py): what ran before cannot matter
        model = CaptioningRNN(
            data.word_to_idx,
            data.input_dim,
            s.wordvec_dim,
            s.hidden_dim,
            s.cell_type,
            grid_cells=cells,
            cell_positions=s.cell_positions,
            **{name: getattr(s, name) for name in self.cell.options},
        ).to(self.device)
        # Its captions, here and once loaded, repeat no word in a row, nor any n-gram, more often than the
        # training captions do.
        model.max_word_run = longest_word_run(self.train_split.captions, data.word_to_idx[NULL])
        model.repeat_limits = repeat_limits_of(self.train_split.captions, data.word_to_idx)
        return model

    def restore(self, saved: CaptionCheckpoint) -> None:
        """The resumed run's weights, optimiser, place and random state."""
        self.model.load_weights(saved.weights)
        assert saved.optimizer is not None and saved.rng is not None  # (open_run required them)
        self.optimizer.load_state_dict(saved.optimizer)
        self.state.update({key: saved.progress[key] for key in self.state})
        set_rng_state(saved.rng)

    def checkpoint(self) -> CaptionCheckpoint:
        """The captioner as it is now: what sampling needs (an export adds its scores, a run's checkpoint
        the optimiser and where training stands)."""
        data = self.data
        return CaptionCheckpoint(
            weights=self.model.state_dict(),
            model_config=model_config(self.model),
            word_to_idx=data.word_to_idx,
            idx_to_word=data.idx_to_word,
            feature_spec=data.feature_spec,
            feature_norm=data.feature_norm,
            max_word_run=self.model.max_word_run,
            repeat_limits=self.model.repeat_limits.as_dict() if self.model.repeat_limits else None,
            source=data.source,
            data=self.source_settings,
            seed=self.seed,
            settings=run_settings(self.settings),
        )

    def save(self) -> None:
        self.state["seconds"] = time.perf_counter() - self.started
        if self.world.main:
            run = dataclasses.replace(self.checkpoint(), optimizer=self.optimizer.state_dict(), progress=self.state)
            save_run(self.out, KIND, run.as_dict())

    def train_step(self) -> dict[str, float]:
        """One batch; at the end of an epoch, the validation loss and the learning-rate decay."""
        state, train, s, model = self.state, self.train_split, self.settings, self.model
        if state["perm"] is None:
            state["perm"] = torch.randperm(len(train))
        it = state["position"]
        idx = state["perm"][it * s.batch_size : (it + 1) * s.batch_size]
        share, weight = self.share(idx)
        loss = self.loss(train.features[train.image_idxs[share]].to(self.device), train.captions[share].to(self.device))
        if self.world.distributed:
            loss = loss * weight
        if s.lr_schedule == "cosine":  # from the step, so that a resumed run continues the curve
            for group in self.optimizer.param_groups:
                group["lr"] = s.lr * 0.5 * (1 + math.cos(math.pi * self.step / self.total))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        self.optimizer.step()
        state["train_loss"].append(self.world.average([loss.item()])[0])
        state["position"] = it + 1
        self.step += 1
        self.log.scalars(self.step, {"training": state["train_loss"][-1]}, "loss")
        shown = {"loss": state["train_loss"][-1], "epoch": state["epoch"] + 1}
        if state["val_loss"]:
            shown["val"] = state["val_loss"][-1]
        if state["position"] == self.per_epoch:
            model.eval()
            if "val" in self.data.splits and len(self.data.splits["val"]):
                state["val_loss"].append(split_loss(model, self.data.splits["val"], self.device))
                self.log.scalars(self.step, {"validation": state["val_loss"][-1]}, "loss")
            model.train()
            if s.lr_schedule == "step":
                for group in self.optimizer.param_groups:
                    group["lr"] *= s.lr_decay
            state.update(epoch=state["epoch"] + 1, position=0, perm=None)
        return shown

    def share(self, idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's captions of the batch `idx`, and the weight that makes DDP's mean of the ranks'
        losses the batch's loss (the loss is a mean over captions; a short last batch splits unevenly;
        a rank with none computes a loss on one caption and weighs it 0)."""
        share = self.world.shard(idx)
        weight = len(share) * self.world.world_size / len(idx)
        return (share, weight) if len(share) else (idx[:1], 0.0)

    def stopped(self) -> None:
        """The losses so far; --resume continues from the checkpoint."""
        if self.world.main:
            write_json(self.out / "metrics.json", {**self.run_metrics(), "interrupted": True})
            self.draw_losses()
        self.log.close()

    def run_metrics(self) -> dict[str, Any]:
        """What the run did so far: data, model, settings, length, time, losses (metrics.json, also when stopped)."""
        data, state = self.data, self.state
        return {
            "source": data.source,
            "feature_spec": data.feature_spec,
            "model": model_config(self.model),
            "config": run_settings(self.settings),
            "iterations": len(state["train_loss"]),
            "total_iterations": self.total,
            "epochs": state["epoch"],
            "train_seconds": round(state["seconds"], 2),  # as of the last checkpoint: the end, or the stop
            "world_size": self.world.world_size,
            "batch_size_per_rank": math.ceil(self.settings.batch_size / self.world.world_size),
            "train_loss": state["train_loss"],
            "val_loss": state["val_loss"],
        }

    def draw_losses(self, scores: Optional[Mapping[str, Scores]] = None) -> None:
        """loss.png: the training loss per iteration, the validation loss at each epoch's end, and the final
        scores of the validation split in the title when measured."""
        from a3cli.engine.figures import loss_curves_figure

        val = self.state["val_loss"]
        title = f"{self.settings.cell_type.upper()} captioner, {self.data.source}"
        if scores is not None and "val" in scores:
            score = scores["val"]
            exact = f"{score.exact['correct']}/{score.exact['total']} exactly right"
            title += f"\nvalidation split: BLEU-4 {score.bleu['bleu4']:.3f}, CIDEr-D {score.cider:.3f}, {exact}"
        loss_curves_figure(
            {"training loss": self.state["train_loss"]},
            self.out / "loss.png",
            title=title,
            measured={"validation loss": ([self.per_epoch * (k + 1) for k in range(len(val))], val)},
        )

    def train(
        self, progress: Progress | None = None, export: str | Path | None = None, checkpoint_every: int | None = None
    ) -> dict[str, Any]:
        """Train up to `total`; write metrics.json and loss.png (and the export); return the metrics."""
        self.model.train()
        # default: a checkpoint every epoch
        train_loop(self, self.total, checkpoint_every or self.per_epoch, progress, self.world)
        model, data = self.model.eval(), self.data
        if not self.world.main:
            return {}
        scores: dict[str, Scores] = {
            split: evaluate(model, data, split, self.device, self.settings.max_length)
            for split in ("val", "test")
            if split in data.splits and len(data.splits[split])
        }
        metrics = {
            **self.run_metrics(),
            "interrupted": False,
            "bleu": {split: score.bleu for split, score in scores.items()},
            "cider": {split: score.cider for split, score in scores.items()},
            "exact_match": {split: score.exact for split, score in scores.items()},
        }
        write_json(self.out / "metrics.json", metrics)
        self.draw_losses(scores)
        for split, score in scores.items():
            self.log.scalars(self.step, {**score.bleu, "cider_d": score.cider, "exact": score.exact["rate"]}, split)
        self.log.close()
        if export is not None:  # for sampling only: no optimiser
            kept = {name: metrics[name] for name in SCORES}
            exported = dataclasses.replace(self.checkpoint(), progress={"epoch": metrics["epochs"]}, scores=kept)
            save_checkpoint({"kind": KIND, **exported.as_dict()}, export)
        return metrics


def train_captioner(
    data: CaptionData | CaptionSource,
    config: TrainConfig,
    out: str | Path,
    device: torch.device,
    resume: bool = False,
    progress: Progress | None = None,
    export: str | Path | None = None,
    seed: int = 0,
) -> dict:
    """Train on the "train" split, validate on "val"; write the checkpoint, metrics.json and loss.png to `out`.

    With `resume`, the run continues from out's checkpoint: model, optimiser, learning
    rate, position in the epoch, losses so far and RNG state come from it; only
    `config.epochs` may differ (to train longer). Returns the metrics.
    """
    return CaptionTraining(data, config, out, World(device=device), resume, seed).train(progress, export)
