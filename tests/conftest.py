"""Shared fixtures: real photographs that scikit-image and scikit-learn ship, written to disk."""

from __future__ import annotations

import os
from pathlib import Path

# The tests run as the CLI does: idle OpenMP threads sleep (a3cli/cli.py), set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Real photos as JPEG files: skimage's coffee, chelsea, rocket; sklearn's china and flower."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    folder = tmp_path_factory.mktemp("photos")
    arrays = {name: getattr(data, name)() for name in ("coffee", "chelsea", "rocket", "astronaut")}
    arrays.update(zip(("china", "flower"), load_sample_images().images))
    paths = {}
    for name, array in arrays.items():
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(array).save(paths[name], quality=95)
    return paths


@pytest.fixture(scope="session")
def lite0():
    from a3cli.engine.backbones.registry import load_backbone

    return load_backbone("efficientnet_lite0")


@pytest.fixture
def one_thread():
    """Small models train as fast on one thread, and a busy machine's oversubscription can't slow them."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
