"""Training a CaptioningRNN: Adam, per-epoch learning-rate decay, checkpoints, BLEU.

The loop follows the assignment's CaptioningSolver (Adam, lr decayed once per
epoch) with what a tool needs on top: validation every epoch, a checkpoint
written atomically after every epoch and on Ctrl-C (model, optimiser,
vocabulary, feature settings, config, position in the epoch, RNG state), so
`resume=True` continues the same run as if it had never stopped; and at the
end BLEU-1..4 of greedy captions (nltk's corpus_bleu), metrics.json and a
loss-curve PNG.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import torch

from a3cli.engine.caption_data import CaptionData, Split, decode
from a3cli.engine.captioning import CaptioningRNN, model_config
from a3cli.engine.checkpoints import load_checkpoint, save_checkpoint
from a3cli.engine.device import rng_state, set_rng_state
from a3cli.engine.errors import A3Error
from a3cli.engine.files import write_json
from a3cli.engine.progress import Progress, report

KIND = "captioner"
CHECKPOINT = "captioner.pt"


@dataclass
class TrainConfig:
    cell_type: str = "lstm"
    hidden_dim: int = 256
    wordvec_dim: int = 128
    lr: float = 5e-3
    lr_decay: float = 0.95  # the learning rate is multiplied by this after every epoch
    batch_size: int = 50
    epochs: int = 20
    grad_clip: float = 0.0  # clip the gradient's global norm to this; 0 turns clipping off
    max_length: int = 30  # longest generated caption when measuring BLEU


def iterations_per_epoch(num_train: int, batch_size: int) -> int:
    return max(1, math.ceil(num_train / batch_size))


@torch.no_grad()
def split_loss(model: CaptioningRNN, split: Split, device: torch.device, batch_size: int = 500) -> float:
    """The teacher-forced loss over a whole split (per caption, as the training loss)."""
    total = 0.0
    for start in range(0, len(split), batch_size):
        caps = split.captions[start: start + batch_size].to(device)
        feats = split.features[split.image_idxs[start: start + batch_size]].to(device)
        total += float(model.loss(feats, caps)) * len(caps)
    return total / max(len(split), 1)


@torch.no_grad()
def generate(model: CaptioningRNN, features: torch.Tensor, device: torch.device, max_length: int = 30,
             batch_size: int = 500) -> torch.Tensor:
    """Greedy captions of many images, in batches: (N, max_length) on the CPU."""
    out = [model.sample(features[i: i + batch_size].to(device), max_length).cpu()
           for i in range(0, len(features), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, max_length, dtype=torch.long)


def bleu(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-1..4 (nltk), each image's hypothesis against all its reference captions."""
    from nltk.translate.bleu_score import corpus_bleu

    weights = [(1.0,), (0.5, 0.5), (1 / 3,) * 3, (0.25,) * 4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns when no n-gram of some order matches
        scores = corpus_bleu(references, hypotheses, weights=weights)
    return {f"bleu{n}": float(s) for n, s in enumerate(scores, 1)}


def evaluate_bleu(model: CaptioningRNN, data: CaptionData, split: str, device: torch.device,
                  max_length: int = 30) -> dict[str, float]:
    """BLEU-1..4 of the model's greedy captions for every image of `split`."""
    s = data.splits[split]
    refs = data.references(split)
    keep = [i for i, r in enumerate(refs) if r]  # images without captions (after --max-train) do not count
    captions = generate(model, s.features[keep], device, max_length)
    hyps = [decode(c, data.idx_to_word) for c in captions.tolist()]
    return bleu([refs[i] for i in keep], hyps)


def checkpoint_state(model: CaptioningRNN, optimizer: torch.optim.Optimizer | None, data: CaptionData,
                     config: TrainConfig, progress_state: dict) -> dict:
    state = {
        "kind": KIND,
        "model": model.state_dict(),
        "model_config": model_config(model),
        "word_to_idx": data.word_to_idx,
        "idx_to_word": data.idx_to_word,
        "feature_spec": data.feature_spec,
        "feature_norm": data.feature_norm,
        "source": data.source,
        "config": asdict(config),
        **progress_state,
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    return state


def build_model(ckpt: dict, device: torch.device | str = "cpu") -> CaptioningRNN:
    """The model a checkpoint describes, with its weights."""
    try:
        model = CaptioningRNN(ckpt["word_to_idx"], **ckpt["model_config"])
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise A3Error(f"captioner checkpoint is incomplete or damaged: {str(error).splitlines()[0]}") from None
    return model.to(device).eval()


def load_captioner(path: str | Path, device: torch.device | str = "cpu") -> tuple[CaptioningRNN, dict]:
    ckpt = load_checkpoint(path, kind=KIND)
    return build_model(ckpt, device), ckpt


def train_captioner(data: CaptionData, config: TrainConfig, out_dir: str | Path, device: torch.device,
                    resume: bool = False, progress: Progress | None = None,
                    export: str | Path | None = None) -> dict:
    """Train on data.splits["train"], validate on "val"; write checkpoint, metrics.json and loss.png to out_dir.

    With `resume`, the run continues from out_dir's checkpoint: model, optimiser,
    learning rate, position in the epoch, losses so far and RNG state come from it;
    only `config.epochs` is taken from the caller (to train longer). Returns the
    metrics (also written to metrics.json).
    """
    out_dir = Path(out_dir)
    path = out_dir / CHECKPOINT
    train = data.splits["train"]
    if len(train) == 0:
        raise A3Error("the training split has no captions")
    if resume:
        ckpt = load_checkpoint(path, kind=KIND)
        if ckpt.get("idx_to_word") != data.idx_to_word or ckpt["model_config"]["input_dim"] != data.input_dim:
            raise A3Error(f"--resume: '{path}' was trained on other data (different vocabulary or feature size)")
        saved = {f.name: ckpt["config"][f.name] for f in fields(TrainConfig) if f.name in ckpt["config"]}
        config = TrainConfig(**{**saved, "epochs": config.epochs})
        model = build_model(ckpt, device).train()
    else:
        ckpt = None
        model = CaptioningRNN(data.word_to_idx, data.input_dim, config.wordvec_dim, config.hidden_dim,
                              config.cell_type).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = {"epoch": 0, "position": 0, "perm": None, "train_loss": [], "val_loss": [], "seconds": 0.0}
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        state.update({k: ckpt[k] for k in state})
        set_rng_state(ckpt["rng"])

    per_epoch = iterations_per_epoch(len(train), config.batch_size)
    started = time.perf_counter() - state["seconds"]

    def save() -> None:
        state["seconds"] = time.perf_counter() - started
        save_checkpoint(checkpoint_state(model, optimizer, data, config, {**state, "rng": rng_state()}), path)

    model.train()
    try:
        while state["epoch"] < config.epochs:
            if state["perm"] is None:
                state["perm"] = torch.randperm(len(train))
            perm = state["perm"]
            for it in range(state["position"], per_epoch):
                idx = perm[it * config.batch_size: (it + 1) * config.batch_size]
                feats = train.features[train.image_idxs[idx]].to(device)
                loss = model.loss(feats, train.captions[idx].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                state["train_loss"].append(loss.item())
                state["position"] = it + 1
                shown = {"loss": state["train_loss"][-1], "epoch": state["epoch"] + 1}
                if state["val_loss"]:
                    shown["val"] = state["val_loss"][-1]
                report(progress, state["epoch"] * per_epoch + it + 1, shown)
            model.eval()
            if "val" in data.splits and len(data.splits["val"]):
                state["val_loss"].append(split_loss(model, data.splits["val"], device))
            model.train()
            for group in optimizer.param_groups:
                group["lr"] *= config.lr_decay
            state.update(epoch=state["epoch"] + 1, position=0, perm=None)
            save()
    except KeyboardInterrupt:
        save()  # keep everything done so far; --resume continues from here
        raise

    model.eval()
    metrics = {
        "source": data.source,
        "feature_spec": data.feature_spec,
        "model": model_config(model),
        "config": asdict(config),
        "iterations": len(state["train_loss"]),
        "epochs": state["epoch"],
        "train_seconds": round(state["seconds"], 2),
        "train_loss": state["train_loss"],
        "val_loss": state["val_loss"],
        "bleu": {split: evaluate_bleu(model, data, split, device, config.max_length)
                 for split in ("val", "test") if split in data.splits and len(data.splits[split])},
    }
    write_json(out_dir / "metrics.json", metrics)
    from a3cli.engine.plots import loss_curves_figure

    loss_curves_figure({"training loss": state["train_loss"]}, out_dir / "loss.png",
                       title=f"{config.cell_type.upper()} captioner, {data.source}")
    if export is not None:
        export_checkpoint(model, data, config, metrics, export)
    return metrics


def export_checkpoint(model: CaptioningRNN, data: CaptionData, config: TrainConfig, metrics: dict,
                      path: str | Path) -> Path:
    """A small checkpoint for sampling only: weights, vocabulary, feature settings, scores; no optimiser."""
    extra = {"epoch": metrics["epochs"], "bleu": metrics["bleu"]}
    return save_checkpoint(checkpoint_state(model, None, data, config, extra), path)
