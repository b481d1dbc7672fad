"""CUDA check, run on a machine with a GPU (the CI machines have none).

Checks that `--device auto` picks CUDA, that a backbone classifies the same on CUDA
as on the CPU, and times lstm_forward + backward against torch.nn.LSTM (cuDNN) there.
The CUDA-parametrised unit tests run beside it with pytest.
"""

from __future__ import annotations

import json
import statistics
import time

import torch
from PIL import Image

from a3cli.engine.backbones.registry import classify, load_backbone
from a3cli.engine.device import resolve_device
from a3cli.engine.layers.rnn import lstm_forward


def time_cuda(fn, repeats: int = 20) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    device = resolve_device("auto")
    assert device.type == "cuda", device
    report = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__}

    image = Image.open("examples/coffee.jpg").convert("RGB")
    on_cpu = classify(load_backbone("efficientnet_lite0", "cpu"), [image])[0]
    on_gpu = classify(load_backbone("efficientnet_lite0", device), [image])[0]
    assert on_gpu[0][1] == on_cpu[0][1] == "espresso", (on_cpu, on_gpu)
    report["classify_prob_cpu_vs_cuda"] = [on_cpu[0][2], on_gpu[0][2]]

    N, T, D, H = 128, 17, 256, 512
    torch.manual_seed(0)
    x = torch.randn(N, T, D, device=device, requires_grad=True)
    h0 = torch.randn(N, H, device=device, requires_grad=True)
    Wx = (torch.randn(D, 4 * H, device=device) / D**0.5).requires_grad_()
    Wh = (torch.randn(H, 4 * H, device=device) / H**0.5).requires_grad_()
    b = torch.zeros(4 * H, device=device, requires_grad=True)
    dout = torch.randn(N, T, H, device=device)
    lstm = torch.nn.LSTM(D, H, batch_first=True).to(device)
    c0 = torch.zeros(1, N, H, device=device)

    def ours():
        lstm_forward(x, h0, Wx, Wh, b).backward(dout)

    def cudnn():
        out, _ = lstm(x, (h0.unsqueeze(0), c0))
        out.backward(dout)

    t_ours, t_nn = time_cuda(ours), time_cuda(cudnn)
    report.update(lstm_ms_ours=1e3 * t_ours, lstm_ms_nn_cudnn=1e3 * t_nn, ratio_ours_over_nn=t_ours / t_nn)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
