"""The settings of caption-train and caption-sample, each written once: its default, its help and whether it
defines the run.

A caption-train setting left None is filled in by `training.resolve_settings`: the resumed run's value,
else the cell type's default (engine/catalogue.py), which --help shows. The fields marked `run=True`
define the run: they are stored in its checkpoint (as "config") and refused when changed on --resume.
Plain data (no torch): `a3 --help` reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from a3cli.engine.catalogue import (
    CAPTION_CELLS,
    CAPTION_DEFAULTS,
    CAPTION_JSON_DEFAULTS,
    CAPTION_SAMPLE_DEFAULTS,
    CAPTION_SHAPES_SPLITS,
    CELL_OPTIONS,
    KARPATHY_TRAIN_SPLITS,
    LR_SCHEDULES,
    CaptionCell,
    caption_default,
    caption_default_help,
    caption_feature_help,
)
from a3cli.engine.errors import A3Error
from a3cli.engine.files import SHIPPED_CAPTIONER
from a3cli.engine.options import (
    INPUTS,
    MODEL,
    OPTIMISATION,
    check_limits,
    checkpoint_every_setting,
    optional_path,
    resume_setting,
    run_folder_setting,
    seed_setting,
    setting,
    tensorboard_setting,
)


@dataclass
class CaptionSource:
    """Which data a captioner trains on: the options as given (None: not given, so that a resumed run takes its
    own value). `sources.load_source` picks the source and fills in each source's defaults."""

    data: Optional[Path] = optional_path("The assignment's coco_captioning folder (HDF5 + JSON).")
    pca: Optional[bool] = setting(
        None, "With --data: 512-d PCA or 4096-d fc7.", "--pca/--no-pca", panel=INPUTS, shown="--pca"
    )
    images: Optional[Path] = optional_path("Image folder of --annotations or --karpathy.")
    annotations: Optional[Path] = optional_path("COCO-format captions JSON.")
    karpathy: Optional[Path] = optional_path("A Karpathy split file for --images.")
    train_splits: Optional[str] = setting(
        None,
        "With --karpathy: the splits to train on.",
        panel=INPUTS,
        shown=",".join(KARPATHY_TRAIN_SPLITS),
        metavar="LIST",
    )
    coco: Optional[Path] = optional_path("A COCO 2014 or 2017 folder, as downloaded.")
    dataset: Optional[str] = setting(None, "Built-in data set.", panel=INPUTS, shown="shapes, if no other source")
    model: Optional[str] = setting(
        None, "Backbone for image features.", panel=INPUTS, shown=caption_feature_help("backbone")
    )
    layer: Optional[str] = setting(
        None, "Backbone stage, or 'pooled'.", panel=INPUTS, shown=caption_feature_help("layer")
    )
    grid: Optional[int] = setting(
        None,
        "Pool the stage's map to grid×grid.",
        panel=INPUTS,
        shown=caption_feature_help("grid"),
        min=1,
        max=16,
        metavar="INT",
    )
    image_size: Optional[int] = setting(
        None,
        "Image side fed to the backbone.",
        panel=INPUTS,
        shown=caption_feature_help("image_size"),
        min=32,
        max=1024,
        metavar="INT",
    )
    min_count: Optional[int] = setting(
        None,
        "JSON: rarer words become <UNK>.",
        panel=INPUTS,
        shown=CAPTION_JSON_DEFAULTS["min_count"],
        min=1,
        max=1000000,
        metavar="INT",
    )
    max_length: Optional[int] = setting(
        None,
        "JSON: longest training caption, in words.",
        panel=INPUTS,
        shown=CAPTION_JSON_DEFAULTS["max_length"],
        min=1,
        metavar="INT",
    )
    max_train: Optional[int] = setting(None, "Train on this many captions only.", panel=INPUTS, min=1, metavar="INT")
    train_images: Optional[int] = setting(
        None,
        "Shapes: how many training images to draw.",
        panel=INPUTS,
        shown=CAPTION_SHAPES_SPLITS["train"],
        min=1,
        max=100000,
        metavar="INT",
    )

    def __post_init__(self) -> None:
        check_limits(self)

    def settings(self) -> dict[str, Any]:
        """The options as given, for the checkpoint (paths as text)."""
        return {name: str(v) if isinstance(v, Path) else v for name, v in asdict(self).items()}

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> CaptionSource:
        return cls(**{f.name: settings.get(f.name) for f in fields(cls)})

    def kind(self) -> str:
        """Which source the options choose: "coco_h5", "coco_json", "karpathy", "coco" or "shapes" (the default)."""
        chosen = [
            name
            for name, value in (
                ("--data", self.data),
                ("--karpathy", self.karpathy),
                ("--images/--annotations", self.annotations or (self.images and not self.karpathy)),
                ("--coco", self.coco),
                ("--dataset", self.dataset),
            )
            if value
        ]
        if len(chosen) > 1:
            raise A3Error(f"choose one data source, not {' and '.join(chosen)}")
        if self.train_splits is not None and self.karpathy is None:
            raise A3Error("--train-splits is for --karpathy (the splits of a Karpathy file)")
        if self.data is not None:
            return "coco_h5"
        if self.coco is not None:
            return "coco"
        if self.karpathy is not None:
            if self.images is None:
                raise A3Error("--karpathy needs --images DIR, the folder its file names are in")
            return "karpathy"
        if self.images is not None or self.annotations is not None:
            if self.images is None or self.annotations is None:
                raise A3Error("--images and --annotations go together")
            return "coco_json"
        if (self.dataset or "shapes") != "shapes":
            raise A3Error(f"--dataset {self.dataset!r}: the built-in data set is 'shapes'")
        return "shapes"

    def check(self) -> str:
        """The source's kind, once the options that only one source takes are checked."""
        kind = self.kind()
        if self.train_images is not None and kind != "shapes":
            raise A3Error("--train-images is for the built-in shapes data set (other sources have their own images)")
        return kind


