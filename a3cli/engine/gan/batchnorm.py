"""BatchNorm statistics that fit the averaged generator's own weights.

The averaged generator (generative/ema.py) keeps a copy of the live generator's
running statistics, which describe another network's activations. `fit_batchnorm`
recomputes them from the averaged weights on fixed noise
(torch.optim.swa_utils.update_bn, "standing statistics" in BigGAN's words)
whenever the averaged generator is used: sampled, evaluated or saved.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import update_bn

from a3cli.engine.device import seeded_generator
from a3cli.engine.gan.networks import sample_noise

BATCHNORM_SAMPLES = 1024  # noise vectors for the recomputed statistics (8 batches of 128)


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
