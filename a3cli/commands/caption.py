"""`a3 caption-train` and `a3 caption-sample`: the assignment's RNN/LSTM captioner as a tool."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from a3cli.app import (
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
from a3cli.engine.catalogue import CAPTION_CELLS, CAPTION_DEFAULTS, CAPTION_SHAPES_FEATURES, caption_default_help
from a3cli.engine.files import SHIPPED_CAPTIONER


@app.command("caption-train")
def caption_train(
    data: Annotated[
        Optional[Path], optional("--data", help="The assignment's coco_captioning folder (HDF5 + JSON).")
    ] = None,
    pca: Annotated[
        Optional[bool],
        optional("--pca/--no-pca", help="With --data: the 512-d PCA features or the 4096-d fc7.", default="--pca"),
    ] = None,
    images: Annotated[Optional[Path], optional("--images", help="Folder of images named in --annotations.")] = None,
    annotations: Annotated[Optional[Path], optional("--annotations", help="COCO-format captions JSON.")] = None,
    dataset: Annotated[
        Optional[str],
        optional("--dataset", help="Built-in data set: shapes.", default="shapes, when no other source is given"),
    ] = None,
    model: Annotated[
        Optional[str], optional("--model", help="Backbone for image features.", default="efficientnet_lite0")
    ] = None,
    layer: Annotated[
        Optional[str],
        optional(
            "--layer",
            help="Backbone stage for features, or 'pooled'.",
            default=f"pooled; shapes: {CAPTION_SHAPES_FEATURES['layer']}",
        ),
    ] = None,
    grid: Annotated[
        Optional[int],
        optional(
            "--grid",
            help="Pool the stage's map to grid×grid (keeps layout).",
            default=f"1; shapes: {CAPTION_SHAPES_FEATURES['grid']}",
            min=1,
            max=16,
        ),
    ] = None,
    image_size: Annotated[
        Optional[int],
        optional(
            "--image-size",
            help="Image side fed to the backbone.",
            default=f"224; shapes: {CAPTION_SHAPES_FEATURES['image_size']}",
            min=32,
            max=1024,
        ),
    ] = None,
    min_count: Annotated[
        Optional[int],
        optional("--min-count", help="Words seen fewer times become <UNK> (JSON source).", default=1, min=1),
    ] = None,
    max_length: Annotated[
        Optional[int],
        optional("--max-length", help="Longest training caption in words (JSON source).", default=16, min=1),
    ] = None,
    max_train: Annotated[
        Optional[int], optional("--max-train", help="Train on this many captions only.", min=1)
    ] = None,
    train_images: Annotated[
        Optional[int],
        optional(
            "--train-images",
            help="Shapes: how many training images to draw (more data, less overfitting).",
            default="10000",
            min=1,
        ),
    ] = None,
    cell_type: Annotated[
        Optional[str],
        optional(
            "--cell-type",
            help=f"{', '.join(CAPTION_CELLS)}: the "
            "assignment's RNN or LSTM, or an LSTM that attends over the grid "
            "of image features at every step (shapes' features are a grid; "
            "for --images give --layer and --grid).",
            default=CAPTION_DEFAULTS["cell_type"],
        ),
    ] = None,
    hidden_dim: Annotated[
        Optional[int], optional("--hidden-dim", default=caption_default_help("hidden_dim"), min=1)
    ] = None,
    wordvec_dim: Annotated[
        Optional[int], optional("--wordvec-dim", default=caption_default_help("wordvec_dim"), min=1)
    ] = None,
    lr: Annotated[
        Optional[float], optional("--lr", help="Adam's learning rate.", default=caption_default_help("lr"), min=0.0)
    ] = None,
    lr_decay: Annotated[
        Optional[float],
        optional(
            "--lr-decay",
            help="Learning-rate factor per epoch.",
            default=caption_default_help("lr_decay"),
            min=0.0,
            max=1.0,
        ),
    ] = None,
    batch_size: Annotated[
        Optional[int], optional("--batch-size", default=caption_default_help("batch_size"), min=1)
    ] = None,
    epochs: Annotated[
        Optional[int], optional("--epochs", help="Epochs in all.", default=caption_default_help("epochs"), min=1)
    ] = None,
    grad_clip: Annotated[
        Optional[float],
        optional(
            "--grad-clip", help="Clip the gradient norm (0: off).", default=caption_default_help("grad_clip"), min=0.0
        ),
    ] = None,
    cell_positions: Annotated[
        Optional[bool],
        optional(
            "--cell-positions/--no-cell-positions",
            help="Attention: learn where each grid cell is, so that the model can tell left from right.",
            default="on for attention",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: checkpoint.pt, metrics.json, loss.png.")] = Path(
        "out/caption"
    ),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")] = False,
    checkpoint_every: Annotated[
        Optional[int],
        optional("--checkpoint-every", help="Write the checkpoint every N iterations.", default="every epoch", min=1),
    ] = None,
    export: Annotated[
        Optional[Path], typer.Option("--export", help="Also write a small sampling-only checkpoint here.")
    ] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Train the assignment's captioner (RNN or LSTM), or an attention LSTM, on shapes, COCO, or your own captions.

    With --resume, what is left out keeps the run's value (data and settings) and what is given must match
    it, except --epochs: more epochs train on.

    Examples:

      a3 caption-train                                  # shapes, LSTM, a few CPU minutes

      a3 caption-train --cell-type attention            # shapes, attending over the feature grid

      a3 caption-train --data coco_captioning --cell-type rnn --max-train 50 --epochs 50 --batch-size 25

      a3 caption-train --images photos/ --annotations captions.json --out out/mine

      a3 caption-train --out out/mine --resume --epochs 30
    """
    from a3cli.engine.captioning.evaluation import format_exact
    from a3cli.engine.captioning.sources import CaptionSource
    from a3cli.engine.captioning.training import CaptionTraining, TrainConfig
    from a3cli.engine.distributed import start

    check_output(out, "folder")
    check_output(export)
    source = CaptionSource(
        data=data,
        pca=pca,
        images=images,
        annotations=annotations,
        dataset=dataset,
        model=model,
        layer=layer,
        grid=grid,
        image_size=image_size,
        min_count=min_count,
        max_length=max_length,
        max_train=max_train,
        train_images=train_images,
    )
    config = TrainConfig(
        cell_type, hidden_dim, wordvec_dim, lr, lr_decay, batch_size, epochs, grad_clip, cell_positions
    )
    world = start(seeded_device(device, seed))  # under torchrun: this process's rank and device
    extract, close = lazy_progress_bar("features")
    try:
        training = CaptionTraining(source, config, out, world, resume, seed, extract if world.main else None)
    finally:
        close()
    if not world.main:  # rank 0 alone speaks and writes
        training.train(checkpoint_every=checkpoint_every)
        return
    captions, settings = training.data, training.settings
    console.print(
        f"{captions.source}: {len(training.train_split)} training captions, "
        f"{len(captions.word_to_idx)} words, features {captions.input_dim}-d, device {world.device}"
        + (f", {world.world_size} processes" if world.distributed else ""),
        highlight=False,
        soft_wrap=True,
    )
    with progress_bar(training.total, f"{settings.cell_type} epochs={settings.epochs}") as bar:
        bar(training.step, {})
        metrics = training.train(progress=bar, export=export, checkpoint_every=checkpoint_every)
    table = Table(title="Greedy captions", title_justify="left")
    table.add_column("split")
    for n in range(1, 5):
        table.add_column(f"BLEU-{n}", justify="right")
    table.add_column("exactly right", justify="right")
    for split, scores in metrics["bleu"].items():
        exact = metrics["exact_match"][split]
        table.add_row(
            split,
            *(f"{scores[f'bleu{n}']:.3f}" for n in range(1, 5)),
            f"{exact['correct']}/{exact['total']} ({100 * exact['rate']:.1f} %)",
        )
    console.print(table)
    for split, exact in metrics["exact_match"].items():
        if "by_objects" in exact:
            console.print(f"exact on {split}: {format_exact(exact)}", highlight=False, soft_wrap=True)
    final = metrics["train_loss"][-1] if metrics["train_loss"] else float("nan")
    files = [out / "checkpoint.pt", out / "metrics.json", out / "loss.png"] + ([export] if export else [])
    console.print(
        f"final training loss {final:.4f}; wrote {', '.join(map(str, files))}", highlight=False, soft_wrap=True
    )


