"""Word embedding and temporal affine layers with the assignment's backward passes.

Both are `torch.autograd.Function`s on ordinary tensors (any float dtype, any
device); shapes follow CS231n Assignment 3.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["word_embedding_forward", "temporal_affine_forward"]


class WordEmbedding(torch.autograd.Function):
    """out[n, t] = W[x[n, t]]."""

    @staticmethod
    def forward(ctx, x: Tensor, W: Tensor) -> Tensor:
        idx = x.reshape(-1)
        ctx.save_for_backward(idx)
        ctx.vocab_size = W.shape[0]
        return W.index_select(0, idx).view(*x.shape, W.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, dout: Tensor):
        (idx,) = ctx.saved_tensors
        if not ctx.needs_input_grad[1]:
            return None, None
        # A word used several times collects all its gradients: scatter-add.
        flat = dout.reshape(-1, dout.shape[-1])
        dW = flat.new_zeros(ctx.vocab_size, flat.shape[1]).index_add_(0, idx, flat)
        return None, dW  # indices have no gradient


class TemporalAffine(torch.autograd.Function):
    """out[n, t] = x[n, t]·w + b, the same affine layer at every time step."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        N, T, D = x.shape
        x2 = x.reshape(N * T, D)
        ctx.save_for_backward(x2, w)
        return torch.addmm(b, x2, w).view(N, T, w.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, dout: Tensor):
        x2, w = ctx.saved_tensors
        dout2 = dout.reshape(x2.shape[0], w.shape[1])
        need = ctx.needs_input_grad
        dx = (dout2 @ w.T).view(*dout.shape[:2], w.shape[0]) if need[0] else None
        dw = x2.T @ dout2 if need[1] else None
        db = dout2.sum(0) if need[2] else None
        return dx, dw, db


def word_embedding_forward(x: Tensor, W: Tensor) -> Tensor:
    """Look up word vectors: x (N, T) int64 indices into W (V, D) -> (N, T, D)."""
    return WordEmbedding.apply(x, W)


def temporal_affine_forward(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Affine map at every time step: x (N, T, D), w (D, M), b (M,) -> (N, T, M)."""
    return TemporalAffine.apply(x, w, b)
