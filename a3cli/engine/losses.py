"""Losses of the assignment, with hand-derived backward passes where the assignment has one."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["temporal_softmax_loss"]


class TemporalSoftmaxLoss(torch.autograd.Function):
    """loss = -sum over (n, t) of mask·log softmax(x[n, t])[y[n, t]], divided by N."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
        N, T, V = x.shape
        logp = torch.log_softmax(x.reshape(N * T, V), dim=1)  # stable: subtracts the max
        y = y.reshape(N * T, 1).long()
        weight = mask.reshape(N * T).to(x.dtype) / N
        loss = -(logp.gather(1, y).squeeze(1) * weight).sum()
        ctx.save_for_backward(logp, y, weight)
        ctx.x_shape = x.shape
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, dloss: Tensor):
        logp, y, weight = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        # d/dx of -log softmax(x)[y] is softmax(x) - onehot(y).
        dx = logp.exp()
        dx.scatter_add_(1, y, dx.new_full(y.shape, -1.0))
        dx *= (weight * dloss).unsqueeze(1)
        return dx.view(ctx.x_shape), None, None


def temporal_softmax_loss(x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """Masked softmax loss over time: x (N, T, V) scores, y (N, T) targets, mask (N, T).

    Summed over time and averaged over the batch, as in the assignment; entries
    where mask is 0 (padding after <END>) do not count.
    """
    return TemporalSoftmaxLoss.apply(x, y, mask)