@app.command("caption-sample")
def caption_sample(
    images: Annotated[Optional[list[Path]], typer.Argument(help="Images to caption.", show_default=False)] = None,
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", "-c", help="A captioner checkpoint (default: the shipped shapes one).")
    ] = SHIPPED_CAPTIONER,
    beam_size: Annotated[
        int, typer.Option("--beam-size", "-k", min=1, help="Beam search with this many beams (1: greedy).")
    ] = 1,
    temperature: Annotated[
        Optional[float], typer.Option("--temperature", "-t", min=1e-6, help="Draw words at this temperature instead.")
    ] = None,
    top_k: Annotated[
        Optional[int], typer.Option("--top-k", min=1, help="With --temperature: draw among the k likeliest words.")
    ] = None,
    max_length: Annotated[int, typer.Option("--max-length", min=1, max=200)] = 30,
    data: Annotated[
        Optional[Path], typer.Option("--data", help="Caption the assignment's features in this coco_captioning folder.")
    ] = None,
    dataset: Annotated[
        Optional[str], typer.Option("--dataset", help="Caption images of a built-in data set: shapes.")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="With --data or --dataset: which split.")] = "val",
    num: Annotated[int, typer.Option("--num", "-n", min=1, help="With --data or --dataset: how many examples.")] = 6,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Write a PNG of the images with their captions.")
    ] = None,
    save_images: Annotated[
        Optional[Path], typer.Option("--save-images", help="With --dataset: write the images here as PNG.")
    ] = None,
    attention_maps: Annotated[
        Optional[Path],
        typer.Option(
            "--attention-maps",
            help="Attention captioners: draw "
            "where the model looked for each word of the first "
            "image's caption, as this PNG.",
        ),
    ] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Caption images with a trained captioner; or compare with the truth on a data set's split.

    Examples:

      a3 caption-sample shapes.png

      a3 caption-sample photo.jpg --checkpoint out/mine/checkpoint.pt --beam-size 5

      a3 caption-sample --dataset shapes --split test --num 6 --out captions.png

      a3 caption-sample shapes.png --attention-maps looked.png

      a3 caption-sample --data coco_captioning --split val --num 5 --checkpoint out/coco/checkpoint.pt
    """
    from a3cli.engine.captioning.decoding import Decoding
    from a3cli.engine.captioning.evaluation import format_exact, shapes_exact_match
    from a3cli.engine.captioning.sampling import (
        caption_coco_split,
        caption_pictures,
        load_captioner,
        shapes_examples,
        training_note,
    )
    from a3cli.engine.errors import A3Error
    from a3cli.engine.images import load_image, save_image
    from a3cli.engine.plots import captions_figure

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
    decoding = Decoding(beam_size, temperature, top_k, max_length=max_length)
    torch_device = seeded_device(device, seed)
    check_output(out, "png")
    check_output(save_images, "folder")
    check_output(attention_maps, "png", flag="--attention-maps")
    if images:
        pictures = [load_image(path) for path in images]  # a bad file fails before any model is loaded
    model, ckpt = load_captioner(checkpoint, torch_device)
    if attention_maps is not None and model.cell_type != "attention":
        raise A3Error(
            f"--attention-maps needs an attention captioner (trained with --cell-type attention); "
            f"'{checkpoint}' is an {model.cell_type.upper()}"
        )

    if data is not None:
        examples = caption_coco_split(model, ckpt, data, split, num, decoding, seed)
        for example in examples:
            console.print(f"[bold]{example.image}[/]", highlight=False, soft_wrap=True)
            console.print(f"  generated: {example.generated}", highlight=False, soft_wrap=True)
            console.print(f"  truth:     {example.truth}", highlight=False, soft_wrap=True)
        console.print(
            f"exact: {sum(e.exact for e in examples)}/{len(examples)} (equal to one of the image's captions)",
            highlight=False,
            soft_wrap=True,
        )
        return

    truths = None
    names = [str(p) for p in images or []]
    if dataset is not None:
        pictures, truths = shapes_examples(split, num)
        names = [f"shapes {split} {i}" for i in range(len(pictures))]
        if save_images is not None:
            names = [str(save_image(p, save_images / f"shapes_{split}_{i:03d}.png")) for i, p in enumerate(pictures)]
    else:
        note = training_note(ckpt, pictures)
        if note:
            print(note, file=sys.stderr)
    captioned = caption_pictures(model, ckpt, pictures, decoding, seed, attention=attention_maps is not None)
    generated = captioned.captions
    for k, (name, caption) in enumerate(zip(names, generated)):
        if truths is None:
            console.print(f"{name}: {caption}", highlight=False, soft_wrap=True)
        else:
            mark = "[green]ok[/]" if caption == truths[k] else "[red]differs[/]"
            console.print(f"{name}: {caption}   (true: {truths[k]}) {mark}", highlight=False, soft_wrap=True)
    if truths is not None:
        console.print(f"exact: {format_exact(shapes_exact_match(truths, generated))}", highlight=False, soft_wrap=True)
    if out is not None:
        captions_figure(pictures, generated, out, truths)
        console.print(f"wrote {out}", highlight=False, soft_wrap=True)
    if attention_maps is not None:
        from a3cli.engine.captioning.attention_maps import attention_figure

        attention_figure(pictures[0], generated[0].split(), captioned.attention, attention_maps)
        console.print(
            f"wrote {attention_maps} (where the model looked for each word of {names[0]})",
            highlight=False,
            soft_wrap=True,
        )