@dataclass
class TrainConfig:
    """The settings of a caption-train run; a setting left None takes the resumed run's value, else the cell
    type's default.

    Checked when made, and again when `training.resolve_settings` fills in the defaults.
    """

    cell_type: str = setting(
        None, f"{', '.join(CAPTION_CELLS)}.", panel=MODEL, shown=CAPTION_DEFAULTS["cell_type"], run=True
    )
    hidden_dim: int = setting(
        None,
        "Size of the hidden state.",
        panel=MODEL,
        shown=caption_default_help("hidden_dim"),
        min=1,
        max=8192,
        metavar="INT",
        run=True,
    )
    wordvec_dim: int = setting(
        None,
        "Size of the word vectors.",
        panel=MODEL,
        shown=caption_default_help("wordvec_dim"),
        min=1,
        max=8192,
        metavar="INT",
        run=True,
    )
    lr: float = setting(
        None, "Adam's learning rate.", shown=caption_default_help("lr"), min=0.0, metavar="FLOAT", run=True
    )
    # The learning rate is multiplied by this after every epoch.
    lr_decay: float = setting(
        None,
        "Learning-rate factor per epoch.",
        shown=caption_default_help("lr_decay"),
        min=0.0,
        max=1.0,
        metavar="FLOAT",
        run=True,
    )
    lr_schedule: str = setting(
        None,
        "step: the rate times --lr-decay after each epoch; cosine: from --lr down to 0 over the run.",
        shown=caption_default_help("lr_schedule"),
        run=True,
    )
    batch_size: int = setting(
        None,
        "Captions per batch.",
        shown=caption_default_help("batch_size"),
        min=1,
        max=4096,
        metavar="INT",
        run=True,
    )
    # May differ from the resumed run's: train longer.
    epochs: int = setting(
        None, "Epochs in all.", shown=caption_default_help("epochs"), min=1, max=100000, metavar="INT", run=True
    )
    grad_clip: float = setting(
        None,
        "Clip the gradient norm (0: off).",
        panel=OPTIMISATION,
        shown=caption_default_help("grad_clip"),
        min=0.0,
        metavar="FLOAT",
        run=True,
    )
    cell_positions: bool = setting(
        None,
        "Learn where each grid cell is.",
        "--cell-positions/--no-cell-positions",
        panel=MODEL,
        shown="on for " + ", ".join(c.name for c in CAPTION_CELLS.values() if caption_default("cell_positions", c)),
        run=True,
    )
    num_heads: int = setting(
        None,
        "Transformer: attention heads.",
        panel=MODEL,
        shown=CAPTION_DEFAULTS["num_heads"],
        min=1,
        max=64,
        metavar="INT",
        run=True,
    )
    num_layers: int = setting(
        None,
        "Transformer: decoder layers.",
        panel=MODEL,
        shown=CAPTION_DEFAULTS["num_layers"],
        min=1,
        max=48,
        metavar="INT",
        run=True,
    )
    ffn_dim: int = setting(
        None,
        "Transformer: feed-forward width.",
        panel=MODEL,
        shown=CAPTION_DEFAULTS["ffn_dim"],
        min=1,
        max=65536,
        metavar="INT",
        run=True,
    )
    dropout: float = setting(
        None,
        "Transformer: dropout.",
        panel=MODEL,
        shown=CAPTION_DEFAULTS["dropout"],
        min=0.0,
        max=0.9,
        metavar="FLOAT",
        run=True,
    )
    # The longest generated caption when measuring BLEU: stored with the run, not an option.
    max_length: int = field(default=CAPTION_SAMPLE_DEFAULTS["max_length"], metadata={"run": True})

    def __post_init__(self) -> None:
        check_limits(self)
        if self.lr_schedule is not None and self.lr_schedule not in LR_SCHEDULES:
            raise A3Error(f"--lr-schedule {self.lr_schedule!r}: choose {' or '.join(LR_SCHEDULES)}")
        if self.cell_type is None:  # not given: checked again once the default is filled in
            return
        cell = CAPTION_CELLS.get(self.cell_type)
        if cell is None:
            raise A3Error(f"--cell-type {self.cell_type!r}: choose {' or '.join(CAPTION_CELLS)}")
        self.check_for(cell)

    def check_for(self, cell: CaptionCell) -> None:
        """Settings of another cell are refused; the Transformer's heads must divide its width."""
        if self.cell_positions and not cell.tokens:
            readers = " or ".join(c.name for c in CAPTION_CELLS.values() if c.tokens)
            raise A3Error(f"--cell-positions is for --cell-type {readers} (the {cell.name} reads no grid)")
        for name in sorted(CELL_OPTIONS - set(cell.options)):
            if getattr(self, name) is not None:
                takes = " or ".join(c.name for c in CAPTION_CELLS.values() if name in c.options)
                raise A3Error(f"--{name.replace('_', '-')} is for --cell-type {takes}, not {cell.name}")
        if self.num_heads and self.wordvec_dim and self.wordvec_dim % self.num_heads:
            width = f"--wordvec-dim {self.wordvec_dim}, the Transformer's width"
            raise A3Error(f"--num-heads {self.num_heads} does not divide {width}")


