"""`a3 saliency`: which pixels a classifier's score depends on, and how faithful each map is."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

from rich.table import Table

from a3cli.app import (
    DEFAULT_MODEL,
    INPUTS,
    ImagesArgument,
    JsonOption,
    ModelOption,
    SeedOption,
    WeightsOption,
    app,
    check_class_name,
    check_output,
    configured,
    console,
    option,
    progress_bar,
    save_json,
    seeded_device,
    top_records,
    top_table,
)
from a3cli.engine.options import Machine
from a3cli.engine.visualize.saliency_config import SaliencyConfig

COMPLETE_ENOUGH = 0.05  # relative completeness error above which `a3 saliency` suggests more --steps

if TYPE_CHECKING:  # (the engine imports torch: only for the type checker here)
    from a3cli.engine.visualize.saliency import SaliencyResult


ClassOption = Annotated[
    Optional[str],
    option("--class", "-c", help="ImageNet class: index or name.", panel=INPUTS, shown="the predicted class"),
]
PanelOutOption = Annotated[
    Path, option("--out", "-o", help="Panel PNG; several images: OUT_<image>.png.", panel=INPUTS)
]
NpyOption = Annotated[bool, option("--npy", help="Also save each raw map as .npy beside it.", panel=INPUTS)]

EPILOG = """Examples:

  a3 saliency examples/chelsea.jpg --out chelsea_saliency.png

  a3 saliency examples/coffee.jpg --class cup --method ig --json cup.json

  a3 saliency examples/chelsea.jpg --method gradcam --faithfulness"""


def per_image_paths(out: Path, images: list[Path], suffix: str) -> list[Path]:
    """One output per input: `out` itself for one image, else out's stem + each image's stem."""
    if len(images) == 1:
        return [out.with_suffix(suffix)]
    stems = [p.stem for p in images]
    names = [s if stems.count(s) == 1 else f"{i}_{s}" for i, s in enumerate(stems)]
    return [out.with_name(f"{out.stem}_{name}{suffix}") for name in names]


@app.command(epilog=EPILOG)
@configured
def saliency(
    images: ImagesArgument,
    config: SaliencyConfig,
    machine: Machine,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    target: ClassOption = None,
    out: PanelOutOption = Path("saliency.png"),
    npy: NpyOption = False,
    json_out: JsonOption = None,
    seed: SeedOption = 0,
) -> None:
    """Saliency maps: which pixels the class score is most sensitive to.

    The map explains --class, or each image's predicted class; --method
    says how. --faithfulness scores any map by deletion and insertion.
    """
    check_class_name(target)
    from a3cli.engine.backbones.imagenet_names import resolve_class
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.images import load_image
    from a3cli.engine.visualize.saliency import for_backbone, saliency_for_backbone, total_passes

    torch_device = seeded_device(machine, seed)
    check_output(out, "png")
    check_output(json_out, "json")
    pictures = [load_image(path) for path in images]  # fail on a bad file before loading the model
    backbone = load_backbone(model, torch_device, weights)
    backbone.check_resizable(pictures)
    class_index = None if target is None else resolve_class(target, backbone.classes)
    config = for_backbone(config, backbone)  # a wrong --layer fails before any work
    with progress_bar(total_passes(config, len(pictures)), f"saliency ({config.method})") as progress:
        result = saliency_for_backbone(backbone, pictures, class_index, config, progress, seed=seed)
    records = write_saliency_maps(images, result, backbone.name, backbone.classes, out, npy)
    if config.method == "integrated-gradients" and result.numbers:
        show_completeness(images, result.numbers, config)
    if result.curves is not None:
        write_faithfulness(images, result, records, out)
    save_json(json_out, records)


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
    recorded = {name: getattr(config, name) for name in config.record.recorded}
    records = []
    for i, (path, png) in enumerate(zip(images, per_image_paths(out, images, ".png"))):
        console.print(top_table(f"{path}  ({model})", result.top[i]))
        title = saliency_title(path, model, config.method, result, i, classes)
        saliency_figure(result.images[i], result.maps[i], title, config.record.scale, png)
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
    steps = curves.steps
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
