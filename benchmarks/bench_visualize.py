"""Quality of `a3 fool`, `a3 classvis` and `a3 saliency` on the default backbone (efficientnet_lite0).

Photos: the bundled examples/*.jpg (--photos examples), or the ones scikit-image and scikit-learn
ship (--photos samples: astronaut, chelsea, coffee, rocket, china, flower).

  fool      N random target classes per photo (seeded), for each --epsilon (none: the assignment's
            unbounded step): success rate judged on the saved 8-bit image, median steps, median
            L2 and L-infinity distance in 0-255 pixel units, median target probability.
  ig        Integrated Gradients' completeness per photo (predicted class, black baseline): how far
            the attributions miss s(x) - s(baseline), for 32 evenly spaced (midpoint) steps and
            the current defaults; relative error should stay under 5%.
  classvis  5 classes with the command's defaults: the probability the same model gives the
            target on the saved 8-bit image, and the held-out judges' (efficientnet_lite1 and
            efficientnet_lite2, never optimised against): their target probability averaged over
            random crops and rescales of the saved picture. Pictures in OUT/ to look at.
  saliency  model-randomisation sanity check (Adebayo et al. 2018): Spearman rank correlation
            between the map of the trained network and of one with re-initialised weights
            (last layer only, and all layers), per photo; near 0 means the map depends on the model.
  gradcam   a3's Grad-CAM against pytorch-grad-cam's GradCAM (`grad-cam` on PyPI, imported only here
            and only when installed) on the same model and stage (the head), predicted class: Spearman
            rank correlation and largest absolute difference of the two maps, each min-max normalised.
  faithfulness
            deletion and insertion areas (RISE) of every method's map, and of two baselines that know
            nothing of the model (uniform noise, a centred Gaussian), per photo; CPU seconds per image
            for each method's map and for the curves.

  channels  a sheet of --channels channels for each of --layers (`a3 classvis --objective LAYER:0-15`,
            the command's defaults): the diagonal share (each channel's activation z-scored over the
            sheet's pictures; the share of channels whose own picture excites them most) and CPU time.
  untargeted  `fool` without a target (until the saved image's top-1 changes) at each --budgets
            (0-255 units; none: unbounded), against torchattacks' untargeted PGD with the same budget,
            --steps and --step-size, no random start (only if torchattacks is installed: never a
            dependency). Success on the saved 8-bit image, median L-infinity and L2 (0-255 units) and
            seconds per image.


Usage: python benchmarks/bench_visualize.py [--only fool,ig,classvis,saliency,gradcam,faithfulness,channels,
                                                   untargeted] [--epsilon none,2,4,8]
                                            [--photos examples|samples] [--layers block4,block10]
                                            [--budgets none,1,2,4] [--out out/bench_visualize]
Writes OUT/bench_visualize_<parts>.json with every number.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from a3cli.engine.backbones.registry import load_backbone
from a3cli.engine.catalogue import SALIENCY_METHODS
from a3cli.engine.device import seeded_generator
from a3cli.engine.images import load_image, make_grid, quantize, save_image
from a3cli.engine.visualize.classvis import (
    ClassVisConfig,
    ClassVisualization,
    held_out_probability,
    sheet_activations,
    target_probability,
)
from a3cli.engine.visualize.faithfulness import deletion_insertion
from a3cli.engine.visualize.fooling import FoolConfig, fool
from a3cli.engine.visualize.gradcam import gradcam
from a3cli.engine.visualize.objectives import ChannelObjective, diagonal_share
from a3cli.engine.visualize.saliency import SaliencyConfig, method_maps, randomize_weights, saliency_maps

CLASSVIS_CLASSES = [130, 76, 945, 1, 980]  # flamingo, tarantula, bell pepper, goldfish, volcano
JUDGES = ("efficientnet_lite1", "efficientnet_lite2")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def photos(which: str = "examples") -> dict[str, Image.Image]:
    if which == "examples":
        return {path.stem: load_image(path) for path in sorted(EXAMPLES.glob("*.jpg"))}
    from skimage import data
    from sklearn.datasets import load_sample_images

    arrays = {name: getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")}
    arrays.update(zip(("china", "flower"), load_sample_images().images))
    return {name: Image.fromarray(a).convert("RGB") for name, a in arrays.items()}


def bench_fool(backbone, pictures, targets_per_photo: int, seed: int, epsilon: Optional[float]) -> dict:
    rng = random.Random(seed)  # the same targets for every --epsilon
    runs = []
    for name, picture in pictures.items():
        x = backbone.preprocess(picture)
        with torch.no_grad():
            predicted = int(backbone.logits(x).argmax())
        targets = rng.sample([c for c in range(1000) if c != predicted], targets_per_photo)
        for target in targets:
            start = time.perf_counter()
            r = fool(backbone, x, FoolConfig(target=target, lr=1.0, max_iter=100, epsilon=epsilon))
            runs.append(
                {
                    "photo": name,
                    "target": target,
                    "target_class": backbone.classes[target],
                    "success": r.success,
                    "iterations": r.iterations,
                    "target_prob": r.target_prob,
                    "l2": r.l2,
                    "linf": r.linf,
                    "seconds": time.perf_counter() - start,
                }
            )
            print(
                f"  eps={epsilon} {name:9s} -> {backbone.classes[target][:24]:24s} success={r.success} "
                f"it={r.iterations:3d} L2={r.l2:7.1f} Linf={r.linf:4.0f} p={r.target_prob:.2f}",
                flush=True,
            )
    ok = [r for r in runs if r["success"]]
    summary = {
        "epsilon": epsilon,
        "runs": len(runs),
        "successes": len(ok),
        "success_rate": len(ok) / len(runs),
        "median_iterations": statistics.median(r["iterations"] for r in runs),
        "max_iterations": max(r["iterations"] for r in runs),
        "median_l2": statistics.median(r["l2"] for r in runs),
        "median_linf": statistics.median(r["linf"] for r in runs),
        "max_linf": max(r["linf"] for r in runs),
        "median_target_prob": statistics.median(r["target_prob"] for r in runs),
    }
    print("fool:", json.dumps(summary), flush=True)
    return {"summary": summary, "runs": runs}


def bench_ig(backbone, pictures) -> dict:
    """Completeness per photo: 32 midpoint steps against the defaults."""
    defaults = SaliencyConfig()
    rules = {
        "old (midpoint, 32)": ("midpoint", 32),
        f"default ({defaults.rule}, {defaults.steps})": (defaults.rule, defaults.steps),
    }
    rows = []
    for name, picture in pictures.items():
        x = backbone.preprocess(picture)
        with torch.no_grad():
            target = backbone.logits(x).argmax(dim=1)
        row = {"photo": name, "class": backbone.classes[int(target)]}
        for label, (rule, steps) in rules.items():
            config = SaliencyConfig("integrated-gradients", steps=steps, rule=rule)
            row[label] = {k: float(v[0]) for k, v in method_maps(backbone, x, target, config)[1].items()}
        rows.append(row)
        print(
            f"  ig {name:10s} "
            + "  ".join(
                f"{label}: sum {row[label]['attribution_sum']:.2f} gap "
                f"{row[label]['score_gap']:.2f} "
                f"rel {row[label]['relative_completeness_error']:.1%}"
                for label in rules
            ),
            flush=True,
        )
    summary = {label: max(r[label]["relative_completeness_error"] for r in rows) for label in rules}
    print("ig: largest relative completeness error:", json.dumps(summary), flush=True)
    return {"largest_relative_error": summary, "rows": rows}


def bench_classvis(backbone, judges, out: Path, param: str, seed: int) -> dict:
    rows, images = [], []
    for target in CLASSVIS_CLASSES:
        start = time.perf_counter()
        drawing = ClassVisualization(backbone, ClassVisConfig(target=target, param=param), seed=seed)
        image = drawing.run()
        seconds = time.perf_counter() - start
        path = save_image(image, out / f"classvis_{param}_{target}.png")
        saved = load_image(path)  # judge the file, as a user would see it
        prob, top = target_probability(backbone, image, target)
        held_out = {judge.name: held_out_probability(judge, saved, target, seed=seed) for judge in judges}
        rows.append(
            {
                "class": backbone.classes[target],
                "index": target,
                "probability": prob,
                "top1": top[0][1],
                "held_out": held_out,
                "seconds": seconds,
                "image": str(path),
            }
        )
        images.append(image)
        print(
            f"  classvis {param} {backbone.classes[target]:12s} p={prob:.4f} top1={top[0][1]} held-out "
            + " ".join(f"{k}={v:.3f}" for k, v in held_out.items())
            + f" ({seconds:.0f} s)",
            flush=True,
        )
    save_image(make_grid(images, nrow=len(images)), out / f"classvis_{param}_grid.png")
    means = {judge.name: statistics.mean(r["held_out"][judge.name] for r in rows) for judge in judges}
    print(
        f"classvis {param}: min p = {min(r['probability'] for r in rows):.4f}, mean held-out " + json.dumps(means),
        flush=True,
    )
    return {
        "settings": drawing.config.settings(),
        "classes": rows,
        "held_out_mean": means,
        "mean_seconds": statistics.mean(r["seconds"] for r in rows),
    }


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = (m.flatten().argsort().argsort().double() for m in (a, b))
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def bench_saliency(pictures, device) -> dict:
    trained = load_backbone(device=device)
    nets = {
        "head": randomize_weights(load_backbone(device=device), "head"),
        "all": randomize_weights(load_backbone(device=device), "all"),
    }
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
            print(
                f"  saliency {method:10s} {name:9s} rho(trained, random head)={row['head']:+.3f} "
                f"rho(trained, all random)={row['all']:+.3f} rho(same model)={row['same_model']:+.3f}",
                flush=True,
            )
    summary = {
        m: {k: float(np.median([r[k] for r in rows if r["method"] == m])) for k in ("head", "all", "same_model")}
        for m in ("vanilla", "smoothgrad")
    }
    print("saliency median Spearman:", json.dumps(summary), flush=True)
    return {"summary": summary, "rows": rows}


class TappedBackbone(torch.nn.Module):
    """The backbone as one module with an identity module after stage `layer`: what pytorch-grad-cam hooks."""

    def __init__(self, backbone, layer: str):
        super().__init__()
        self.backbone, self.layer, self.tap = backbone, layer, torch.nn.Identity()
        self.net = backbone.model  # registered, so .eval() reaches it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, stage in self.backbone.stages:
            x = stage(x)
            if name == self.layer:
                x = self.tap(x)
        return self.backbone.head(x)


def min_max(m: torch.Tensor) -> torch.Tensor:
    return (m - m.min()) / (m.max() - m.min()).clamp(min=1e-12)


def bench_gradcam(backbone, pictures, layer: str = "head") -> dict:
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        print("gradcam: pytorch_grad_cam is not installed (pip install grad-cam, in a scratch environment)")
        return {}
    tapped = TappedBackbone(backbone, layer)
    reference = GradCAM(model=tapped, target_layers=[tapped.tap])
    rows = []
    for name, picture in pictures.items():
        x = backbone.preprocess(picture)
        with torch.no_grad():
            target = backbone.logits(x).argmax(dim=1)
        ours = min_max(gradcam(backbone, x, target, layer)[0].cpu().double())
        # The backbone is frozen: the gradient reaches the hooked stage only if the input asks for one.
        cam = reference(x.clone().requires_grad_(True), targets=[ClassifierOutputTarget(int(target))])[0]
        theirs = min_max(torch.from_numpy(cam).double())
        row = {
            "photo": name,
            "class": backbone.classes[int(target)],
            "spearman": spearman(ours, theirs),
            "max_abs_difference": float((ours - theirs).abs().max()),
        }
        rows.append(row)
        print(
            f"  gradcam {name:10s} {row['class'][:20]:20s} rho={row['spearman']:.6f} "
            f"max|diff|={row['max_abs_difference']:.1e}",
            flush=True,
        )
    return {"layer": layer, "rows": rows}


def baseline_maps(x: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Maps that know nothing of the model: uniform noise, and a Gaussian centred on the picture (σ = side/4)."""
    n, _, h, w = x.shape
    noise = torch.rand(n, h, w, generator=torch.Generator().manual_seed(seed))
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    centre = torch.exp(-(ys**2 + xs**2) / (2 * (min(h, w) / 4) ** 2)).expand(n, h, w)
    return {"random": noise.to(x.device), "centre Gaussian": centre.to(x.device)}


