"""Has a trained generative model memorised its data?

The nearest training image of each sample, found on the features the Fréchet distance uses (the digit
classifier's on MNIST, EfficientNet-Lite0's otherwise), shows whether samples are new pictures or copies of
training ones.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from a3cli.engine.catalogue import PHOTO_SIZE
from a3cli.engine.generative.data import ImageFolder, load_dataset
from a3cli.engine.generative.judge import DIGIT_CHUNK, PHOTO_CHUNK, DigitFeatures, LiteFeatures


@dataclass
class Nearest:
    """Samples and their nearest training images, interleaved (sample, neighbour, sample, ...), with the
    feature distances and the neighbours' median distance to their own nearest other training image."""

    pictures: Tensor  # (2 * samples, C, H, W) in [0, 1]
    distances: list[float]
    training_spacing: float  # how far apart training images are: a copy of one is much closer than this
    source: str
    features: str

    @property
    def median_distance(self) -> float:
        return statistics.median(self.distances)

    def summary(self) -> str:
        """One line: how near the samples are to training pictures, against how near those are to each other."""
        return (
            f"feature distance to the nearest training image: median {self.median_distance:.3g}, smallest "
            f"{min(self.distances):.3g}; training images lie {self.training_spacing:.3g} from their nearest other "
            f"one (median); on {self.features}; training data: {self.source}"
        )


def training_pictures(run: dict[str, Any], data_root: Optional[Path]) -> tuple[Tensor, str]:
    """The run's training pictures in [0, 1], (N, C, H, W), and where they came from (read again)."""
    if run["image_size"] == PHOTO_SIZE:
        folder = ImageFolder(run["dataset"], run["image_size"], run["channels"])
        return torch.stack([folder[i] for i in range(len(folder))]).add(1).div(2), folder.source
    data = load_dataset(run["dataset"], data_root, download=False)
    return data.images.unsqueeze(1).float().div(255), data.source


def feature_extractor(run: dict[str, Any], device: torch.device) -> tuple[nn.Module, int, str]:
    """(features, chunk, name): the Fréchet distance's features for the run's data."""
    if run["dataset"] == "mnist" and run["image_size"] != PHOTO_SIZE:
        from a3cli.engine.generative.classifier import load_classifier

        classifier, _ = load_classifier(None, device)
        return DigitFeatures(classifier.eval()), DIGIT_CHUNK, "the MNIST classifier's 128-d features"
    return LiteFeatures(device), PHOTO_CHUNK, "EfficientNet-Lite0's pooled 1280-d features"


@torch.no_grad()
def embed(features: nn.Module, pictures: Tensor, chunk: int, device: torch.device) -> Tensor:
    return torch.cat([features(part.to(device)).double().cpu() for part in pictures.split(chunk)])


def nearest_training_images(
    samples: Tensor, run: dict[str, Any], device: torch.device, data_root: Optional[Path]
) -> Nearest:
    """Each of the samples (N, C, H, W) in [0, 1] beside the training picture nearest to it in feature space.

    `run`: the run's settings (its "dataset", "image_size" and "channels")."""
    training, source = training_pictures(run, data_root)
    features, chunk, name = feature_extractor(run, device)
    train_features = embed(features, training, chunk, device)
    distances, index = torch.cdist(embed(features, samples, chunk, device), train_features).min(dim=1)
    neighbours = training[index]
    own = torch.cdist(train_features[index], train_features).topk(2, largest=False).values[:, 1]
    pictures = torch.stack([samples, neighbours], dim=1).flatten(0, 1)
    return Nearest(pictures, [round(float(d), 3) for d in distances], float(own.median()), source, name)
