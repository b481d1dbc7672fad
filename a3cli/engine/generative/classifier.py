"""The small MNIST classifier whose features judge the 28-px generative models, how it is trained, and loading it.

The Inception network behind the usual FID was trained on ImageNet photographs at
299×299; on upscaled grayscale digits its features say little. A small CNN trained
on MNIST here gives 128-d penultimate-layer features that separate digits well
(judge.py takes them), and its predicted digits give the mode coverage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3cli.engine.catalogue import CLASSIFIER_EPOCHS, CLASSIFIER_TEST_FRACTION
from a3cli.engine.checkpoints import load_checkpoint, load_state, save_checkpoint
from a3cli.engine.device import seed_everything, seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.files import SHIPPED_MNIST_CLASSIFIER
from a3cli.engine.progress import Progress, report

__all__ = [
    "MnistClassifier",
    "DEFAULT_CLASSIFIER",
    "train_classifier",
    "training_steps",
    "save_classifier",
    "load_classifier",
    "classifier_missing",
    "FEATURE_DIM",
]

DEFAULT_CLASSIFIER = SHIPPED_MNIST_CLASSIFIER
FEATURE_DIM = 128
KIND = "mnist-classifier"
BATCH_SIZE = 64


class MnistClassifier(nn.Module):
    """Two 3×3 conv + max-pool blocks, FC 128 (the features), FC 10. Input (N, 784) or (N, 1, 28, 28) in [0, 1]."""

    num_features = FEATURE_DIM  # read by torchmetrics

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, FEATURE_DIM),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, 10)

    def embed(self, x: Tensor) -> Tensor:
        return self.body(x.reshape(x.shape[0], 784).float())

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.embed(x)))


def shift(images: Tensor, generator: torch.Generator, pixels: int = 2) -> Tensor:
    """Random translations by up to `pixels` (pad, then crop): cheap augmentation for a small training set."""
    n = images.shape[0]
    padded = F.pad(images.reshape(n, 1, 28, 28), (pixels,) * 4)
    dx, dy = torch.randint(0, 2 * pixels + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28].reshape(n, 784)


def accuracy(model: MnistClassifier, images01: Tensor, labels: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(chunk).argmax(1) for chunk in images01.split(1000)])
    return (predictions == labels).float().mean().item()


def held_out(count: int, test_fraction: float) -> int:
    """How many of `count` digits are held out for the test accuracy."""
    return int(round(count * test_fraction))


def training_steps(
    count: int,
    test_fraction: float = CLASSIFIER_TEST_FRACTION,
    epochs: int = CLASSIFIER_EPOCHS,
    batch_size: int = BATCH_SIZE,
) -> int:
    """The optimiser steps `train_classifier` takes on `count` digits (full batches only)."""
    return epochs * ((count - held_out(count, test_fraction)) // batch_size)


def train_classifier(
    images: Tensor,
    labels: Tensor,
    test_fraction: float = CLASSIFIER_TEST_FRACTION,
    epochs: int = CLASSIFIER_EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = 1e-3,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[MnistClassifier, dict[str, Any]]:
    """Train on a shuffled (1 − test_fraction) of uint8 digits (N, 28, 28); report accuracy on the rest.

    The held-out digits are never trained on, so the accuracy is an honest test accuracy.
    """
    g = seeded_generator(seed)
    seed_everything(seed)
    order = torch.randperm(images.shape[0], generator=g)
    x01 = images.reshape(images.shape[0], 784).float().div(255)[order]
    y = labels[order]
    n_test = held_out(images.shape[0], test_fraction)
    x_test, y_test, x_train, y_train = x01[:n_test], y[:n_test], x01[n_test:], y[n_test:]
    model = MnistClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = x_train.shape[0] // batch_size
    step = 0
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(x_train.shape[0], generator=g)
        for i in range(steps_per_epoch):
            index = perm[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(model(shift(x_train[index], g)), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            report(progress, step, {"loss": loss.item()})
    info = {
        "test_accuracy": accuracy(model, x_test, y_test),
        "n_train": int(x_train.shape[0]),
        "n_test": n_test,
        "epochs": epochs,
        "seed": seed,
    }
    model.eval()
    return model, info


def save_classifier(model: MnistClassifier, path: str | Path, info: dict[str, Any]) -> Path:
    return save_checkpoint({"kind": KIND, "state_dict": model.state_dict(), "info": info}, path)


def classifier_missing(path: Path) -> str:
    return f"MNIST classifier '{path}' not found: run `make weights` (or `a3 gan-classifier`)"


def load_classifier(
    path: str | Path | None = None, device: torch.device | str = "cpu"
) -> tuple[MnistClassifier, dict[str, Any]]:
    """Load the classifier (default weights/mnist_classifier.pt, made by `make weights`)."""
    path = Path(path) if path is not None else DEFAULT_CLASSIFIER
    if not path.is_file():
        raise A3Error(classifier_missing(path))
    state = load_checkpoint(path, kind=KIND, map_location="cpu", required=("state_dict",))
    model = MnistClassifier()
    load_state(model, state["state_dict"], f"MNIST classifier '{path}'")
    return model.to(device).eval(), dict(state.get("info", {}))
