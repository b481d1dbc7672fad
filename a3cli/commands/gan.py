"""`a3 gan-train`, `a3 gan-sample` and `a3 gan-classifier`: part 5 of the assignment as tools."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from a3cli.app import (
    INPUTS,
    LOSS,
    MODEL,
    OPTIMISATION,
    RUN,
    DeviceOption,
    SeedOption,
    ThreadsOption,
    app,
    check_output,
    optional,
    progress_bar,
    seeded_device,
)
from a3cli.engine.catalogue import (
    AUGMENT_HELP,
    AUGMENT_POLICIES,
    DIGIT_SIZE,
    GAN_DEFAULTS,
    GAN_VARIANTS,
    PHOTO_SIZE,
    gan_default,
    gan_duration,
)
from a3cli.engine.progress import Progress

if TYPE_CHECKING:
    from a3cli.engine.gan.training import GanTraining


# ---- gan-train's options ----

FRECHET = "Fréchet distance"  # gan-train's own panel, between OPTIMISATION and RUN

Variant = Annotated[
    Optional[str],
    optional("--variant", help=" | ".join(GAN_VARIANTS), default=GAN_DEFAULTS["variant"], rich_help_panel=MODEL),
]
ImageSize = Annotated[
    Optional[int],
    optional(
        "--image-size",
        help=f"{DIGIT_SIZE}, or {PHOTO_SIZE}: the DCGAN paper's, on a folder",
        default=GAN_DEFAULTS["image_size"],
        rich_help_panel=MODEL,
    ),
]
Channels = Annotated[
    Optional[int],
    optional(
        "--channels", help="1: grayscale; 3: RGB (at 64 px)", default=GAN_DEFAULTS["channels"], rich_help_panel=MODEL
    ),
]
NoiseDim = Annotated[
    Optional[int],
    optional(
        "--noise-dim",
        metavar="N",
        help="Noise dimension",
        default=GAN_DEFAULTS["noise_dim"],
        min=1,
        max=4096,
        rich_help_panel=MODEL,
    ),
]
Ema = Annotated[
    Optional[float],
    optional(
        "--ema",
        metavar="DECAY",
        min=0.0,
        max=0.99999,
        default=GAN_DEFAULTS["ema"],
        help="Decay of the averaged generator, warmed up as min(DECAY, (1 + t) / (10 + t)) at update t; 0: none",
        rich_help_panel=MODEL,
    ),
]
GpWeight = Annotated[
    Optional[float],
    optional(
        "--gp-weight",
        help="WGAN-GP gradient penalty weight λ",
        default=GAN_DEFAULTS["gp_weight"],
        min=0.0,
        rich_help_panel=LOSS,
    ),
]
Iterations = Annotated[
    Optional[int],
    optional(
        "--iterations",
        metavar="N",
        min=1,
        max=100000000,
        default=GAN_DEFAULTS["iterations"],
        help="Generator steps; overrides --epochs",
        rich_help_panel=OPTIMISATION,
    ),
]
Epochs = Annotated[
    Optional[int],
    typer.Option(
        "--epochs",
        metavar="N",
        min=1,
        max=100000,
        help="Passes over the data, instead of the default length.",
        show_default=False,
        rich_help_panel=OPTIMISATION,
    ),
]
BatchSize = Annotated[
    Optional[int],
    optional(
        "--batch-size",
        metavar="N",
        help="Images per batch",
        default=GAN_DEFAULTS["batch_size"],
        min=1,
        max=4096,
        rich_help_panel=OPTIMISATION,
    ),
]
Lr = Annotated[
    Optional[float],
    optional("--lr", help="Adam learning rate", default=gan_default("lr"), rich_help_panel=OPTIMISATION),
]
Beta1 = Annotated[
    Optional[float], optional("--beta1", help="Adam beta1", default=gan_default("beta1"), rich_help_panel=OPTIMISATION)
]
Beta2 = Annotated[
    Optional[float], optional("--beta2", help="Adam beta2", default=gan_default("beta2"), rich_help_panel=OPTIMISATION)
]
NCritic = Annotated[
    Optional[int],
    optional(
        "--n-critic",
        metavar="N",
        help="Critic steps per generator step",
        default=gan_default("n_critic"),
        min=1,
        max=100,
        rich_help_panel=OPTIMISATION,
    ),
]
Augment = Annotated[
    Optional[str],
    optional(
        "--augment",
        metavar="POLICY",
        help=f"DiffAugment of every image the discriminator sees: none, or {','.join(AUGMENT_POLICIES)} (RGB)",
        default=AUGMENT_HELP,
        rich_help_panel=OPTIMISATION,
    ),
]
Dataset = Annotated[
    Optional[str],
    optional(
        "--dataset",
        help="mnist | fashion-mnist | a folder of images",
        default=GAN_DEFAULTS["dataset"],
        rich_help_panel=INPUTS,
    ),
]
DataRoot = Annotated[
    Optional[Path],
    typer.Option(
        "--data-root", help="Where MNIST's files are, or are downloaded to.", show_default=False, rich_help_panel=INPUTS
    ),
]
Download = Annotated[
    bool,
    typer.Option(
        "--download/--no-download", help="Let torchvision download MNIST or Fashion-MNIST.", rich_help_panel=INPUTS
    ),
]
Out = Annotated[
    Path,
    typer.Option("--out", "-o", help="Run folder: grids, curves, metrics.json, checkpoint.", rich_help_panel=INPUTS),
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.", rich_help_panel=INPUTS)
]
PrintJson = Annotated[
    bool,
    typer.Option(
        "--print-json", help="Print metrics.json on stdout, and the summary on stderr.", rich_help_panel=INPUTS
    ),
]
SampleEvery = Annotated[
    int,
    typer.Option(
        "--sample-every",
        metavar="N",
        min=1,
        max=100000000,
        help="Draw a grid of fixed noise every N iterations.",
        rich_help_panel=RUN,
    ),
]
CheckpointEvery = Annotated[
    Optional[int],
    optional(
        "--checkpoint-every",
        metavar="N",
        min=1,
        help="Checkpoint every N iterations",
        default="--sample-every",
        rich_help_panel=RUN,
    ),
]
Fid = Annotated[
    bool,
    typer.Option("--fid/--no-fid", help="Measure the distance while training and at the end.", rich_help_panel=FRECHET),
]
EvalEvery = Annotated[
    Optional[int],
    optional(
        "--eval-every",
        metavar="N",
        min=0,
        max=100000000,
        default=GAN_DEFAULTS["eval_every"],
        help="Measure every N iterations; 0: at the end",
        rich_help_panel=FRECHET,
    ),
]
EvalSamples = Annotated[
    Optional[int],
    optional(
        "--eval-samples",
        metavar="N",
        min=2,
        max=50000,
        default=GAN_DEFAULTS["eval_samples"],
        help="Generated images per measurement",
        rich_help_panel=FRECHET,
    ),
]
FidSamples = Annotated[
    int,
    typer.Option(
        "--fid-samples",
        metavar="N",
        min=2,
        max=50000,
        help="Generated and real images at the end.",
        rich_help_panel=FRECHET,
    ),
]
Classifier = Annotated[
    Optional[Path],
    optional(
        "--classifier",
        help="MNIST classifier whose features it takes",
        default="shipped MNIST classifier",
        rich_help_panel=FRECHET,
    ),
]


TRAIN_EPILOG = f"""Examples:

  a3 gan-train --variant lsgan --out runs/lsgan

  a3 gan-train --variant dcgan --iterations 1500 --out runs/dcgan

  a3 gan-train --out runs/dcgan --resume --iterations 6000

  a3 gan-train --variant dcgan --dataset photos/ --image-size 64 --channels 3

  torchrun --standalone --nproc-per-node 2 -m a3cli gan-train --variant dcgan

