"""`a3 diffusion-train`: today's assignment's generative question, a denoising diffusion model, as a tool."""

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
from a3cli.engine.diffusion.config import DiffusionConfig
from a3cli.engine.options import Machine
from a3cli.engine.progress import Progress

if TYPE_CHECKING:
    from a3cli.engine.diffusion.results import DiffusionResult
    from a3cli.engine.diffusion.training import DiffusionTraining
    from a3cli.engine.generative.quality import Quality

TRAIN_EPILOG = """Examples:

  a3 diffusion-train --out runs/diffusion

  a3 diffusion-train --classes --out runs/digits

  a3 diffusion-train --out runs/diffusion --resume --iterations 12000

  a3 diffusion-train --dataset fashion-mnist --classes --out runs/fashion

  torchrun --standalone --nproc-per-node 2 -m a3cli diffusion-train

A busy machine is slower: the run measures its own speed and says how long it will take."""


@app.command("diffusion-train", epilog=TRAIN_EPILOG)
@configured
def diffusion_train(
    config: DiffusionConfig,
    machine: Machine,
    print_json: PrintJsonOption = False,
) -> None:
    """Train a denoising diffusion model (DDPM) on MNIST, Fashion-MNIST or a folder of images; report its
    Fréchet distance on the GANs' judge.

    Writes into OUT: grids of fixed noise (samples/), samples.png, samples.gif,
    losses.png, frechet.png, checkpoint.pt, best.pt (the model with the lowest
    tracked Fréchet distance) and metrics.json; prints a summary. With --resume,
    the settings left out keep the run's values.
    """
    from a3cli.engine.diffusion.training import prepare_diffusion
    from a3cli.engine.distributed import start

    check_output(config.out, "folder")
    world = start(seeded_device(machine, config.seed))  # under torchrun: this process's rank and device
    training = prepare_diffusion(config, world)  # user mistakes end here, before the bar appears
    if not world.main:  # rank 0 alone speaks and writes
        training.train()
        return
    with metrics_printed_on_interrupt(training.out, print_json):
        result = train_with_progress(training)
    show_results(result, print_json)


def train_with_progress(training: DiffusionTraining) -> DiffusionResult:
    """Rank 0's training: notes on the data and the judge, then a bar, with a line per measurement."""
    if getattr(training.data, "offline_fallback", False):
        typer.echo(f"note: MNIST from the {training.data.source}", err=True)
    if training.settings.fid and training.judge is None:
        typer.echo(f"note: no Fréchet distance: {training.judge_facts['frechet_note']}", err=True)
    with progress_bar(training.total, "diffusion-train") as bar:
        bar(training.step, {})
        return training.train(progress=with_measurement_lines(bar, training))


def with_measurement_lines(bar: Progress, training: DiffusionTraining) -> Progress:
    """The bar shows the loss; each measurement while training becomes a line above it."""

    def progress(step: int, losses: Mapping[str, float]) -> None:
        bar(step, losses)
        measured = training.measured
        if measured is None or measured["iteration"] != step:
            return
        typer.echo(
            f"iteration {step}: Fréchet distance {measured['frechet_distance']:.1f} "
            f"(best so far {measured['best_frechet_distance']:.1f}){judged(measured)}",
            err=True,
        )

    return progress


def judged(measured: Mapping) -> str:
    """'; precision 0.81, recall 0.62; digits drawn 10/10, KL to uniform 0.012', as far as measured."""
    text = ""
    if measured.get("recall") is not None:
        text += f"; precision {measured['precision']:.2f}, recall {measured['recall']:.2f}"
    if measured.get("digits_covered") is not None:
        text += f"; digits drawn {measured['digits_covered']}/10, KL to uniform {measured['kl_to_uniform']:.3f}"
    return text


def show_results(result: DiffusionResult, print_json: bool) -> None:
    """A few lines: length, speed and final loss; the Fréchet distances; the files."""
    if print_json:
        typer.echo(json.dumps(result.metrics, indent=2))
    speed = f" ({result.iterations_per_second:.2f} it/s)" if result.iterations_per_second else ""
    loss = f"; final loss {result.loss:.4g}" if result.loss is not None else ""
    lines = [
        f"diffusion: {result.iterations} iterations in {result.train_seconds:.1f} s{speed} on {result.device}{loss}"
    ]
    if result.final is not None:
        lines.append(frechet_summary(result))
    lines.append(f"wrote {result.settings.out}: {', '.join(path.name for path in result.files)}")
    for line in lines:
        typer.echo(line, err=print_json)


def frechet_summary(result: DiffusionResult) -> str:
    def part(label: str, measured: Quality, where: str = "") -> str:
        facts = judged(measured.__dict__).lstrip("; ")
        return f"{label} {measured.frechet_distance:.1f}{where}" + (f" ({facts})" if facts else "")

    assert result.final is not None
    parts = [part("final", result.final)]
    if result.best is not None:
        parts.append(part("best", result.best, f" [iteration {result.best_iteration}, best.pt]"))
    return f"Fréchet distance ({result.samples} samples): " + "; ".join(parts)
