"""A captioner checkpoint by attribute: made from the file's dict in one place (`CaptionCheckpoint.of`) and
turned back into the same dict (`as_dict`), so that the files keep their keys and their order.

A run's checkpoint.pt holds the captioner, its optimiser, where training stands and the random state;
an export (--export) and the shipped weights/caption_shapes.pt hold the captioner, its epoch and scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from a3cli.engine.checkpoints import load_checkpoint

KIND = "captioner"
REQUIRED = ("model", "model_config", "word_to_idx", "idx_to_word", "feature_spec")  # what building the model reads
PROGRESS = ("epoch", "position", "perm", "train_loss", "val_loss", "seconds")  # a run's place; an export: epoch
SCORES = ("bleu", "cider", "exact_match")  # an export's (older ones have no cider)
RESUMED = (*REQUIRED, "optimizer", *PROGRESS, "rng")  # what resuming a run reads


@dataclass
class CaptionCheckpoint:
    """What a captioner checkpoint holds. Older files lack some of it: None, or empty."""

    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # the model's state_dict ("model")
    model_config: dict[str, Any] = field(default_factory=dict)  # model.model_config: what builds it again
    word_to_idx: dict[str, int] = field(default_factory=dict)
    idx_to_word: list[str] = field(default_factory=list)
    feature_spec: dict[str, Any] = field(default_factory=dict)  # how its features are made (FeatureSpec, or h5's)
    feature_norm: Optional[dict[str, torch.Tensor]] = None  # the training features' mean and std, if standardised
    max_word_run: Optional[int] = None  # the most times its training captions repeat a word; None: not recorded
    repeat_limits: Optional[dict[str, Any]] = None  # RepeatLimits.as_dict of its training captions; None: same
    source: Optional[str] = None  # the kind of data it was trained on: shapes, coco_h5, coco_json, ...
    data: Optional[dict[str, Any]] = None  # the data options (CaptionSource.settings()); None: data given loaded
    seed: Optional[int] = None
    settings: Optional[dict[str, Any]] = None  # the run's settings (the run fields of TrainConfig), as "config"
    optimizer: Optional[dict[str, Any]] = None  # a run's checkpoint only
    progress: dict[str, Any] = field(default_factory=dict)  # PROGRESS, as far as the file has them
    scores: dict[str, Any] = field(default_factory=dict)  # SCORES of an export
    rng: Optional[dict[str, Any]] = None  # every global random state, when the run's checkpoint was written

    @classmethod
    def of(cls, state: dict[str, Any]) -> CaptionCheckpoint:
        """From a checkpoint file's dict (which has the REQUIRED keys)."""
        return cls(
            weights=state["model"],
            model_config=state["model_config"],
            word_to_idx=state["word_to_idx"],
            idx_to_word=state["idx_to_word"],
            feature_spec=state["feature_spec"],
            feature_norm=state.get("feature_norm"),
            max_word_run=state.get("max_word_run"),
            repeat_limits=state.get("repeat_limits"),
            source=state.get("source"),
            data=state.get("data"),
            seed=state.get("seed"),
            settings=state.get("config"),
            optimizer=state.get("optimizer"),
            progress={key: state[key] for key in PROGRESS if key in state},
            scores={key: state[key] for key in SCORES if key in state},
            rng=state.get("rng"),
        )

    def as_dict(self) -> dict[str, Any]:
        """The file's dict, in the file's order, but for its "kind" (the saver's tag, first)."""
        state: dict[str, Any] = {
            "model": self.weights,
            "model_config": self.model_config,
            "word_to_idx": self.word_to_idx,
            "idx_to_word": self.idx_to_word,
            "feature_spec": self.feature_spec,
            "feature_norm": self.feature_norm,
        }
        if self.max_word_run is not None:
            state["max_word_run"] = self.max_word_run
        if self.repeat_limits is not None:
            state["repeat_limits"] = self.repeat_limits
        state.update(source=self.source, data=self.data, seed=self.seed, config=self.settings)
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer
        state.update(self.progress)
        state.update(self.scores)
        if self.rng is not None:
            state["rng"] = self.rng
        return state


def read_caption_checkpoint(path: str | Path) -> CaptionCheckpoint:
    """A captioner checkpoint file; another kind, or one without what builds the model, is refused."""
    return CaptionCheckpoint.of(load_checkpoint(path, kind=KIND, required=REQUIRED))
