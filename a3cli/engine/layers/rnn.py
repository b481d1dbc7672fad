"""Vanilla RNN and LSTM cores with the assignment's hand-derived backward passes.

Each public function is a `torch.autograd.Function`, so the gradients are the
formulas of CS231n Assignment 3 rather than autograd's, while the tensors stay
ordinary torch tensors (any float dtype, any device).

Layout follows the assignment: x is (N, T, D), hidden states (N, T, H),
Wx (D, kH), Wh (H, kH), b (kH,), with the LSTM's 4H axis in gate order
i, f, o, g.

The sequence versions are written for speed: the input projection x·Wx + b of
all time steps is one matmul; the loops over time contain only the recurrent
matmul and the elementwise work, in preallocated buffers; and in backward the
gradients of x, Wx, Wh and b come from single matmuls over all time steps
after the loop. Inside, buffers are time-major (T, N, ·) so that each step
works on contiguous memory; the (N, T, H) result is a transposed view of it.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["rnn_step_forward", "rnn_forward", "lstm_step_forward", "lstm_forward"]


# ---------------------------------------------------------------------------
# Vanilla RNN


class RNNStep(torch.autograd.Function):
    """next_h = tanh(x·Wx + prev_h·Wh + b)."""

    @staticmethod
    def forward(ctx, x: Tensor, prev_h: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> Tensor:
        next_h = torch.addmm(b, x, Wx).addmm_(prev_h, Wh).tanh_()
        ctx.save_for_backward(x, prev_h, Wx, Wh, next_h)
        return next_h

    @staticmethod
    @once_differentiable
    def backward(ctx, dnext_h: Tensor):
        x, prev_h, Wx, Wh, next_h = ctx.saved_tensors
        dtheta = dnext_h * (1 - next_h * next_h)  # tanh' = 1 - tanh²
        return _step_grads(ctx.needs_input_grad, dtheta, x, prev_h, Wx, Wh)


class RNNSequence(torch.autograd.Function):
    """h_t = tanh(x_t·Wx + h_{t-1}·Wh + b) for t = 1..T; returns all h_t time-major (T, N, H)."""

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> Tensor:
        N, T, D = x.shape
        H = h0.shape[1]
        # The input projection of all steps is one matmul, written straight into
        # the output; the recurrence then adds h_{t-1}·Wh in place and squashes.
        xt = x.transpose(0, 1).reshape(T * N, D)  # time-major copy, kept for dWx
        hs = x.new_empty(T, N, H)
        torch.addmm(b, xt, Wx, out=hs.view(T * N, H))
        for t in range(T):
            hs[t].addmm_(hs[t - 1] if t > 0 else h0, Wh).tanh_()
        ctx.save_for_backward(xt, h0, Wx, Wh, hs)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, dhs: Tensor):
        xt, h0, Wx, Wh, hs = ctx.saved_tensors
        T = hs.shape[0]
        # da[t]: gradient of step t's pre-activation. Only the recurrence is a loop.
        da = torch.empty_like(hs)
        for t in reversed(range(T)):
            if t == T - 1:
                da[t].copy_(dhs[t])
            else:
                torch.addmm(dhs[t], da[t + 1], Wh.T, out=da[t])  # gradient reaching h_t
            da[t].addcmul_(da[t] * hs[t], hs[t], value=-1)  # tanh' = 1 - h²
        return _sequence_grads(ctx.needs_input_grad, da, xt, h0, hs, Wx, Wh)


def _step_grads(need: tuple[bool, ...], da: Tensor, x: Tensor, prev_h: Tensor, Wx: Tensor, Wh: Tensor):
    """Gradients of x, prev_h, Wx, Wh, b through a = x·Wx + prev_h·Wh + b, given da."""
    return (
        da @ Wx.T if need[0] else None,
        da @ Wh.T if need[1] else None,
        x.T @ da if need[2] else None,
        prev_h.T @ da if need[3] else None,
        da.sum(0) if need[4] else None,
    )


def _sequence_grads(need: tuple[bool, ...], da: Tensor, xt: Tensor, h0: Tensor, hs: Tensor, Wx: Tensor, Wh: Tensor):
    """Gradients of x, h0, Wx, Wh, b from the pre-activation gradients da (T, N, kH) of all steps.

    The shared weights' gradients are sums over time, so each is one matmul over
    the stacked steps; xt is x time-major (T·N, D) and hs the hidden states (T, N, H).
    """
    T, N, H = hs.shape
    da2 = da.view(T * N, -1)
    dWh = None
    if need[3]:  # sum over t of h_{t-1}ᵀ·da_t, with h_{-1} = h0
        dWh = h0.T @ da[0]
        if T > 1:
            dWh.addmm_(hs[:-1].reshape((T - 1) * N, H).T, da2[N:])
    return (
        torch.matmul(da, Wx.T).transpose(0, 1) if need[0] else None,
        da[0] @ Wh.T if need[1] else None,
        xt.T @ da2 if need[2] else None,
        dWh,
        da2.sum(0) if need[4] else None,
    )


# ---------------------------------------------------------------------------
# LSTM


def _lstm_cell_forward(a: Tensor, c_prev: Tensor, c: Tensor, tc: Tensor, h: Tensor, k: Tensor) -> None:
    """One step of the LSTM's forward, in buffers: the pre-activations `a` (N, 4H) become the activated gates
    i, f, o, g in place; writes c = f·c_prev + i·g, tc = tanh(c), h = o·tc and k = o·(1 - tanh²c) (dh/dc)."""
    H = c.shape[1]
    i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    a[:, : 3 * H].sigmoid_()
    g.tanh_()
    torch.mul(i, g, out=c)
    c.addcmul_(f, c_prev)
    torch.tanh(c, out=tc)
    torch.mul(o, tc, out=h)
    torch.addcmul(o, h, tc, value=-1, out=k)


def _lstm_cell_backward(
    dh: Tensor, dc: Tensor, act: Tensor, c_prev: Tensor, tc: Tensor, k: Tensor, da: Tensor, deriv: Tensor
) -> None:
    """One step of the LSTM's hand-derived backward, written into buffers.

    act holds the step's activated gates [i, f, o, g], tc = tanh(c) and
    k = o·(1 - tanh²c) (dh/dc, kept from forward); dc is the gradient reaching c
    from the next step. Writes the pre-activation gradient into `da` (N, 4H) and
    turns `dc` into the gradient of c_prev, so the time loop allocates nothing;
    `deriv` (N, 4H) is scratch space.
    """
    H = dh.shape[1]
    i, f, g = act[:, :H], act[:, H : 2 * H], act[:, 3 * H :]
    # h = o·tanh(c): do = dh·tanh(c), and c also gets dh·o·(1 - tanh²c).
    torch.mul(dh, tc, out=da[:, 2 * H : 3 * H])
    dc.addcmul_(dh, k)
    # c = f·c_prev + i·g: di = dc·g, df = dc·c_prev, dg = dc·i, dc_prev = dc·f.
    torch.mul(dc, g, out=da[:, :H])
    torch.mul(dc, c_prev, out=da[:, H : 2 * H])
    torch.mul(dc, i, out=da[:, 3 * H :])
    dc.mul_(f)
    # Through the nonlinearities: sigmoid' = s - s² for i, f, o and tanh' = 1 - g² for g.
    ifo = act[:, : 3 * H]
    torch.addcmul(ifo, ifo, ifo, value=-1, out=deriv[:, : 3 * H])
    da[:, : 3 * H].mul_(deriv[:, : 3 * H])
    g2 = torch.mul(g, g, out=deriv[:, 3 * H :])
    da[:, 3 * H :].addcmul_(da[:, 3 * H :], g2, value=-1)


class LSTMStep(torch.autograd.Function):
    """One LSTM step: gates a = x·Wx + prev_h·Wh + b split as i, f, o, g."""

    @staticmethod
    def forward(ctx, x: Tensor, prev_h: Tensor, prev_c: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor):
        H = prev_h.shape[1]
        act = torch.addmm(b, x, Wx).addmm_(prev_h, Wh)
        act[:, : 3 * H].sigmoid_()
        act[:, 3 * H :].tanh_()
        i, f, o, g = act[:, :H], act[:, H : 2 * H], act[:, 2 * H : 3 * H], act[:, 3 * H :]
        next_c = torch.addcmul(f * prev_c, i, g)
        tc = next_c.tanh()
        next_h = o * tc
        ctx.save_for_backward(x, prev_h, prev_c, Wx, Wh, act, tc, next_h)
        return next_h, next_c

    @staticmethod
    @once_differentiable
    def backward(ctx, dnext_h: Tensor, dnext_c: Tensor):
        x, prev_h, prev_c, Wx, Wh, act, tc, next_h = ctx.saved_tensors
        H = prev_h.shape[1]
        k = torch.addcmul(act[:, 2 * H : 3 * H], next_h, tc, value=-1)  # o - o·tanh²c
        da = torch.empty_like(act)
        dprev_c = dnext_c.clone()
        _lstm_cell_backward(dnext_h, dprev_c, act, prev_c, tc, k, da, torch.empty_like(act))
        need = ctx.needs_input_grad
        dx, dprev_h, dWx, dWh, db = _step_grads(need[:2] + need[3:], da, x, prev_h, Wx, Wh)
        return dx, dprev_h, dprev_c if need[2] else None, dWx, dWh, db


class LSTMSequence(torch.autograd.Function):
    """An LSTM over T steps from h0 and c0 = 0; returns all h_t time-major (T, N, H)."""

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> Tensor:
        N, T, D = x.shape
        H = h0.shape[1]
        # acts: the input projection of every step in one matmul; the loop adds
        # h_{t-1}·Wh in place and turns it into the activated gates i, f, o, g,
        # which is what backward needs.
        xt = x.transpose(0, 1).reshape(T * N, D)  # time-major copy, kept for dWx
        acts = torch.addmm(b, xt, Wx).view(T, N, 4 * H)
        hs = x.new_empty(T, N, H)  # h_t, the output
        cs = x.new_empty(T + 1, N, H)  # cs[0] = c0 = 0, cs[t + 1] = c_t
        tcs = x.new_empty(T, N, H)  # tanh(c_t)
        ks = x.new_empty(T, N, H)  # o_t·(1 - tanh²c_t), that is dh_t/dc_t
        cs[0] = 0
        for t in range(T):
            _lstm_cell_forward(acts[t].addmm_(hs[t - 1] if t > 0 else h0, Wh), cs[t], cs[t + 1], tcs[t], hs[t], ks[t])
        ctx.save_for_backward(xt, h0, Wx, Wh, hs, cs, tcs, ks, acts)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, dhs: Tensor):
        xt, h0, Wx, Wh, hs, cs, tcs, ks, acts = ctx.saved_tensors
        T, N, H = hs.shape
        da = torch.empty_like(acts)  # pre-activation gradients of all steps
        deriv = torch.empty_like(acts[0])
        dh_buf = hs.new_empty(N, H)
        dc = hs.new_zeros(N, H)
        # Only the recurrence is a loop: it fills da step by step.
        for t in reversed(range(T)):
            # Gradient reaching h_t: from the output, and from step t+1 through Wh.
            dh = dhs[t] if t == T - 1 else torch.addmm(dhs[t], da[t + 1], Wh.T, out=dh_buf)
            _lstm_cell_backward(dh, dc, acts[t], cs[t], tcs[t], ks[t], da[t], deriv)
        return _sequence_grads(ctx.needs_input_grad, da, xt, h0, hs, Wx, Wh)


# ---------------------------------------------------------------------------
# The assignment's function names


def rnn_step_forward(x: Tensor, prev_h: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> Tensor:
    """One vanilla RNN step: x (N, D), prev_h (N, H) -> next_h (N, H)."""
    return RNNStep.apply(x, prev_h, Wx, Wh, b)


def rnn_forward(x: Tensor, h0: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> Tensor:
    """A vanilla RNN over a sequence: x (N, T, D), h0 (N, H) -> h (N, T, H)."""
    # Transposing outside the Function keeps the output an ordinary view for autograd.
    return RNNSequence.apply(x, h0, Wx, Wh, b).transpose(0, 1)


def lstm_step_forward(
    x: Tensor, prev_h: Tensor, prev_c: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor
) -> tuple[Tensor, Tensor]:
    """One LSTM step: x (N, D), prev_h and prev_c (N, H) -> (next_h, next_c)."""
    return LSTMStep.apply(x, prev_h, prev_c, Wx, Wh, b)


def lstm_forward(x: Tensor, h0: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> Tensor:
    """An LSTM over a sequence with c0 = 0: x (N, T, D), h0 (N, H) -> h (N, T, H)."""
    return LSTMSequence.apply(x, h0, Wx, Wh, b).transpose(0, 1)
