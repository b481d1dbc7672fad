"""The assignment's GAN networks and its noise, plus the WGAN-GP critic.

Every discriminator takes flattened images (N, 784) in [-1, 1] and returns one
score per image (N, 1); every generator takes noise (N, noise_dim) and returns
flattened images (N, 784) in [-1, 1] (Tanh), as in the assignment.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from a3cli.engine.catalogue import GAN_DEFAULTS, GanVariant, load

__all__ = [
    "NOISE_DIM", "sample_noise", "discriminator", "generator", "dc_discriminator", "dc_generator",
    "wgan_critic", "initialize_weights", "make_generator", "make_discriminator", "initializer",
]

NOISE_DIM = GAN_DEFAULTS["noise_dim"]  # the assignment's


def sample_noise(batch_size: int, dim: int, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
    """Noise uniform in [-1, 1], shape (batch_size, dim)."""
    return torch.rand(batch_size, dim, device=device, generator=generator) * 2 - 1


def initialize_weights(module: nn.Module) -> None:
    """The assignment's init: Xavier-uniform weights and zero biases for Linear and ConvTranspose2d."""
    if isinstance(module, (nn.Linear, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def discriminator() -> nn.Sequential:
    """Fully connected: 784 → 256 → 256 → 1 with LeakyReLU(0.01)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.LeakyReLU(0.01),
        nn.Linear(256, 256), nn.LeakyReLU(0.01),
        nn.Linear(256, 1),
    )


def generator(noise_dim: int = NOISE_DIM) -> nn.Sequential:
    """Fully connected: noise_dim → 1024 → 1024 → 784, ReLU, Tanh at the end."""
    return nn.Sequential(
        nn.Linear(noise_dim, 1024), nn.ReLU(),
        nn.Linear(1024, 1024), nn.ReLU(),
        nn.Linear(1024, 784), nn.Tanh(),
    )


def dc_discriminator() -> nn.Sequential:
    """Convolutional (the assignment's DCGAN): two 5×5 conv + max-pool blocks, then two FC layers."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 64, 4 * 4 * 64), nn.LeakyReLU(0.01),
        nn.Linear(4 * 4 * 64, 1),
    )


def dc_generator(noise_dim: int = NOISE_DIM) -> nn.Sequential:
    """Convolutional (InfoGAN's MNIST generator, as in the assignment): FC layers, then two transposed convs."""
    return nn.Sequential(
        nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh(),
        nn.Flatten(),
    )


def wgan_critic() -> nn.Sequential:
    """The WGAN-GP critic: 64 then 128 4×4 stride-2 convs, LayerNorm, FC 1024, FC 1.

    The InfoGAN discriminator that the assignment's WGAN-GP uses has BatchNorm; the
    gradient penalty is per sample, and BatchNorm mixes the samples of a batch, so the
    WGAN-GP paper replaces it with layer normalisation, as done here. No sigmoid: a
    critic gives unbounded scores.
    """
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.01),
        nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.LayerNorm([128, 7, 7]), nn.LeakyReLU(0.01),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1024), nn.LeakyReLU(0.01),
        nn.Linear(1024, 1),
    )


def make_generator(variant: GanVariant, noise_dim: int, image_size: int = 28, channels: int = 1) -> nn.Module:
    """The variant's generator at this size: the assignment's (28 px) or the DCGAN paper's (64 px)."""
    if image_size == 28:
        return load(variant.generator)(noise_dim)
    return load(variant.generator64)(noise_dim, channels)


def make_discriminator(variant: GanVariant, image_size: int = 28, channels: int = 1) -> nn.Module:
    if image_size == 28:
        return load(variant.discriminator)()
    return load(variant.discriminator64)(channels)


def initializer(image_size: int) -> Callable[[nn.Module], None]:
    """The assignment's initialisation for its networks, the DCGAN paper's for the 64-px ones."""
    if image_size == 28:
        return initialize_weights
    from a3cli.engine.gan.networks64 import initialize_weights64

    return initialize_weights64
