"""`a3 classvis`: what a classifier wants to see, for a class, a channel or a neuron."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

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
    top_records,
    top_table,
    with_default,
)
from a3cli.engine.catalogue import (
    CLASSVIS_PARAMS,
    CLASSVIS_SIZE,
)

ClassvisTargetOption = Annotated[
    Optional[str],
    option("--class", "-c", help="ImageNet class to draw: index or name.", panel=INPUTS, show_default=False),
]
ObjectiveOption = Annotated[
    Optional[str],
    option("--objective", help="Or a channel: LAYER:C, LAYER:C1-C2, LAYER:C@X,Y.", panel=INPUTS, show_default=False),
]
ParamOption = Annotated[
    Optional[str], option("--param", help=with_default(" | ".join(CLASSVIS_PARAMS), "per model"), show_default=False)
]
IterationsOption = Annotated[
    Optional[int],
    option(
        "--iterations",
        "-n",
        min=1,
        max=100000,
        help=with_default("Steps.", "per model and --param"),
        show_default=False,
    ),
]
ClassvisLrOption = Annotated[
    Optional[float],
    option("--lr", help=with_default("lr·g/‖g‖₂ (pixel) or Adam's lr.", "per model"), show_default=False),
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
    threads: ThreadsOption = None,
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

    torch_device = seeded_device(device, seed, threads)
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
