"""An exponential moving average of the generator's weights, and BatchNorm statistics that fit it.

The averaged generator (Karras et al. 2018; Yazıcı et al. 2019) draws smoother,
more varied samples than the last iterate, which oscillates around the equilibrium.
Its decay warms up as in TensorFlow's ExponentialMovingAverage, min(decay,
(1 + t) / (10 + t)), so that the random initial weights are forgotten early on.

BatchNorm's running statistics are not weights: averaging or copying the live
generator's would describe activations of another network (the live weights,
not the averaged ones). So `update_ema` only copies them, to keep the module
complete, and `fit_batchnorm` recomputes them from the averaged weights on fixed
noise (torch.optim.swa_utils.update_bn, "standing statistics" in BigGAN's words)
whenever the averaged generator is used: sampled, evaluated or saved.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from a3cli.engine.device import seeded_generator
from a3cli.engine.gan.networks import sample_noise

BATCHNORM_SAMPLES = 1024  # noise vectors for the recomputed statistics (8 batches of 128)


def ema_decay(decay: float, updates: int) -> float:
    """The decay of update number `updates` (from 1): `decay`, or less while the average is young."""
    return min(decay, (1 + updates) / (10 + updates))


@torch.no_grad()
def update_ema(average: nn.Module, model: nn.Module, decay: float) -> None:
    """average ← decay · average + (1 − decay) · model for every parameter; buffers are copied."""
    for averaged, current in zip(average.parameters(), model.parameters(), strict=True):
        averaged.lerp_(current, 1.0 - decay)
    for buffer, live in zip(average.buffers(), model.buffers(), strict=True):
        buffer.copy_(live)


def fit_batchnorm(
    G: nn.Module, noise_dim: int, seed: int, samples: int | None = None, batch_size: int = 128
) -> nn.Module:
    """Recompute G's BatchNorm running statistics (in place) as the exact mean over fixed noise batches.

    The noise depends only on `seed`, so the result depends only on G's weights. Does
    nothing to a generator without BatchNorm. Returns G, in the mode it was in.
    """
    device = next(G.parameters()).device
    noise = sample_noise(samples or BATCHNORM_SAMPLES, noise_dim, generator=seeded_generator(seed))
    update_bn([chunk.to(device) for chunk in noise.split(batch_size)], G)  # returns at once without BatchNorm
    return G
