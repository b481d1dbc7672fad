"""Quality of `a3 fool`, `a3 classvis` and `a3 saliency` on the default backbone (efficientnet_lite0).

  fool      the photos scikit-image and scikit-learn ship, 10 random target classes each (seeded):
            success rate judged on the saved 8-bit image (target 100% within 100 steps),
            median steps, median L2 and L-infinity distance in 0-255 pixel units.
  classvis  5 classes with the command's defaults: the probability the same model gives the
            target on the saved 8-bit image (target >= 0.9); pictures in OUT/ to look at.
  saliency  model-randomisation sanity check (Adebayo et al. 2018): Spearman rank correlation
            between the map of the trained network and of one with re-initialised weights
            (last layer only, and all layers), per photo; near 0 means the map depends on the model.

Usage: python benchmarks/bench_visualize.py [--only fool,classvis,saliency] [--out out/bench_visualize]
Writes OUT/bench_visualize.json with every number.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from a3cli.engine.backbones.registry import load_backbone
from a3cli.engine.device import seeded_generator
from a3cli.engine.images import make_grid, save_image
from a3cli.engine.visualize.classvis import ClassVisConfig, ClassVisualization, target_probability
from a3cli.engine.visualize.fooling import FoolConfig, fool
from a3cli.engine.visualize.saliency import SaliencyConfig, randomize_weights, saliency_maps

CLASSVIS_CLASSES = [130, 76, 945, 1, 980]  # flamingo, tarantula, bell pepper, goldfish, volcano


def photos() -> dict[str, Image.Image]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    arrays = {name: getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")}
    arrays.update(zip(("china", "flower"), load_sample_images().images))
    return {name: Image.fromarray(a).convert("RGB") for name, a in arrays.items()}


def bench_fool(backbone, pictures, targets_per_photo: int, seed: int) -> dict:
    rng = random.Random(seed)
    runs = []
    for name, picture in pictures.items():
        x = backbone.preprocess(picture)
        with torch.no_grad():
            predicted = int(backbone.logits(x).argmax())
        targets = rng.sample([c for c in range(1000) if c != predicted], targets_per_photo)
        for target in targets:
            start = time.perf_counter()
            r = fool(backbone, x, FoolConfig(target=target, lr=1.0, max_iter=100))
            runs.append({"photo": name, "target": target, "success": r.success, "iterations": r.iterations,
                         "target_prob": r.target_prob, "l2": r.l2, "linf": r.linf,
                         "seconds": time.perf_counter() - start})
            print(f"  {name:9s} -> {backbone.classes[target][:24]:24s} success={r.success} it={r.iterations:3d} "
                  f"L2={r.l2:7.1f} Linf={r.linf:4.0f} p={r.target_prob:.2f}", flush=True)
    ok = [r for r in runs if r["success"]]
    summary = {
        "runs": len(runs), "success_rate": len(ok) / len(runs),
        "median_iterations": statistics.median(r["iterations"] for r in runs),
        "max_iterations": max(r["iterations"] for r in runs),
        "median_l2": statistics.median(r["l2"] for r in runs),
        "median_linf": statistics.median(r["linf"] for r in runs),
        "max_linf": max(r["linf"] for r in runs),
    }
    print("fool:", json.dumps(summary), flush=True)
    return {"summary": summary, "runs": runs}


def bench_classvis(backbone, out: Path, param: str, seed: int) -> dict:
    rows, images = [], []
    for target in CLASSVIS_CLASSES:
        start = time.perf_counter()
        drawing = ClassVisualization(backbone, ClassVisConfig(target=target, param=param), seed=seed)
        image = drawing.run()
        seconds = time.perf_counter() - start
        path = save_image(image, out / f"classvis_{param}_{target}.png")
        prob, top = target_probability(backbone, image, target)
        rows.append({"class": backbone.classes[target], "index": target, "probability": prob,
                     "top1": top[0][1], "seconds": seconds, "image": str(path)})
        images.append(image)
        print(f"  classvis {param} {backbone.classes[target]:12s} p={prob:.4f} top1={top[0][1]} "
              f"({seconds:.0f} s)", flush=True)
    save_image(make_grid(images, nrow=len(images)), out / f"classvis_{param}_grid.png")
    print(f"classvis {param}: min p = {min(r['probability'] for r in rows):.4f}", flush=True)
    return {"settings": drawing.config.settings(), "classes": rows}


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = (m.flatten().argsort().argsort().double() for m in (a, b))
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def bench_saliency(pictures, device) -> dict:
    trained = load_backbone(device=device)
    nets = {"head": randomize_weights(load_backbone(device=device), "head"),
            "all": randomize_weights(load_backbone(device=device), "all")}
    rows = []
    for method in ("vanilla", "smoothgrad"):
        config = SaliencyConfig(method=method, samples=16)
        for name, picture in pictures.items():
            x = trained.preprocess(picture)
            with torch.no_grad():
                target = trained.logits(x).argmax(dim=1)
            generator = seeded_generator(0, x.device)
            base = saliency_maps(trained, x, target, config, generator)[0]
            row = {"method": method, "photo": name}
            for scope, net in nets.items():
                generator = seeded_generator(0, x.device)
                row[scope] = spearman(base, saliency_maps(net, x, target, config, generator)[0])
            # Same network, other noise: how alike two maps of the same model are.
            generator = seeded_generator(1, x.device)
            row["same_model"] = spearman(base, saliency_maps(trained, x, target, config, generator)[0])
            rows.append(row)
            print(f"  saliency {method:10s} {name:9s} rho(trained, random head)={row['head']:+.3f} "
                  f"rho(trained, all random)={row['all']:+.3f} rho(same model)={row['same_model']:+.3f}", flush=True)
    summary = {m: {k: float(np.median([r[k] for r in rows if r["method"] == m])) for k in ("head", "all", "same_model")}
               for m in ("vanilla", "smoothgrad")}
    print("saliency median Spearman:", json.dumps(summary), flush=True)
    return {"summary": summary, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="fool,classvis,saliency")
    parser.add_argument("--out", type=Path, default=Path("out/bench_visualize"))
    parser.add_argument("--targets", type=int, default=10, help="random target classes per photo (fool)")
    parser.add_argument("--param", default="fourier", help="classvis parametrisation(s), comma-separated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    backbone = load_backbone(device=device)
    pictures = photos()
    results = {"model": backbone.name, "device": str(device), "torch_threads": torch.get_num_threads()}
    parts = args.only.split(",")
    if "fool" in parts:
        results["fool"] = bench_fool(backbone, pictures, args.targets, args.seed)
    if "classvis" in parts:
        results["classvis"] = {p: bench_classvis(backbone, args.out, p, args.seed) for p in args.param.split(",")}
    if "saliency" in parts:
        results["saliency"] = bench_saliency(pictures, device)
    path = args.out / f"bench_visualize_{'_'.join(parts)}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
