"""Soft attention over a grid of image features, and the attention LSTM that reads it at every step.

The assignment's captioner sees the image once, through h0, so one vector must carry
every object's colour, size and place. Here, as in Show, Attend and Tell and in the
scaled dot-product attention LSTM of EECS 498 (Michigan) assignment 4, the image stays
a grid A (N, L, H) of projected cell features: h0 = c0 = the mean over cells, and at
every step the previous hidden state scores every cell, A·h / √H, whose softmax
weighs the cells into one attended vector that enters the gates beside the word.

The gates are the engine's LSTM (layers/rnn.py): attending only adds rows Wattn (H, 4H)
under Wx and the attended vector beside x, a = [x, attn]·[Wx; Wattn] + prev_h·Wh + b.
The step (what decoding uses) is the engine's LSTM step with its hand-derived backward,
the attention in it left to autograd. The sequence (what training uses) derives the
attention's backward by hand too, inside one autograd.Function: about 1.4x faster than
the same steps under autograd, and checked against them and by gradcheck in the tests.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from a3cli.engine.layers.rnn import _lstm_cell_backward, _lstm_cell_forward, lstm_step_forward

__all__ = [
    "dot_product_attention",
    "attention_lstm_step_forward",
    "attention_lstm_forward",
    "attention_lstm_steps",
    "AttentionLSTMSequence",
]


def dot_product_attention(prev_h: Tensor, A: Tensor) -> tuple[Tensor, Tensor]:
    """prev_h (N, H) attends over A (N, L, H): the attended vector (N, H) and the cells' weights (N, L)."""
    scores = torch.bmm(A, prev_h.unsqueeze(2)).squeeze(2) / math.sqrt(A.shape[2])
    weights = scores.softmax(dim=1)
    return torch.bmm(weights.unsqueeze(1), A).squeeze(1), weights


