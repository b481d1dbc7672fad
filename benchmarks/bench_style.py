"""Style transfer: time per iteration against the straightforward way, and a full 256 px run.

Part 1 times one optimisation step (loss forward + backward) three ways on the same
backbone, picture and settings, interleaved and repeated (the median counts):

  a3        the engine: content features and style Grams computed once, the picture
            forwarded only up to the deepest layer with a non-zero weight;
  naive     the PyTorch tutorial's straightforward approach as the issue states it: the
            whole network forwarded each step and the targets recomputed from the content
            and style images each step (nothing cached);
  cached    the whole network each step but targets computed once (the tutorial as
            written caches targets; shows what truncating the forward alone is worth).

Part 2 (--full) runs `a3 stylize` at 256 px, 300 L-BFGS iterations, default backbone, in a
child process and prints its wall time and peak resident memory.

    .venv/bin/python benchmarks/bench_style.py [--size 256] [--repeats 5] [--full]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from a3cli.engine.backbones.registry import load_backbone  # noqa: E402
from a3cli.engine.images import load_image  # noqa: E402
from a3cli.engine.layers.losses import content_loss, gram_matrix, style_loss, tv_loss  # noqa: E402
from a3cli.engine.style.settings import resolve_settings  # noqa: E402
from a3cli.engine.style.transfer import StyleConfig, StyleTransfer  # noqa: E402

CONTENT, STYLE = ROOT / "examples" / "chelsea.jpg", ROOT / "examples" / "ihc.jpg"


def naive_step(backbone, image, content, style, cfg: StyleConfig, cache: dict | None) -> torch.Tensor:
    """One loss evaluation the straightforward way: every stage, every image, every step."""

    def all_stages(x):
        feats = {}
        for name, stage in backbone.stages:
            x = stage(x)
            feats[name] = x
        backbone.head(x)  # the tutorial's model is the whole classifier
        return feats

    if cache is None or not cache:
        with torch.no_grad():
            target_content = all_stages(content)[cfg.content_layer]
            style_feats = all_stages(style)
            grams = [gram_matrix(style_feats[layer]) for layer in cfg.style_layers]
        if cache is not None:
            cache.update(content=target_content, grams=grams)
    else:
        target_content, grams = cache["content"], cache["grams"]
    feats = all_stages(image)
    loss = content_loss(cfg.content_weight, feats[cfg.content_layer], target_content)
    loss = loss + style_loss(
        [feats[layer] for layer in cfg.style_layers], list(range(len(cfg.style_layers))), grams, cfg.style_weights
    )
    return loss + tv_loss(image, cfg.tv_weight)


def time_steps(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def per_iteration(size: int, repeats: int, steps: int) -> None:
    backbone = load_backbone("efficientnet_lite0", "cpu")
    cfg = resolve_settings("efficientnet_lite0", None, StyleConfig(image_size=size))
    content_pil, style_pil = load_image(CONTENT), load_image(STYLE)
    transfer = StyleTransfer(backbone, content_pil, [style_pil], cfg)
    content, target, grams = transfer.prepare(size)
    style = backbone.preprocess(style_pil, size=size, crop=False)
    image = content.clone().requires_grad_(True)

    def ours():
        terms = transfer.losses(image, target, grams)
        (terms["content"] + terms["style"] + terms["tv"]).backward()

    cache: dict = {}
    methods = {
        "a3": ours,
        "naive": lambda: naive_step(backbone, image, content, style, cfg, None).backward(),
        "cached": lambda: naive_step(backbone, image, content, style, cfg, cache).backward(),
    }
    # Same loss value both ways: the comparison is of the same optimisation.
    with torch.no_grad():
        terms = transfer.losses(image + 0.01, target, grams)
        mine = float(terms["content"] + terms["style"] + terms["tv"])
        theirs = float(naive_step(backbone, image + 0.01, content, style, cfg, None))
    print(f"loss check: a3 {mine:.6g}  naive {theirs:.6g}  (relative difference {abs(mine - theirs) / theirs:.1e})")
    for step in methods.values():  # warm up
        step()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, step in methods.items():
            times[name].append(time_steps(step, steps))
    h, w = content.shape[2:]
    print(
        f"time per iteration, {w}x{h} px, efficientnet_lite0, {torch.get_num_threads()} threads, "
        f"median of {repeats} x {steps} steps:"
    )
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        print(f"  {name:7s} {value * 1000:8.1f} ms   (all: {', '.join(f'{v * 1000:.0f}' for v in times[name])})")
    print(f"ratio a3 / naive  = {median['a3'] / median['naive']:.2f}   (target <= 1.0)")
    print(f"ratio a3 / cached = {median['a3'] / median['cached']:.2f}")


def full_run(size: int, iterations: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out, report = Path(folder) / "out.png", Path(folder) / "out.json"
        command = [
            sys.executable,
            "-m",
            "a3cli",
            "stylize",
            str(CONTENT),
            str(STYLE),
            "--image-size",
            str(size),
            "--iterations",
            str(iterations),
            "--optimizer",
            "lbfgs",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--json",
            str(report),
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime  # Linux: KiB, seconds
        data = json.loads(report.read_text())
    print(f"full run: {size} px, {iterations} L-BFGS iterations, efficientnet_lite0, CPU")
    print(
        f"  wall time {wall:.1f} s (process, incl. start-up), optimisation {data['seconds']:.1f} s, "
        f"peak resident memory {peak_kib / 1024:.0f} MiB, output {data['size'][0]}x{data['size'][1]}"
    )
    print(f"  CPU time (user + system, all threads) {cpu:.1f} s: on a busy shared machine wall time overstates")
    for name in ("start", "end"):
        print(f"  {name:5s} " + "  ".join(f"{k} {v:.4g}" for k, v in data[name].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also the full 256 px / 300 iteration run")
    parser.add_argument("--full-only", action="store_true", help="only the full run")
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    torch.manual_seed(0)
    if not args.full_only:
        per_iteration(args.size, args.repeats, args.steps)
    if args.full or args.full_only:
        full_run(args.size, args.iterations)


if __name__ == "__main__":
    main()
