"""The denoising network: a small U-Net (Ronneberger et al. 2015, as DDPM uses it) for 28-px digits or 64-px
pictures.

Each resolution has `blocks` residual blocks (group norm, SiLU, 3×3 convolutions) whose output is kept for
the way up, where it is concatenated back; the resolution halves between levels (28, 14, 7 for the digits:
three levels, since 7 does not halve). The timestep enters every block through a sinusoidal embedding
(Vaswani et al. 2017) and an MLP, as a scale and shift after the block's second norm; a class, when the model
is conditional, is an embedding added to the timestep's, with one extra index for "no class" (classifier-free
guidance). Self-attention runs at the lowest resolution only, where it is cheap. The last convolution starts
at zero, so a new model predicts 0.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GROUPS = 8  # channels per group norm: every width here is a multiple of 8


class SinusoidalEmbedding(nn.Module):
    """t ↦ [sin(t ω_i), cos(t ω_i)] with ω_i = 10000^(−i/(d/2 − 1)), i = 0..d/2−1."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        frequencies = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000) / (half - 1)))
        angles = t.float()[:, None] * frequencies[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResidualBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.embedding = nn.Linear(embedding_dim, 2 * channels_out)
        self.norm2 = nn.GroupNorm(GROUPS, channels_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        self.skip = nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.embedding(F.silu(embedding))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(GROUPS, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # (n, heads, h·w, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """(x_t (N, C, H, W), t (N,), classes (N,) or None) → a tensor of x_t's shape."""

    def __init__(
        self,
        channels: int = 1,
        width: int = 32,
        multipliers: tuple[int, ...] = (1, 2, 2),
        blocks: int = 2,
        num_classes: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes  # its "no class" index; 0: unconditional
        embedding_dim = 4 * width
        self.time = nn.Sequential(
            SinusoidalEmbedding(width),
            nn.Linear(width, embedding_dim),
            nn.SiLU(),
            nn.Linear(embedding_dim, embedding_dim),
        )
        self.classes = nn.Embedding(num_classes + 1, embedding_dim) if num_classes else None
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        widths = [width * m for m in multipliers]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, current = [width], width
        for level, level_width in enumerate(widths):
            for _ in range(blocks):
                self.down.append(ResidualBlock(current, level_width, embedding_dim, dropout))
                current = level_width
                skips.append(current)
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(current, current, 3, stride=2, padding=1))
                skips.append(current)
        self.middle = nn.ModuleList(
            [
                ResidualBlock(current, current, embedding_dim, dropout),
                ResidualBlock(current, current, embedding_dim, dropout),
            ]
        )
        self.attention = SelfAttention(current)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, level_width in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(ResidualBlock(current + skips.pop(), level_width, embedding_dim, dropout))
                current = level_width
            if level > 0:
                self.upsample.append(nn.Conv2d(current, current, 3, padding=1))
        last = nn.Conv2d(current, channels, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]
        self.head = nn.Sequential(nn.GroupNorm(GROUPS, current), nn.SiLU(), last)
        self.blocks, self.levels = blocks, len(widths)

    def forward(self, x: Tensor, t: Tensor, classes: Optional[Tensor] = None) -> Tensor:
        embedding = self.time(t)
        if self.classes is not None:
            if classes is None:  # unconditional: the "no class" index
                classes = torch.full((x.shape[0],), self.num_classes, device=x.device, dtype=torch.long)
            embedding = embedding + self.classes(classes)
        h = self.stem(x)
        kept = [h]
        down = iter(self.down)
        for level in range(self.levels):
            for _ in range(self.blocks):
                h = next(down)(h, embedding)
                kept.append(h)
            if level < self.levels - 1:
                h = self.downsample[level](h)
                kept.append(h)
        h = self.middle[0](h, embedding)
        h = self.attention(h)
        h = self.middle[1](h, embedding)
        up = iter(self.up)
        for level in range(self.levels):
            for _ in range(self.blocks + 1):
                h = next(up)(torch.cat([h, kept.pop()], dim=1), embedding)
            if level < self.levels - 1:
                h = F.interpolate(h, size=kept[-1].shape[-2:], mode="nearest")
                h = self.upsample[level](h)
        return self.head(h)
