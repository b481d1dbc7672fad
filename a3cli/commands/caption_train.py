"""`a3 caption-train`: the assignment's RNN/LSTM captioner, or an attention LSTM, trained on any data source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

from rich.table import Table

from a3cli.app import (
    INPUTS,
    app,
    check_output,
    configured,
    console,
    lazy_progress_bar,
    option,
    progress_bar,
    say,
    seeded_device,
)
from a3cli.engine.captioning.config import CaptionRun, CaptionSource, TrainConfig
from a3cli.engine.options import Machine

if TYPE_CHECKING:  # a3 --help imports no torch
    import torch

    from a3cli.engine.captioning.training import CaptionTraining

TRAIN_EPILOG = """Examples:

  a3 caption-train                          # shapes, LSTM, a few CPU minutes

  a3 caption-train --cell-type attention    # attends over the feature grid

  a3 caption-train --data coco_captioning --cell-type rnn --max-train 50 \\
    --epochs 50 --batch-size 25

  a3 caption-train --images photos/ --annotations captions.json --out out/mine

  a3 caption-train --coco coco2017/ --check    # counts, time, cache size

  a3 caption-train --karpathy dataset_flickr8k.json --images flickr8k/

  a3 caption-train --out out/mine --resume --epochs 30"""


@app.command("caption-train", epilog=TRAIN_EPILOG)
@configured
def caption_train(
    source: CaptionSource,
    config: TrainConfig,
    run: CaptionRun,
    machine: Machine,
    check: Annotated[bool, option("--check", help="Check the data, estimate extraction, stop.", panel=INPUTS)] = False,
) -> None:
    """Train the assignment's captioner: a vanilla RNN, an LSTM, an attention LSTM or a Transformer.

    On shapes (the default), the assignment's COCO features, or your own captions.
    With --resume, what is left out keeps the run's value (data and settings) and
    what is given must match it, except --epochs: more epochs train on.
    """
    if check:  # reads the data, writes nothing
        show_check(source, seeded_device(machine, run.seed))
        return
    check_output(run.out, "folder")
    check_output(run.export)
    train_and_show(source, config, run, seeded_device(machine, run.seed))


def train_and_show(source: CaptionSource, config: TrainConfig, run: CaptionRun, device: torch.device) -> None:
    """The run: features, training with a progress bar, the scores; under torchrun only rank 0 speaks."""
    from a3cli.engine.captioning.training import CaptionTraining
    from a3cli.engine.distributed import start

    world = start(device)  # under torchrun: this process's rank and device
    extract, close = lazy_progress_bar("features")
    try:
        training = CaptionTraining(
            source, config, run.out, world, run.resume, run.seed, extract if world.main else None, run.tensorboard
        )
    finally:
        close()
    if not world.main:  # rank 0 alone speaks and writes
        training.train(checkpoint_every=run.checkpoint_every)
        return
    show_training_data(training)
    with progress_bar(training.total, f"{training.settings.cell_type} epochs={training.settings.epochs}") as bar:
        bar(training.step, {})
        metrics = training.train(progress=bar, export=run.export, checkpoint_every=run.checkpoint_every)
    show_results(metrics, run.out, run.export)


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
    from a3cli.engine.captioning.listed import some_paths
    from a3cli.engine.captioning.sources import check_files

    started = time.perf_counter()
    found = check_files(source, device)
    for split, count in found.images.items():
        say(f"{split}: {count} images, {found.captions[split]} captions")
    effect = "stops training" if source.kind() == "coco_json" else "training skips them and their captions"
    for what, paths in (("missing", found.missing), ("unreadable", found.unreadable)):
        if paths:
            say(f"{what}: {len(paths)} listed images ({some_paths(paths)}); {effect}")
    extraction = "cached already" if found.cached else f"about {found.extraction_minutes:.1f} min on {device}"
    say(
        f"vocabulary: {found.words} words at --min-count {found.min_count}; "
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