The default length, measured on a quiet 2-core CPU: {gan_duration()}.

A busy machine is slower: the run measures its own speed and says how long it will take."""


@app.command("gan-train", epilog=TRAIN_EPILOG)
def gan_train(
    dataset: Dataset = None,
    data_root: DataRoot = None,
    download: Download = True,
    out: Out = Path(GAN_DEFAULTS["out"]),
    resume: Resume = False,
    print_json: PrintJson = False,
    variant: Variant = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    noise_dim: NoiseDim = None,
    ema: Ema = None,
    gp_weight: GpWeight = None,
    iterations: Iterations = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    lr: Lr = None,
    beta1: Beta1 = None,
    beta2: Beta2 = None,
    n_critic: NCritic = None,
    augment: Augment = None,
    fid: Fid = True,
    eval_every: EvalEvery = None,
    eval_samples: EvalSamples = None,
    fid_samples: FidSamples = GAN_DEFAULTS["fid_samples"],
    classifier: Classifier = None,
    sample_every: SampleEvery = GAN_DEFAULTS["sample_every"],
    checkpoint_every: CheckpointEvery = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    threads: ThreadsOption = None,
) -> None:
    """Train a GAN on MNIST, Fashion-MNIST or a folder of images; report its Fréchet distance.

    Writes into OUT: grids of fixed noise (samples/), samples.png, samples.gif,
    losses.png, frechet.png, checkpoint.pt, best.pt (the generator with the
    lowest tracked Fréchet distance) and metrics.json; prints a summary.
    With --resume, the settings left out keep the run's values.
    """
    from a3cli.engine.distributed import start
    from a3cli.engine.gan.training import GanConfig, prepare_gan

    check_output(out, "folder")
    world = start(seeded_device(device, seed, threads))  # under torchrun: this process's rank and device
    config = GanConfig(
        out=out,
        variant=variant,
        dataset=dataset,
        image_size=image_size,
        channels=channels,
        batch_size=batch_size,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        noise_dim=noise_dim,
        n_critic=n_critic,
        augment=augment,
        gp_weight=gp_weight,
        ema=ema,
        epochs=epochs,
        iterations=iterations,
        sample_every=sample_every,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        eval_samples=eval_samples,
        seed=seed,
        resume=resume,
        data_root=data_root,
        download=download,
        fid=fid,
        fid_samples=fid_samples,
        classifier=classifier,
    )
    training = prepare_gan(config, world)  # user mistakes end here, before the bar appears
    if not world.main:  # rank 0 alone speaks and writes
        training.train()
        return
    show_results(train_with_progress(training, fid), out, print_json)


def show_results(metrics: dict[str, Any], out: Path, print_json: bool) -> None:
    """A few lines: length, speed and final losses; the Fréchet distances; the files. metrics.json has it all
    (--print-json: on stdout, with the lines on stderr)."""
    if print_json:
        typer.echo(json.dumps(metrics, indent=2))
    speed = f" ({metrics['iterations_per_second']:.1f} it/s)" if metrics["iterations_per_second"] else ""
    losses = (
        f"; final losses D {metrics['final_d_loss']:.4g}, G {metrics['final_g_loss']:.4g}"
        if metrics["final_d_loss"] is not None
        else ""
    )
    augmented = metrics["settings"].get("augment", "none")
    augmented = f" (augment {augmented})" if augmented != "none" else ""
    lines = [
        f"{metrics['variant']}{augmented}: {metrics['iterations']} iterations in {metrics['train_seconds']:.1f} s"
        f"{speed} on {metrics['device']}{losses}"
    ]
    if metrics.get("frechet_distance") is not None:
        lines.append(frechet_summary(metrics))
    names = [Path(path).name for path in metrics["files"].values()] + ["metrics.json"]
    lines.append(f"wrote {out}: {', '.join(names)}")
    for line in lines:
        typer.echo(line, err=print_json)


def train_with_progress(training: GanTraining, fid: bool) -> dict[str, Any]:
    """Rank 0's training: notes on the data and the judge, then a bar, with a line per measurement."""
    if training.data.offline_fallback:
        typer.echo(f"note: MNIST from the {training.data.source}", err=True)
    if fid and training.judge is None:
        typer.echo(f"note: no Fréchet distance: {training.judge_facts['frechet_note']}", err=True)
    with progress_bar(training.total, f"gan-train {training.settings.variant}") as bar:
        bar(training.step, {})
        return training.train(progress=with_evaluation_lines(bar))