def bench_faithfulness(backbone, pictures, steps: int, seed: int) -> dict:
    rows = []
    for name, picture in pictures.items():
        x = backbone.preprocess(picture)
        with torch.no_grad():
            target = backbone.logits(x).argmax(dim=1)
        maps, seconds = baseline_maps(x, seed), {}
        for method in SALIENCY_METHODS:
            start = time.process_time()
            maps[method] = method_maps(backbone, x, target, SaliencyConfig(method), seeded_generator(seed, x.device))[0]
            seconds[method] = time.process_time() - start
        for method, m in maps.items():
            start = time.process_time()
            areas = deletion_insertion(backbone, x, target, m, steps, SaliencyConfig().batch_size).areas()
            row = {
                "photo": name,
                "class": backbone.classes[int(target)],
                "method": method,
                "deletion_auc": float(areas["deletion_auc"][0]),
                "insertion_auc": float(areas["insertion_auc"][0]),
                "map_cpu_seconds": seconds.get(method, 0.0),
                "curves_cpu_seconds": time.process_time() - start,
            }
            rows.append(row)
            print(
                f"  faithfulness {name:10s} {method:20s} deletion={row['deletion_auc']:.3f} "
                f"insertion={row['insertion_auc']:.3f} map {row['map_cpu_seconds']:.1f} s "
                f"curves {row['curves_cpu_seconds']:.1f} s (CPU)",
                flush=True,
            )
    methods = list(dict.fromkeys(r["method"] for r in rows))
    summary = {
        m: {
            k: statistics.mean(r[k] for r in rows if r["method"] == m)
            for k in ("deletion_auc", "insertion_auc", "map_cpu_seconds", "curves_cpu_seconds")
        }
        for m in methods
    }
    print("faithfulness (means over photos):", json.dumps(summary), flush=True)
    return {"steps": steps, "summary": summary, "rows": rows}


