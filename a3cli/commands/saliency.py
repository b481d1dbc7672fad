"""`a3 saliency`: which pixels a classifier's score depends on, and how faithful each map is."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from a3cli.app import (
    DEFAULT_MODEL,
    INPUTS,
    METHOD,
    DeviceOption,
    JsonOption,
    ModelOption,
    SeedOption,
    ThreadsOption,
    WeightsOption,
    app,
    check_output,
    console,
    option,
    progress_bar,
    seeded_device,
    top_records,
    top_table,
    with_default,
)
from a3cli.engine.catalogue import (
    BACKBONES,
    DEFAULT_BACKBONE,
    IG_RULES,
    SALIENCY_BASELINES,
    SALIENCY_DEFAULTS,
    SALIENCY_METHODS,
)

COMPLETE_ENOUGH = 0.05  # relative completeness error above which `a3 saliency` suggests more --steps

if TYPE_CHECKING:  # (the engine imports torch: only for the type checker here)
    from a3cli.engine.visualize.saliency import SaliencyConfig, SaliencyResult


ImagesArgument = Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, ...).", show_default=False)]
ClassOption = Annotated[
    Optional[str],
    option(
        "--class",
        "-c",
        help=with_default("ImageNet class: index or name.", "the predicted class"),
        panel=INPUTS,
        show_default=False,
    ),
]
MethodOption = Annotated[
    str,
    option(
        "--method", help=" | ".join(min((m.name, *m.aliases), key=len) for m in SALIENCY_METHODS.values()), panel=METHOD
    ),
]
SamplesOption = Annotated[
    int, option("--samples", min=1, max=10000, help="SmoothGrad: noisy copies averaged.", panel=METHOD)
]
NoiseOption = Annotated[float, option("--noise", min=0.0, help="SmoothGrad: noise std / value range.", panel=METHOD)]
StepsOption = Annotated[
    int, option("--steps", min=1, max=1000, help="Integrated Gradients: points on the path.", panel=METHOD)
]
RuleOption = Annotated[str, option("--rule", help=f"Integrated Gradients: {' | '.join(IG_RULES)}.", panel=METHOD)]
BaselineOption = Annotated[
    str, option("--baseline", help=f"Integrated Gradients: {' | '.join(SALIENCY_BASELINES)}.", panel=METHOD)
]
LayerOption = Annotated[
    Optional[str],
    option(
        "--layer",
        help=with_default(
            "Grad-CAM: the stage it weighs.",
            f"per model; {BACKBONES[DEFAULT_BACKBONE].gradcam_layer} on {DEFAULT_BACKBONE}",
        ),
        panel=METHOD,
        show_default=False,
    ),
]
FaithfulnessOption = Annotated[
    bool, option("--faithfulness", help="Deletion and insertion curves: OUT_faithfulness.png.", panel=METHOD)
]
FaithfulnessStepsOption = Annotated[
    int, option("--faithfulness-steps", max=1000, help="Steps of those curves, from none to all pixels.", panel=METHOD)
]
BatchOption = Annotated[int, option("--batch-size", min=1, max=4096, help="Images (or copies) per pass.", panel=METHOD)]
PanelOutOption = Annotated[
    Path, option("--out", "-o", help="Panel PNG; several images: OUT_<image>.png.", panel=INPUTS)
]
NpyOption = Annotated[bool, option("--npy", help="Also save each raw map as .npy beside it.", panel=INPUTS)]


def per_image_paths(out: Path, images: list[Path], suffix: str) -> list[Path]:
    """One output per input: `out` itself for one image, else out's stem + each image's stem."""
    if len(images) == 1:
        return [out.with_suffix(suffix)]
    stems = [p.stem for p in images]
    names = [s if stems.count(s) == 1 else f"{i}_{s}" for i, s in enumerate(stems)]
    return [out.with_name(f"{out.stem}_{name}{suffix}") for name in names]


@app.command()
def saliency(
    images: ImagesArgument,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    target: ClassOption = None,
    method: MethodOption = SALIENCY_DEFAULTS["method"],
    samples: SamplesOption = SALIENCY_DEFAULTS["samples"],
    noise: NoiseOption = SALIENCY_DEFAULTS["noise"],
    steps: StepsOption = SALIENCY_DEFAULTS["steps"],
    rule: RuleOption = SALIENCY_DEFAULTS["rule"],
    baseline: BaselineOption = SALIENCY_DEFAULTS["baseline"],
    layer: LayerOption = SALIENCY_DEFAULTS["layer"],
    faithfulness: FaithfulnessOption = SALIENCY_DEFAULTS["faithfulness"],
    faithfulness_steps: FaithfulnessStepsOption = SALIENCY_DEFAULTS["faithfulness_steps"],
    batch_size: BatchOption = SALIENCY_DEFAULTS["batch_size"],
    out: PanelOutOption = Path("saliency.png"),
    npy: NpyOption = False,
    json_out: JsonOption = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    threads: ThreadsOption = None,
) -> None:
    """Saliency maps: which pixels the class score is most sensitive to.

    The map explains --class, or each image's predicted class.
    vanilla: the assignment's |d score / d pixel|, max over channels;
    smoothgrad: vanilla maps averaged over noisy copies;
    integrated-gradients (ig): attributions integrated from a baseline
    image, with how far they are from adding up to s(image) - s(baseline);
    gradcam: a stage's channels weighted by their mean gradient;
    guided-gradcam: gradcam times guided backpropagation.
    --faithfulness scores any map by deletion and insertion.

    Examples:

      a3 saliency examples/chelsea.jpg --out chelsea_saliency.png

      a3 saliency examples/coffee.jpg --class cup --method ig --json cup.json

      a3 saliency examples/chelsea.jpg --method gradcam --faithfulness
    """
    from a3cli.engine.backbones.imagenet_names import resolve_class
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.files import write_json
    from a3cli.engine.images import load_image
    from a3cli.engine.visualize.saliency import SaliencyConfig, gradcam_stage, total_passes
    from a3cli.engine.visualize.saliency import saliency as compute

    torch_device = seeded_device(device, seed, threads)
    config = SaliencyConfig(
        method=method,
        samples=samples,
        noise=noise,
        steps=steps,
        baseline=baseline,
        batch_size=batch_size,
        rule=rule,
        layer=layer,
        faithfulness=faithfulness,
        faithfulness_steps=faithfulness_steps,
    )
    config.check()
    check_output(out, "png")
    check_output(json_out)
    pictures = [load_image(path) for path in images]  # fail on a bad file before loading the model
    backbone = load_backbone(model, torch_device, weights)
    backbone.check_resizable(pictures)
    class_index = None if target is None else resolve_class(target, backbone.classes)
    config.layer = gradcam_stage(backbone, config.layer)  # a wrong --layer fails before any work
    with progress_bar(total_passes(config, len(pictures)), f"saliency ({config.method})") as progress:
        result = compute(backbone, pictures, class_index, config, progress, seed=seed)
    records = write_saliency_maps(images, result, backbone.name, backbone.classes, out, npy)
    if config.method == "integrated-gradients" and result.numbers:
        show_completeness(images, result.numbers, config)
    if result.curves is not None:
        write_faithfulness(images, result, records, out)
    if json_out is not None:
        write_json(json_out, records)
        console.print(f"wrote {json_out}")


def write_saliency_maps(
    images: list[Path],
    result: SaliencyResult,
    model: str,
    classes: list[str],
    out: Path,
    npy: bool,
) -> list[dict[str, Any]]:
    """Show each image's predictions, write its panel (and raw map); return the JSON records."""
    from a3cli.engine.figures import saliency_figure

    config = result.config
    assert config is not None
    recorded = {name: getattr(config, name) for name in SALIENCY_METHODS[config.method].recorded}
    records = []
    for i, (path, png) in enumerate(zip(images, per_image_paths(out, images, ".png"))):
        console.print(top_table(f"{path}  ({model})", result.top[i]))
        title = saliency_title(path, model, config.method, result, i, classes)
        saliency_figure(result.images[i], result.maps[i], title, SALIENCY_METHODS[config.method].scale, png)
        target = result.targets[i]
        record = {
            "image": str(path),
            "model": model,
            "method": config.method,
            "class": {"index": target, "name": classes[target], "probability": result.probabilities[i]},
            "panel": str(png),
            "top": top_records(result.top[i]),
            **result.numbers[i],
        }
        record.update(recorded)
        console.print(f"map for class {target} {classes[target]!r}: wrote {png}")
        if npy:
            record["npy"] = str(write_npy(result.maps[i], png.with_suffix(".npy")))
        records.append(record)
    return records


