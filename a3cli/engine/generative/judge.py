"""How good a generative model is: its Fréchet distance to real pictures and, on MNIST, which digits it draws.

One `Judge` evaluates any number of models against the same real pictures (their
features computed once) and the same noise, so that the distances of two
iterations, or of the live and the averaged model, differ only by the models.
The noise is the model family's own (a GAN's uniform vectors, a diffusion model's
Gaussian images): the Judge takes a function that gives it and a function that
draws pictures from it. Beside the distance, on the same features: precision and
recall (k = 3), which tell a model of a few good pictures from one of many poor ones.
torchmetrics' FrechetInceptionDistance accepts any feature extractor module (it
then needs neither torch-fidelity nor a download); what differs between the two
sizes is the features:

- 28 px (MNIST): the project's digit classifier (classifier.py), its 128-d
  features for the distance and its predicted digits for the mode coverage, the
  share of samples per digit and how far that is from the uniform tenth each (KL
  divergence in nats: 0 for a model that draws every digit equally, ln 10 ≈ 2.30
  for one that draws a single digit). A mode collapse shows as a KL that rises and
  digits dropping out.
- 64 px (a folder of your own pictures): no digits to count, only the distance, on
  EfficientNet-Lite0's pooled 1280-d vector (the offline backbone, ImageNet-trained)
  of the images resized to its 224-px input. It ranks models of the same
  pictures; it is not comparable with the Inception-FID numbers of papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3cli.engine.device import seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.files import not_a_file
from a3cli.engine.generative.classifier import (
    DEFAULT_CLASSIFIER,
    FEATURE_DIM,
    MnistClassifier,
    classifier_missing,
    load_classifier,
)

if TYPE_CHECKING:
    from a3cli.engine.generative.data import ImageFolder

# Images per forward pass: the small digit classifier takes many at once, Lite0 at 224 px fewer.
DIGIT_CHUNK = 500
PHOTO_CHUNK = 100
NEIGHBOURS = 3  # k of precision and recall, as Kynkäänniemi et al. recommend
CDIST_CHUNK = 1000  # rows of a distance matrix at once
COVERED_SHARE = 0.05  # a digit counts as drawn when it has at least half its fair share (1/10)
PHOTO_FEATURES = (
    "EfficientNet-Lite0 pooled features (1280-d, images resized to 224 px): not comparable with Inception FID"
)


class DigitFeatures(nn.Module):
    """What torchmetrics calls: digits in [0, 1] → (N, 128) features of the MNIST classifier."""

    num_features = FEATURE_DIM

    def __init__(self, classifier: MnistClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.classifier.embed(x)


class LiteFeatures(nn.Module):
    """What torchmetrics calls: images (N, 1 or 3, H, W) in [0, 1] → (N, 1280) Lite0 features."""

    num_features = 1280

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        from a3cli.engine.backbones.registry import load_backbone

        self.backbone = load_backbone("efficientnet_lite0", device)
        self.backbone.model.eval()

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        x = x.float().expand(-1, 3, -1, -1)  # gray pictures as RGB
        size = self.backbone.image_size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.backbone.pooled(self.backbone.normalize(x))


class Recorded(nn.Module):
    """A feature extractor that keeps what it computed: torchmetrics calls it for the Fréchet distance, and
    precision and recall then take the same features (one forward pass per image for both)."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features, self.num_features = features, features.num_features
        self.outputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        y = self.features(x)
        self.outputs.append(y.detach().to("cpu", torch.float64))
        return y

    def take(self) -> Tensor:
        """The features computed since the last take, in order."""
        taken, self.outputs = torch.cat(self.outputs), []
        return taken


def knn_radii(points: Tensor, k: int = NEIGHBOURS) -> Tensor:
    """Each point's distance to its k-th nearest other point of the same set."""
    return torch.cat([torch.cdist(part, points).kthvalue(k + 1, dim=1).values for part in points.split(CDIST_CHUNK)])


def covered(points: Tensor, centres: Tensor, radii: Tensor) -> float:
    """The share of `points` inside at least one ball around `centres` (each with its radius)."""
    inside = sum(int((torch.cdist(part, centres) <= radii).any(dim=1).sum()) for part in points.split(CDIST_CHUNK))
    return inside / len(points)


def precision_recall(
    real: Tensor, fake: Tensor, k: int = NEIGHBOURS, real_radii: Optional[Tensor] = None
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) on features: precision, the share of generated
    images inside the real images' manifold (the union of balls reaching each real image's k-th nearest real
    neighbour); recall, the share of real images inside the generated images' manifold. A model that
    draws a few good pictures has high precision and low recall; one that draws everything poorly, the reverse."""
    if min(len(real), len(fake)) <= k:
        raise A3Error(f"precision and recall need more than {k} images of each kind")
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    return {
        "precision": round(covered(fake, real, real_radii), 4),
        "recall": round(covered(real, fake, knn_radii(fake, k)), 4),
    }


def mode_coverage(counts: Tensor) -> dict[str, Any]:
    """Shares per class, their KL divergence from uniform (nats) and the classes drawn, from class counts."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() < 2 or counts.sum() <= 0 or (counts < 0).any():
        raise ValueError("mode_coverage needs non-negative counts of at least two classes, not all zero")
    shares = counts / counts.sum()
    drawn = shares[shares > 0]
    kl = float((drawn * (drawn * counts.numel()).log()).sum())
    return {
        "kl_to_uniform": round(max(kl, 0.0), 4),
        "digits_covered": int((shares >= COVERED_SHARE).sum()),
        "shares": [round(float(s), 4) for s in shares],
    }