@dataclass
class CaptionRun:
    """Where a caption-train run lives and how it is kept: its folder, resuming, checkpoints, the sampling-only
    export, and the seed of a new run."""

    out: Path = run_folder_setting("out/caption", "checkpoint.pt, metrics.json, loss.png")
    resume: bool = resume_setting()
    checkpoint_every: Optional[int] = checkpoint_every_setting("iterations", "every epoch")
    tensorboard: bool = tensorboard_setting()
    export: Optional[Path] = optional_path("Also write a small sampling-only checkpoint here.")
    seed: int = seed_setting()

    def __post_init__(self) -> None:
        check_limits(self)


@dataclass(frozen=True)
class Decoding:
    """How to turn scores into words: greedy (the default), beam search, or sampling; checked when made."""

    beam_size: int = setting(
        CAPTION_SAMPLE_DEFAULTS["beam_size"],
        "Beam search with this many beams (1: greedy).",
        "--beam-size",
        "-k",
        panel=MODEL,
        min=1,
        max=100,
        metavar="INT",
    )
    # Set: draw words instead of taking the most likely.
    temperature: Optional[float] = setting(
        None, "Draw words at this temperature instead.", "--temperature", "-t", panel=MODEL, min=1e-6, metavar="FLOAT"
    )
    top_k: Optional[int] = setting(
        None, "With --temperature: among the k likeliest words.", panel=MODEL, min=1, max=1000000, metavar="INT"
    )
    length_penalty: float = CAPTION_SAMPLE_DEFAULTS["length_penalty"]
    max_length: int = setting(
        CAPTION_SAMPLE_DEFAULTS["max_length"], "Longest caption, in words.", panel=MODEL, min=1, max=200, metavar="INT"
    )

    def __post_init__(self) -> None:
        check_limits(self)
        if self.beam_size > 1 and self.temperature is not None:
            raise A3Error("choose either --beam-size or --temperature, not both")


@dataclass
class CaptionSampleConfig:
    """The options of `a3 caption-sample` but how it decodes (`Decoding`): what it captions, with which
    captioner, and what it writes."""

    data: Optional[Path] = optional_path("Caption the features of a coco_captioning folder.")
    dataset: Optional[str] = setting(None, "Caption a built-in data set: shapes.", panel=INPUTS)
    split: str = setting(CAPTION_SAMPLE_DEFAULTS["split"], "With --data or --dataset: which split.", panel=INPUTS)
    num: int = setting(
        CAPTION_SAMPLE_DEFAULTS["num"],
        "With --data or --dataset: how many examples.",
        "--num",
        "-n",
        panel=INPUTS,
        min=1,
        max=10000,
        metavar="INT",
    )
    out: Optional[Path] = optional_path("Write the images and captions as a PNG.", "--out", "-o")
    save_images: Optional[Path] = optional_path("With --dataset: write the images here as PNG.")
    attention_maps: Optional[Path] = optional_path("Attention: where each word looked, as a PNG.")
    checkpoint: Path = setting(
        SHIPPED_CAPTIONER,
        "A captioner checkpoint.",
        "--checkpoint",
        "-c",
        panel=MODEL,
        shown="shipped shapes captioner",
        show_default=False,
    )
    seed: int = seed_setting()

    def __post_init__(self) -> None:
        check_limits(self)


def check_one_source(images: Optional[list[Path]], config: CaptionSampleConfig) -> None:
    """Image files, --data or --dataset shapes: exactly one; attention maps need pictures."""
    named = (("IMAGE", images), ("--data", config.data), ("--dataset", config.dataset))
    sources = [name for name, on in named if on]
    if len(sources) != 1:
        raise A3Error(
            "give image files, or --data DIR, or --dataset shapes (exactly one)"
            if not sources
            else f"choose one of {' and '.join(sources)}"
        )
    if config.dataset is not None and config.dataset != "shapes":
        raise A3Error(f"--dataset {config.dataset!r}: the built-in data set is 'shapes'")
    if config.attention_maps is not None and config.data is not None:
        raise A3Error("--attention-maps needs images (files or --dataset), not the assignment's --data features")
