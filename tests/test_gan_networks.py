"""The GAN networks against the assignment's and pytorch/examples' parameter counts, shapes and ranges; the noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from a3cli.engine.gan.networks import (
    critic64,
    dc_discriminator,
    dc_generator,
    discriminator,
    discriminator64,
    generator,
    generator64,
    initialize_weights,
    sample_noise,
    wgan_critic,
)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_assignment():
    # The assignment's notebook checks these exact counts (generators built with noise_dim 4).
    assert count(discriminator()) == 267009
    assert count(generator(4)) == 1858320
    assert count(dc_discriminator()) == 1102721
    assert count(dc_generator(4)) == 6580801


def test_layer_sequence_of_the_dc_networks():
    kinds = [type(m).__name__ for m in dc_discriminator()]
    assert kinds == [
        "Unflatten",
        "Conv2d",
        "LeakyReLU",
        "MaxPool2d",
        "Conv2d",
        "LeakyReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
        "LeakyReLU",
        "Linear",
    ]
    kinds = [type(m).__name__ for m in dc_generator()]
    assert kinds == [
        "Linear",
        "ReLU",
        "BatchNorm1d",
        "Linear",
        "ReLU",
        "BatchNorm1d",
        "Unflatten",
        "ConvTranspose2d",
        "ReLU",
        "BatchNorm2d",
        "ConvTranspose2d",
        "Tanh",
        "Flatten",
    ]
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
    assert kinds == [
        "Unflatten",
        "Conv2d",
        "LeakyReLU",
        "Conv2d",
        "LayerNorm",
        "LeakyReLU",
        "Flatten",
        "Linear",
        "LeakyReLU",
        "Linear",
    ]
    convs = [m for m in critic if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (64, (4, 4), (2, 2), (1, 1)),
        (128, (4, 4), (2, 2), (1, 1)),
    ]


def test_sample_noise_is_uniform_in_minus_one_one():
    from scipy import stats

    torch.manual_seed(0)
    z = sample_noise(2000, 96)
    assert z.shape == (2000, 96) and z.min() >= -1 and z.max() <= 1
    # Kolmogorov-Smirnov against U(-1, 1): a wrong range or distribution fails by far.
    assert stats.kstest(z.flatten()[:20000].numpy(), stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3
    assert torch.equal(
        sample_noise(3, 4, generator=torch.Generator().manual_seed(1)),
        sample_noise(3, 4, generator=torch.Generator().manual_seed(1)),
    )


def test_64_px_networks_have_pytorch_examples_sizes():
    # pytorch/examples/dcgan with nz=100, ngf=ndf=64, nc=3
    assert count(generator64(100, 3)) == 3_576_704 and count(discriminator64(3)) == 2_765_568
    G, D = generator64(96, 1), critic64(1)
    x = G(torch.rand(5, 96) * 2 - 1)
    assert x.shape == (5, 1, 64, 64) and x.abs().max() <= 1
    assert D(x).shape == (5, 1)
    # LayerNorm, not BatchNorm: one sample's score does not depend on the rest of the batch
    assert torch.allclose(D(x[:1]), D(x)[:1], atol=1e-6)


class Copier(torch.nn.Module):
    """A "generator" that draws given pictures whatever its noise: a generator that memorised its data."""

    def __init__(self, pictures01: torch.Tensor) -> None:
        super().__init__()
        self.pictures, self.unused = pictures01 * 2 - 1, torch.nn.Parameter(torch.zeros(1))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.pictures[: len(noise)]


def test_latent_walks_start_and_end_at_their_noise_vectors():
    from a3cli.engine.gan.inspection import latent_walk
    from a3cli.engine.gan.networks import generate_images, generator, sample_noise

    torch.manual_seed(0)
    G = generator(8)
    walks = latent_walk(G, 2, 8, torch.Generator().manual_seed(5))
    ends = sample_noise(4, 8, generator=torch.Generator().manual_seed(5)).reshape(2, 2, 8)
    assert walks.shape == (16, 1, 28, 28)
    for row in range(2):
        assert torch.allclose(walks[8 * row], generate_images(G, ends[row, :1])[0], atol=1e-6)
        assert torch.allclose(walks[8 * row + 7], generate_images(G, ends[row, 1:])[0], atol=1e-6)
    steps = (walks[1:8] - walks[:7]).abs().mean(dim=(1, 2, 3))  # a smooth map: each step changes a little
    assert (steps < (walks[7] - walks[0]).abs().mean()).all()


def test_a_generator_that_copies_its_data_is_found_out(tmp_path):
    from a3cli.engine.gan.networks import generate_images, sample_noise
    from a3cli.engine.generative.data import load_dataset
    from a3cli.engine.generative.inspection import nearest_training_images

    digits = load_dataset("mnist", tmp_path, download=False).images[100:116].unsqueeze(1).float() / 255
    run = {"dataset": "mnist", "image_size": 28, "channels": 1, "noise_dim": 4}
    samples = generate_images(Copier(digits), sample_noise(16, 4))
    found = nearest_training_images(samples, run, torch.device("cpu"), tmp_path)
    assert found.pictures.shape == (32, 1, 28, 28)
    assert torch.allclose(found.pictures[0::2], digits, atol=1e-6)  # the samples
    assert torch.allclose(found.pictures[1::2], digits, atol=1e-6)  # each one's nearest training image: itself
    assert max(found.distances) < 1e-3 < found.training_spacing
