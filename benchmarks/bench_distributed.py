"""More than one process on this machine: does torchrun train the same model, and how fast?

compare: for each variant, `a3 gan-train` for N iterations (seed 0, batch 128, offline
MNIST, no Fréchet distance) as 1 process × 1 thread, 1 process × 2 threads and 2 ranks
× 1 thread (torchrun --standalone, gloo). Prints the largest and the median difference
of the generators' weights from the 1-thread run (the 2-thread run shows how far
rounding alone carries a GAN: Adam's first steps are about lr·sign(g), so a rounding
difference in a near-zero gradient becomes a whole step), and the training speed of
2 ranks against 1 process × 2 threads (train_seconds in metrics.json, start-up excluded).

photos: cuts 64-px RGB crops from the bundled photos (examples/*.jpg) and trains the
64-px DCGAN on them for N iterations; prints its iterations/s and leaves the run (its
samples.png is the grid in docs/scaling.md, real.png 64 of the crops it learned from).

    python benchmarks/bench_distributed.py compare [--iterations 20] [--variants gan dcgan]
    python benchmarks/bench_distributed.py photos [--iterations 1500] [--batch-size 32] [--crops-per-photo 300]
        [--augment POLICY]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def gan_train(args: list[str], ranks: int = 1, threads: int = 1) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
        if ranks > 1
        else [sys.executable]
    )
    subprocess.run(
        launcher + ["-m", "a3cli", "gan-train", *args], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL
    )


def generator_weights(run: Path) -> torch.Tensor:
    state = torch.load(run / "checkpoint.pt", weights_only=True)["generator"]
    return torch.cat([v.double().flatten() for v in state.values() if v.is_floating_point()])


def compare(iterations: int, variants: list[str]) -> None:
    print(
        f"{'variant':8} {'2 threads: max':>15} {'median':>9} {'2 ranks: max':>13} {'median':>9} "
        f"{'it/s 1×2':>9} {'it/s 2×1':>9} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            runs = {}
            for name, ranks, threads in (("base", 1, 1), ("threads", 1, 2), ("ranks", 2, 1)):
                runs[name] = Path(tmp) / f"{variant}-{name}"
                gan_train(
                    [
                        "--variant",
                        variant,
                        "--iterations",
                        str(iterations),
                        "--no-fid",
                        "--eval-every",
                        "0",
                        "--sample-every",
                        str(iterations),
                        "--device",
                        "cpu",
                        "--out",
                        str(runs[name]),
                    ],
                    ranks,
                    threads,
                )
            base = generator_weights(runs["base"])
            diffs = {name: (generator_weights(runs[name]) - base).abs() for name in ("threads", "ranks")}
            speed = {
                name: json.loads((runs[name] / "metrics.json").read_text())["iterations_per_second"]
                for name in ("threads", "ranks")
            }
            print(
                f"{variant:8} {diffs['threads'].max():15.2e} {diffs['threads'].median():9.1e} "
                f"{diffs['ranks'].max():13.2e} {diffs['ranks'].median():9.1e} "
                f"{speed['threads']:9.2f} {speed['ranks']:9.2f} {speed['ranks'] / speed['threads']:6.2f}"
            )


def cut_crops(folder: Path, per_photo: int = 100, seed: int = 0) -> Path:
    """Square crops of random size and place from the bundled photos, each resized to 64 px."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for path in sorted((ROOT / "examples").glob("*.jpg")):
        with Image.open(path) as photo:
            photo = photo.convert("RGB")
            for k in range(per_photo):
                side = rng.randint(min(photo.size) // 4, min(photo.size) // 2)
                x, y = rng.randint(0, photo.width - side), rng.randint(0, photo.height - side)
                crop = photo.crop((x, y, x + side, y + side)).resize((64, 64), Image.Resampling.LANCZOS)
                crop.save(folder / f"{path.stem}_{k:03d}.png")
    return folder


def real_grid(folder: Path, path: Path, count: int = 64, seed: int = 0) -> None:
    """`count` of the crops drawn at random, as a grid like the samples' (to set beside samples.png)."""
    from a3cli.engine.generative.pictures import sample_grid
    from a3cli.engine.images import load_image, save_image, to_tensor

    files = random.Random(seed).sample(sorted(folder.glob("*.png")), count)
    save_image(sample_grid(torch.stack([to_tensor(load_image(f)) for f in files])), path)


def photos(iterations: int, batch_size: int, out: Path, per_photo: int, augment: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        crops = cut_crops(Path(tmp) / "crops", per_photo)
        gan_train(
            [
                "--variant",
                "dcgan",
                "--dataset",
                str(crops),
                "--image-size",
                "64",
                "--channels",
                "3",
                "--batch-size",
                str(batch_size),
                "--iterations",
                str(iterations),
                "--sample-every",
                str(max(iterations // 10, 1)),
                "--eval-every",
                str(max(iterations // 3, 1)),
                "--eval-samples",
                "200",
                "--fid-samples",
                "500",
                "--device",
                "cpu",
                "--out",
                str(out),
                *(["--augment", augment] if augment else []),
            ],
            threads=torch.get_num_threads(),
        )
        real_grid(crops, out / "real.png")
    metrics = json.loads((out / "metrics.json").read_text())
    print(
        f"64-px DCGAN on {metrics['dataset']}: {metrics['iterations_per_second']:.2f} it/s at batch {batch_size} on "
        f"{metrics['device']}; Lite0 Fréchet distance final {metrics['frechet_distance']:.1f}, best "
        f"{metrics.get('best_frechet_distance')}; grid {out / 'samples.png'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("compare", "photos"))
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--variants", nargs="+", default=["gan", "lsgan", "dcgan", "wgan-gp"])
    parser.add_argument("--batch-size", type=int, default=32, help="photos: the global batch")
    parser.add_argument("--crops-per-photo", type=int, default=300, help="photos: crops cut from each photo")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "photos64")
    parser.add_argument("--augment", default=None, help="photos: gan-train's --augment (default: gan-train's)")
    args = parser.parse_args()
    if args.mode == "compare":
        compare(args.iterations or 20, args.variants)
    else:
        photos(args.iterations or 1500, args.batch_size, args.out, args.crops_per_photo, args.augment)


if __name__ == "__main__":
    main()
