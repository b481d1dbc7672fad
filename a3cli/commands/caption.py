"""`a3 caption-train` and `a3 caption-sample`: the assignment's RNN/LSTM captioner as a tool."""

from __future__ import annotations

import sys
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
    app,
    check_output,
    console,
    lazy_progress_bar,
    optional,
    progress_bar,
    seeded_device,
)
from a3cli.engine.catalogue import (
    CAPTION_CELLS,
    CAPTION_DEFAULTS,
    CAPTION_JSON_DEFAULTS,
    CAPTION_SAMPLE_DEFAULTS,
    CAPTION_SHAPES_SPLITS,
    KARPATHY_TRAIN_SPLITS,
    caption_default,
    caption_default_help,
    caption_feature_help,
)
from a3cli.engine.files import SHIPPED_CAPTIONER

if TYPE_CHECKING:  # a3 --help imports no torch
    import torch
    from PIL import Image

    from a3cli.engine.captioning.sampling import CaptionedExample, CaptionedPictures
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
        show_check(source, seeded_device(device, seed))
        return
    check_output(out, "folder")
    check_output(export)
    train_and_show(source, config, out, resume, checkpoint_every, export, seeded_device(device, seed), seed)


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


def say(text: str) -> None:
    """One line of results on stdout, as written (no highlighting, no wrapping)."""
    console.print(text, highlight=False, soft_wrap=True)


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


# ---- caption-sample's options ------------------------------------------------------------------

PicturesArgument = Annotated[Optional[list[Path]], typer.Argument(help="Images to caption.", show_default=False)]
FeaturesFolderOption = Annotated[
    Optional[Path],
    typer.Option("--data", help="Caption the features of a coco_captioning folder.", rich_help_panel=INPUTS),
]
SampleDatasetOption = Annotated[
    Optional[str], typer.Option("--dataset", help="Caption a built-in data set: shapes.", rich_help_panel=INPUTS)
]
SplitOption = Annotated[
    str, typer.Option("--split", help="With --data or --dataset: which split.", rich_help_panel=INPUTS)
]
NumOption = Annotated[
    int,
    typer.Option(
        "--num",
        "-n",
        min=1,
        max=10000,
        metavar="INT",
        help="With --data or --dataset: how many examples.",
        rich_help_panel=INPUTS,
    ),
]
FigureOption = Annotated[
    Optional[Path], typer.Option("--out", "-o", help="Write the images and captions as a PNG.", rich_help_panel=INPUTS)
]
SaveImagesOption = Annotated[
    Optional[Path],
    typer.Option("--save-images", help="With --dataset: write the images here as PNG.", rich_help_panel=INPUTS),
]
AttentionMapsOption = Annotated[
    Optional[Path],
    typer.Option("--attention-maps", help="Attention: where each word looked, as a PNG.", rich_help_panel=INPUTS),
]
CheckpointOption = Annotated[
    Path,
    typer.Option(
        "--checkpoint",
        "-c",
        help="A captioner checkpoint (default: the shipped shapes one).",
        show_default=False,
        rich_help_panel=MODEL,
    ),
]
BeamSizeOption = Annotated[
    int,
    typer.Option(
        "--beam-size",
        "-k",
        min=1,
        max=100,
        metavar="INT",
        help="Beam search with this many beams (1: greedy).",
        rich_help_panel=MODEL,
    ),
]
TemperatureOption = Annotated[
    Optional[float],
    typer.Option(
        "--temperature",
        "-t",
        min=1e-6,
        metavar="FLOAT",
        help="Draw words at this temperature instead.",
        rich_help_panel=MODEL,
    ),
]
TopKOption = Annotated[
    Optional[int],
    typer.Option(
        "--top-k",
        min=1,
        max=1000000,
        metavar="INT",
        help="With --temperature: among the k likeliest words.",
        rich_help_panel=MODEL,
    ),
]
MaxLengthOption = Annotated[
    int,
    typer.Option(
        "--max-length", min=1, max=200, metavar="INT", help="Longest caption, in words.", rich_help_panel=MODEL
    ),
]


