"""The layers of the assignment's Transformer captioner, and incremental decoding through them.

Multi-head attention, the sin/cos positional encoding and the post-LayerNorm decoder
layer follow CS231n Assignment 3 (masks: 1 = may attend, 0 = blocked). Decoding one
word at a time would recompute every earlier position at every step; `step` instead
keeps, per layer, the self-attention keys and values of the positions already decoded
and the cross-attention keys and values of the image, so each new word costs only its
own row. The result equals the full forward under the causal mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from a3cli.engine.errors import A3Error

__all__ = [
    "MultiHeadAttention",
    "PositionalEncoding",
    "TransformerDecoderLayer",
    "LayerCache",
    "causal_mask",
    "init_weights",
]


def causal_mask(T: int, device: torch.device | str | None = None) -> Tensor:
    """(T, T) lower-triangular ones: position i may attend to positions j <= i, never to later words."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def init_weights(module: nn.Module) -> None:
    """The captioner's initialisation over `module` and all it holds: Linear and Embedding weights from
    N(0, 0.02), Linear biases zero, LayerNorm weight one and bias zero (PyTorch's defaults are wider)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention in `num_heads` heads of width E / num_heads, as in the assignment.

    With `keep_weights` set, each call keeps its attention weights averaged over heads,
    (N, S, T), in `last_weights` (before dropout): the captioner shows where each word looked.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads != 0:
            raise A3Error(f"--num-heads {num_heads} does not divide the width {embed_dim}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.attn_drop = nn.Dropout(dropout)
        self.keep_weights = False
        self.last_weights: Tensor | None = None

    def heads(self, x: Tensor, linear: nn.Linear) -> Tensor:
        """Project x (N, L, E) with one of query/key/value and split it into heads: (N, H, L, E/H)."""
        N, L, _ = x.shape
        return linear(x).view(N, L, self.num_heads, self.head_dim).transpose(1, 2)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """Attention of heads q (N, H, S, D) over k, v (N, H, T, D), mask (S, T) -> projected output (N, S, E).

        Split from `forward` so that incremental decoding can pass keys and values it has kept.
        """
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, float("-inf"))
        weights = scores.softmax(dim=-1)
        if self.keep_weights:
            self.last_weights = weights.detach().mean(dim=1)
        y = self.attn_drop(weights) @ v  # (N, H, S, D)
        N, _, S, _ = y.shape
        return self.proj(y.transpose(1, 2).reshape(N, S, self.embed_dim))

    def forward(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """query (N, S, E) attends over key, value (N, T, E); where attn_mask (S, T) is 0 it may not look."""
        q = self.heads(query, self.query)
        k = self.heads(key, self.key)
        v = self.heads(value, self.value)
        return self.attend(q, k, v, attn_mask)


class PositionalEncoding(nn.Module):
    """Adds the fixed table pe[i, 2j] = sin(i·10000^(-2j/E)), pe[i, 2j+1] = cos(i·10000^(-2j/E)), then dropout."""

    pe: Tensor

    def __init__(self, embed_dim: int, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
        freq = torch.exp(torch.arange(0, embed_dim, 2, dtype=torch.float64) * (-math.log(10000.0) / embed_dim))
        pe = torch.zeros(1, max_len, embed_dim, dtype=torch.float64)
        pe[0, :, 0::2] = torch.sin(position * freq)
        pe[0, :, 1::2] = torch.cos(position * freq[: embed_dim // 2])  # an odd width has one sine more
        self.register_buffer("pe", pe.to(torch.get_default_dtype()))

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """x (N, S, E) holds positions start .. start+S-1: a decoding step passes start = words so far."""
        S = x.shape[1]
        if start + S > self.pe.shape[1]:
            raise A3Error(f"a caption of {start + S} words is longer than the {self.pe.shape[1]} positions encoded")
        return self.dropout(x + self.pe[:, start : start + S])


@dataclass
class LayerCache:
    """What one decoder layer keeps between decoding steps, each (N, H, length, E/H).

    self_k, self_v: the self-attention keys and values of the positions decoded so far.
    memory_k, memory_v: the cross-attention keys and values of the memory, computed once.
    """

    self_k: Tensor
    self_v: Tensor
    memory_k: Tensor
    memory_v: Tensor

    @property
    def length(self) -> int:
        """How many positions have been decoded."""
        return self.self_k.shape[2]

    def select(self, rows: Tensor) -> LayerCache:
        """Keep (and repeat) the given rows, as beam search does with the beams it carries on."""
        return LayerCache(self.self_k[rows], self.self_v[rows], self.memory_k[rows], self.memory_v[rows])


class TransformerDecoderLayer(nn.Module):
    """The assignment's post-LayerNorm decoder layer: masked self-attention, cross-attention over the
    memory, feed-forward, each added back to its input and normalised."""

    def __init__(self, input_dim: int, num_heads: int, dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(input_dim, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(input_dim, num_heads, dropout)
        self.ffn = nn.Sequential(
            nn.Linear(input_dim, dim_feedforward),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, input_dim),
        )
        self.norm_self = nn.LayerNorm(input_dim)
        self.norm_cross = nn.LayerNorm(input_dim)
        self.norm_ffn = nn.LayerNorm(input_dim)
        self.dropout_self = nn.Dropout(dropout)
        self.dropout_cross = nn.Dropout(dropout)
        self.dropout_ffn = nn.Dropout(dropout)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None) -> Tensor:
        """tgt (N, T, E) words, memory (N, M, E) image features, tgt_mask (T, T) -> (N, T, E)."""
        tgt = self.norm_self(tgt + self.dropout_self(self.self_attn(tgt, tgt, tgt, tgt_mask)))
        tgt = self.norm_cross(tgt + self.dropout_cross(self.cross_attn(tgt, memory, memory)))
        return self.norm_ffn(tgt + self.dropout_ffn(self.ffn(tgt)))

    def start_cache(self, memory: Tensor) -> LayerCache:
        """An empty cache for memory (N, M, E): no positions yet, the memory's keys and values projected once."""
        attn = self.self_attn
        empty = memory.new_empty(memory.shape[0], attn.num_heads, 0, attn.head_dim)
        memory_k = self.cross_attn.heads(memory, self.cross_attn.key)
        memory_v = self.cross_attn.heads(memory, self.cross_attn.value)
        return LayerCache(empty, empty, memory_k, memory_v)

    def step(self, x_new: Tensor, cache: LayerCache) -> tuple[Tensor, LayerCache]:
        """Only the newest positions x_new (N, s, E), usually s = 1, after those in `cache` (`start_cache` before
        the first) -> their output (N, s, E) and the cache extended by them."""
        sa, ca = self.self_attn, self.cross_attn
        k = torch.cat([cache.self_k, sa.heads(x_new, sa.key)], dim=2)
        v = torch.cat([cache.self_v, sa.heads(x_new, sa.value)], dim=2)
        past, s = cache.length, x_new.shape[1]
        mask = causal_mask(past + s, x_new.device)[past:] if s > 1 else None  # one new word sees all
        x = self.norm_self(x_new + self.dropout_self(sa.attend(sa.heads(x_new, sa.query), k, v, mask)))
        x = self.norm_cross(x + self.dropout_cross(ca.attend(ca.heads(x, ca.query), cache.memory_k, cache.memory_v)))
        x = self.norm_ffn(x + self.dropout_ffn(self.ffn(x)))
        return x, LayerCache(k, v, cache.memory_k, cache.memory_v)
