"""`a3 caption-sample`: captions from a trained captioner, for pictures or a data set's split."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from a3cli.app import (
    INPUTS,
    MODEL,
    DeviceOption,
    SeedOption,
    ThreadsOption,
    app,
    check_output,
    say,
    seeded_device,
    with_default,
)
from a3cli.engine.catalogue import (
    CAPTION_SAMPLE_DEFAULTS,
)
from a3cli.engine.files import SHIPPED_CAPTIONER

if TYPE_CHECKING:  # a3 --help imports no torch
    from PIL import Image

    from a3cli.engine.captioning.sampling import CaptionedExample, CaptionedPictures

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
        help=with_default("A captioner checkpoint.", "shipped shapes captioner"),
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
    threads: ThreadsOption = None,
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
    torch_device = seeded_device(device, seed, threads)
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
    captioned = caption_pictures(model, ckpt, pictures, decoding, seed, attention=attention_maps is not None)
    if dataset is None and (note := training_note(ckpt, names, captioned.distances)):
        print(note, file=sys.stderr)
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