def attention_lstm_step_forward(
    x: Tensor, prev_h: Tensor, prev_c: Tensor, A: Tensor, Wx: Tensor, Wh: Tensor, Wattn: Tensor, b: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """One step: x (N, W), prev_h and prev_c (N, H), A (N, L, H) -> next_h, next_c and the weights (N, L)."""
    attn, weights = dot_product_attention(prev_h, A)
    next_h, next_c = lstm_step_forward(torch.cat([x, attn], dim=1), prev_h, prev_c, torch.cat([Wx, Wattn]), Wh, b)
    return next_h, next_c, weights


class AttentionLSTMSequence(torch.autograd.Function):
    """The attention LSTM over T steps with the hand-derived backward of both parts; time-major (T, N, ·) out.

    Forward, per step: s = A·h_{t-1}/√H, w = softmax(s), attn = w·A, then the LSTM
    gates of [x_t, attn]. Backward runs the LSTM cell's backward (layers/rnn.py) and,
    through the attention, dattn = da·Wattnᵀ, dw = A·dattn, ds = w ⊙ (dw − Σ w ⊙ dw),
    which reaches h_{t-1} as Aᵀ·ds/√H. Only the recurrence is a loop; dA and the
    weights' gradients are sums over time, each one batched product after it.
    """

    @staticmethod
    def forward(ctx, x: Tensor, A: Tensor, Wx: Tensor, Wh: Tensor, Wattn: Tensor, b: Tensor):
        N, T, D = x.shape
        L, H = A.shape[1], A.shape[2]
        scale = 1 / math.sqrt(H)
        xt = x.transpose(0, 1).reshape(T * N, D)
        acts = torch.addmm(b, xt, Wx).view(T, N, 4 * H)  # input projections of all steps
        h0 = A.mean(dim=1)
        hs = x.new_empty(T + 1, N, H)  # hs[0] = h0, hs[t + 1] = h_t
        cs = x.new_empty(T + 1, N, H)  # the same for c
        tcs, ks = x.new_empty(T, N, H), x.new_empty(T, N, H)  # tanh(c_t) and o_t·(1 - tanh²c_t)
        ws = x.new_empty(T, N, L)  # attention weights
        attns = x.new_empty(T, N, H)  # attended vectors
        hs[0], cs[0] = h0, h0
        for t in range(T):
            ws[t] = torch.bmm(A, hs[t].unsqueeze(2)).squeeze(2).mul_(scale).softmax(dim=1)
            torch.bmm(ws[t].unsqueeze(1), A, out=attns[t].unsqueeze(1))
            a = acts[t].addmm_(attns[t], Wattn).addmm_(hs[t], Wh)
            _lstm_cell_forward(a, cs[t], cs[t + 1], tcs[t], hs[t + 1], ks[t])
        ctx.save_for_backward(xt, A, Wx, Wh, Wattn, hs, cs, tcs, ks, acts, ws, attns)
        ctx.mark_non_differentiable(ws)
        return hs[1:], ws

    @staticmethod
    @once_differentiable
    def backward(ctx, dhs: Tensor, _dws: Tensor):
        xt, A, Wx, Wh, Wattn, hs, cs, tcs, ks, acts, ws, attns = ctx.saved_tensors
        T, N, H = tcs.shape
        L = A.shape[1]
        scale = 1 / math.sqrt(H)
        da = torch.empty_like(acts)
        dss = torch.empty_like(ws)  # gradients of the attention scores s_t (before the 1/√H)
        dattns = torch.empty_like(attns)
        deriv = torch.empty_like(acts[0])
        dh = hs.new_empty(N, H)
        dc = hs.new_zeros(N, H)
        dh.copy_(dhs[T - 1])
        for t in reversed(range(T)):
            _lstm_cell_backward(dh, dc, acts[t], cs[t], tcs[t], ks[t], da[t], deriv)
            torch.mm(da[t], Wattn.T, out=dattns[t])
            dw = torch.bmm(A, dattns[t].unsqueeze(2)).squeeze(2)
            w = ws[t]
            torch.mul(w, dw - (w * dw).sum(dim=1, keepdim=True), out=dss[t])
            # The gradient reaching h_{t-1}: through Wh, through the scores, and from the output.
            torch.mm(da[t], Wh.T, out=dh)
            dh.unsqueeze(1).baddbmm_(dss[t].unsqueeze(1), A, alpha=scale)
            if t > 0:
                dh.add_(dhs[t - 1])
        # h0 = c0 = mean of A's cells: what reaches them flows to every cell equally.
        dA = ((dh + dc) / L).unsqueeze(1).expand(N, L, H).clone()
        dA.baddbmm_(ws.permute(1, 2, 0), dattns.transpose(0, 1))  # Σ_t w_t ⊗ dattn_t
        dA.baddbmm_(dss.permute(1, 2, 0), hs[:-1].transpose(0, 1), alpha=scale)  # Σ_t ds_t ⊗ h_{t-1}/√H
        da2 = da.view(T * N, 4 * H)
        need = ctx.needs_input_grad
        return (
            torch.matmul(da, Wx.T).transpose(0, 1) if need[0] else None,
            dA if need[1] else None,
            xt.T @ da2 if need[2] else None,
            hs[:-1].reshape(T * N, H).T @ da2 if need[3] else None,
            attns.view(T * N, H).T @ da2 if need[4] else None,
            da2.sum(0) if need[5] else None,
        )


def attention_lstm_forward(
    x: Tensor, A: Tensor, Wx: Tensor, Wh: Tensor, Wattn: Tensor, b: Tensor
) -> tuple[Tensor, Tensor]:
    """Over a sequence x (N, T, W) from h0 = c0 = A's mean over cells: h (N, T, H) and weights (N, T, L)."""
    hs, weights = AttentionLSTMSequence.apply(x, A, Wx, Wh, Wattn, b)
    return hs.transpose(0, 1), weights.transpose(0, 1)


def attention_lstm_steps(
    x: Tensor, A: Tensor, Wx: Tensor, Wh: Tensor, Wattn: Tensor, b: Tensor
) -> tuple[Tensor, Tensor]:
    """attention_lstm_forward as the step repeated, its attention under autograd: what the fused sequence is
    checked against (tests) and timed against (benchmarks/bench_caption.py attention)."""
    h = c = A.mean(dim=1)
    hs, weights = [], []
    for t in range(x.shape[1]):
        h, c, w = attention_lstm_step_forward(x[:, t], h, c, A, Wx, Wh, Wattn, b)
        hs.append(h)
        weights.append(w)
    return torch.stack(hs, dim=1), torch.stack(weights, dim=1)
