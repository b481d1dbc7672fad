"""The GAN networks at both sizes, their noise, and the pictures they draw.

28 px, the assignment's: every discriminator takes flattened images (N, 784) in
[-1, 1] and returns one score per image (N, 1); every generator takes noise
(N, noise_dim) and returns flattened images (N, 784) in [-1, 1] (Tanh). Plus the
WGAN-GP critic, without BatchNorm.

64 px, the DCGAN paper's (Radford et al. 2016), as pytorch/examples/dcgan writes
them, for your own pictures (RGB or grayscale): the generator turns noise into
images (N, channels, 64, 64) in [-1, 1] with strided transposed convolutions,
BatchNorm and ReLU; the discriminator scores images with strided convolutions and
LeakyReLU 0.2 (BatchNorm after the first), one logit per image (the loss applies
the sigmoid). The WGAN-GP critic is the same discriminator with LayerNorm in place
of BatchNorm, since the gradient penalty is taken per sample. Weights start as the
paper's: N(0, 0.02) for convolutions, N(1, 0.02) for norms' scales.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from a3cli.engine.catalogue import DIGIT_SIZE, GAN_DEFAULTS, GanVariant
from a3cli.engine.device import seeded_generator
from a3cli.engine.layers import losses

__all__ = [
    "NOISE_DIM",
    "sample_noise",
    "judge_noise",
    "discriminator",
    "generator",
    "dc_discriminator",
    "dc_generator",
    "wgan_critic",
    "initialize_weights",
    "generator64",
    "discriminator64",
    "critic64",
    "initialize_weights64",
    "make_generator",
    "make_discriminator",
    "initializer",
    "generate_images",
]

NOISE_DIM = GAN_DEFAULTS["noise_dim"]  # the assignment's
WIDTH = 64  # ngf and ndf in pytorch/examples/dcgan


def sample_noise(
    batch_size: int, dim: int, device: torch.device | str | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Noise uniform in [-1, 1], shape (batch_size, dim)."""
    return torch.rand(batch_size, dim, device=device, generator=generator) * 2 - 1


def judge_noise(samples: int, noise_dim: int, seed: int) -> Tensor:
    """The noise a Judge measures generators on (generative/judge.py): the first `samples` of one fixed
    sequence, so that the tracked samples are a prefix of the final ones."""
    return sample_noise(samples, noise_dim, generator=seeded_generator(seed + 2))


# ---- 28 px: the assignment's networks ----


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
        nn.Linear(784, 256),
        nn.LeakyReLU(0.01),
        nn.Linear(256, 256),
        nn.LeakyReLU(0.01),
        nn.Linear(256, 1),
    )


def generator(noise_dim: int = NOISE_DIM) -> nn.Sequential:
    """Fully connected: noise_dim → 1024 → 1024 → 784, ReLU, Tanh at the end."""
    return nn.Sequential(
        nn.Linear(noise_dim, 1024),
        nn.ReLU(),
        nn.Linear(1024, 1024),
        nn.ReLU(),
        nn.Linear(1024, 784),
        nn.Tanh(),
    )


def dc_discriminator() -> nn.Sequential:
    """Convolutional (the assignment's DCGAN): two 5×5 conv + max-pool blocks, then two FC layers."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 5),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 64, 4 * 4 * 64),
        nn.LeakyReLU(0.01),
        nn.Linear(4 * 4 * 64, 1),
    )


def dc_generator(noise_dim: int = NOISE_DIM) -> nn.Sequential:
    """Convolutional (InfoGAN's MNIST generator, as in the assignment): FC layers, then two transposed convs."""
    return nn.Sequential(
        nn.Linear(noise_dim, 1024),
        nn.ReLU(),
        nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128),
        nn.ReLU(),
        nn.BatchNorm1d(7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1),
        nn.Tanh(),
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
        nn.Conv2d(1, 64, 4, stride=2, padding=1),
        nn.LeakyReLU(0.01),
        nn.Conv2d(64, 128, 4, stride=2, padding=1),
        nn.LayerNorm([128, 7, 7]),
        nn.LeakyReLU(0.01),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1024),
        nn.LeakyReLU(0.01),
        nn.Linear(1024, 1),
    )


