"""The DCGAN paper's 64-pixel networks (Radford et al. 2016), as pytorch/examples/dcgan writes them.

For your own pictures at 64×64 (RGB or grayscale). The generator turns noise
(N, noise_dim) into images (N, channels, 64, 64) in [-1, 1] with strided transposed
convolutions, BatchNorm and ReLU; the discriminator scores images with strided
convolutions and LeakyReLU 0.2 (BatchNorm after the first), one logit per image
(the loss applies the sigmoid). The WGAN-GP critic is the same discriminator with
LayerNorm in place of BatchNorm, since the gradient penalty is taken per sample.
Weights start as the paper's: N(0, 0.02) for convolutions, N(1, 0.02) for norms' scales.
"""

from __future__ import annotations

from torch import nn

WIDTH = 64  # ngf and ndf in pytorch/examples/dcgan


def generator64(noise_dim: int, channels: int = 3) -> nn.Sequential:
    def up(cin: int, cout: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    w = WIDTH
    return nn.Sequential(
        nn.Unflatten(1, (noise_dim, 1, 1)),
        nn.ConvTranspose2d(noise_dim, w * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(w * 8), nn.ReLU(),  # 4×4
        *up(w * 8, w * 4), *up(w * 4, w * 2), *up(w * 2, w),  # 8, 16, 32
        nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=False), nn.Tanh(),  # 64×64
    )


def _scorer(channels: int, norm) -> nn.Sequential:
    def down(cin: int, cout: int, size: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), norm(cout, size), nn.LeakyReLU(0.2)]

    w = WIDTH
    return nn.Sequential(
        nn.Conv2d(channels, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),  # 32×32
        *down(w, w * 2, 16), *down(w * 2, w * 4, 8), *down(w * 4, w * 8, 4),
        nn.Conv2d(w * 8, 1, 4, 1, 0, bias=False), nn.Flatten(),  # (N, 1)
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
