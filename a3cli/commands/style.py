"""`a3 stylize`: neural style transfer on your own photos.

The settings come in three layers, each overriding the one before: the model's
defaults, a --preset, and the options given on the command line. The numbers are
data in the catalogue (a3cli/engine/catalogue.py), so `--help` can show them instantly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from a3cli.app import (
    DEFAULT_MODEL,
    INPUTS,
    LOSS,
    MODEL,
    OPTIMISATION,
    DeviceOption,
    ModelOption,
    SeedOption,
    ThreadsOption,
    WeightsOption,
    app,
    check_output,
    console,
    optional,
    picture_kept_on_interrupt,
    progress_bar,
    seeded_device,
)
from a3cli.engine.catalogue import STYLE_DEFAULTS, STYLE_PRESETS, style_default

if TYPE_CHECKING:  # (the engine imports torch: only for the type checker here)
    from a3cli.engine.style.transfer import StyleConfig, StyleResult


def setting(*flags: str, help: str, panel: str, default: object = None, **kwargs: Any) -> Any:
    """A style setting: None unless given (the model, then --preset, fill it in), in its help panel."""
    return optional(*flags, help=help, default=default, rich_help_panel=panel, **kwargs)


ImagesArgument = Annotated[
    list[Path], typer.Argument(help="CONTENT STYLE [STYLE...]: the photo, then style images.", show_default=False)
]
OutOption = Annotated[
    Path, typer.Option("--out", "-o", help="The stylised picture (PNG or JPEG).", rich_help_panel=INPUTS)
]
PresetOption = Annotated[Optional[str], setting("--preset", help=" | ".join(STYLE_PRESETS), panel=MODEL)]
ImageSizeOption = Annotated[
    Optional[int],
    setting("--image-size", help="Output's shorter side, pixels.", default=style_default("image_size"), panel=INPUTS),
]
StyleSizeOption = Annotated[
    Optional[int],
    setting("--style-size", help="Style images' shorter side, pixels.", default="--image-size", panel=INPUTS),
]
ContentLayerOption = Annotated[
    Optional[str],
    setting(
        "--content-layer", help="Layer that keeps the content.", default=style_default("content_layer"), panel=LOSS
    ),
]
ContentWeightOption = Annotated[
    Optional[float],
    setting(
        "--content-weight", help="Weight of the content loss.", default=style_default("content_weight"), panel=LOSS
    ),
]
StyleLayersOption = Annotated[
    Optional[str],
    setting(
        "--style-layers",
        help="Layers whose Gram matrices carry the style.",
        default=style_default("style_layers"),
        panel=LOSS,
    ),
]
StyleWeightsOption = Annotated[
    Optional[str],
    setting("--style-weights", help="One weight per style layer.", default=style_default("style_weights"), panel=LOSS),
]
TvWeightOption = Annotated[
    Optional[float],
    setting("--tv-weight", help="Weight of the smoothness (TV) loss.", default=style_default("tv_weight"), panel=LOSS),
]
InitOption = Annotated[
    Optional[str],
    setting("--init", help="Start from content | random | FILE.", default=STYLE_DEFAULTS["init"], panel=OPTIMISATION),
]
OptimizerOption = Annotated[
    Optional[str], setting("--optimizer", help="lbfgs | adam.", default=style_default("optimizer"), panel=OPTIMISATION)
]
IterationsOption = Annotated[
    Optional[int],
    setting("--iterations", "-n", help="Loss evaluations.", default=style_default("iterations"), panel=OPTIMISATION),
]
LrOption = Annotated[
    Optional[float],
    setting("--lr", help="Adam's lr; L-BFGS's step scale.", default=style_default("lr"), panel=OPTIMISATION),
]
DecayLrOption = Annotated[
    Optional[float],
    setting("--decay-lr", help="Adam: the lr after --decay-at.", default=style_default("decay_lr"), panel=OPTIMISATION),
]
DecayAtOption = Annotated[
    Optional[float],
    setting(
        "--decay-at",
        help="Fraction of the iterations before --decay-lr.",
        default=STYLE_DEFAULTS["decay_at"],
        panel=OPTIMISATION,
    ),
]
BlendOption = Annotated[
    Optional[str],
    setting("--style-blend-weights", help="Weights of the style images, e.g. 3,1.", default="equal", panel=LOSS),
]
OriginalColorsOption = Annotated[
    bool, typer.Option("--original-colors", help="Keep the content's colours (luminance only).", rich_help_panel=LOSS)
]
MultiscaleOption = Annotated[
    bool, typer.Option("--multiscale", help="Coarse to fine, for large outputs.", rich_help_panel=OPTIMISATION)
]
SaveEveryOption = Annotated[
    int,
    typer.Option("--save-every", min=0, help="Also write OUT_0050.png ... every K (0: never).", rich_help_panel=INPUTS),
]
CompareOption = Annotated[
    Optional[Path], setting("--compare", help="Also write content, styles and result in a row.", panel=INPUTS)
]
JsonOption = Annotated[Optional[Path], setting("--json", help="Settings and loss terms as JSON.", panel=INPUTS)]


def parse_list(text: Optional[str], option: str, number: bool) -> Optional[list]:
    """ "a,b,c" -> ["a", "b", "c"] (or floats), refusing what is not a list of the right kind."""
    from a3cli.engine.errors import A3Error

    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise A3Error(
            f"{option} {text!r}: give a comma-separated list such as {'1e4,500,12' if number else 'stem,block2'}"
        )
    if not number:
        return items
    try:
        values = [float(item) for item in items]
    except ValueError:
        raise A3Error(f"{option} {text!r}: every item must be a number") from None
    if any(not math.isfinite(v) for v in values):
        raise A3Error(f"{option} {text!r}: every item must be a finite number")
    return values


def snapshot_path(out: Path, step: int) -> Path:
    return out.with_name(f"{out.stem}_{step:04d}{out.suffix}")


@app.command("stylize")
def stylize_command(
    images: ImagesArgument,
    out: OutOption = Path("stylized.png"),
    preset: PresetOption = None,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    image_size: ImageSizeOption = None,
    style_size: StyleSizeOption = None,
    content_layer: ContentLayerOption = None,
    content_weight: ContentWeightOption = None,
    style_layers: StyleLayersOption = None,
    style_weights: StyleWeightsOption = None,
    tv_weight: TvWeightOption = None,
    init: InitOption = None,
    optimizer: OptimizerOption = None,
    iterations: IterationsOption = None,
    lr: LrOption = None,
    decay_lr: DecayLrOption = None,
    decay_at: DecayAtOption = None,
    style_blend_weights: BlendOption = None,
    original_colors: OriginalColorsOption = False,
    multiscale: MultiscaleOption = False,
    save_every: SaveEveryOption = 0,
    compare: CompareOption = None,
    json_out: JsonOption = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    threads: ThreadsOption = None,
) -> None:
    """Paint a photo in the style of other images (Gatys et al., part 4 of the assignment).

    Settings: the model's defaults, then --preset, then the options given.

    Examples:

      a3 stylize examples/chelsea.jpg examples/ihc.jpg --out cat.png

      a3 stylize photo.jpg starry.jpg --preset starry-night -m squeezenet1_1

      a3 stylize photo.jpg a.jpg b.jpg --style-blend-weights 3,1 --original-colors

      a3 stylize examples/chelsea.jpg examples/brick.jpg --preset texture
    """
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.images import load_image, save_image

    torch_device = seeded_device(device, seed, threads)
    given = {
        "image_size": image_size,
        "style_size": style_size,
        "content_layer": content_layer,
        "content_weight": content_weight,
        "style_layers": style_layers,
        "style_weights": style_weights,
        "tv_weight": tv_weight,
        "init": init,
        "optimizer": optimizer,
        "iterations": iterations,
        "lr": lr,
        "decay_lr": decay_lr,
        "decay_at": decay_at,
        "style_blend_weights": style_blend_weights,
    }
    config = style_config(images, model, preset, given, original_colors, multiscale, out, compare, json_out)
    content = load_image(images[0])
    styles = [load_image(path) for path in images[1:]]
    backbone = load_backbone(model, torch_device, weights)
    result, seconds = run_transfer(backbone, content, styles, config, seed, out, save_every)
    save_image(result.image, out)
    console.print(f"{backbone.name}, {config.optimizer}, {config.iterations} iterations, {seconds:.1f} s")
    show_loss_terms(result)
    console.print(f"wrote {out} ({result.image.shape[2]}x{result.image.shape[1]})")
    if compare is not None:
        write_comparison(content, styles, result, compare)
    if json_out is not None:
        write_style_json(json_out, images, backbone.name, preset, config, seconds, result)


def run_transfer(
    backbone: Any, content: Any, styles: list[Any], config: StyleConfig, seed: int, out: Path, save_every: int
) -> tuple[StyleResult, float]:
    """The optimisation with a progress bar, snapshots every `save_every`, and the picture kept on Ctrl-C."""
    import time

    from a3cli.engine.images import save_image
    from a3cli.engine.style.transfer import StyleTransfer

    transfer = StyleTransfer(backbone, content, styles, config, seed)

    def snapshot(step: int, image) -> None:
        save_image(image, snapshot_path(out, step))

    started = time.perf_counter()
    with (
        picture_kept_on_interrupt(out, transfer.current_image),
        progress_bar(config.iterations, f"stylize {backbone.name}") as progress,
    ):
        result = transfer.run(progress, snapshot, save_every)
    return result, time.perf_counter() - started


def style_config(
    images: list[Path],
    model: str,
    preset: Optional[str],
    given: dict[str, Any],
    original_colors: bool,
    multiscale: bool,
    out: Path,
    compare: Optional[Path],
    json_out: Optional[Path],
) -> StyleConfig:
    """The run's settings from the options given (lists as text), every mistake refused before any work."""
    from a3cli.engine.backbones.registry import backbone_record
    from a3cli.engine.errors import A3Error
    from a3cli.engine.images import load_image
    from a3cli.engine.style.settings import resolve_settings
    from a3cli.engine.style.transfer import StyleConfig

    if len(images) < 2:
        raise A3Error("give a content image and at least one style image: a3 stylize CONTENT STYLE [STYLE...]")
    backbone_record(model)
    given = {
        **given,
        "style_layers": parse_list(given["style_layers"], "--style-layers", False),
        "style_weights": parse_list(given["style_weights"], "--style-weights", True),
        "style_blend_weights": parse_list(given["style_blend_weights"], "--style-blend-weights", True),
    }
    check_output(out, "image")
    check_output(compare, "image")
    check_output(json_out)
    config = StyleConfig(
        **resolve_settings(model, preset, given), original_colors=original_colors, multiscale=multiscale
    )
    if config.init not in ("content", "random") and not Path(config.init).is_file():
        raise A3Error(f"--init {config.init!r} is not content, random or an image file")
    if config.init not in ("content", "random"):
        load_image(config.init)  # refuse a bad file now, not after loading the model
    return config


