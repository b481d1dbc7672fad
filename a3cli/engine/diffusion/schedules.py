"""The noise schedules of a Gaussian diffusion: β_t for t = 1..T, as float64 (the products over a thousand steps
need it).

- linear: Ho et al. 2020, β from 1e-4 to 0.02 over 1,000 steps, scaled so that another T keeps the same path.
- cosine: Nichol & Dhariwal 2021, ᾱ_t = cos²((t/T + s) / (1 + s) · π/2) with s = 0.008, β clipped at 0.999.
- sigmoid: Jabri et al. 2022, ᾱ_t from a sigmoid between -3 and 3 (τ = 1): better than cosine on larger images.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SCHEDULES = ("linear", "cosine", "sigmoid")
MAX_BETA = 0.999


def linear_betas(timesteps: int) -> Tensor:
    scale = 1000 / timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)


def betas_from_alphas_cumprod(alphas_cumprod: Tensor) -> Tensor:
    """β_t = 1 − ᾱ_t / ᾱ_{t−1}, from ᾱ at t = 0..T (ᾱ_0 first)."""
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    return (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(0, MAX_BETA)


def cosine_betas(timesteps: int, s: float = 0.008) -> Tensor:
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    return betas_from_alphas_cumprod(torch.cos((t + s) / (1 + s) * math.pi * 0.5) ** 2)


def sigmoid_betas(timesteps: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> Tensor:
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    v_start, v_end = torch.tensor(start / tau).sigmoid(), torch.tensor(end / tau).sigmoid()
    return betas_from_alphas_cumprod((-((t * (end - start) + start) / tau).sigmoid() + v_end) / (v_end - v_start))


def beta_schedule(name: str, timesteps: int) -> Tensor:
    """β_1..β_T of the schedule called `name`."""
    makers = {"linear": linear_betas, "cosine": cosine_betas, "sigmoid": sigmoid_betas}
    return makers[name](timesteps)