def bench_channels(backbone, out: Path, layers: list[str], channels: int, size: int, seed: int) -> dict:
    """One sheet per layer, as `a3 classvis --objective LAYER:0-(channels-1)` draws it."""
    rows = []
    for layer in layers:
        objective = ChannelObjective(layer, tuple(range(channels)))
        start, cpu = time.perf_counter(), time.process_time()
        drawing = ClassVisualization(backbone, ClassVisConfig(objective=objective, size=size), seed=seed)
        sheet = drawing.run()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        path = save_image(sheet, out / f"channels_{layer}.png")
        share = diagonal_share(sheet_activations(backbone, drawing.current_images(), objective))
        rows.append(
            {
                "layer": layer,
                "channels": channels,
                "diagonal_share": share,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "settings": drawing.config.settings(),
                "image": str(path),
            }
        )
        print(
            f"  channels {layer}: diagonal share {share['channels']:.0%} (pictures {share['pictures']:.0%}), "
            f"{seconds:.0f} s wall, {cpu_seconds:.0f} s CPU",
            flush=True,
        )
    return {"rows": rows}


class Classifier(torch.nn.Module):
    """The backbone as torchattacks wants a model: images in [0, 1] -> logits."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.net = backbone.model  # torchattacks looks at the parameters' device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.logits(self.backbone.normalize(x))


def untargeted_row(backbone, x: torch.Tensor, adversarial: torch.Tensor, original: int, clock: tuple) -> dict:
    """Success, L-infinity and L2 (0-255 units) of an attack's image as an 8-bit file stores it, and its
    wall and CPU seconds since `clock` = (perf_counter, process_time) at its start."""
    seconds, cpu_seconds = time.perf_counter() - clock[0], time.process_time() - clock[1]
    saved = quantize(adversarial)
    with torch.no_grad():
        top1 = int(backbone.logits(backbone.normalize(saved)).argmax())
    diff = ((saved - quantize(x)) * 255).round()
    return {
        "success": top1 != original,
        "new_class": backbone.classes[top1],
        "linf": float(diff.abs().max()),
        "l2": float(diff.norm()),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


def summarise(runs: list[dict]) -> dict:
    return {
        "runs": len(runs),
        "success_rate": sum(r["success"] for r in runs) / len(runs),
        "median_linf": statistics.median(r["linf"] for r in runs),
        "median_l2": statistics.median(r["l2"] for r in runs),
        "seconds_per_image": statistics.mean(r["seconds"] for r in runs),
        "cpu_seconds_per_image": statistics.mean(r["cpu_seconds"] for r in runs),
    }


def bench_untargeted(backbone, pictures, budgets: list[Optional[float]], steps: int, step_size: float) -> dict:
    """a3's untargeted fooling against torchattacks' untargeted PGD, same budget, steps and step size."""
    try:
        import torchattacks
    except ImportError:
        torchattacks = None
        print("  untargeted: torchattacks is not installed; a3 only", flush=True)
    model = Classifier(backbone).eval()  # torchattacks restores the mode it found: train() would undo eval()
    results = []
    for epsilon in budgets:
        ours, theirs = [], []
        for name, picture in pictures.items():
            x = backbone.deprocess(as_batch(backbone, picture))
            clock = time.perf_counter(), time.process_time()
            r = fool(
                backbone,
                backbone.normalize(x),
                FoolConfig(untargeted=True, lr=step_size, max_iter=steps, epsilon=epsilon),
            )
            row = untargeted_row(backbone, x, r.fooled[None].to(x.device), r.original_class, clock)
            ours.append({"photo": name, "steps": r.iterations, **row})
            if torchattacks is None or epsilon is None:
                continue
            attack = torchattacks.PGD(model, eps=epsilon / 255, alpha=step_size / 255, steps=steps, random_start=False)
            clock = time.perf_counter(), time.process_time()
            adversarial = attack(quantize(x), torch.tensor([r.original_class], device=x.device))
            theirs.append({"photo": name, **untargeted_row(backbone, x, adversarial, r.original_class, clock)})
        result = {"epsilon": epsilon, "a3": summarise(ours), "a3_runs": ours}
        if theirs:
            result["torchattacks"], result["torchattacks_runs"] = summarise(theirs), theirs
        print(f"  untargeted eps={epsilon}: a3 {json.dumps(result['a3'])}", flush=True)
        if theirs:
            print(f"    torchattacks PGD {json.dumps(result['torchattacks'])}", flush=True)
        results.append(result)
    return {"steps": steps, "step_size": step_size, "rows": results}


def as_batch(backbone, picture: Image.Image) -> torch.Tensor:
    """The photo as the network's 8-bit input crop, normalised (1, 3, H, W)."""
    return backbone.normalize(quantize(backbone.deprocess(backbone.preprocess(picture))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="fool,ig,classvis,saliency,gradcam,faithfulness")
    parser.add_argument("--out", type=Path, default=Path("out/bench_visualize"))
    parser.add_argument("--photos", choices=("examples", "samples"), default="examples")
    parser.add_argument("--targets", type=int, default=10, help="random target classes per photo (fool)")
    parser.add_argument("--epsilon", default="none", help="fool budgets, comma-separated (none: unbounded)")
    parser.add_argument("--param", default="fourier", help="classvis parametrisation(s), comma-separated")
    parser.add_argument("--faithfulness-steps", type=int, default=SaliencyConfig().faithfulness_steps)
    parser.add_argument("--layers", default="block4,block10", help="channels: layers, comma-separated")
    parser.add_argument("--channels", type=int, default=16, help="channels: channels per sheet (0 .. N-1)")
    parser.add_argument("--size", type=int, default=224, help="channels: picture side, pixels")
    parser.add_argument("--budgets", default="none,1,2,4", help="untargeted: budgets, comma-separated")
    parser.add_argument("--steps", type=int, default=10, help="untargeted: most steps")
    parser.add_argument("--step-size", type=float, default=1.0, help="untargeted: PGD step, 0-255 units")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    backbone = load_backbone(device=device)
    pictures = photos(args.photos)
    results = {
        "model": backbone.name,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "photos": args.photos,
    }
    parts = args.only.split(",")
    if "fool" in parts:
        budgets = [None if e == "none" else float(e) for e in args.epsilon.split(",")]
        results["fool"] = [bench_fool(backbone, pictures, args.targets, args.seed, e) for e in budgets]
    if "ig" in parts:
        results["ig"] = bench_ig(backbone, pictures)
    if "classvis" in parts:
        judges = [load_backbone(name, device) for name in JUDGES]
        results["classvis"] = {
            p: bench_classvis(backbone, judges, args.out, p, args.seed) for p in args.param.split(",")
        }
    if "saliency" in parts:
        results["saliency"] = bench_saliency(pictures, device)
    if "gradcam" in parts:
        results["gradcam"] = bench_gradcam(backbone, pictures)
    if "faithfulness" in parts:
        results["faithfulness"] = bench_faithfulness(backbone, pictures, args.faithfulness_steps, args.seed)
    if "channels" in parts:
        results["channels"] = bench_channels(
            backbone, args.out, args.layers.split(","), args.channels, args.size, args.seed
        )
    if "untargeted" in parts:
        budgets = [None if e == "none" else float(e) for e in args.budgets.split(",")]
        results["untargeted"] = bench_untargeted(backbone, pictures, budgets, args.steps, args.step_size)
    path = args.out / f"bench_visualize_{'_'.join(parts)}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