EVALUATION = ("fid", "ema_fid", "precision", "recall", "kl", "digits", "best_fid")  # GanTraining's measurements


def with_evaluation_lines(bar: Progress) -> Progress:
    """The bar shows the losses; each measurement while training becomes a line above it."""

    def progress(step: int, numbers: Mapping[str, float]) -> None:
        bar(step, {name: value for name, value in numbers.items() if name not in EVALUATION})
        if "fid" in numbers:
            ema = f", averaged generator {numbers['ema_fid']:.1f}" if "ema_fid" in numbers else ""
            quality = (
                f"; precision {numbers['precision']:.2f}, recall {numbers['recall']:.2f}" if "recall" in numbers else ""
            )
            coverage = (
                f"; digits drawn {int(numbers['digits'])}/10, KL to uniform {numbers['kl']:.3f}"
                if "digits" in numbers
                else ""
            )
            typer.echo(
                f"iteration {step}: Fréchet distance {numbers['fid']:.1f}{ema} (best so far "
                f"{numbers['best_fid']:.1f}){quality}{coverage}",
                err=True,
            )

    return progress


def frechet_summary(metrics: dict[str, Any]) -> str:
    """One line: the final, averaged and best distances on the final sample count, each with its coverage."""

    def part(label: str, measured: dict[str, Any], where: str = "") -> str:
        facts = []
        if "recall" in measured:
            facts.append(f"precision {measured['precision']:.2f}, recall {measured['recall']:.2f}")
        if "digits_covered" in measured:
            facts.append(f"digits drawn {measured['digits_covered']}/10, KL to uniform {measured['kl_to_uniform']:.3f}")
        return f"{label} {measured['frechet_distance']:.1f}{where}" + (f" ({'; '.join(facts)})" if facts else "")

    parts = [part("final", metrics["final"])]
    if "ema" in metrics:
        parts.append(part("averaged", metrics["ema"]))
    best = metrics.get("best")
    if best:
        which = "averaged generator" if best["source"] == "ema" else "live generator"
        parts.append(part("best", best, f" [{which} at iteration {best['iteration']}, best.pt]"))
    return f"Fréchet distance ({metrics['frechet_samples']['generated']} samples): " + "; ".join(parts)