def show_loss_terms(result: StyleResult) -> None:
    from rich.table import Table

    table = Table(title="loss terms", title_justify="left")
    for column in ("", "content", "style", "tv", "total"):
        table.add_column(column, justify="right")
    for name, terms in (("start", result.start), ("end", result.end)):
        table.add_row(name, *(f"{terms[key]:.4g}" for key in ("content", "style", "tv", "total")))
    console.print(table)


def write_comparison(content: Any, styles: list[Any], result: StyleResult, path: Path) -> None:
    """Content, style(s) and result side by side, at the result's height."""
    from a3cli.engine.images import save_image, side_by_side, to_tensor

    panels = [to_tensor(content)] + [to_tensor(s) for s in styles] + [result.image]
    save_image(side_by_side(panels, height=result.image.shape[1]), path)
    console.print(f"wrote {path}")


def write_style_json(
    path: Path,
    images: list[Path],
    model: str,
    preset: Optional[str],
    config: StyleConfig,
    seconds: float,
    result: StyleResult,
) -> None:
    from dataclasses import asdict

    from a3cli.engine.files import write_json

    write_json(
        path,
        {
            "content": str(images[0]),
            "styles": [str(p) for p in images[1:]],
            "model": model,
            "preset": preset,
            "config": asdict(config),
            "seconds": round(seconds, 3),
            "start": result.start,
            "end": result.end,
            "size": [result.image.shape[2], result.image.shape[1]],
        },
    )
    console.print(f"wrote {path}")