# ---- 64 px: the DCGAN paper's networks ----


def generator64(noise_dim: int, channels: int = 3) -> nn.Sequential:
    def up(cin: int, cout: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    w = WIDTH
    return nn.Sequential(
        nn.Unflatten(1, (noise_dim, 1, 1)),
        nn.ConvTranspose2d(noise_dim, w * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(w * 8),
        nn.ReLU(),  # 4×4
        *up(w * 8, w * 4),
        *up(w * 4, w * 2),
        *up(w * 2, w),  # 8, 16, 32
        nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=False),
        nn.Tanh(),  # 64×64
    )


def _scorer(channels: int, norm: Callable[[int, int], nn.Module]) -> nn.Sequential:
    def down(cin: int, cout: int, size: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), norm(cout, size), nn.LeakyReLU(0.2)]

    w = WIDTH
    return nn.Sequential(
        nn.Conv2d(channels, w, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2),  # 32×32
        *down(w, w * 2, 16),
        *down(w * 2, w * 4, 8),
        *down(w * 4, w * 8, 4),
        nn.Conv2d(w * 8, 1, 4, 1, 0, bias=False),
        nn.Flatten(),  # (N, 1)
    )


def discriminator64(channels: int = 3) -> nn.Sequential:
    return _scorer(channels, lambda c, size: nn.BatchNorm2d(c))


def critic64(channels: int = 3) -> nn.Sequential:
    return _scorer(channels, lambda c, size: nn.LayerNorm([c, size, size]))


def initialize_weights64(module: nn.Module) -> None:
    """The DCGAN paper's initialisation."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# ---- a variant's networks at a run's size ----

# What the catalogue's GanVariant records name.
NETWORKS: dict[str, Callable[..., nn.Module]] = {
    network.__name__: network
    for network in (
        discriminator,
        generator,
        dc_discriminator,
        dc_generator,
        wgan_critic,
        generator64,
        discriminator64,
        critic64,
    )
}
LOSSES: dict[str, Callable[..., Tensor]] = {
    loss.__name__: loss
    for loss in (
        losses.discriminator_loss,
        losses.generator_loss,
        losses.ls_discriminator_loss,
        losses.ls_generator_loss,
        losses.wgan_critic_loss,
        losses.wgan_generator_loss,
    )
}


def make_generator(variant: GanVariant, noise_dim: int, image_size: int, channels: int) -> nn.Module:
    """The variant's generator at this size: the assignment's (28 px) or the DCGAN paper's (64 px)."""
    if image_size == DIGIT_SIZE:
        return NETWORKS[variant.generator](noise_dim)
    assert variant.photo, "check_image_size refuses a variant without 64-px networks"
    return NETWORKS[variant.photo.generator](noise_dim, channels)


def make_discriminator(variant: GanVariant, image_size: int, channels: int) -> nn.Module:
    if image_size == DIGIT_SIZE:
        return NETWORKS[variant.discriminator]()
    assert variant.photo, "check_image_size refuses a variant without 64-px networks"
    return NETWORKS[variant.photo.discriminator](channels)


def initializer(image_size: int) -> Callable[[nn.Module], None]:
    """The assignment's initialisation for its networks, the DCGAN paper's for the 64-px ones."""
    return initialize_weights if image_size == DIGIT_SIZE else initialize_weights64


@torch.no_grad()
def generate_images(G: nn.Module, noise: Tensor) -> Tensor:
    """Images (N, C, H, W) in [0, 1] from noise, with BatchNorm in eval mode (its running statistics)."""
    was_training = G.training
    G.eval()
    try:
        images = G(noise.to(next(G.parameters()).device))
    finally:
        G.train(was_training)
    if images.dim() == 2:  # the assignment's networks draw flattened 28×28 digits
        images = images.reshape(-1, 1, DIGIT_SIZE, DIGIT_SIZE)
    return images.add(1).div(2).clamp(0, 1).cpu()
