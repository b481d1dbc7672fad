"""Time the engine's lstm_forward / rnn_forward (forward + backward) on the CPU.

Compares, in one process and at the same sizes and upstream gradient:
  * ours vs torch.nn.LSTM / torch.nn.RNN (batch_first): ratio ours / nn, target <= 1.10;
  * a NumPy version of the assignment's loops vs ours: ratio numpy / ours, target >= 3,
    in float32 and in float64 (the dtype of the assignment's arrays).

Run as `python benchmarks/bench_lstm.py` (the Makefile unsets OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE, which slow NumPy's OpenBLAS on this machine). Prints a table and a
final JSON line with the ratios. Timings are medians of interleaved repeats.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
import torch

from a3cli.engine.layers.rnn import lstm_forward, rnn_forward

N, T, D, H = 128, 17, 256, 512
TORCH_REPEATS, NUMPY_REPEATS, WARMUP = 10, 3, 3


# The assignment's NumPy layers: step forward/backward with caches, loops over time.


def sigmoid(x):
    """The assignment's numerically stable sigmoid."""
    pos, neg = x >= 0, x < 0
    z = np.zeros_like(x)
    z[pos] = np.exp(-x[pos])
    z[neg] = np.exp(x[neg])
    top = np.ones_like(x)
    top[neg] = z[neg]
    return top / (1 + z)


def np_rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def np_rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dtheta = dnext_h * (1 - next_h**2)
    return dtheta @ Wx.T, dtheta @ Wh.T, x.T @ dtheta, prev_h.T @ dtheta, dtheta.sum(0)


def np_rnn_forward(x, h0, Wx, Wh, b):
    n, t_len, _ = x.shape
    h, caches, prev_h = np.zeros((n, t_len, h0.shape[1]), x.dtype), [], h0
    for t in range(t_len):
        prev_h, cache = np_rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def np_rnn_backward(dh, caches):
    x, _, Wx, Wh, _ = caches[0]
    n, t_len, _ = dh.shape
    dx = np.zeros((n, t_len, x.shape[1]), dh.dtype)
    dprev_h, dWx, dWh, db = np.zeros_like(dh[:, 0]), np.zeros_like(Wx), np.zeros_like(Wh), 0
    for t in reversed(range(t_len)):
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = np_rnn_step_backward(dh[:, t] + dprev_h, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def np_lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    h = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o, g = sigmoid(a[:, :h]), sigmoid(a[:, h : 2 * h]), sigmoid(a[:, 2 * h : 3 * h]), np.tanh(a[:, 3 * h :])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def np_lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    do = dnext_h * tc
    dc = dnext_c + dnext_h * o * (1 - tc**2)
    di, df, dg, dprev_c = dc * g, dc * prev_c, dc * i, dc * f
    da = np.hstack((di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)))
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(0)


def np_lstm_forward(x, h0, Wx, Wh, b):
    n, t_len, _ = x.shape
    h, caches = np.zeros((n, t_len, h0.shape[1]), x.dtype), []
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(t_len):
        prev_h, prev_c, cache = np_lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def np_lstm_backward(dh, caches):
    x, _, _, Wx, Wh = caches[0][:5]
    n, t_len, _ = dh.shape
    dx = np.zeros((n, t_len, x.shape[1]), dh.dtype)
    dprev_h, dprev_c = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), 0
    for t in reversed(range(t_len)):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = np_lstm_step_backward(dh[:, t] + dprev_h, dprev_c, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


# Timing


def median_ms(fn, repeats: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeats))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start)


