"""The recurrent cores: hand-derived gradients, the assignment's numbers, torch.nn agreement."""

import numpy as np
import pytest
import torch

from a3cli.engine.layers.rnn import lstm_forward, lstm_step_forward, rnn_forward, rnn_step_forward

N, T, D, H = 3, 4, 5, 6


# Plain reference implementations: ordinary torch ops, gradients by autograd.


def ref_rnn_step(x, prev_h, Wx, Wh, b):
    return torch.tanh(x @ Wx + prev_h @ Wh + b)


def ref_rnn(x, h0, Wx, Wh, b):
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = ref_rnn_step(x[:, t], h, Wx, Wh, b)
        hs.append(h)
    return torch.stack(hs, dim=1)


def ref_lstm_step(x, prev_h, prev_c, Wx, Wh, b):
    i, f, o, g = (x @ Wx + prev_h @ Wh + b).chunk(4, dim=1)
    c = torch.sigmoid(f) * prev_c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def ref_lstm(x, h0, Wx, Wh, b):
    h, c, hs = h0, torch.zeros_like(h0), []
    for t in range(x.shape[1]):
        h, c = ref_lstm_step(x[:, t], h, c, Wx, Wh, b)
        hs.append(h)
    return torch.stack(hs, dim=1)


def make_inputs(kind, dtype=torch.float64, seed=0):
    """Random inputs for `kind` in rnn_step, rnn, lstm_step, lstm."""
    g = torch.Generator().manual_seed(seed)
    k = 4 if kind.startswith("lstm") else 1
    x_shape = (N, D) if kind.endswith("step") else (N, T, D)
    shapes = [x_shape, (N, H)] + ([(N, H)] if kind == "lstm_step" else []) + [(D, k * H), (H, k * H), (k * H,)]
    return [(0.5 * torch.randn(s, generator=g, dtype=dtype)).requires_grad_() for s in shapes]


CASES = {
    "rnn_step": (rnn_step_forward, ref_rnn_step),
    "rnn": (rnn_forward, ref_rnn),
    "lstm_step": (lstm_step_forward, ref_lstm_step),
    "lstm": (lstm_forward, ref_lstm),
}


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("kind", CASES)
def test_gradcheck_float64(kind):
    fn, _ = CASES[kind]
    assert torch.autograd.gradcheck(fn, make_inputs(kind))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("kind", CASES)
