"""`a3 stylize`: neural style transfer on your own photos.

The settings come in three layers, each overriding the one before: the model's
defaults, a --preset, and the options given on the command line. The numbers are
data in the catalogue (a3cli/engine/catalogue.py), so `--help` can show them instantly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from a3cli.app import (DEFAULT_MODEL, DeviceOption, ModelOption, SeedOption, WeightsOption, app, check_output,
                       console, optional, picture_kept_on_interrupt, progress_bar, seeded_device)
from a3cli.engine.catalogue import STYLE_PRESETS, style_default

PRESET_HELP = (f"{' | '.join(STYLE_PRESETS)}: the assignment's three settings (composition-vii, scream, "
               "starry-night), feature inversion and texture synthesis; on squeezenet1_1 exactly the assignment's "
               "numbers, on efficientnet_lite0 equivalents. Options given explicitly override the preset.")


def parse_list(text: Optional[str], option: str, number: bool) -> Optional[list]:
    """"a,b,c" -> ["a", "b", "c"] (or floats), refusing what is not a list of the right kind."""
    from a3cli.engine.errors import A3Error

    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise A3Error(f"{option} {text!r}: give a comma-separated list such as {'1e4,500,12' if number else 'stem,block2'}")
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
    images: Annotated[list[Path], typer.Argument(
        help="CONTENT STYLE [STYLE...]: the photo, then one or more style images.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The stylised picture (PNG or JPEG).")] = Path("stylized.png"),
    preset: Annotated[Optional[str], optional("--preset", help=PRESET_HELP)] = None,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    image_size: Annotated[Optional[int], optional(
        "--image-size", help="Shorter side of the output in pixels (aspect ratio kept).",
        default=style_default("image_size"))] = None,
    style_size: Annotated[Optional[int], optional(
        "--style-size", help="Shorter side the style images are resized to.", default="--image-size")] = None,
    content_layer: Annotated[Optional[str], optional(
        "--content-layer", help="Layer whose features keep the content.", default=style_default("content_layer"))] = None,
    content_weight: Annotated[Optional[float], optional(
        "--content-weight", help="Weight of the content loss.", default=style_default("content_weight"))] = None,
    style_layers: Annotated[Optional[str], optional(
        "--style-layers", help="Comma-separated layers whose Gram matrices carry the style.",
        default=style_default("style_layers"))] = None,
    style_weights: Annotated[Optional[str], optional(
        "--style-weights", help="Comma-separated weights, one per style layer.",
        default=style_default("style_weights"))] = None,
    tv_weight: Annotated[Optional[float], optional(
        "--tv-weight", help="Weight of the total-variation (smoothness) loss.", default=style_default("tv_weight"))] = None,
    init: Annotated[Optional[str], optional(
        "--init", help="Start from: content | random | FILE (an image).", default="content")] = None,
    optimizer: Annotated[Optional[str], optional(
        "--optimizer", help="lbfgs | adam.", default=style_default("optimizer"))] = None,
    iterations: Annotated[Optional[int], optional(
        "--iterations", "-n", help="Loss evaluations.", default=style_default("iterations"))] = None,
    lr: Annotated[Optional[float], optional(
        "--lr", help="Learning rate (Adam; L-BFGS step scale).", default=style_default("lr"))] = None,
    decay_lr: Annotated[Optional[float], optional(
        "--decay-lr", help="Adam: switch to this learning rate at --decay-at (the assignment: --lr 3 --decay-lr 0.1).",
        default=style_default("decay_lr"))] = None,
    decay_at: Annotated[Optional[float], optional(
        "--decay-at", help="Fraction of the iterations after which --decay-lr applies.", default=0.9)] = None,
    style_blend_weights: Annotated[Optional[str], optional(
        "--style-blend-weights", help="Comma-separated weights of the style images (normalised to sum 1).",
        default="equal")] = None,
    original_colors: Annotated[bool, typer.Option(
        "--original-colors", help="Keep the content's colours: transfer the luminance only.")] = False,
    multiscale: Annotated[bool, typer.Option(
        "--multiscale", help="Work coarse to fine (halving down to 128 px), for large outputs.")] = False,
    save_every: Annotated[int, typer.Option(
        "--save-every", min=0, help="Also write the picture every K iterations as OUT_0050.png, ... (0: never).")] = 0,
    compare: Annotated[Optional[Path], optional(
        "--compare", help="Also write content, style(s) and result side by side.")] = None,
    json_out: Annotated[Optional[Path], optional(
        "--json", help="Write the settings and the loss terms at start and end as JSON.")] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Paint a photo in the style of other images (Gatys et al., part 4 of the assignment).

    Examples:

      a3 stylize examples/chelsea.jpg examples/ihc.jpg --out cat.png

      a3 stylize photo.jpg starry_night.jpg --preset starry-night --model squeezenet1_1 --out out.png

      a3 stylize photo.jpg a.jpg b.jpg --style-blend-weights 3,1 --original-colors --out out.png

      a3 stylize examples/chelsea.jpg examples/brick.jpg --preset texture --out bricks.png
    """
    import time
    from dataclasses import asdict

    from rich.table import Table

    from a3cli.engine.backbones.registry import backbone_record, load_backbone
    from a3cli.engine.errors import A3Error
    from a3cli.engine.files import write_json
    from a3cli.engine.images import load_image, save_image, side_by_side, to_tensor
    from a3cli.engine.style.settings import resolve_settings
    from a3cli.engine.style.transfer import StyleConfig, StyleTransfer

    torch_device = seeded_device(device, seed)
    if len(images) < 2:
        raise A3Error("give a content image and at least one style image: a3 stylize CONTENT STYLE [STYLE...]")
    backbone_record(model)
    given = {
        "image_size": image_size, "style_size": style_size, "content_layer": content_layer,
        "content_weight": content_weight, "style_layers": parse_list(style_layers, "--style-layers", False),
        "style_weights": parse_list(style_weights, "--style-weights", True), "tv_weight": tv_weight,
        "init": init, "optimizer": optimizer, "iterations": iterations, "lr": lr, "decay_lr": decay_lr,
        "decay_at": decay_at, "style_blend_weights": parse_list(style_blend_weights, "--style-blend-weights", True),
    }
    check_output(out, "image")
    check_output(compare, "image")
    check_output(json_out)
    config = StyleConfig(**resolve_settings(model, preset, given), original_colors=original_colors,
                         multiscale=multiscale)
    if config.init not in ("content", "random") and not Path(config.init).is_file():
        raise A3Error(f"--init {config.init!r} is not content, random or an image file")
    if config.init not in ("content", "random"):
        load_image(config.init)  # refuse a bad file now, not after loading the model
    content = load_image(images[0])
    styles = [load_image(path) for path in images[1:]]
    backbone = load_backbone(model, torch_device, weights)
    transfer = StyleTransfer(backbone, content, styles, config, seed)

    def snapshot(step: int, image) -> None:
        save_image(image, snapshot_path(out, step))

    started = time.perf_counter()
    with picture_kept_on_interrupt(out, transfer.current_image), \
            progress_bar(config.iterations, f"stylize {backbone.name}") as progress:
        result = transfer.run(progress, snapshot, save_every)
    seconds = time.perf_counter() - started
    save_image(result.image, out)

    console.print(f"{backbone.name}, {config.optimizer}, {config.iterations} iterations, {seconds:.1f} s")
    table = Table(title="loss terms", title_justify="left")
    for column in ("", "content", "style", "tv", "total"):
        table.add_column(column, justify="right")
    for name, terms in (("start", result.start), ("end", result.end)):
        table.add_row(name, *(f"{terms[key]:.4g}" for key in ("content", "style", "tv", "total")))
    console.print(table)
    console.print(f"wrote {out} ({result.image.shape[2]}x{result.image.shape[1]})")
    if compare is not None:
        panels = [to_tensor(content)] + [to_tensor(s) for s in styles] + [result.image]
        save_image(side_by_side(panels, height=result.image.shape[1]), compare)
        console.print(f"wrote {compare}")
    if json_out is not None:
        write_json(json_out, {"content": str(images[0]), "styles": [str(p) for p in images[1:]],
                              "model": backbone.name, "preset": preset, "config": asdict(config),
                              "seconds": round(seconds, 3), "start": result.start, "end": result.end,
                              "size": [result.image.shape[2], result.image.shape[1]]})
        console.print(f"wrote {json_out}")
