"""Word embedding, temporal affine and temporal softmax loss: hand-derived gradients and the assignment's checks."""

import numpy as np
import pytest
import torch

from a3cli.engine.layers.embedding import temporal_affine_forward, word_embedding_forward
from a3cli.engine.layers.losses import temporal_softmax_loss

N, T, D, M, V = 3, 4, 5, 6, 7


def rand(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()


def ref_loss(x, y, mask):
    logp = torch.log_softmax(x, dim=-1).gather(-1, y[..., None]).squeeze(-1)
    return -(logp * mask).sum() / x.shape[0]


def targets(seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(V, (N, T), generator=g)
    mask = torch.rand(N, T, generator=g) < 0.7
    mask[0, 0] = False
    return y, mask


def test_gradcheck_word_embedding():
    x = torch.tensor([[0, 3, 3, 6], [1, 0, 2, 3], [6, 6, 6, 5]])  # repeated words collect gradients
    assert torch.autograd.gradcheck(lambda W: word_embedding_forward(x, W), rand(V, D))


def test_gradcheck_temporal_affine():
    assert torch.autograd.gradcheck(temporal_affine_forward, (rand(N, T, D), rand(D, M, seed=1), rand(M, seed=2)))


def test_gradcheck_temporal_softmax_loss():
    y, mask = targets()
    assert torch.autograd.gradcheck(lambda x: temporal_softmax_loss(x, y, mask), rand(N, T, V))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
def test_word_embedding_matches_indexing(dtype, tol):
    x = torch.randint(V, (N, T), generator=torch.Generator().manual_seed(0))
    W, W_ref = rand(V, D, dtype=dtype), rand(V, D, dtype=dtype)
    out = word_embedding_forward(x, W)
    assert out.shape == (N, T, D) and out.dtype == dtype
    torch.testing.assert_close(out, W_ref[x], rtol=0, atol=0)
    upstream = torch.randn(N, T, D, dtype=dtype)
    out.backward(upstream)
    W_ref[x].backward(upstream)
    torch.testing.assert_close(W.grad, W_ref.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-13)])
def test_temporal_affine_matches_autograd(dtype, tol):
    ours = [rand(N, T, D, dtype=dtype), rand(D, M, dtype=dtype, seed=1), rand(M, dtype=dtype, seed=2)]
    ref = [t.detach().clone().requires_grad_() for t in ours]
    out, out_ref = temporal_affine_forward(*ours), ref[0] @ ref[1] + ref[2]
    assert out.shape == (N, T, M) and out.dtype == dtype
    torch.testing.assert_close(out, out_ref, rtol=tol, atol=tol)
    upstream = torch.randn(N, T, M, dtype=dtype)
    out.backward(upstream)
    out_ref.backward(upstream)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a.grad, r.grad, rtol=tol, atol=tol)


def test_temporal_affine_non_contiguous():
    x, w, b = rand(N, T, D), rand(D, M, seed=1), rand(M, seed=2)
    xs = x.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()
    ws = w.detach().T.contiguous().T.requires_grad_()
    upstream = torch.randn(T, N, M, dtype=x.dtype).transpose(0, 1)
    temporal_affine_forward(x, w, b).backward(upstream)
    temporal_affine_forward(xs, ws, b).backward(upstream)
    torch.testing.assert_close(x.grad, xs.grad)
    torch.testing.assert_close(w.grad, ws.grad)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-13)])
def test_temporal_softmax_loss_matches_autograd(dtype, tol):
    y, mask = targets()
    x, x_ref = rand(N, T, V, dtype=dtype), rand(N, T, V, dtype=dtype)
    loss, loss_ref = temporal_softmax_loss(x, y, mask), ref_loss(x_ref, y, mask)
    assert loss.dim() == 0 and loss.dtype == dtype
    torch.testing.assert_close(loss, loss_ref, rtol=tol, atol=tol)
    (3 * loss).backward()
    (3 * loss_ref).backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=tol, atol=tol)
    assert torch.all(x.grad[~mask] == 0)  # padding contributes nothing


def test_temporal_softmax_loss_uniform_scores():
    """With all scores equal, every counted step costs exactly log V."""
    y, mask = targets()
    loss = temporal_softmax_loss(torch.zeros(N, T, V, dtype=torch.float64), y, mask)
    torch.testing.assert_close(loss, mask.sum().double() * np.log(V) / N)


def test_temporal_softmax_loss_is_stable_for_huge_scores():
    y, mask = targets()
    x = (1e4 * rand(N, T, V)).detach().requires_grad_()
    loss = temporal_softmax_loss(x, y, mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    x_ref = x.detach().clone().requires_grad_()
    ref_loss(x_ref, y, mask).backward()
    torch.testing.assert_close(loss, ref_loss(x_ref.detach(), y, mask))
    torch.testing.assert_close(x.grad, x_ref.grad)


@pytest.mark.parametrize("n,t,v,p,expected", [(100, 1, 10, 1.0, 2.3), (100, 10, 10, 1.0, 23), (5000, 10, 10, 0.1, 2.2)])
def test_temporal_softmax_loss_assignment_sanity(n, t, v, p, expected):
    """The assignment's check: tiny random scores cost about log(10) per counted step."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(0.001 * rng.standard_normal((n, t, v)))
    y = torch.from_numpy(rng.integers(v, size=(n, t)))
    mask = torch.from_numpy(rng.random((n, t)) <= p)
    loss = temporal_softmax_loss(x, y, mask).item()
    assert abs(loss - expected) < 0.1 * expected