def saliency_title(path: Path, model: str, method: str, result: SaliencyResult, i: int, classes: list[str]) -> str:
    """'chelsea.jpg · efficientnet_lite0 · smoothgrad' over the class the map explains, with its probability,
    and the model's top class when that is another."""
    from a3cli.engine.figures import class_label

    target = result.targets[i]
    line = f"map for {class_label(classes[target], result.probabilities[i])}"
    top_index, top_name, top_probability = result.top[i][0]
    if top_index != target:
        line += f"; the model's top class: {class_label(top_name, top_probability)}"
    return f"{path.name} · {model} · {method}\n{line}"


def write_npy(values: Any, path: Path) -> Path:
    """The raw map (H, W) as a .npy file, atomically."""
    import numpy as np

    from a3cli.engine.files import atomic_write

    atomic_write(path, lambda f: np.save(f, values.numpy()))
    console.print(f"wrote {path}")
    return path


def write_faithfulness(images: list[Path], result: SaliencyResult, records: list[dict[str, Any]], out: Path) -> None:
    """The deletion and insertion areas as a table, their curves as OUT_faithfulness.png and in the records."""
    from a3cli.engine.figures import faithfulness_figure

    curves = result.curves
    assert curves is not None
    steps = len(curves.fractions) - 1
    table = Table(
        title=f"faithfulness ({steps} steps): lower deletion, higher insertion is better", title_justify="left"
    )
    for column in ("image", "class", "deletion AUC", "insertion AUC"):
        table.add_column(column, justify="left" if column in ("image", "class") else "right")
    for i, (path, record) in enumerate(zip(images, records)):
        table.add_row(
            str(path), record["class"]["name"], f"{record['deletion_auc']:.3f}", f"{record['insertion_auc']:.3f}"
        )
        record["faithfulness_steps"] = steps
        record["deletion_curve"] = curves.deletion[i].tolist()
        record["insertion_curve"] = curves.insertion[i].tolist()
    console.print(table)
    png = out.with_name(f"{out.stem}_faithfulness.png")
    labels = [f"{path.stem} ({record['class']['name']})" for path, record in zip(images, records)]
    faithfulness_figure(curves.fractions, curves.deletion, curves.insertion, labels, png)
    for record in records:
        record["faithfulness_png"] = str(png)
    console.print(f"wrote {png}")


def show_completeness(images: list[Path], numbers: list[dict[str, float]], config: SaliencyConfig) -> None:
    """Integrated Gradients' attributions should add up to s(image) - s(baseline): how far off they are."""
    table = Table(
        title=f"completeness ({config.steps} {config.rule} steps, {config.baseline} baseline)", title_justify="left"
    )
    for column in ("image", "Σ attributions", "s(x) - s(baseline)", "error", "relative"):
        table.add_column(column, justify="left" if column == "image" else "right")
    for path, n in zip(images, numbers):
        table.add_row(
            str(path),
            f"{n['attribution_sum']:.3f}",
            f"{n['score_gap']:.3f}",
            f"{n['completeness_error']:.3f}",
            f"{n['relative_completeness_error']:.1%}",
        )
    console.print(table)
    worst = max(n["relative_completeness_error"] for n in numbers)
    if worst > COMPLETE_ENOUGH:
        console.print(
            f"[yellow]the attributions miss s(x) - s(baseline) by up to {worst:.0%}: "
            f"try more --steps (now {config.steps})[/]"
        )
