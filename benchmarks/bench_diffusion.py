"""The diffusion model's speed on this machine, in one process: a training step in float32 against bfloat16
autocast (what `--precision` picks where the CPU or GPU computes bfloat16), and the time to draw 1,000 digits
by DDIM in 20 and 50 steps, with diffusion-train's default model.

  python benchmarks/bench_diffusion.py [--rounds 5] [--threads N]

Timings are medians of interleaved rounds (float32, bfloat16, float32, ...), so that a machine whose speed
drifts affects both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from a3cli.engine.catalogue import DIFFUSION_DEFAULTS
from a3cli.engine.device import autocast, native_bfloat16
from a3cli.engine.diffusion.model import build_diffusion, draw_images

DEVICE = torch.device("cpu")


def model(precision: str):
    run = {**DIFFUSION_DEFAULTS, "classes": False, "precision": precision}
    torch.manual_seed(0)
    return build_diffusion(run)


def step_seconds(diffusion, optimizer, batch: int) -> float:
    x = torch.rand(batch, 1, 28, 28) * 2 - 1
    t = torch.randint(0, diffusion.num_timesteps, (batch,))
    started = time.perf_counter()
    with autocast(DEVICE, diffusion.precision):
        loss = diffusion(x, t, torch.randn_like(x))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = ("float32", "bfloat16") if native_bfloat16(DEVICE) else ("float32",)
    models = {p: model(p) for p in precisions}
    optimizers = {p: torch.optim.Adam(m.model.parameters(), 1e-3) for p, m in models.items()}
    batch = DIFFUSION_DEFAULTS["batch_size"]
    steps: dict[str, list[float]] = {p: [] for p in precisions}
    for p in precisions:  # warm-up
        step_seconds(models[p], optimizers[p], batch)
    for _ in range(args.rounds):
        for p in precisions:
            steps[p].append(statistics.median(step_seconds(models[p], optimizers[p], batch) for _ in range(3)))
    base = statistics.median(steps["float32"])
    for p in precisions:
        median = statistics.median(steps[p])
        print(f"training step, batch {batch}, {p}: {1000 * median:.0f} ms ({base / median:.2f}x float32's speed)")
    noise = torch.randn(100, 1, 28, 28)
    for p in precisions:
        for k in (DIFFUSION_DEFAULTS["eval_steps"], DIFFUSION_DEFAULTS["steps"]):
            started = time.perf_counter()
            draw_images(models[p], noise, k)
            seconds = (time.perf_counter() - started) * 10
            print(f"1,000 digits by DDIM in {k} steps, {p}: {seconds:.0f} s")


if __name__ == "__main__":
    main()