def test_matches_autograd_reference(kind, dtype, tol):
    fn, ref = CASES[kind]
    ours_in = make_inputs(kind, dtype)
    ref_in = [t.detach().clone().requires_grad_() for t in ours_in]
    ours_out, ref_out = as_tuple(fn(*ours_in)), as_tuple(ref(*ref_in))
    upstream = [torch.randn_like(o) for o in ref_out]
    for a, r in zip(ours_out, ref_out):
        assert a.dtype == dtype and a.shape == r.shape
        torch.testing.assert_close(a, r, rtol=tol, atol=tol)
    torch.autograd.backward(ours_out, upstream)
    torch.autograd.backward(ref_out, upstream)
    for a, r in zip(ours_in, ref_in):
        torch.testing.assert_close(a.grad, r.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", CASES)
def test_only_requested_gradients(kind):
    """Inputs that don't require grad get none; the others still match the reference."""
    fn, ref = CASES[kind]
    ours_in = make_inputs(kind)
    for t in ours_in[:-2]:
        t.requires_grad_(False)  # only Wh and b want gradients
    ref_in = [t.detach().clone().requires_grad_(t.requires_grad) for t in ours_in]
    sum(o.sum() for o in as_tuple(fn(*ours_in))).backward()
    sum(o.sum() for o in as_tuple(ref(*ref_in))).backward()
    for a, r in zip(ours_in, ref_in):
        if r.grad is None:
            assert a.grad is None
        else:
            torch.testing.assert_close(a.grad, r.grad)


@pytest.mark.parametrize("kind", CASES)
def test_non_contiguous_inputs(kind):
    fn, _ = CASES[kind]
    inputs = make_inputs(kind)
    # The same numbers, stored transposed: every input (and the upstream gradient) is a strided view.
    strided = [
        t.detach().T.contiguous().T.requires_grad_()
        if t.dim() == 2
        else t.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()
        if t.dim() == 3
        else t.detach().repeat_interleave(2)[::2].requires_grad_()
        for t in inputs
    ]
    assert not any(t.is_contiguous() for t in strided if t.shape[0] > 1)
    outs, souts = as_tuple(fn(*inputs)), as_tuple(fn(*strided))
    upstream = [torch.randn(o.shape[::-1], dtype=o.dtype).permute(*range(o.dim() - 1, -1, -1)) for o in outs]
    for a, s in zip(outs, souts):
        torch.testing.assert_close(a, s, rtol=1e-14, atol=1e-14)
    torch.autograd.backward(outs, upstream)
    torch.autograd.backward(souts, upstream)
    for a, s in zip(inputs, strided):
        torch.testing.assert_close(a.grad, s.grad, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("kind", CASES)
def test_bfloat16_forward(kind):
    fn, ref = CASES[kind]
    inputs = [t.detach() for t in make_inputs(kind)]
    outs = as_tuple(fn(*[t.bfloat16() for t in inputs]))
    for a, r in zip(outs, as_tuple(ref(*inputs))):
        assert a.dtype == torch.bfloat16
        torch.testing.assert_close(a.double(), r, rtol=0.05, atol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", CASES)
def test_cuda_matches_cpu(kind):
    fn, _ = CASES[kind]
    cpu = make_inputs(kind)
    gpu = [t.detach().cuda().requires_grad_() for t in cpu]
    outs, gouts = as_tuple(fn(*cpu)), as_tuple(fn(*gpu))
    sum(o.sum() for o in outs).backward()
    sum(o.sum() for o in gouts).backward()
    for a, g in zip(outs, gouts):
        assert g.device.type == "cuda"
        torch.testing.assert_close(a, g.cpu())
    for a, g in zip(cpu, gpu):
        torch.testing.assert_close(a.grad, g.grad.cpu())


# The assignment's reference values (float64).


def lin(lo, hi, *shape):
    return torch.from_numpy(np.linspace(lo, hi, num=int(np.prod(shape))).reshape(shape))


def test_assignment_rnn_step_forward():
    n, d, h = 3, 10, 4
    next_h = rnn_step_forward(
        lin(-0.4, 0.7, n, d), lin(-0.2, 0.5, n, h), lin(-0.1, 0.9, d, h), lin(-0.3, 0.7, h, h), lin(-0.2, 0.4, h)
    )
    expected = torch.tensor(
        [
            [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
            [0.66854692, 0.79562378, 0.87755553, 0.92795967],
            [0.97934501, 0.99144213, 0.99646691, 0.99854353],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(next_h, expected, rtol=1e-6, atol=1e-8)


def test_assignment_rnn_forward():
    n, t, d, h = 2, 3, 4, 5
    hs = rnn_forward(
        lin(-0.1, 0.3, n, t, d), lin(-0.3, 0.1, n, h), lin(-0.2, 0.4, d, h), lin(-0.4, 0.1, h, h), lin(-0.7, 0.1, h)
    )
    expected = torch.tensor(
        [
            [
                [-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
                [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
                [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525],
            ],
            [
                [-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
                [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
                [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043],
            ],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(hs, expected, rtol=1e-6, atol=1e-8)


def test_assignment_lstm_step_forward():
    n, d, h = 3, 4, 5
    next_h, next_c = lstm_step_forward(
        lin(-0.4, 1.2, n, d),
        lin(-0.3, 0.7, n, h),
        lin(-0.4, 0.9, n, h),
        lin(-2.1, 1.3, d, 4 * h),
        lin(-0.7, 2.2, h, 4 * h),
        lin(0.3, 0.7, 4 * h),
    )
    expected_h = torch.tensor(
        [
            [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
            [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
            [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299],
        ],
        dtype=torch.float64,
    )  # as printed in the notebook
    expected_c = torch.tensor(
        [
            [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
            [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
            [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(next_h, expected_h, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(next_c, expected_c, rtol=1e-6, atol=1e-8)


def test_assignment_lstm_forward():
    n, d, h, t = 2, 5, 4, 3
    hs = lstm_forward(
        lin(-0.4, 0.6, n, t, d),
        lin(-0.4, 0.8, n, h),
        lin(-0.2, 0.9, d, 4 * h),
        lin(-0.3, 0.6, h, 4 * h),
        lin(0.2, 0.7, 4 * h),
    )
    expected = torch.tensor(
        [
            [
                [0.01764008, 0.01823233, 0.01882671, 0.0194232],
                [0.11287491, 0.12146228, 0.13018446, 0.13902939],
                [0.31358768, 0.33338627, 0.35304453, 0.37250975],
            ],
            [
                [0.45767879, 0.4761092, 0.4936887, 0.51041945],
                [0.6704845, 0.69350089, 0.71486014, 0.7346449],
                [0.81733511, 0.83677871, 0.85403753, 0.86935314],
            ],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(hs, expected, rtol=1e-6, atol=1e-8)


# An independent implementation: torch.nn's own RNN and LSTM.


def ifog_to_ifgo(w):
    """Our gate order (i, f, o, g) along the last axis -> torch.nn's (i, f, g, o)."""
    i, f, o, g = w.chunk(4, dim=-1)
    return torch.cat([i, f, g, o], dim=-1)


def same_order(w):
    return w


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_matches_torch_nn(kind, dtype, tol):
    """lstm_forward / rnn_forward against torch.nn.LSTM / torch.nn.RNN holding the same numbers."""
    x, h0, Wx, Wh, b = make_inputs(kind, dtype)
    if kind == "lstm":
        module, to_nn, ours = torch.nn.LSTM(D, H, batch_first=True), ifog_to_ifgo, lstm_forward
    else:
        module, to_nn, ours = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True), same_order, rnn_forward
    module = module.to(dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(to_nn(Wx).T)
        module.weight_hh_l0.copy_(to_nn(Wh).T)
        module.bias_ih_l0.copy_(to_nn(b))
        module.bias_hh_l0.zero_()
    x_nn, h0_nn = x.detach().clone().requires_grad_(), h0.detach().clone().requires_grad_()
    state = (h0_nn[None], torch.zeros_like(h0_nn)[None]) if kind == "lstm" else h0_nn[None]
    out_nn, _ = module(x_nn, state)
    out = ours(x, h0, Wx, Wh, b)
    torch.testing.assert_close(out, out_nn, rtol=tol, atol=tol)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    out_nn.backward(upstream)
    torch.testing.assert_close(x.grad, x_nn.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(h0.grad, h0_nn.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(to_nn(Wx.grad).T, module.weight_ih_l0.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(to_nn(Wh.grad).T, module.weight_hh_l0.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(to_nn(b.grad), module.bias_ih_l0.grad, rtol=tol, atol=tol)


def test_single_step_sequence_equals_step():
    """T = 1: the sequence version is one step from h0 (and c0 = 0 for the LSTM)."""
    x, h0, Wx, Wh, b = [t.detach() for t in make_inputs("lstm")]
    h_seq = lstm_forward(x[:, :1], h0, Wx, Wh, b)
    h_step, _ = lstm_step_forward(x[:, 0], h0, torch.zeros_like(h0), Wx, Wh, b)
    torch.testing.assert_close(h_seq[:, 0], h_step, rtol=0, atol=0)
    x, h0, Wx, Wh, b = [t.detach() for t in make_inputs("rnn")]
    torch.testing.assert_close(
        rnn_forward(x[:, :1], h0, Wx, Wh, b)[:, 0], rnn_step_forward(x[:, 0], h0, Wx, Wh, b), rtol=0, atol=0
    )


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_backward_twice_with_retained_graph(kind):
    """Backward reads its saved tensors without consuming them."""
    fn, _ = CASES[kind]
    inputs = make_inputs(kind)
    out = fn(*inputs)
    upstream = torch.randn_like(out)
    first = torch.autograd.grad(out, inputs, upstream, retain_graph=True)
    second = torch.autograd.grad(out, inputs, upstream)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_in_place_change_of_output_is_caught(kind):
    """Backward needs the hidden states; changing them in place must fail loudly, as with torch.nn.LSTM."""
    fn, _ = CASES[kind]
    out = fn(*make_inputs(kind))
    out.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
