"""`a3 fool`: fooling images, toward a class or away from the one predicted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from a3cli.app import (
    DEFAULT_MODEL,
    INPUTS,
    LOSS,
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
    picture_kept_on_interrupt,
    progress_bar,
    seeded_device,
)
from a3cli.engine.catalogue import (
    FOOL_DEFAULTS,
)

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
    threads: ThreadsOption = None,
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
    from a3cli.engine.files import write_json
    from a3cli.engine.images import load_image, save_image
    from a3cli.engine.visualize.fooling import FoolConfig, FoolingImage

    torch_device = seeded_device(device, seed, threads)
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
    if config.target is not None and fooling.fools():
        say_nothing_to_do(backbone.classes[config.target], float(fooling.probabilities()[config.target]))
        return
    goal = "any other class" if config.target is None else backbone.classes[config.target]
    with (
        picture_kept_on_interrupt(out, fooling.current_image),
        progress_bar(max_iter, f"fooling → {goal}") as progress,
    ):
        result = fooling.run(progress)
    save_image(result.fooled, out)
    numbers = {"image": str(image), "model": backbone.name, "out": str(out), **result.numbers(backbone.classes)}
    diff_path, panel_path = write_difference_and_panel(result, numbers, out)
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


def say_nothing_to_do(target: str, probability: float) -> None:
    """The photo already shows the target: one line, and no files (the fooling image would be the photo)."""
    from a3cli.engine.figures import class_label

    console.print(f"{class_label(repr(target), probability)} is already the top class: nothing to do, nothing written")


def write_difference_and_panel(result: Any, numbers: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """OUT_diff.png, and OUT_panel.png: original | fooling image | difference, titled with the image, the model
    and the classes before and after."""
    from a3cli.engine.figures import class_label, difference_image, fool_figure
    from a3cli.engine.images import save_image

    diff_path = save_image(difference_image(result.original, result.fooled), out.with_name(f"{out.stem}_diff.png"))
    before, after = (class_label(numbers[key]["class"], numbers[key]["probability"]) for key in ("original", "final"))
    steps = f"{result.iterations} step{'s' if result.iterations != 1 else ''}"
    outcome = f"fooled in {steps}" if result.success else f"not fooled in {steps}"
    change = f"L2 {result.l2:.1f}, L∞ {result.linf:.0f} (0-255 levels)"
    title = f"{Path(numbers['image']).name} · {numbers['model']}: {before} → {after}\n{outcome}; {change}"
    panel_path = fool_figure(
        result.original, result.fooled, (before, after), title, out.with_name(f"{out.stem}_panel.png")
    )
    return diff_path, panel_path


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
