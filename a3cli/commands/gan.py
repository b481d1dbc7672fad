"""`a3 gan-train`, `a3 gan-sample` and `a3 gan-classifier`: part 5 of the assignment as tools."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import typer

from a3cli.app import (
    PrintJsonOption,
    app,
    check_output,
    configured,
    metrics_printed_on_interrupt,
    progress_bar,
    seeded_device,
)
from a3cli.engine.catalogue import gan_duration
from a3cli.engine.gan.config import GanConfig
from a3cli.engine.options import Machine
from a3cli.engine.progress import Progress

if TYPE_CHECKING:
    from a3cli.engine.gan.results import GanResult
    from a3cli.engine.gan.training import GanTraining
    from a3cli.engine.generative.quality import Quality

TRAIN_EPILOG = f"""Examples:

  a3 gan-train --variant lsgan --out runs/lsgan

  a3 gan-train --variant dcgan --iterations 1500 --out runs/dcgan

  a3 gan-train --out runs/dcgan --resume --iterations 6000

  a3 gan-train --variant dcgan --dataset photos/ --image-size 64 --channels 3

  torchrun --standalone --nproc-per-node 2 -m a3cli gan-train --variant dcgan

The default length, measured on a quiet 2-core CPU: {gan_duration()}.

A busy machine is slower: the run measures its own speed and says how long it will take."""


@app.command("gan-train", epilog=TRAIN_EPILOG)
@configured
def gan_train(
    config: GanConfig,
    machine: Machine,
    print_json: PrintJsonOption = False,
) -> None:
    """Train a GAN on MNIST, Fashion-MNIST or a folder of images; report its Fréchet distance.

    Writes into OUT: grids of fixed noise (samples/), samples.png, samples.gif,
    losses.png, frechet.png, checkpoint.pt, best.pt (the generator with the
    lowest tracked Fréchet distance) and metrics.json; prints a summary.
    With --resume, the settings left out keep the run's values.
    """
    from a3cli.engine.distributed import start
    from a3cli.engine.gan.training import prepare_gan

    check_output(config.out, "folder")
    world = start(seeded_device(machine, config.seed))  # under torchrun: this process's rank and device
    training = prepare_gan(config, world)  # user mistakes end here, before the bar appears
    if not world.main:  # rank 0 alone speaks and writes
        training.train()
        return
    with metrics_printed_on_interrupt(training.out, print_json):
        result = train_with_progress(training)
    show_results(result, print_json)


def show_results(result: GanResult, print_json: bool) -> None:
    """A few lines: length, speed and final losses; the Fréchet distances; the files. metrics.json has it all
    (--print-json: on stdout, with the lines on stderr)."""
    if print_json:
        typer.echo(json.dumps(result.metrics, indent=2))
    settings = result.settings
    speed = f" ({result.iterations_per_second:.1f} it/s)" if result.iterations_per_second else ""
    losses = f"; final losses D {result.losses[0]:.4g}, G {result.losses[1]:.4g}" if result.losses else ""
    augmented = f" (augment {settings.augment})" if settings.augment != "none" else ""
    lines = [
        f"{settings.variant}{augmented}: {result.iterations} iterations in {result.train_seconds:.1f} s"
        f"{speed} on {result.device}{losses}"
    ]
    if result.final is not None:
        lines.append(frechet_summary(result))
    lines.append(f"wrote {settings.out}: {', '.join(path.name for path in result.files)}")
    for line in lines:
        typer.echo(line, err=print_json)


def train_with_progress(training: GanTraining) -> GanResult:
    """Rank 0's training: notes on the data and the judge, then a bar, with a line per measurement."""
    if training.data.offline_fallback:
        typer.echo(f"note: MNIST from the {training.data.source}", err=True)
    if training.settings.fid and training.judge is None:
        typer.echo(f"note: no Fréchet distance: {training.judge_facts['frechet_note']}", err=True)
    with progress_bar(training.total, f"gan-train {training.settings.variant}") as bar:
        bar(training.step, {})
        return training.train(progress=with_measurement_lines(bar, training))


def with_measurement_lines(bar: Progress, training: GanTraining) -> Progress:
    """The bar shows the losses; each measurement while training becomes a line above it."""

    def progress(step: int, losses: Mapping[str, float]) -> None:
        bar(step, losses)
        measured = training.measured
        if measured is None or measured.iteration != step:
            return
        ema = f", averaged generator {measured.ema_fid:.1f}" if measured.ema_fid is not None else ""
        quality = (
            f"; precision {measured.precision:.2f}, recall {measured.recall:.2f}" if measured.recall is not None else ""
        )
        coverage = (
            f"; digits drawn {measured.digits}/10, KL to uniform {measured.kl:.3f}"
            if measured.digits is not None
            else ""
        )
        typer.echo(
            f"iteration {step}: Fréchet distance {measured.fid:.1f}{ema} (best so far {measured.best_fid:.1f})"
            f"{quality}{coverage}",
            err=True,
        )

    return progress


def frechet_summary(result: GanResult) -> str:
    """One line: the final, averaged and best distances on the final sample count, each with its coverage."""

    def part(label: str, measured: Quality, where: str = "") -> str:
        facts = []
        if measured.recall is not None:
            facts.append(f"precision {measured.precision:.2f}, recall {measured.recall:.2f}")
        if measured.digits_covered is not None:
            facts.append(f"digits drawn {measured.digits_covered}/10, KL to uniform {measured.kl_to_uniform:.3f}")
        return f"{label} {measured.frechet_distance:.1f}{where}" + (f" ({'; '.join(facts)})" if facts else "")

    assert result.final is not None
    parts = [part("final", result.final)]
    if result.ema is not None:
        parts.append(part("averaged", result.ema))
    if result.best is not None:
        which = "averaged generator" if result.best_source == "ema" else "live generator"
        parts.append(part("best", result.best, f" [{which} at iteration {result.best_iteration}, best.pt]"))
    return f"Fréchet distance ({result.samples} samples): " + "; ".join(parts)
