"""`a3 caption-sample`: captions from a trained captioner, for pictures or a data set's split."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from a3cli.app import app, check_output, configured, say, seeded_device
from a3cli.engine.captioning.config import CaptionSampleConfig, Decoding
from a3cli.engine.options import Machine

if TYPE_CHECKING:  # a3 --help imports no torch
    from PIL import Image

    from a3cli.engine.captioning.checkpoint import CaptionCheckpoint
    from a3cli.engine.captioning.evaluation import Agreement
    from a3cli.engine.captioning.sampling import CaptionedPictures, CaptionedSplit

PicturesArgument = Annotated[Optional[list[Path]], typer.Argument(help="Images to caption.", show_default=False)]

SAMPLE_EPILOG = """Examples:

  a3 caption-sample shapes.png

  a3 caption-sample photo.jpg --checkpoint out/mine/checkpoint.pt --beam-size 5

  a3 caption-sample --dataset shapes --split test --num 6 --out captions.png

  a3 caption-sample shapes.png --attention-maps looked.png

  a3 caption-sample --data coco_captioning --split val --num 5 \\
    --checkpoint out/coco/checkpoint.pt"""


@app.command("caption-sample", epilog=SAMPLE_EPILOG)
@configured
def caption_sample(
    images: PicturesArgument = None, *, config: CaptionSampleConfig, decoding: Decoding, machine: Machine
) -> None:
    """Caption images with a trained captioner; or compare with the truth on a data set's split."""
    from a3cli.engine.captioning.config import check_one_source
    from a3cli.engine.captioning.sampling import (
        caption_coco_split,
        caption_pictures,
        far_from_training,
        load_captioner,
        shown_caption,
        training_note,
    )
    from a3cli.engine.images import load_image

    check_one_source(images, config)
    torch_device = seeded_device(machine, config.seed)
    check_output(config.out, "png")
    check_output(config.save_images, "folder")
    check_output(config.attention_maps, "png", flag="--attention-maps")
    pictures = [load_image(path) for path in images or []]  # a bad file fails before any model is loaded
    attention = config.attention_maps is not None
    model, ckpt = load_captioner(config.checkpoint, torch_device, attention=attention)
    if config.data is not None:
        show_coco_examples(
            caption_coco_split(model, ckpt, config.data, config.split, config.num, decoding, config.seed)
        )
        return
    names, truths = [str(path) for path in images or []], None
    if config.dataset is not None:
        pictures, truths, names = shapes_pictures(config, ckpt)
    captioned = caption_pictures(model, ckpt, pictures, decoding, config.seed, attention=attention, truths=truths)
    notes = far_from_training(ckpt, captioned.distances) if config.dataset is None else None
    if config.dataset is None and (note := training_note(ckpt, names, captioned.distances)):
        print(note, file=sys.stderr)
    shown = [shown_caption(caption, decoding.max_length) for caption in captioned.captions]
    show_captions(names, shown, truths, captioned.agreement)
    write_figures(pictures, names, captioned, shown, truths, notes, config)


def shapes_pictures(
    config: CaptionSampleConfig, ckpt: CaptionCheckpoint
) -> tuple[list[Image.Image], list[str], list[str]]:
    """The pictures of the shapes split, their true captions and their names (written with --save-images)."""
    from a3cli.engine.captioning.sampling import shapes_examples

    pictures, truths = shapes_examples(config.split, config.num, ckpt)
    return pictures, truths, shapes_names(pictures, config.split, config.save_images)


def shapes_names(pictures: list[Image.Image], split: str, save_images: Optional[Path]) -> list[str]:
    """How each shapes picture is named in the output: its file when written, else split and index."""
    if save_images is None:
        return [f"shapes {split} {i}" for i in range(len(pictures))]
    from a3cli.engine.images import save_image

    return [str(save_image(p, save_images / f"shapes_{split}_{i:03d}.png")) for i, p in enumerate(pictures)]


def show_captions(
    names: list[str], captions: list[str], truths: Optional[list[str]], agreement: Optional[Agreement]
) -> None:
    """One line per picture; beside the truth, whether it is right, then the exact-match summary and CIDEr-D."""
    if truths is None or agreement is None:
        for name, caption in zip(names, captions):
            say(f"{name}: {caption}")
        return
    from a3cli.engine.captioning.evaluation import format_exact

    for name, caption, truth in zip(names, captions, truths):
        mark = "[green]ok[/]" if caption == truth else "[red]differs[/]"
        say(f"{name}: {caption}   (true: {truth}) {mark}")
    say(f"exact: {format_exact(agreement.exact)}; CIDEr-D {agreement.cider:.3f}")


def write_figures(
    pictures: list[Image.Image],
    names: list[str],
    captioned: CaptionedPictures,
    shown: list[str],
    truths: Optional[list[str]],
    notes: Optional[list[Optional[str]]],
    config: CaptionSampleConfig,
) -> None:
    """The pictures with their captions as shown and each one's note (--out), and where the first caption's
    words looked (--attention-maps)."""
    out, attention_maps = config.out, config.attention_maps
    if out is not None:
        from a3cli.engine.figures import captions_figure

        captions_figure(pictures, shown, out, truths, notes=notes)
        say(f"wrote {out}")
    if attention_maps is not None:
        from a3cli.engine.figures import attention_figure

        attention_figure(pictures[0], captioned.captions[0].split(), captioned.attention, attention_maps)
        say(f"wrote {attention_maps} (where the model looked for each word of {names[0]})")


def show_coco_examples(captioned: CaptionedSplit) -> None:
    """Each generated caption of the assignment's features beside its truth, then how many are exact and CIDEr-D."""
    for example in captioned.examples:
        say(f"[bold]{example.image}[/]")
        say(f"  generated: {example.generated}")
        say(f"  truth:     {example.truth}")
    exact = captioned.agreement.exact
    say(
        f"exact: {exact['correct']}/{exact['total']} (equal to one of the image's captions); "
        f"CIDEr-D {captioned.agreement.cider:.3f}"
    )
