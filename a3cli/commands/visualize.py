"""`a3 saliency`, `a3 fool` and `a3 classvis`: what a classifier looks at, how to fool it, what it wants to see."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from a3cli.app import (
    DEFAULT_MODEL,
    INPUTS,
    LOSS,
    METHOD,
    OPTIMISATION,
    DeviceOption,
    JsonOption,
    ModelOption,
    SeedOption,
    WeightsOption,
    app,
    check_output,
    console,
    picture_kept_on_interrupt,
    progress_bar,
    seeded_device,
    top_records,
    top_table,
)
from a3cli.engine.catalogue import (
    BACKBONES,
    CLASSVIS_PARAMS,
    CLASSVIS_SIZE,
    DEFAULT_BACKBONE,
    FOOL_DEFAULTS,
    IG_RULES,
    SALIENCY_BASELINES,
    SALIENCY_DEFAULTS,
    SALIENCY_METHODS,
)

COMPLETE_ENOUGH = 0.05  # relative completeness error above which `a3 saliency` suggests more --steps

if TYPE_CHECKING:  # (the engine imports torch: only for the type checker here)
    from a3cli.engine.visualize.saliency import SaliencyConfig, SaliencyResult


def option(*flags: str, help: str, panel: str = OPTIMISATION, **kwargs: Any) -> Any:
    """An option of these commands: one line of help, in its help panel."""
    return typer.Option(*flags, help=help, rich_help_panel=panel, **kwargs)


ImagesArgument = Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, ...).", show_default=False)]
ClassOption = Annotated[
    Optional[str],
    option(
        "--class", "-c", help="ImageNet class: index or name (default: predicted).", panel=INPUTS, show_default=False
    ),
]
# saliency
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
        help=f"Grad-CAM: the stage it weighs (default per model: {BACKBONES[DEFAULT_BACKBONE].gradcam_layer}).",
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
# fool
TargetOption = Annotated[
    Optional[str],
    option("--target", "-t", help="Class to make the model see: index or name.", panel=INPUTS, show_default=False),
]
UntargetedOption = Annotated[bool, option("--untargeted", help="No target: until the top-1 class changes.", panel=LOSS)]
FoolLrOption = Annotated[float, option("--lr", help="Step length (lr·g/‖g‖₂; with --epsilon lr·sign g).")]
MaxIterOption = Annotated[int, option("--max-iter", min=0, max=100000, help="Most gradient steps.")]
ConfidenceOption = Annotated[
    Optional[float],
    option("--confidence", help="Also go on until the target has this probability.", show_default=False),
]
EpsilonOption = Annotated[
    Optional[float],
    option("--epsilon", help="Budget per pixel (0-255 units): PGD steps.", show_default=False, panel=LOSS),
]
FoolOutOption = Annotated[
    Path, option("--out", "-o", help="Fooling PNG (and OUT_diff.png, OUT_panel.png).", panel=INPUTS)
]
# classvis
ClassvisTargetOption = Annotated[
    Optional[str],
    option("--class", "-c", help="ImageNet class to draw: index or name.", panel=INPUTS, show_default=False),
]
ObjectiveOption = Annotated[
    Optional[str],
    option("--objective", help="Or a channel: LAYER:C, LAYER:C1-C2, LAYER:C@X,Y.", panel=INPUTS, show_default=False),
]
ParamOption = Annotated[
    Optional[str], option("--param", help=f"{' | '.join(CLASSVIS_PARAMS)} (default: per model).", show_default=False)
]
IterationsOption = Annotated[
    Optional[int],
    option("--iterations", "-n", min=1, max=100000, help="Steps (default: per model and --param).", show_default=False),
]
ClassvisLrOption = Annotated[
    Optional[float], option("--lr", help="lr·g/‖g‖₂ (pixel) or Adam's lr (default: per model).", show_default=False)
]
L2Option = Annotated[
    Optional[float], option("--l2-reg", min=0.0, help="λ of the λ‖I‖² penalty.", panel=LOSS, show_default=False)
]
BlurEveryOption = Annotated[
    Optional[int],
    option(
        "--blur-every", min=0, max=1000000, help="Gaussian blur every K steps (pixel; 0: never).", show_default=False
    ),
]
BlurSigmaOption = Annotated[
    Optional[float], option("--blur-sigma", min=0.0, help="σ of that blur, pixels.", show_default=False)
]
JitterOption = Annotated[
    Optional[int],
    option("--max-jitter", min=0, max=512, help="Random shift up to this many pixels.", show_default=False),
]
SizeOption = Annotated[int, option("--size", min=32, max=1024, help="Image side, pixels.", panel=INPUTS)]
SaveEveryOption = Annotated[
    int, option("--save-every", min=0, max=1000000, help="A frame every K steps: OUT_frames/, OUT.gif.", panel=INPUTS)
]
PictureOutOption = Annotated[Path, option("--out", "-o", help="The final image (PNG).", panel=INPUTS)]


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

    torch_device = seeded_device(device, seed)
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
    from a3cli.engine.figures import saliency_panel
    from a3cli.engine.images import save_image

    config = result.config
    assert config is not None
    recorded = {name: getattr(config, name) for name in SALIENCY_METHODS[config.method].recorded}
    records = []
    for i, (path, png) in enumerate(zip(images, per_image_paths(out, images, ".png"))):
        console.print(top_table(f"{path}  ({model})", result.top[i]))
        save_image(saliency_panel(result.images[i], result.maps[i]), png)
        record = {
            "image": str(path),
            "model": model,
            "method": config.method,
            "class": {"index": result.targets[i], "name": classes[result.targets[i]]},
            "panel": str(png),
            "top": top_records(result.top[i]),
            **result.numbers[i],
        }
        record.update(recorded)
        console.print(f"map for class {result.targets[i]} {classes[result.targets[i]]!r}: wrote {png}")
        if npy:
            import numpy as np

            from a3cli.engine.files import atomic_write

            npy_path = png.with_suffix(".npy")
            atomic_write(npy_path, lambda f, m=result.maps[i].numpy(): np.save(f, m))
            record["npy"] = str(npy_path)
            console.print(f"wrote {npy_path}")
        records.append(record)
    return records


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


@app.command()
def fool(
    image: Annotated[Path, typer.Argument(help="The photo to change.", show_default=False)],
    target: TargetOption = None,
    untargeted: UntargetedOption = False,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    lr: FoolLrOption = FOOL_DEFAULTS["lr"],
    max_iter: MaxIterOption = FOOL_DEFAULTS["max_iter"],
    confidence: ConfidenceOption = None,
    epsilon: EpsilonOption = None,
    out: FoolOutOption = Path("fool.png"),
    json_out: JsonOption = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Fooling image: nudge a photo until the model predicts --target.

    Gradient ascent on the target's score with the assignment's normalised
    step; with --epsilon, projected gradient ascent (sign steps) that keeps
    every pixel within ±epsilon of the photo. --untargeted ascends the loss
    of the original class until the model predicts any other. Success is
    judged on the saved 8-bit PNG. Distances are in 0-255 pixel units.

    Examples:

      a3 fool examples/chelsea.jpg --target tarantula --out tarantula.png

      a3 fool examples/coffee.jpg --target 'Egyptian cat' --confidence 0.9

      a3 fool examples/rocket.jpg --target goldfish --epsilon 2

      a3 fool examples/chelsea.jpg --untargeted --epsilon 1
    """
    from a3cli.engine.backbones.imagenet_names import resolve_class
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.figures import difference_image, fool_panel
    from a3cli.engine.files import write_json
    from a3cli.engine.images import load_image, save_image
    from a3cli.engine.visualize.fooling import FoolConfig, FoolingImage

    torch_device = seeded_device(device, seed)
    check_fool_target(target, untargeted)
    check_output(out, "png", why=" (a lossy format would undo the change)")
    check_output(json_out)
    picture = load_image(image)
    backbone = load_backbone(model, torch_device, weights)
    config = FoolConfig(
        target=None if target is None else resolve_class(target, backbone.classes),
        lr=lr,
        max_iter=max_iter,
        confidence=confidence,
        epsilon=epsilon,
    )
    fooling = FoolingImage(backbone, picture, config)  # checks the config
    goal = "any other class" if config.target is None else backbone.classes[config.target]
    with (
        picture_kept_on_interrupt(out, fooling.current_image),
        progress_bar(max_iter, f"fooling → {goal}") as progress,
    ):
        result = fooling.run(progress)
    save_image(result.fooled, out)
    diff_path, panel_path = out.with_name(f"{out.stem}_diff.png"), out.with_name(f"{out.stem}_panel.png")
    save_image(difference_image(result.original, result.fooled), diff_path)
    save_image(fool_panel(result.original, result.fooled), panel_path)
    numbers = {"image": str(image), "model": backbone.name, "out": str(out), **result.numbers(backbone.classes)}
    show_fooling(result, numbers, epsilon)
    console.print(f"wrote {out}, {diff_path}, {panel_path}")
    if json_out is not None:
        write_json(json_out, numbers)
        console.print(f"wrote {json_out}")
    if not result.success and epsilon is not None:
        console.print(
            f"[yellow]could not fool the model within --epsilon {epsilon:g} in {max_iter} steps: "
            "try a larger --epsilon or more --max-iter[/]"
        )
    elif not result.success:
        console.print(f"[yellow]not fooled within {max_iter} steps: try more --max-iter or a larger --lr[/]")


