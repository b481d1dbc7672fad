"""Is a trained generator smooth?

A latent walk draws rows of pictures whose noise moves in equal steps between two noise vectors: a generator
that learnt a smooth map changes its picture gradually along a row. (Whether it memorised its data:
generative/inspection.py.)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from a3cli.engine.catalogue import WALK_STEPS
from a3cli.engine.gan.networks import generate_images, sample_noise


def latent_walk(G: nn.Module, rows: int, noise_dim: int, generator: torch.Generator) -> Tensor:
    """rows × WALK_STEPS images, row by row: each row walks linearly between two noise vectors (a segment
    between two points of the uniform noise's cube stays inside it)."""
    ends = sample_noise(2 * rows, noise_dim, generator=generator).reshape(rows, 2, noise_dim)
    t = torch.linspace(0, 1, WALK_STEPS).reshape(1, WALK_STEPS, 1)
    noise = ends[:, :1] * (1 - t) + ends[:, 1:] * t
    return generate_images(G, noise.reshape(rows * WALK_STEPS, noise_dim))
