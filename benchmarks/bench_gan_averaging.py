"""Which average of the generator's weights draws best: one `a3 gan-train` run, many averaging rules.

The run is gan-train's own (defaults, offline MNIST, seed 0) with its averaged generator
(`--ema 0.999` and TensorFlow's warm-up, min(decay, (1 + t) / (10 + t))). Beside it the
script keeps more averages of the same live weights, each updated after every step by
its own rule, and measures each at the end on 5,000 images with the run's own judge, so
all of them see one and the same training. Prints a Markdown table: Fréchet distance,
precision, recall, digits and KL to uniform per rule. Fully connected variants only (the
convolutional ones would need their BatchNorm statistics refitted for every average).

    python benchmarks/bench_gan_averaging.py [--variant gan] [--out out/gan_averaging] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from functools import partial
from pathlib import Path

from a3cli.app import seeded_device
from a3cli.engine.catalogue import GAN_DEFAULTS
from a3cli.engine.distributed import World
from a3cli.engine.gan.networks import generate_images
from a3cli.engine.gan.training import GanConfig, prepare_gan
from a3cli.engine.generative.ema import ema_decay, update_ema

Rule = Callable[[int], float]  # update number (from 1) -> decay of that update


def uniform_after(start: int) -> Rule:
    """The plain mean of the live weights from update `start` + 1 on (a copy until then)."""
    return lambda t: 0.0 if t <= start else 1.0 - 1.0 / (t - start + 1)


def ema_after(start: int, decay: float) -> Rule:
    """An exponential average started at update `start` + 1 (a copy until then)."""
    return lambda t: 0.0 if t <= start else decay


def rules(total: int) -> dict[str, Rule]:
    return {
        "`--ema 0.995`": lambda t: ema_decay(0.995, t),
        "`--ema 0.998`": lambda t: ema_decay(0.998, t),
        "`--ema 0.9995`": lambda t: ema_decay(0.9995, t),
        "0.999, no warm-up": lambda t: 0.999,
        "0.998, no warm-up": lambda t: 0.998,
        "min(0.9995, (1 + t) / (20 + t))": lambda t: min(0.9995, (1 + t) / (20 + t)),
        "mean of the second half": uniform_after(total // 2),
        "mean of the last third": uniform_after(2 * total // 3),
        "0.999 from iteration 2,000": ema_after(2000, 0.999),
        "0.9985 from iteration 1,500": ema_after(1500, 0.9985),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="gan", choices=("gan", "lsgan"))
    parser.add_argument("--out", type=Path, default=Path("out/gan_averaging"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", type=Path, default=Path("out/no_mnist"), help="no IDX files: the offline digits")
    args = parser.parse_args()
    world = World(device=seeded_device("cpu", 0, args.threads))
    config = GanConfig(out=args.out / args.variant, variant=args.variant, download=False, data_root=args.data_root)
    run = prepare_gan(config, world)
    averages = {
        name: (rule, copy.deepcopy(run.nets.generator).requires_grad_(False)) for name, rule in rules(run.total).items()
    }
    train_step = run.train_step

    def step_and_average() -> dict[str, float]:
        numbers = train_step()
        for rule, average in averages.values():
            update_ema(average, run.nets.generator, rule(run.step))
        return numbers

    run.train_step = step_and_average  # type: ignore[method-assign]
    metrics = run.train().metrics
    measured = {"last iterate": metrics["final"], f"`--ema {GAN_DEFAULTS['ema']}` (the default)": metrics["ema"]}
    measured.update(
        {
            name: run.judge(partial(generate_images, average), config.fid_samples)
            for name, (_, average) in averages.items()
        }
    )
    print(f"{args.variant}, {run.total:,} iterations, {config.fid_samples:,} samples")
    print("| average | Fréchet distance | precision | recall | digits | KL to uniform |\n|---|---|---|---|---|---|")
    for name, m in measured.items():
        print(
            f"| {name} | {m['frechet_distance']:.1f} | {m['precision']:.2f} | {m['recall']:.2f} | "
            f"{m['digits_covered']}/10 | {m['kl_to_uniform']:.3f} |"
        )


if __name__ == "__main__":
    main()