def real_sample(available: int, samples: int, seed: int) -> Tensor:
    """Which real pictures a judge compares with: a fixed random `samples` of the `available` (all if fewer)."""
    return torch.randperm(available, generator=seeded_generator(seed + 1))[:samples]


class Judge:
    """The Fréchet distance of generative models against fixed real pictures and fixed noise, on any features
    torchmetrics can call; given the digit classifier (MNIST), also which digits they draw.

    `real01`: the real pictures in [0, 1], in chunks; their features are computed once.
    `noise(samples)`: the first `samples` of one fixed noise sequence, so that the tracked samples are a
    prefix of the final ones.
    """

    def __init__(
        self,
        features: nn.Module,
        real01: Iterable[Tensor],
        noise: Callable[[int], Tensor],
        device: torch.device | str,
        chunk: int,
        classifier: Optional[MnistClassifier] = None,
    ) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.noise, self.chunk = noise, chunk
        self.device, self.classifier = torch.device(device), classifier
        self.features = Recorded(features)
        self.metric = FrechetInceptionDistance(feature=self.features, normalize=True, reset_real_features=False).to(
            self.device
        )
        for batch in real01:
            self.metric.update(batch.to(self.device), real=True)
        self.real_features = self.features.take()
        self.n_real = len(self.real_features)
        self.real_radii = knn_radii(self.real_features) if self.n_real > NEIGHBOURS else None

    @torch.no_grad()
    def __call__(self, draw: Callable[[Tensor], Tensor], samples: int) -> dict[str, Any]:
        """{"frechet_distance", "precision", "recall"} of `samples` images, and with a classifier
        {"kl_to_uniform", "digits_covered", "shares"}.

        `draw(noise)`: the model's images (N, C, H, W) in [0, 1] from a chunk of the noise.
        """
        if samples < 2:
            raise A3Error("the Fréchet distance needs at least 2 generated images")
        self.metric.reset()  # keeps the real features
        counts = torch.zeros(10, dtype=torch.long)
        for chunk in self.noise(samples).split(self.chunk):
            fake01 = draw(chunk).to(self.device)
            self.metric.update(fake01, real=False)
            if self.classifier is not None:
                counts += torch.bincount(self.classifier(fake01).argmax(1).cpu(), minlength=10)
        distance = float(self.metric.compute())
        result: dict[str, Any] = {"frechet_distance": round(distance, 3) if math.isfinite(distance) else distance}
        fake = self.features.take()
        if self.real_radii is not None and len(fake) > NEIGHBOURS:
            result.update(precision_recall(self.real_features, fake, real_radii=self.real_radii))
        return result if self.classifier is None else {**result, **mode_coverage(counts)}


def digit_judge(
    classifier: MnistClassifier,
    images: Tensor,
    noise: Callable[[int], Tensor],
    seed: int,
    real_samples: int,
    device: torch.device | str = "cpu",
) -> Judge:
    """The Judge of MNIST models: the digit classifier's 128-d features and its predicted digits.

    `seed` chooses the real pictures it compares with."""
    classifier = classifier.to(device).eval()
    real01 = images[real_sample(len(images), real_samples, seed)].reshape(-1, 784).float().div(255)
    return Judge(DigitFeatures(classifier), real01.split(DIGIT_CHUNK), noise, device, DIGIT_CHUNK, classifier)


def photo_judge(
    folder: ImageFolder,
    noise: Callable[[int], Tensor],
    seed: int,
    real_samples: int,
    device: torch.device | str = "cpu",
) -> Judge:
    """The Judge of models of the folder's pictures, on Lite0 features (read lazily, in chunks).

    `seed` chooses the real pictures it compares with."""
    order = real_sample(len(folder), real_samples, seed).tolist()
    real01 = (
        torch.stack([folder[i] for i in order[start : start + PHOTO_CHUNK]]).add(1).div(2)
        for start in range(0, len(order), PHOTO_CHUNK)
    )
    return Judge(LiteFeatures(torch.device(device)), real01, noise, device, PHOTO_CHUNK)


def judge_classifier(
    dataset: str, classifier: Optional[str | Path], device: torch.device
) -> tuple[Optional[MnistClassifier], dict[str, Any]]:
    """(the classifier a Judge needs, facts for metrics.json), or (None, why there is none).

    Only for MNIST (the features are an MNIST classifier's). A --classifier given that
    cannot be loaded is a user mistake (A3Error); the shipped one missing is a note.
    Called before the data are loaded, so that a mistake is reported at once.
    """
    if dataset != "mnist":
        return None, {"frechet_note": "computed only for --dataset mnist (the features are an MNIST classifier's)"}
    if classifier is None and not DEFAULT_CLASSIFIER.is_file():
        return None, {"frechet_note": classifier_missing(DEFAULT_CLASSIFIER)}
    if classifier is not None and not Path(classifier).is_file():
        raise A3Error(f"--classifier '{classifier}' {not_a_file(classifier)}")
    try:
        model, info = load_classifier(classifier, device)
    except A3Error as error:
        raise A3Error(f"--classifier: {error}" if classifier is not None else str(error)) from None
    return model, {"classifier_test_accuracy": info.get("test_accuracy")}
