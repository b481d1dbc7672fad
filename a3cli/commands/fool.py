"""`a3 fool`: fooling images, toward a class or away from the one predicted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from a3cli.app import (
    DEFAULT_MODEL,
    INPUTS,
    JsonOption,
    ModelOption,
    SeedOption,
    WeightsOption,
    app,
    check_class_name,
    check_output,
    configured,
    console,
    on_interrupt,
    option,
    picture_kept_on_interrupt,
    progress_bar,
    save_json,
    seeded_device,
)
from a3cli.engine.options import Machine
from a3cli.engine.visualize.fooling_config import FoolConfig

if TYPE_CHECKING:
    from a3cli.engine.visualize.fooling import FoolingImage, FoolResult

FOOL_EPILOG = """Examples:

  a3 fool examples/chelsea.jpg --target tarantula --out tarantula.png

  a3 fool examples/coffee.jpg --target 'Egyptian cat' --confidence 0.9

  a3 fool examples/rocket.jpg --target goldfish --epsilon 2

  a3 fool examples/chelsea.jpg --untargeted --epsilon 1"""


@app.command(epilog=FOOL_EPILOG)
@configured
def fool(
    image: Annotated[Path, typer.Argument(help="The photo to change.", show_default=False)],
    config: FoolConfig,
    machine: Machine,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    out: Annotated[
        Path, option("--out", "-o", help="Fooling PNG (and OUT_diff.png, OUT_panel.png).", panel=INPUTS)
    ] = Path("fool.png"),
    json_out: JsonOption = None,
    seed: SeedOption = 0,
) -> None:
    """Fooling image: nudge a photo until the model predicts --target.

    Gradient ascent on the target's score with the assignment's normalised
    step; with --epsilon, projected gradient ascent (sign steps) that keeps
    every pixel within ±epsilon of the photo. --untargeted ascends the loss
    of the original class until the model predicts any other. Success is
    judged on the saved 8-bit PNG. Distances are in 0-255 pixel units.
    """
    check_class_name(config.target)
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.images import load_image, save_image
    from a3cli.engine.visualize.fooling import FoolingImage

    torch_device = seeded_device(machine, seed)
    check_output(out, "png", why=" (a lossy format would undo the change)")
    check_output(json_out, "json")
    picture = load_image(image)
    backbone = load_backbone(model, torch_device, weights)
    fooling = FoolingImage(backbone, picture, config)  # resolves the target on the model's classes
    if fooling.target is not None and fooling.fools():
        say_nothing_to_do(backbone.classes[fooling.target], float(fooling.probabilities()[fooling.target]))
        return
    about = {"image": str(image), "model": backbone.name, "out": str(out)}
    stopped = {**about, "interrupted": True}
    with on_interrupt(lambda: write_numbers(json_out, {**stopped, **fooling.so_far().numbers(backbone.classes)})):
        result = run_with_progress(fooling, backbone.classes, out)
    save_image(result.fooled, out)
    numbers = {**about, **result.numbers(backbone.classes), "interrupted": False}
    diff_path, panel_path = write_difference_and_panel(result, numbers, out)
    show_fooling(result, numbers, config.epsilon)
    console.print(f"wrote {out}, {diff_path}, {panel_path}")
    write_numbers(json_out, numbers)
    if not result.success:
        say_not_fooled(config)


def run_with_progress(fooling: FoolingImage, classes: list[str], out: Path) -> FoolResult:
    """The steps with a progress bar; on Ctrl-C the picture so far is kept in `out`."""
    goal = "any other class" if fooling.target is None else classes[fooling.target]
    with (
        picture_kept_on_interrupt(out, fooling.current_image),
        progress_bar(fooling.config.max_iter, f"fooling → {goal}") as progress,
    ):
        return fooling.run(progress)


def write_numbers(json_out: Optional[Path], numbers: dict[str, Any]) -> None:
    """The numbers as JSON, when asked for."""
    save_json(json_out, numbers)


def say_not_fooled(config: FoolConfig) -> None:
    """What to try next, when the steps ran out."""
    if config.epsilon is not None:
        console.print(
            f"[yellow]could not fool the model within --epsilon {config.epsilon:g} in {config.max_iter} steps: "
            "try a larger --epsilon or more --max-iter[/]"
        )
    else:
        console.print(f"[yellow]not fooled within {config.max_iter} steps: try more --max-iter or a larger --lr[/]")


def say_nothing_to_do(target: str, probability: float) -> None:
    """The photo already shows the target: one line, and no files (the fooling image would be the photo)."""
    from a3cli.engine.figures import class_label

    console.print(f"{class_label(repr(target), probability)} is already the top class: nothing to do, nothing written")


def write_difference_and_panel(result: FoolResult, numbers: dict[str, Any], out: Path) -> tuple[Path, Path]:
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


def show_fooling(result: FoolResult, numbers: dict[str, Any], epsilon: Optional[float]) -> None:
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