@app.command("caption-sample")
def caption_sample(
    images: PicturesArgument = None,
    data: FeaturesFolderOption = None,
    dataset: SampleDatasetOption = None,
    split: SplitOption = CAPTION_SAMPLE_DEFAULTS["split"],
    num: NumOption = CAPTION_SAMPLE_DEFAULTS["num"],
    out: FigureOption = None,
    save_images: SaveImagesOption = None,
    attention_maps: AttentionMapsOption = None,
    checkpoint: CheckpointOption = SHIPPED_CAPTIONER,
    beam_size: BeamSizeOption = CAPTION_SAMPLE_DEFAULTS["beam_size"],
    temperature: TemperatureOption = None,
    top_k: TopKOption = None,
    max_length: MaxLengthOption = CAPTION_SAMPLE_DEFAULTS["max_length"],
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Caption images with a trained captioner; or compare with the truth on a data set's split.

    Examples:

      a3 caption-sample shapes.png

      a3 caption-sample photo.jpg --checkpoint out/mine/checkpoint.pt --beam-size 5

      a3 caption-sample --dataset shapes --split test --num 6 --out captions.png

      a3 caption-sample shapes.png --attention-maps looked.png

      a3 caption-sample --data coco_captioning --split val --num 5 \\
        --checkpoint out/coco/checkpoint.pt
    """
    from a3cli.engine.captioning.decoding import Decoding
    from a3cli.engine.captioning.sampling import (
        caption_coco_split,
        caption_pictures,
        load_captioner,
        shapes_examples,
        training_note,
    )
    from a3cli.engine.errors import A3Error
    from a3cli.engine.images import load_image

    check_one_source(images, data, dataset, attention_maps)
    decoding = Decoding(beam_size, temperature, top_k, max_length=max_length)  # checked here, before any work
    torch_device = seeded_device(device, seed)
    check_output(out, "png")
    check_output(save_images, "folder")
    check_output(attention_maps, "png", flag="--attention-maps")
    pictures = [load_image(path) for path in images or []]  # a bad file fails before any model is loaded
    model, ckpt = load_captioner(checkpoint, torch_device)
    if attention_maps is not None and model.cell_type != "attention":
        raise A3Error(
            f"--attention-maps needs an attention captioner (trained with --cell-type attention); "
            f"'{checkpoint}' is an {model.cell_type.upper()}"
        )
    if data is not None:
        show_coco_examples(caption_coco_split(model, ckpt, data, split, num, decoding, seed))
        return
    names, truths = [str(path) for path in images or []], None
    if dataset is not None:
        pictures, truths = shapes_examples(split, num)
        names = shapes_names(pictures, split, save_images)
    elif note := training_note(ckpt, pictures):
        print(note, file=sys.stderr)
    captioned = caption_pictures(model, ckpt, pictures, decoding, seed, attention=attention_maps is not None)
    show_captions(names, captioned.captions, truths)
    write_figures(pictures, names, captioned, truths, out, attention_maps)


def check_one_source(
    images: Optional[list[Path]], data: Optional[Path], dataset: Optional[str], attention_maps: Optional[Path]
) -> None:
    """Image files, --data or --dataset shapes: exactly one; attention maps need pictures."""
    from a3cli.engine.errors import A3Error

    sources = [name for name, on in (("IMAGE", images), ("--data", data), ("--dataset", dataset)) if on]
    if len(sources) != 1:
        raise A3Error(
            "give image files, or --data DIR, or --dataset shapes (exactly one)"
            if not sources
            else f"choose one of {' and '.join(sources)}"
        )
    if dataset is not None and dataset != "shapes":
        raise A3Error(f"--dataset {dataset!r}: the built-in data set is 'shapes'")
    if attention_maps is not None and data is not None:
        raise A3Error("--attention-maps needs images (files or --dataset), not the assignment's --data features")


def shapes_names(pictures: list[Image.Image], split: str, save_images: Optional[Path]) -> list[str]:
    """How each shapes picture is named in the output: its file when written, else split and index."""
    if save_images is None:
        return [f"shapes {split} {i}" for i in range(len(pictures))]
    from a3cli.engine.images import save_image

    return [str(save_image(p, save_images / f"shapes_{split}_{i:03d}.png")) for i, p in enumerate(pictures)]


def show_captions(names: list[str], captions: list[str], truths: Optional[list[str]]) -> None:
    """One line per picture; beside the truth, whether it is right, then the exact-match summary and CIDEr-D."""
    if truths is None:
        for name, caption in zip(names, captions):
            say(f"{name}: {caption}")
        return
    from a3cli.engine.captioning.evaluation import cider_d, format_exact, shapes_exact_match

    for name, caption, truth in zip(names, captions, truths):
        mark = "[green]ok[/]" if caption == truth else "[red]differs[/]"
        say(f"{name}: {caption}   (true: {truth}) {mark}")
    cider = cider_d([[truth.split()] for truth in truths], [caption.split() for caption in captions])
    say(f"exact: {format_exact(shapes_exact_match(truths, captions))}; CIDEr-D {cider:.3f}")


def write_figures(
    pictures: list[Image.Image],
    names: list[str],
    captioned: CaptionedPictures,
    truths: Optional[list[str]],
    out: Optional[Path],
    attention_maps: Optional[Path],
) -> None:
    """The pictures with their captions (--out) and where the first caption's words looked (--attention-maps)."""
    if out is not None:
        from a3cli.engine.figures import captions_figure

        captions_figure(pictures, captioned.captions, out, truths)
        say(f"wrote {out}")
    if attention_maps is not None:
        from a3cli.engine.figures import attention_figure

        attention_figure(pictures[0], captioned.captions[0].split(), captioned.attention, attention_maps)
        say(f"wrote {attention_maps} (where the model looked for each word of {names[0]})")


def show_coco_examples(examples: list[CaptionedExample]) -> None:
    """Each generated caption of the assignment's features beside its truth, then how many are exact and CIDEr-D."""
    from a3cli.engine.captioning.evaluation import cider_d

    for example in examples:
        say(f"[bold]{example.image}[/]")
        say(f"  generated: {example.generated}")
        say(f"  truth:     {example.truth}")
    cider = cider_d([e.references for e in examples], [e.generated.split() for e in examples])
    exact = sum(e.exact for e in examples)
    say(f"exact: {exact}/{len(examples)} (equal to one of the image's captions); CIDEr-D {cider:.3f}")
