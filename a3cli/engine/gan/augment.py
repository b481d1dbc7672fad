"""Differentiable augmentation (DiffAugment, Zhao et al. 2020): every image the discriminator sees, real and
generated, in its own steps and in the generator's, is translated, cut out or recoloured at random.

The discriminator of a small data set memorises it and the generator then collapses; when it only ever sees
augmented images it cannot, and since the same random transforms, differentiable, also sit between the
generator and the discriminator in the generator's step, the generator still learns to draw un-augmented
pictures. The operations are DiffAugment's own (images in [-1, 1]: zero is mid-grey). Their random numbers are
drawn for the global batch from the run's generator, on every rank alike, and each rank takes its share, so
that `--resume` and N ranks train what one process trains.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from a3cli.engine.catalogue import AUGMENT_POLICIES
from a3cli.engine.distributed import World
from a3cli.engine.errors import A3Error

TRANSLATION_RATIO = 0.125  # DiffAugment's: shifts of up to 1/8 of the side
CUTOUT_RATIO = 0.5  # a square of half the side set to zero


class Draws:
    """Random numbers for each image of the global batch, drawn whole from the run's RNG like its noise;
    this rank's share of them."""

    def __init__(self, batch_size: int, world: World) -> None:
        self.batch_size, self.world, self.device = batch_size, world, world.device

    def uniform(self) -> Tensor:
        """(n, 1, 1, 1) in [0, 1)."""
        return self.world.shard(torch.rand(self.batch_size, 1, 1, 1, device=self.device))

    def integers(self, low: int, high: int) -> Tensor:
        """(n, 1, 1) in [low, high)."""
        return self.world.shard(torch.randint(low, high, (self.batch_size, 1, 1), device=self.device))


def brightness(x: Tensor, draws: Draws) -> Tensor:
    return x + (draws.uniform().to(x.dtype) - 0.5)


def saturation(x: Tensor, draws: Draws) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (draws.uniform().to(x.dtype) * 2) + mean


def contrast(x: Tensor, draws: Draws) -> Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (draws.uniform().to(x.dtype) + 0.5) + mean


def grid(n: int, h: int, w: int, device: torch.device) -> tuple[Tensor, ...]:
    """Index grids (n, h, w) of the image, row and column."""
    return tuple(torch.meshgrid(*(torch.arange(k, device=device) for k in (n, h, w)), indexing="ij"))


def translation(x: Tensor, draws: Draws) -> Tensor:
    """Shift each image by up to TRANSLATION_RATIO of its side, filling with zeros."""
    n, _, h, w = x.shape
    sx, sy = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    tx, ty = draws.integers(-sx, sx + 1), draws.integers(-sy, sy + 1)
    batch, gx, gy = grid(n, h, w, x.device)
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1).contiguous()[batch, gx, gy].permute(0, 3, 1, 2)


def cutout(x: Tensor, draws: Draws) -> Tensor:
    """Zero one square of CUTOUT_RATIO of the side, placed at random (it may reach past the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    ox, oy = draws.integers(0, h + (1 - ch % 2)), draws.integers(0, w + (1 - cw % 2))
    batch, gx, gy = grid(n, ch, cw, x.device)
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[batch, gx, gy] = 0
    return x * mask.unsqueeze(1)


OPERATIONS: dict[str, tuple[Callable[[Tensor, Draws], Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}
assert set(OPERATIONS) == set(AUGMENT_POLICIES)


def parse_policy(policy: str, channels: int) -> tuple[str, ...]:
    """'translation,cutout' → ('translation', 'cutout'); 'none' → (). Unknown names are a user mistake."""
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown or not names:
        raise A3Error(f"--augment {policy!r}: use none, or a comma-separated list of {', '.join(OPERATIONS)}")
    if "color" in names and channels != 3:
        raise A3Error("--augment color changes colours: it needs RGB pictures (--channels 3)")
    return names


def augment(x: Tensor, policy: tuple[str, ...], size: int, draws: Draws) -> Tensor:
    """The policy's operations, in DiffAugment's order (color, translation, cutout), on a batch the networks
    take: (n, C, H, W), or the assignment's flattened (n, H·W) digits of side `size`."""
    if not policy:
        return x
    flat = x.dim() == 2
    y = x.reshape(x.shape[0], -1, size, size) if flat else x
    for name in OPERATIONS:
        if name in policy:
            for operation in OPERATIONS[name]:
                y = operation(y, draws)
    return y.reshape(x.shape) if flat else y
