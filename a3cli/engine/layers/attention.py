"""Soft attention over a grid of image features, and the attention LSTM that reads it at every step.

The assignment's captioner sees the image once, through h0, so one vector must carry
every object's colour, size and place. Here, as in Show, Attend and Tell and in the
scaled dot-product attention LSTM of EECS 498 (Michigan) assignment 4, the image stays
a grid A (N, L, H) of projected cell features: h0 = c0 = the mean over cells, and at
every step the previous hidden state scores every cell, A·h / √H, whose softmax
weighs the cells into one attended vector that enters the gates beside the word.

The gates are the engine's LSTM step (layers/rnn.py) with its hand-derived backward:
attending only adds rows Wattn (H, 4H) under Wx and the attended vector beside x,
a = [x, attn]·[Wx; Wattn] + prev_h·Wh + b. The attention itself uses autograd.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from a3cli.engine.layers.rnn import lstm_step_forward

__all__ = ["dot_product_attention", "attention_lstm_step_forward", "attention_lstm_forward"]


def dot_product_attention(prev_h: Tensor, A: Tensor) -> tuple[Tensor, Tensor]:
    """prev_h (N, H) attends over A (N, L, H): the attended vector (N, H) and the cells' weights (N, L)."""
    scores = torch.bmm(A, prev_h.unsqueeze(2)).squeeze(2) / math.sqrt(A.shape[2])
    weights = scores.softmax(dim=1)
    return torch.bmm(weights.unsqueeze(1), A).squeeze(1), weights


def attention_lstm_step_forward(x: Tensor, prev_h: Tensor, prev_c: Tensor, A: Tensor, Wx: Tensor, Wh: Tensor,
                                Wattn: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One step: x (N, W), prev_h and prev_c (N, H), A (N, L, H) -> next_h, next_c and the weights (N, L)."""
    attn, weights = dot_product_attention(prev_h, A)
    next_h, next_c = lstm_step_forward(torch.cat([x, attn], dim=1), prev_h, prev_c, torch.cat([Wx, Wattn]), Wh, b)
    return next_h, next_c, weights


def attention_lstm_forward(x: Tensor, A: Tensor, Wx: Tensor, Wh: Tensor, Wattn: Tensor,
                           b: Tensor) -> tuple[Tensor, Tensor]:
    """Over a sequence x (N, T, W) from h0 = c0 = A's mean over cells: h (N, T, H) and weights (N, T, L)."""
    h = c = A.mean(dim=1)
    W = torch.cat([Wx, Wattn])  # once for all steps
    hs, weights = [], []
    for t in range(x.shape[1]):
        attn, w = dot_product_attention(h, A)
        h, c = lstm_step_forward(torch.cat([x[:, t], attn], dim=1), h, c, W, Wh, b)
        hs.append(h)
        weights.append(w)
    return torch.stack(hs, dim=1), torch.stack(weights, dim=1)
