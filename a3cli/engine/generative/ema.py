"""An exponential moving average of a model's weights: a GAN's generator, a diffusion model's denoiser.

The averaged model (Karras et al. 2018; Yazıcı et al. 2019) draws smoother, more
varied samples than the last iterate, which keeps oscillating. Its decay warms up
as in TensorFlow's ExponentialMovingAverage, min(decay, (1 + t) / (10 + t)), so
that the random initial weights are forgotten early on.

BatchNorm's running statistics are not weights: averaging or copying the live
model's would describe activations of another network (the live weights, not the
averaged ones). So `update_ema` only copies them, to keep the module complete; a
model family with BatchNorm recomputes them from the averaged weights whenever the
averaged model is used (the GAN's gan/batchnorm.py).
"""

from __future__ import annotations

import torch
from torch import nn


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
