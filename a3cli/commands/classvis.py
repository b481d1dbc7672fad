"""`a3 classvis`: what a classifier wants to see, for a class, a channel or a neuron."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

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
    option,
    picture_kept_on_interrupt,
    progress_bar,
    save_json,
    seeded_device,
    top_records,
    top_table,
)
from a3cli.engine.options import Machine
from a3cli.engine.visualize.classvis_config import ClassVisConfig

if TYPE_CHECKING:
    from a3cli.engine.backbones.registry import Backbone
    from a3cli.engine.visualize.classvis import ClassVisualization

CLASSVIS_EPILOG = """Examples:

  a3 classvis --class tarantula --out tarantula.png

  a3 classvis --class 'Egyptian cat' --save-every 10 --out cat.png

  a3 classvis --class flamingo --param pixel --iterations 300

  a3 classvis --objective block10:0-15 --out block10.png"""


@app.command(epilog=CLASSVIS_EPILOG)
@configured
def classvis(
    config: ClassVisConfig,
    machine: Machine,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    out: Annotated[Path, option("--out", "-o", help="The final image (PNG).", panel=INPUTS)] = Path("classvis.png"),
    json_out: JsonOption = None,
    seed: SeedOption = 0,
) -> None:
    """Class visualization: an image the model is sure shows --class, grown from noise.

    The assignment's method is --param pixel: gradient ascent on the class
    score minus λ‖I‖². Defaults are tuned per model: the assignment's on
    squeezenet1_1, --param fourier on efficientnet_lite0. --objective draws
    a channel of a layer instead (its mean activation), one neuron
    (LAYER:C@X,Y) or a sheet of channels (LAYER:C1-C2), one picture each.
    """
    check_class_name(config.target)
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.images import save_image
    from a3cli.engine.visualize.classvis import ClassVisualization
    from a3cli.engine.visualize.objectives import ClassObjective

    torch_device = seeded_device(machine, seed)
    check_output(out, "png")
    check_output(json_out, "json")
    frame_dir = out.with_name(f"{out.stem}_frames")
    if config.save_every:
        check_output(frame_dir, "folder")
    backbone = load_backbone(model, torch_device, weights)
    drawing = ClassVisualization(backbone, config, seed)  # fills in the model's settings, resolves the class
    objective = drawing.objective
    image, frames = draw(drawing, out, frame_dir, f"classvis {objective.label(backbone.classes)}")
    save_image(image, out)
    if isinstance(objective, ClassObjective):
        numbers = show_class_picture(backbone, image, objective.target, out)
    else:
        numbers = show_objective_pictures(backbone, drawing, out)
    numbers["settings"] = {**drawing.config.settings(), "seed": seed}
    write_classvis_json(json_out, numbers, out, frames, frame_dir)


def show_class_picture(backbone: Backbone, image: Any, target: int, out: Path) -> dict[str, Any]:
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


def show_objective_pictures(backbone: Backbone, drawing: ClassVisualization, out: Path) -> dict[str, Any]:
    """Each picture's own channel (or neuron) on the saved pictures; a sheet's diagonal share."""
    from a3cli.engine.visualize.classvis import sheet_scores

    objective = drawing.objective
    scores = sheet_scores(backbone, drawing.current_images(), objective)
    table = Table(title=f"{out}  ({backbone.name}, saved image)", title_justify="left")
    for column in (objective.kind, "own value", "highest other picture"):
        table.add_column(column, justify="left" if column == objective.kind else "right")
    for picture in scores.pictures:
        highest = "-" if picture.highest_other is None else f"{picture.highest_other:.3f}"
        table.add_row(picture.name, f"{picture.own:.3f}", highest)
    console.print(table)
    pictures = [{"name": p.name, "channel": p.channel, "value": p.own} for p in scores.pictures]
    numbers = {"objective": objective.record(), "model": backbone.name, "out": str(out), "pictures": pictures}
    if scores.diagonal_share is not None:
        numbers["diagonal_share"] = share = scores.diagonal_share
        console.print(
            f"{share['channels']:.0%} of the channels are excited most by their own picture "
            f"({share['pictures']:.0%} of the pictures most by their own channel, z-scored)"
        )
    console.print(f"wrote {out}")
    return numbers


def draw(drawing: ClassVisualization, out: Path, frame_dir: Path, description: str) -> tuple[Any, list[Any]]:
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
    from a3cli.engine.images import save_gif

    if frames:
        gif = out.with_suffix(".gif")
        save_gif(frames, gif, duration_ms=120)
        numbers["frames"], numbers["gif"] = str(frame_dir), str(gif)
        console.print(f"wrote {len(frames)} frames to {frame_dir}/ and {gif}")
    save_json(json_out, numbers)
