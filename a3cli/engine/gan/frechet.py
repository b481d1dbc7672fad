"""A Fréchet distance for 28×28 digits: torchmetrics' FID on features of our own MNIST classifier.

The Inception network behind the usual FID was trained on ImageNet photographs at
299×299; on upscaled grayscale digits its features say little. A small CNN trained
on MNIST here gives 128-d penultimate-layer features that separate digits well,
and torchmetrics' FrechetInceptionDistance accepts any feature extractor module
(it then needs neither torch-fidelity nor a download).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3cli.engine.checkpoints import load_checkpoint, load_state, save_checkpoint
from a3cli.engine.device import seed_everything, seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.files import SHIPPED_MNIST_CLASSIFIER
from a3cli.engine.progress import Progress, report

__all__ = [
    "MnistClassifier", "DEFAULT_CLASSIFIER", "train_classifier", "save_classifier", "load_classifier",
    "frechet_distance", "FEATURE_DIM",
]

DEFAULT_CLASSIFIER = SHIPPED_MNIST_CLASSIFIER
FEATURE_DIM = 128
KIND = "mnist-classifier"


class MnistClassifier(nn.Module):
    """Two 3×3 conv + max-pool blocks, FC 128 (the features), FC 10. Input (N, 784) or (N, 1, 28, 28) in [0, 1]."""

    num_features = FEATURE_DIM  # read by torchmetrics

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, FEATURE_DIM), nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, 10)

    def embed(self, x: Tensor) -> Tensor:
        return self.body(x.reshape(x.shape[0], 784).float())

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.embed(x)))


class Features(nn.Module):
    """What torchmetrics calls: images in [0, 1] → (N, 128) features."""

    num_features = FEATURE_DIM

    def __init__(self, classifier: MnistClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.classifier.embed(x)


def shift(images: Tensor, generator: torch.Generator, pixels: int = 2) -> Tensor:
    """Random translations by up to `pixels` (pad, then crop): cheap augmentation for a small training set."""
    n = images.shape[0]
    padded = F.pad(images.reshape(n, 1, 28, 28), (pixels,) * 4)
    dx, dy = torch.randint(0, 2 * pixels + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + 28, dx:dx + 28].reshape(n, 784)


def accuracy(model: MnistClassifier, images01: Tensor, labels: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(chunk).argmax(1) for chunk in images01.split(1000)])
    return (predictions == labels).float().mean().item()


def train_classifier(images: Tensor, labels: Tensor, test_fraction: float = 0.2, epochs: int = 20,
                     batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                     progress: Progress | None = None) -> tuple[MnistClassifier, dict[str, Any]]:
    """Train on a shuffled (1 − test_fraction) of uint8 digits (N, 28, 28); report accuracy on the rest.

    The held-out digits are never trained on, so the accuracy is an honest test accuracy.
    """
    g = seeded_generator(seed)
    seed_everything(seed)
    order = torch.randperm(images.shape[0], generator=g)
    x01 = images.reshape(images.shape[0], 784).float().div(255)[order]
    y = labels[order]
    n_test = int(round(images.shape[0] * test_fraction))
    x_test, y_test, x_train, y_train = x01[:n_test], y[:n_test], x01[n_test:], y[n_test:]
    model = MnistClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = x_train.shape[0] // batch_size
    step = 0
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(x_train.shape[0], generator=g)
        for i in range(steps_per_epoch):
            index = perm[i * batch_size:(i + 1) * batch_size]
            loss = F.cross_entropy(model(shift(x_train[index], g)), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            report(progress, step, {"loss": loss.item()})
    info = {"test_accuracy": accuracy(model, x_test, y_test), "n_train": int(x_train.shape[0]),
            "n_test": n_test, "epochs": epochs, "seed": seed}
    model.eval()
    return model, info


def save_classifier(model: MnistClassifier, path: str | Path, info: dict[str, Any]) -> Path:
    return save_checkpoint({"kind": KIND, "state_dict": model.state_dict(), "info": info}, path)


def classifier_missing(path: Path) -> str:
    return f"MNIST classifier '{path}' not found: run `make weights` (or `a3 gan-classifier`)"


def load_classifier(path: str | Path | None = None, device: torch.device | str = "cpu") -> tuple[MnistClassifier, dict]:
    """Load the classifier (default weights/mnist_classifier.pt, made by `make weights`)."""
    path = Path(path) if path is not None else DEFAULT_CLASSIFIER
    if not path.is_file():
        raise A3Error(classifier_missing(path))
    state = load_checkpoint(path, kind=KIND, map_location="cpu", required=("state_dict",))
    model = MnistClassifier()
    load_state(model, state["state_dict"], f"MNIST classifier '{path}'")
    return model.to(device).eval(), dict(state.get("info", {}))


def frechet_distance(real01: Tensor, fake01: Tensor, classifier: MnistClassifier, batch_size: int = 500) -> float:
    """Fréchet distance between the classifier features of two image sets (N, 784) in [0, 1].

    ‖μ_r − μ_f‖² + Tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^½), computed by torchmetrics in float64.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    if real01.shape[0] < 2 or fake01.shape[0] < 2:
        raise A3Error("the Fréchet distance needs at least 2 real and 2 generated images")
    device = next(classifier.parameters()).device
    metric = FrechetInceptionDistance(feature=Features(classifier), normalize=True).to(device)
    for images, real in ((real01, True), (fake01, False)):
        for chunk in images.split(batch_size):
            metric.update(chunk.to(device), real=real)
    return float(metric.compute())