def check_fool_target(target: Optional[str], untargeted: bool) -> None:
    """Exactly one of --target and --untargeted."""
    from a3cli.engine.errors import A3Error

    if target is None and not untargeted:
        raise A3Error("Missing option '--target' (or --untargeted: any class but the original)")
    if target is not None and untargeted:
        raise A3Error("--untargeted takes no --target: give one of the two")


def show_fooling(result: Any, numbers: dict[str, Any], epsilon: Optional[float]) -> None:
    """Success, steps, the three predictions and the size of the change, as a table."""
    table = Table(show_header=False, box=None)
    table.add_row("success", "[green]yes[/]" if result.success else "[red]no[/]")
    table.add_row("iterations", str(result.iterations))
    for key in ("original", "final", "target"):
        n = numbers[key]
        if n is None:  # untargeted
            table.add_row("original after", f"p={numbers['original_probability_after']:.3f}")
            continue
        table.add_row(key, f"{n['class']} ({n['index']})  p={n['probability']:.3f}")
    budget = "" if epsilon is None else f"  (budget ε = {epsilon:g})"
    table.add_row("L2 / L∞ (0-255)", f"{result.l2:.1f} / {result.linf:.0f}{budget}")
    console.print(table)


@app.command()
def classvis(
    target: ClassvisTargetOption = None,
    objective: ObjectiveOption = None,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    param: ParamOption = None,
    iterations: IterationsOption = None,
    lr: ClassvisLrOption = None,
    l2_reg: L2Option = None,
    blur_every: BlurEveryOption = None,
    blur_sigma: BlurSigmaOption = None,
    max_jitter: JitterOption = None,
    size: SizeOption = CLASSVIS_SIZE,
    save_every: SaveEveryOption = 0,
    out: PictureOutOption = Path("classvis.png"),
    json_out: JsonOption = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Class visualization: an image the model is sure shows --class, grown from noise.

    The assignment's method is --param pixel: gradient ascent on the class
    score minus λ‖I‖². Defaults are tuned per model: the assignment's on
    squeezenet1_1, --param fourier on efficientnet_lite0. --objective draws
    a channel of a layer instead (its mean activation), one neuron
    (LAYER:C@X,Y) or a sheet of channels (LAYER:C1-C2), one picture each.

    Examples:

      a3 classvis --class tarantula --out tarantula.png

      a3 classvis --class 'Egyptian cat' --save-every 10 --out cat.png

      a3 classvis --class flamingo --param pixel --iterations 300

      a3 classvis --objective block10:0-15 --out block10.png
    """
    from a3cli.engine.backbones.imagenet_names import resolve_class
    from a3cli.engine.backbones.registry import imagenet_classes, load_backbone
    from a3cli.engine.images import save_image
    from a3cli.engine.visualize.classvis import ClassVisConfig, ClassVisualization

    torch_device = seeded_device(device, seed)
    goal = parse_goal(target, objective)
    config = ClassVisConfig(
        target=None if target is None else resolve_class(target, imagenet_classes()),
        objective=goal,
        param=param,
        iterations=iterations,
        lr=lr,
        l2_reg=l2_reg,
        blur_every=blur_every,
        blur_sigma=blur_sigma,
        max_jitter=max_jitter,
        size=size,
        save_every=save_every,
    )
    config.check()
    check_output(out, "png")
    check_output(json_out)
    frame_dir = out.with_name(f"{out.stem}_frames")
    if save_every:
        check_output(frame_dir, "folder")
    backbone = load_backbone(model, torch_device, weights)
    drawing = ClassVisualization(backbone, config, seed)
    config = drawing.config
    name = backbone.classes[config.target] if config.target is not None else str(objective)
    image, frames = draw(drawing, out, frame_dir, f"classvis {name}")
    save_image(image, out)
    if config.target is not None:
        numbers = show_class_picture(backbone, image, config.target, out)
    else:
        numbers = show_objective_pictures(backbone, drawing, out)
    numbers["settings"] = {**config.settings(), "seed": seed}
    write_classvis_json(json_out, numbers, out, frames, frame_dir)


def parse_goal(target: Optional[str], objective: Optional[str]) -> Any:
    """Exactly one of --class and --objective; the objective parsed (its layer is checked on the model)."""
    from a3cli.engine.errors import A3Error
    from a3cli.engine.visualize.objectives import parse_objective

    if target is None and objective is None:
        raise A3Error("Missing option '--class' (or --objective LAYER:CHANNEL)")
    if target is not None and objective is not None:
        raise A3Error("--class and --objective exclude each other: give one of the two")
    return None if objective is None else parse_objective(objective)


def show_class_picture(backbone: Any, image: Any, target: int, out: Path) -> dict[str, Any]:
    """The class's probability and the top 5 on the saved picture: printed, and as JSON."""
    from a3cli.engine.visualize.classvis import target_probability

    name = backbone.classes[target]
    prob, top = target_probability(backbone, image, target)
    console.print(top_table(f"{out}  ({backbone.name}, saved image)", top))
    console.print(f"{name!r} ({target}) has probability {prob:.3f} on the saved image; wrote {out}")
    return {
        "class": {"index": target, "name": name},
        "model": backbone.name,
        "out": str(out),
        "target_probability": prob,
        "top": top_records(top),
    }


def show_objective_pictures(backbone: Any, drawing: Any, out: Path) -> dict[str, Any]:
    """Each picture's own channel (or neuron) on the saved pictures; a sheet's diagonal share."""
    from a3cli.engine.visualize.classvis import sheet_activations
    from a3cli.engine.visualize.objectives import diagonal_share

    objective = drawing.objective
    values = sheet_activations(backbone, drawing.current_images(), objective)
    table = Table(title=f"{out}  ({backbone.name}, saved image)", title_justify="left")
    for column in (objective.kind, "own value", "highest other picture"):
        table.add_column(column, justify="left" if column == objective.kind else "right")
    pictures = []
    for i, name in enumerate(objective.names()):
        others = [float(values[j, i]) for j in range(len(values)) if j != i]
        own = float(values[i, i])
        table.add_row(name, f"{own:.3f}", f"{max(others):.3f}" if others else "-")
        pictures.append({"name": name, "channel": objective.channels[i], "value": own})
    console.print(table)
    numbers = {"objective": objective.record(), "model": backbone.name, "out": str(out), "pictures": pictures}
    if len(values) > 1:
        numbers["diagonal_share"] = share = diagonal_share(values)
        console.print(
            f"{share['channels']:.0%} of the channels are excited most by their own picture "
            f"({share['pictures']:.0%} of the pictures most by their own channel, z-scored)"
        )
    console.print(f"wrote {out}")
    return numbers


def draw(drawing: Any, out: Path, frame_dir: Path, description: str) -> tuple[Any, list[Any]]:
    """Run a class visualization with a progress bar, keeping its frames; on Ctrl-C the picture so far."""
    from a3cli.engine.images import save_image

    frames = []

    def keep_frame(step: int, image) -> None:
        save_image(image, frame_dir / f"{step:05d}.png")
        frames.append(image.cpu())

    with (
        picture_kept_on_interrupt(out, drawing.current_image),
        progress_bar(drawing.config.iterations, description) as progress,
    ):
        image = drawing.run(progress, keep_frame)
    return image, frames


def write_classvis_json(
    json_out: Optional[Path], numbers: dict[str, Any], out: Path, frames: list[Any], frame_dir: Path
) -> None:
    """The animation of the frames (when kept) and the numbers as JSON (when asked for)."""
    from a3cli.engine.files import write_json
    from a3cli.engine.images import save_gif

    if frames:
        gif = out.with_suffix(".gif")
        save_gif(frames, gif, duration_ms=120)
        numbers["frames"], numbers["gif"] = str(frame_dir), str(gif)
        console.print(f"wrote {len(frames)} frames to {frame_dir}/ and {gif}")
    if json_out is not None:
        write_json(json_out, numbers)
        console.print(f"wrote {json_out}")
