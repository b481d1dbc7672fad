"""The Transformer cell: today's assignment's CaptioningTransformer decoder.

The word vectors plus sin/cos positions pass through `num_layers` post-LayerNorm decoder layers of
masked self-attention, cross-attention to the image's memory tokens (one for a flat feature, as in
the assignment; one per grid cell for a grid) and a feed-forward block (layers/transformer.py). Its
width is the word vectors' (the memory is projected to it); weights are drawn from N(0, 0.02), the
captioner's too. Decoding keeps each layer's keys and values, so a new word costs only its own row.
Its loss is the assignment's for the Transformer: cross-entropy at every position, masked positions
counting zero, averaged over all N × T positions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3cli.engine.captioning.cells.base import Cell, State
from a3cli.engine.layers.transformer import (
    LayerCache,
    PositionalEncoding,
    TransformerDecoderLayer,
    causal_mask,
    init_weights,
)

MAX_POSITIONS = 512  # the longest caption it reads or writes, in words


@dataclasses.dataclass
class TransformerState(State):
    caches: list[LayerCache]  # per layer: the keys and values of the words so far, and of the memory
    position: int  # the next word's

    def select(self, rows: Tensor) -> TransformerState:
        return TransformerState([cache.select(rows) for cache in self.caches], self.position)


def transformer_loss(x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """Scores x (N, T, V), targets y (N, T): cross-entropy at every position times the mask, averaged over all
    N × T positions (the assignment's loss for its Transformer)."""
    N, T, V = x.shape
    losses = F.cross_entropy(x.reshape(N * T, V), y.reshape(N * T), reduction="none")
    return (losses * mask.reshape(N * T)).mean()


class TransformerCell(Cell):
    init_std = 0.02

    def __init__(
        self,
        wordvec_dim: int,
        hidden_dim: int,
        dtype: torch.dtype = torch.float32,
        num_heads: int = 4,
        num_layers: int = 2,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.positions = PositionalEncoding(wordvec_dim, dropout, MAX_POSITIONS)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(wordvec_dim, num_heads, ffn_dim, dropout) for _ in range(num_layers)
        )
        init_weights(self)
        self.to(dtype)
        self.settings = {"num_heads": num_heads, "num_layers": num_layers, "ffn_dim": ffn_dim, "dropout": dropout}

    @property
    def decoder(self) -> list[TransformerDecoderLayer]:
        return [cast(TransformerDecoderLayer, layer) for layer in self.layers]

    @staticmethod
    def widths(wordvec_dim: int, hidden_dim: int) -> tuple[int, int]:
        return wordvec_dim, wordvec_dim

    def sequence(self, x: Tensor, memory: Tensor) -> Tensor:
        mask = causal_mask(x.shape[1], x.device)
        x = self.positions(x)
        for layer in self.decoder:
            x = layer(x, memory, mask)
        return x

    def attention(self, x: Tensor, memory: Tensor) -> Tensor:
        """The last layer's cross-attention, averaged over its heads: (N, T, L)."""
        attn = self.decoder[-1].cross_attn
        attn.keep_weights = True
        try:
            self.sequence(x, memory)
        finally:
            attn.keep_weights = False
        assert attn.last_weights is not None
        return attn.last_weights

    def start(self, memory: Tensor) -> TransformerState:
        return TransformerState([layer.start_cache(memory) for layer in self.decoder], 0)

    def step(self, x: Tensor, state: TransformerState) -> tuple[Tensor, TransformerState]:  # type: ignore[override]
        x = self.positions(x[:, None], start=state.position)
        caches = []
        for layer, cache in zip(self.decoder, state.caches):
            x, cache = layer.step(x, cache)
            caches.append(cache)
        return x[:, 0], TransformerState(caches, state.position + 1)

    def config(self) -> dict[str, Any]:
        return dict(self.settings)

    loss = staticmethod(transformer_loss)