def interleaved(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Median times of a and b, run alternately (a b b a ...) so both see the same machine state."""
    for _ in range(WARMUP):
        fn_a()
        fn_b()
    times = {fn_a: [], fn_b: []}
    for r in range(repeats):
        for fn in (fn_a, fn_b) if r % 2 == 0 else (fn_b, fn_a):
            times[fn].append(timed(fn))
    return statistics.median(times[fn_a]), statistics.median(times[fn_b])


def bench(cell: str) -> dict:
    """ours vs torch.nn vs NumPy for cell in 'lstm' or 'rnn'; returns times in ms."""
    k = 4 if cell == "lstm" else 1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, T, D, generator=g, requires_grad=True)
    h0 = torch.randn(N, H, generator=g, requires_grad=True)
    Wx = (torch.randn(D, k * H, generator=g) / D**0.5).requires_grad_()
    Wh = (torch.randn(H, k * H, generator=g) / H**0.5).requires_grad_()
    b = torch.zeros(k * H, requires_grad=True)
    dh = torch.randn(N, T, H, generator=g)  # the same upstream gradient for everyone

    ours_fn = lstm_forward if cell == "lstm" else rnn_forward
    if cell == "lstm":
        module = torch.nn.LSTM(D, H, batch_first=True)
        state = (h0.detach()[None].clone().requires_grad_(), torch.zeros(1, N, H))
    else:
        module = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)
        state = h0.detach()[None].clone().requires_grad_()
    x_nn = x.detach().clone().requires_grad_()
    ours_params, nn_params = [x, h0, Wx, Wh, b], [x_nn, *module.parameters()]

    def ours():
        for p in ours_params:
            p.grad = None
        ours_fn(x, h0, Wx, Wh, b).backward(dh)

    def nn():
        for p in nn_params:
            p.grad = None
        module(x_nn, state)[0].backward(dh)

    ours_ms, nn_ms = interleaved(ours, nn, TORCH_REPEATS)

    # The NumPy loops in float32 (the same dtype as ours) and in float64, the dtype the
    # assignment's arrays have.
    result = {"ours": ours_ms, "nn": nn_ms}
    for name, dtype in (("numpy", np.float32), ("numpy64", np.float64)):
        arrays = [t.detach().numpy().astype(dtype) for t in (x, h0, Wx, Wh, b)]
        dh_np = dh.numpy().astype(dtype)
        forward, backward = (np_lstm_forward, np_lstm_backward) if cell == "lstm" else (np_rnn_forward, np_rnn_backward)
        numpy_loops = lambda: backward(dh_np, forward(*arrays)[1])  # noqa: E731
        numpy_loops()
        result[name] = median_ms(numpy_loops, NUMPY_REPEATS)
    return result


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info

        return "; ".join(
            f"{i['internal_api']} {i['version']} ({i.get('architecture')}, {i['num_threads']} threads) "
            f"in {os.path.basename(i['filepath'])}"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        )
    except ImportError:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]


def main() -> None:
    torch.manual_seed(0)
    print(f"lstm_forward / rnn_forward + backward, CPU float32, N={N} T={T} D={D} H={H}")
    torch_blas = "MKL" if torch.backends.mkl.is_available() else "not MKL"
    print(
        f"torch {torch.__version__} ({torch_blas} matmul, {torch.get_num_threads()} threads); "
        f"numpy {np.__version__}, BLAS: {blas_description()}"
    )
    print(
        f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews the numbers); "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
    )
    results = {cell: bench(cell) for cell in ("lstm", "rnn")}
    print(
        f"\n{'':6}{'ours ms':>9}{'torch.nn ms':>13}{'numpy32 ms':>12}{'numpy64 ms':>12}"
        f"{'ours/nn':>9}{'np32/ours':>11}{'np64/ours':>11}"
    )
    ratios = {}
    for cell, r in results.items():
        ratios[f"{cell}_ours_over_nn"] = round(r["ours"] / r["nn"], 3)
        ratios[f"{cell}_numpy32_over_ours"] = round(r["numpy"] / r["ours"], 2)
        ratios[f"{cell}_numpy64_over_ours"] = round(r["numpy64"] / r["ours"], 2)
        print(
            f"{cell:6}{r['ours']:9.1f}{r['nn']:13.1f}{r['numpy']:12.1f}{r['numpy64']:12.1f}"
            f"{ratios[f'{cell}_ours_over_nn']:9.3f}{ratios[f'{cell}_numpy32_over_ours']:11.2f}"
            f"{ratios[f'{cell}_numpy64_over_ours']:11.2f}"
        )
    print("targets (LSTM): ours/nn <= 1.10, numpy/ours >= 3")
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
