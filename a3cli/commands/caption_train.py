"""`a3 caption-train`: the assignment's RNN/LSTM captioner, or an attention LSTM, trained on any data source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from a3cli.app import (
    INPUTS,
    MODEL,
    OPTIMISATION,
    RUN,
    DeviceOption,
    SeedOption,
    ThreadsOption,
    app,
    check_output,
    console,
    lazy_progress_bar,
    optional,
    progress_bar,
    say,
    seeded_device,
)
from a3cli.engine.catalogue import (
    CAPTION_CELLS,
    CAPTION_DEFAULTS,
    CAPTION_JSON_DEFAULTS,
    CAPTION_SHAPES_SPLITS,
    KARPATHY_TRAIN_SPLITS,
    caption_default,
    caption_default_help,
    caption_feature_help,
)

if TYPE_CHECKING:  # a3 --help imports no torch
    import torch

    from a3cli.engine.captioning.sources import CaptionSource
    from a3cli.engine.captioning.training import CaptionTraining, TrainConfig

# ---- caption-train's options -------------------------------------------------------------------

CocoFolderOption = Annotated[
    Optional[Path],
    optional("--data", help="The assignment's coco_captioning folder (HDF5 + JSON).", rich_help_panel=INPUTS),
]
PcaOption = Annotated[
    Optional[bool],
    optional("--pca/--no-pca", help="With --data: 512-d PCA or 4096-d fc7.", default="--pca", rich_help_panel=INPUTS),
]
ImagesFolderOption = Annotated[
    Optional[Path],
    optional("--images", help="Image folder of --annotations or --karpathy.", rich_help_panel=INPUTS),
]
AnnotationsOption = Annotated[
    Optional[Path], optional("--annotations", help="COCO-format captions JSON.", rich_help_panel=INPUTS)
]
KarpathyOption = Annotated[
    Optional[Path],
    optional("--karpathy", help="A Karpathy split file for --images.", rich_help_panel=INPUTS),
]
TrainSplitsOption = Annotated[
    Optional[str],
    optional(
        "--train-splits",
        help="With --karpathy: the splits to train on.",
        default=",".join(KARPATHY_TRAIN_SPLITS),
        metavar="LIST",
        rich_help_panel=INPUTS,
    ),
]
CocoLayoutOption = Annotated[
    Optional[Path],
    optional("--coco", help="A COCO 2014 or 2017 folder, as downloaded.", rich_help_panel=INPUTS),
]
CheckOption = Annotated[
    bool,
    typer.Option("--check", help="Check the data, estimate extraction, stop.", rich_help_panel=INPUTS),
]
DatasetOption = Annotated[
    Optional[str],
    optional("--dataset", help="Built-in data set.", default="shapes, if no other source", rich_help_panel=INPUTS),
]
MinCountOption = Annotated[
    Optional[int],
    optional(
        "--min-count",
        help="JSON: rarer words become <UNK>.",
        default=CAPTION_JSON_DEFAULTS["min_count"],
        min=1,
        max=1000000,
        metavar="INT",
        rich_help_panel=INPUTS,
    ),
]
CaptionLengthOption = Annotated[
    Optional[int],
    optional(
        "--max-length",
        help="JSON: longest training caption, in words.",
        default=CAPTION_JSON_DEFAULTS["max_length"],
        min=1,
        metavar="INT",
        rich_help_panel=INPUTS,
    ),
]
MaxTrainOption = Annotated[
    Optional[int],
    optional("--max-train", help="Train on this many captions only.", min=1, metavar="INT", rich_help_panel=INPUTS),
]
TrainImagesOption = Annotated[
    Optional[int],
    optional(
        "--train-images",
        help="Shapes: how many training images to draw.",
        default=CAPTION_SHAPES_SPLITS["train"],
        min=1,
        max=100000,
        metavar="INT",
        rich_help_panel=INPUTS,
    ),
]
RunFolderOption = Annotated[
    Path, typer.Option("--out", "-o", help="Run folder: checkpoint.pt, metrics.json, loss.png.", rich_help_panel=INPUTS)
]
ExportOption = Annotated[
    Optional[Path],
    typer.Option("--export", help="Also write a small sampling-only checkpoint here.", rich_help_panel=INPUTS),
]
CellTypeOption = Annotated[
    Optional[str],
    optional(
        "--cell-type",
        help=f"{', '.join(CAPTION_CELLS)}.",
        default=CAPTION_DEFAULTS["cell_type"],
        rich_help_panel=MODEL,
    ),
]
HiddenDimOption = Annotated[
    Optional[int],
    optional(
        "--hidden-dim",
        help="Size of the hidden state.",
        default=caption_default_help("hidden_dim"),
        min=1,
        max=8192,
        metavar="INT",
        rich_help_panel=MODEL,
    ),
]
WordvecDimOption = Annotated[
    Optional[int],
    optional(
        "--wordvec-dim",
        help="Size of the word vectors.",
        default=caption_default_help("wordvec_dim"),
        min=1,
        max=8192,
        metavar="INT",
        rich_help_panel=MODEL,
    ),
]
CellPositionsOption = Annotated[
    Optional[bool],
    optional(
        "--cell-positions/--no-cell-positions",
        help="Attention: learn where each grid cell is.",
        default="on for " + ", ".join(cell for cell in CAPTION_CELLS if caption_default("cell_positions", cell)),
        rich_help_panel=MODEL,
    ),
]
BackboneOption = Annotated[
    Optional[str],
    optional(
        "--model", help="Backbone for image features.", default=caption_feature_help("backbone"), rich_help_panel=INPUTS
    ),
]
LayerOption = Annotated[
    Optional[str],
    optional(
        "--layer", help="Backbone stage, or 'pooled'.", default=caption_feature_help("layer"), rich_help_panel=INPUTS
    ),
]
GridOption = Annotated[
    Optional[int],
    optional(
        "--grid",
        help="Pool the stage's map to grid×grid.",
        default=caption_feature_help("grid"),
        min=1,
        metavar="INT",
        max=16,
        rich_help_panel=INPUTS,
    ),
]
ImageSizeOption = Annotated[
    Optional[int],
    optional(
        "--image-size",
        help="Image side fed to the backbone.",
        default=caption_feature_help("image_size"),
        min=32,
        metavar="INT",
        max=1024,
        rich_help_panel=INPUTS,
    ),
]
LrOption = Annotated[
    Optional[float],
    optional(
        "--lr",
        help="Adam's learning rate.",
        default=caption_default_help("lr"),
        min=0.0,
        metavar="FLOAT",
        rich_help_panel=OPTIMISATION,
    ),
]
LrDecayOption = Annotated[
    Optional[float],
    optional(
        "--lr-decay",
        help="Learning-rate factor per epoch.",
        default=caption_default_help("lr_decay"),
        min=0.0,
        metavar="FLOAT",
        max=1.0,
        rich_help_panel=OPTIMISATION,
    ),
]
BatchSizeOption = Annotated[
    Optional[int],
    optional(
        "--batch-size",
        help="Captions per batch.",
        default=caption_default_help("batch_size"),
        min=1,
        max=4096,
        metavar="INT",
        rich_help_panel=OPTIMISATION,
    ),
]
EpochsOption = Annotated[
    Optional[int],
    optional(
        "--epochs",
        help="Epochs in all.",
        default=caption_default_help("epochs"),
        min=1,
        max=100000,
        metavar="INT",
        rich_help_panel=OPTIMISATION,
    ),
]
GradClipOption = Annotated[
    Optional[float],
    optional(
        "--grad-clip",
        help="Clip the gradient norm (0: off).",
        default=caption_default_help("grad_clip"),
        min=0.0,
        metavar="FLOAT",
        rich_help_panel=OPTIMISATION,
    ),
]
ResumeOption = Annotated[
    bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.", rich_help_panel=RUN)
]
CheckpointEveryOption = Annotated[
    Optional[int],
    optional(
        "--checkpoint-every",
        help="Write the checkpoint every N iterations.",
        default="every epoch",
        min=1,
        metavar="INT",
        rich_help_panel=RUN,
    ),
]


@app.command("caption-train")
def caption_train(
    data: CocoFolderOption = None,
    pca: PcaOption = None,
    images: ImagesFolderOption = None,
    annotations: AnnotationsOption = None,
    karpathy: KarpathyOption = None,
    train_splits: TrainSplitsOption = None,
    coco: CocoLayoutOption = None,
    dataset: DatasetOption = None,
    model: BackboneOption = None,
    layer: LayerOption = None,
    grid: GridOption = None,
    image_size: ImageSizeOption = None,
    min_count: MinCountOption = None,
    max_length: CaptionLengthOption = None,
    max_train: MaxTrainOption = None,
    train_images: TrainImagesOption = None,
    cell_type: CellTypeOption = None,
    hidden_dim: HiddenDimOption = None,
    wordvec_dim: WordvecDimOption = None,
    lr: LrOption = None,
    lr_decay: LrDecayOption = None,
    batch_size: BatchSizeOption = None,
    epochs: EpochsOption = None,
    grad_clip: GradClipOption = None,
    cell_positions: CellPositionsOption = None,
    out: RunFolderOption = Path("out/caption"),
    resume: ResumeOption = False,
    checkpoint_every: CheckpointEveryOption = None,
    export: ExportOption = None,
    check: CheckOption = False,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    threads: ThreadsOption = None,
) -> None:
    """Train the assignment's captioner (RNN or LSTM), or an attention LSTM.

    On shapes (the default), the assignment's COCO features, or your own captions.
    With --resume, what is left out keeps the run's value (data and settings) and
    what is given must match it, except --epochs: more epochs train on.

    Examples:

      a3 caption-train                          # shapes, LSTM, a few CPU minutes

      a3 caption-train --cell-type attention    # attends over the feature grid

      a3 caption-train --data coco_captioning --cell-type rnn --max-train 50 \\
        --epochs 50 --batch-size 25

      a3 caption-train --images photos/ --annotations captions.json --out out/mine

      a3 caption-train --coco coco2017/ --check    # counts, time, cache size

      a3 caption-train --karpathy dataset_flickr8k.json --images flickr8k/

      a3 caption-train --out out/mine --resume --epochs 30
    """
    from a3cli.engine.captioning.sources import CaptionSource
    from a3cli.engine.captioning.training import TrainConfig

    # fmt: off
    source = CaptionSource(data=data, pca=pca, images=images, annotations=annotations, karpathy=karpathy,
                           train_splits=train_splits, coco=coco, dataset=dataset, model=model, layer=layer, grid=grid,
                           image_size=image_size, min_count=min_count, max_length=max_length, max_train=max_train,
                           train_images=train_images)
    config = TrainConfig(cell_type, hidden_dim, wordvec_dim, lr, lr_decay, batch_size, epochs, grad_clip,
                         cell_positions)
    # fmt: on
    if check:  # reads the data, writes nothing
        show_check(source, seeded_device(device, seed, threads))
        return
    check_output(out, "folder")
    check_output(export)
    train_and_show(source, config, out, resume, checkpoint_every, export, seeded_device(device, seed, threads), seed)


def train_and_show(
    source: CaptionSource,
    config: TrainConfig,
    out: Path,
    resume: bool,
    checkpoint_every: Optional[int],
    export: Optional[Path],
    device: torch.device,
    seed: int,
) -> None:
    """The run: features, training with a progress bar, the scores; under torchrun only rank 0 speaks."""
    from a3cli.engine.captioning.training import CaptionTraining
    from a3cli.engine.distributed import start

    world = start(device)  # under torchrun: this process's rank and device
    extract, close = lazy_progress_bar("features")
    try:
        training = CaptionTraining(source, config, out, world, resume, seed, extract if world.main else None)
    finally:
        close()
    if not world.main:  # rank 0 alone speaks and writes
        training.train(checkpoint_every=checkpoint_every)
        return
    show_training_data(training)
    with progress_bar(training.total, f"{training.settings.cell_type} epochs={training.settings.epochs}") as bar:
        bar(training.step, {})
        metrics = training.train(progress=bar, export=export, checkpoint_every=checkpoint_every)
    show_results(metrics, out, export)


def show_training_data(training: CaptionTraining) -> None:
    """What the run trains on: source, captions, words, feature size, device and processes."""
    captions, world = training.data, training.world
    say(
        f"{captions.source}: {len(training.train_split)} training captions, {len(captions.word_to_idx)} words, "
        f"features {captions.input_dim}-d, device {world.device}"
        + (f", {world.world_size} processes" if world.distributed else "")
    )
    if captions.skipped:
        say(f"skipped {len(captions.skipped)} listed images, missing or unreadable (--check lists them)")


def show_check(source: CaptionSource, device: torch.device) -> None:
    """What training on `source` would read and cost: counts, unusable files, words, extraction time, cache."""
    started = time.perf_counter()
    found = source.check_files(device)
    for split, count in found.images.items():
        say(f"{split}: {count} images, {found.captions[split]} captions")
    effect = "stops training" if source.kind() == "coco_json" else "training skips them and their captions"
    for what, paths in (("missing", found.missing), ("unreadable", found.unreadable)):
        if paths:
            shown = ", ".join(f"'{p}'" for p in paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            say(f"{what}: {len(paths)} listed images ({shown}); {effect}")
    minutes = found.seconds_per_image * found.total_images / 60
    extraction = "cached already" if found.cached else f"about {minutes:.1f} min on {device}"
    say(
        f"vocabulary: {found.words} words at --min-count {source.min_count or CAPTION_JSON_DEFAULTS['min_count']}; "
        f"features {found.feature_dim}-d: extraction {extraction} "
        f"({1000 * found.seconds_per_image:.1f} ms per image), cache {found.cache_bytes / 2**20:.1f} MiB"
    )
    say(f"checked in {time.perf_counter() - started:.1f} s; nothing extracted")


def show_results(metrics: dict[str, Any], out: Path, export: Optional[Path]) -> None:
    """BLEU-1..4, CIDEr-D and exact matches of each split's greedy captions, the shapes' counts, the final loss,
    the files."""
    from a3cli.engine.captioning.evaluation import format_exact

    table = Table(title="Greedy captions", title_justify="left")
    table.add_column("split")
    for n in range(1, 5):
        table.add_column(f"BLEU-{n}", justify="right")
    table.add_column("CIDEr-D", justify="right")
    table.add_column("exactly right", justify="right")
    for split, scores in metrics["bleu"].items():
        exact = metrics["exact_match"][split]
        right = f"{exact['correct']}/{exact['total']} ({100 * exact['rate']:.1f} %)"
        cider = f"{metrics['cider'][split]:.3f}"
        table.add_row(split, *(f"{scores[f'bleu{n}']:.3f}" for n in range(1, 5)), cider, right)
    console.print(table)
    for split, exact in metrics["exact_match"].items():
        if "by_objects" in exact:
            say(f"exact on {split}: {format_exact(exact)}")
    final = metrics["train_loss"][-1] if metrics["train_loss"] else float("nan")
    files = [out / "checkpoint.pt", out / "metrics.json", out / "loss.png"] + ([export] if export else [])
    say(f"final training loss {final:.4f}; wrote {', '.join(map(str, files))}")
