"""How good a generator is, on MNIST: its Fréchet distance and which digits it draws.

The MNIST classifier of frechet.py gives both: its 128-d features for the Fréchet
distance, and its predicted digits for the mode coverage, the share of samples
per digit and how far that is from the uniform tenth each (KL divergence in nats:
0 for a generator that draws every digit equally, ln 10 ≈ 2.30 for one that draws
a single digit). A mode collapse shows as a KL that rises and digits dropping out.

One `Judge` evaluates any number of generators against the same real pictures
(their features computed once) and the same noise, so that the distances of
two iterations, or of the live and the averaged generator, differ only by the
generators. The 64-px runs on folders have a Judge too, on other features
(photo_judge.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
from torch import Tensor, nn

from a3cli.engine.device import seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.frechet import DEFAULT_CLASSIFIER, Features, MnistClassifier, classifier_missing, load_classifier
from a3cli.engine.gan.networks import sample_noise
from a3cli.engine.gan.pictures import generate_images

CHUNK = 500  # images per forward pass
COVERED_SHARE = 0.05  # a digit counts as drawn when it has at least half its fair share (1/10)


def mode_coverage(counts: Tensor) -> dict[str, Any]:
    """Shares per class, their KL divergence from uniform (nats) and the classes drawn, from class counts."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() < 2 or counts.sum() <= 0 or (counts < 0).any():
        raise ValueError("mode_coverage needs non-negative counts of at least two classes, not all zero")
    shares = counts / counts.sum()
    drawn = shares[shares > 0]
    kl = float((drawn * (drawn * counts.numel()).log()).sum())
    return {"kl_to_uniform": round(max(kl, 0.0), 4), "digits_covered": int((shares >= COVERED_SHARE).sum()),
            "shares": [round(float(s), 4) for s in shares]}


def judge_noise(samples: int, noise_dim: int, seed: int) -> Tensor:
    """The first `samples` of one fixed noise sequence: the tracked samples are a prefix of the final ones."""
    return sample_noise(samples, noise_dim, generator=seeded_generator(seed + 2))


def real_sample(available: int, samples: int, seed: int) -> Tensor:
    """Which real pictures a judge compares with: a fixed random `samples` of the `available` (all if fewer)."""
    return torch.randperm(available, generator=seeded_generator(seed + 1))[:samples]


class Judge:
    """The Fréchet distance of generators against fixed real pictures and fixed noise, on any features
    torchmetrics can call; given the digit classifier (MNIST), also which digits they draw.

    `real01`: the real pictures in [0, 1], in chunks; their features are computed once.
    """

    def __init__(self, features: nn.Module, real01: Iterable[Tensor], noise_dim: int, seed: int,
                 device: torch.device | str, chunk: int, classifier: Optional[MnistClassifier] = None) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.noise_dim, self.seed, self.chunk = noise_dim, seed, chunk
        self.device, self.classifier = torch.device(device), classifier
        self.metric = FrechetInceptionDistance(feature=features, normalize=True,
                                               reset_real_features=False).to(self.device)
        self.n_real = 0
        for batch in real01:
            self.metric.update(batch.to(self.device), real=True)
            self.n_real += len(batch)

    def noise(self, samples: int) -> Tensor:
        return judge_noise(samples, self.noise_dim, self.seed)

    @torch.no_grad()
    def __call__(self, G: nn.Module, samples: int) -> dict[str, Any]:
        """{"frechet_distance"} of `samples` images of G, and with a classifier {"kl_to_uniform",
        "digits_covered", "shares"}."""
        if samples < 2:
            raise A3Error("the Fréchet distance needs at least 2 generated images")
        self.metric.reset()  # keeps the real features
        counts = torch.zeros(10, dtype=torch.long)
        for chunk in self.noise(samples).split(self.chunk):
            fake01 = generate_images(G, chunk).to(self.device)
            self.metric.update(fake01, real=False)
            if self.classifier is not None:
                counts += torch.bincount(self.classifier(fake01).argmax(1).cpu(), minlength=10)
        distance = float(self.metric.compute())
        result = {"frechet_distance": round(distance, 3) if math.isfinite(distance) else distance}
        return result if self.classifier is None else {**result, **mode_coverage(counts)}


def digit_judge(classifier: MnistClassifier, images: Tensor, noise_dim: int, seed: int, real_samples: int,
                device: torch.device | str = "cpu") -> Judge:
    """The Judge of MNIST generators: the digit classifier's 128-d features and its predicted digits."""
    classifier = classifier.to(device).eval()
    real01 = images[real_sample(len(images), real_samples, seed)].reshape(-1, 784).float().div(255)
    return Judge(Features(classifier), real01.split(CHUNK), noise_dim, seed, device, CHUNK, classifier)


def judge_classifier(dataset: str, classifier: Optional[str | Path],
                     device: torch.device) -> tuple[Optional[MnistClassifier], dict[str, Any]]:
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
        why = "is a folder" if Path(classifier).is_dir() else "does not exist"
        raise A3Error(f"--classifier '{classifier}' {why}")
    try:
        model, info = load_classifier(classifier, device)
    except A3Error as error:
        raise A3Error(f"--classifier: {error}" if classifier is not None else str(error)) from None
    return model, {"classifier_test_accuracy": info.get("test_accuracy")}
