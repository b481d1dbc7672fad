"""`a3 stylize`: neural style transfer on your own photos.

The settings come in three layers, each overriding the one before: the model's
defaults (layers and weights chosen for that backbone), a --preset, and the options
given on the command line. The presets are plain data here (no torch), so that
`a3 stylize --help` can list them instantly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from a3cli.app import DEFAULT_MODEL, DeviceOption, ModelOption, SeedOption, WeightsOption, app, console, setup

# The assignment's optimiser: Adam, lr 3.0, 0.1 for the last 10% of 200 iterations.
ASSIGNMENT_ADAM = {"optimizer": "adam", "iterations": 200, "lr": 3.0, "decay_lr": 0.1, "decay_at": 0.9}
SQUEEZE_LAYERS = {"content_layer": "3", "style_layers": ["1", "4", "6", "7"]}
LITE_LAYERS = {"content_layer": "block7", "style_layers": ["stem", "block1", "block2", "block4", "block7", "block10"]}

# What a backbone uses when no preset and no option says otherwise.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Chosen by looking at results (docs/sections/stylize.md): the style terms of the six layers start
    # at comparable sizes, content at block7 (stride 16) keeps shapes but lets textures change.
    "efficientnet_lite0": {**LITE_LAYERS, "content_weight": 0.3, "style_weights": [1e5, 5e3, 5e3, 5e3, 5e3, 5e3],
                           "tv_weight": 3.0, "image_size": 256, "optimizer": "lbfgs", "iterations": 300, "lr": 1.0},
    # The assignment's Composition VII settings with its optimiser.
    "squeezenet1_1": {**SQUEEZE_LAYERS, "content_weight": 5e-2, "style_weights": [20000, 500, 12, 1],
                      "tv_weight": 5e-2, "image_size": 192, "style_size": 512, **ASSIGNMENT_ADAM},
    # Gatys et al.'s layers; weights not tuned here (these weights are not available offline).
    "vgg16": {"content_layer": "relu4_2", "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
              "content_weight": 1e-2, "style_weights": [1e3] * 5, "tv_weight": 1e-2},
    "vgg19": {"content_layer": "relu4_2", "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
              "content_weight": 1e-2, "style_weights": [1e3] * 5, "tv_weight": 1e-2},
    "resnet18": {"content_layer": "layer2", "style_layers": ["stem", "layer1", "layer2", "layer3"],
                 "content_weight": 1e-2, "style_weights": [1e4, 1e3, 1e3, 1e3], "tv_weight": 1e-2},
}

# The assignment's three parameter sets, feature inversion and texture synthesis; on SqueezeNet exactly
# as the assignment gives them, on EfficientNet-Lite0 settings in the same spirit.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "composition-vii": {
        "squeezenet1_1": {**SQUEEZE_LAYERS, "image_size": 192, "style_size": 512, "content_weight": 5e-2,
                          "style_weights": [20000, 500, 12, 1], "tv_weight": 5e-2, **ASSIGNMENT_ADAM},
        "efficientnet_lite0": {**LITE_LAYERS, "image_size": 192, "style_size": 512, "content_weight": 0.3,
                               "style_weights": [1e5, 5e3, 5e3, 5e3, 5e3, 5e3], "tv_weight": 3.0},
    },
    "scream": {
        "squeezenet1_1": {**SQUEEZE_LAYERS, "image_size": 192, "style_size": 224, "content_weight": 3e-2,
                          "style_weights": [200000, 800, 12, 1], "tv_weight": 2e-2, **ASSIGNMENT_ADAM},
        "efficientnet_lite0": {**LITE_LAYERS, "image_size": 192, "style_size": 224, "content_weight": 0.2,
                               "style_weights": [1e6, 8e3, 8e3, 5e3, 5e3, 5e3], "tv_weight": 1.0},
    },
    "starry-night": {
        "squeezenet1_1": {**SQUEEZE_LAYERS, "image_size": 192, "style_size": 192, "content_weight": 6e-2,
                          "style_weights": [300000, 1000, 15, 3], "tv_weight": 2e-2, **ASSIGNMENT_ADAM},
        "efficientnet_lite0": {**LITE_LAYERS, "image_size": 192, "style_size": 192, "content_weight": 0.3,
                               "style_weights": [1.5e6, 1e4, 1e4, 8e3, 8e3, 8e3], "tv_weight": 1.0},
    },
    "feature-inversion": {  # reconstruct the content from its features alone
        "squeezenet1_1": {**SQUEEZE_LAYERS, "image_size": 192, "style_size": 192, "content_weight": 6e-2,
                          "style_weights": [0, 0, 0, 0], "tv_weight": 2e-2, "init": "random", **ASSIGNMENT_ADAM},
        "efficientnet_lite0": {**LITE_LAYERS, "image_size": 192, "content_weight": 0.3,
                               "style_weights": [0] * 6, "tv_weight": 3.0, "init": "random"},
    },
    "texture": {  # synthesise the style's texture: no content term
        "squeezenet1_1": {**SQUEEZE_LAYERS, "image_size": 192, "style_size": 192, "content_weight": 0,
                          "style_weights": [300000, 1000, 15, 3], "tv_weight": 2e-2, "init": "random",
                          **ASSIGNMENT_ADAM},
        "efficientnet_lite0": {**LITE_LAYERS, "image_size": 192, "content_weight": 0,
                               "style_weights": [1e5, 5e3, 5e3, 5e3, 5e3, 5e3], "tv_weight": 30.0, "init": "random"},
    },
}


def resolve_settings(model: str, preset: Optional[str], given: dict[str, Any]) -> dict[str, Any]:
    """Model defaults, then the preset, then the options actually given (those not None)."""
    from a3cli.engine.errors import A3Error

    if preset is not None:
        if preset not in PRESETS:
            raise A3Error(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        if model not in PRESETS[preset]:
            raise A3Error(f"preset {preset!r} has settings for {' and '.join(PRESETS[preset])} only, not {model}")
    if model not in MODEL_DEFAULTS and not {"content_layer", "style_layers", "style_weights"} <= set(given):
        raise A3Error(f"{model} has no default layers: give --content-layer, --style-layers and --style-weights")
    settings = dict(MODEL_DEFAULTS.get(model, {"content_weight": 1e-2, "tv_weight": 1e-2}))
    if preset is not None:
        settings.update(PRESETS[preset][model])
    settings.update({key: value for key, value in given.items() if value is not None})
    return settings


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


def check_image_suffix(path: Path) -> None:
    """Refuse an output name Pillow cannot write before the work, not after it."""
    from PIL import Image

    from a3cli.engine.errors import A3Error

    Image.init()
    if Image.registered_extensions().get(path.suffix.lower()) not in Image.SAVE:
        raise A3Error(f"cannot save image '{path}': unknown image file type '{path.suffix}' (use .png or .jpg)")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if path.is_dir() or not folder.is_dir():
        raise A3Error(f"cannot write '{path}': {'it is a folder' if path.is_dir() else f'{folder} is not a folder'}")


def snapshot_path(out: Path, step: int) -> Path:
    return out.with_name(f"{out.stem}_{step:04d}{out.suffix}")


PRESET_HELP = ("composition-vii | scream | starry-night (the assignment's three settings) | feature-inversion | "
               "texture; on squeezenet1_1 exactly the assignment's numbers, on efficientnet_lite0 equivalents. "
               "Options given explicitly override the preset.")


@app.command("stylize")
def stylize_command(
    images: Annotated[list[Path], typer.Argument(help="CONTENT STYLE [STYLE...]: the photo, then one or more style images.",
                                                 show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The stylised picture (PNG or JPEG).")] = Path("stylized.png"),
    preset: Annotated[Optional[str], typer.Option("--preset", help=PRESET_HELP, show_default=False)] = None,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="Shorter side of the output in pixels (aspect ratio kept). (default: 256; 192 on squeezenet1_1)", show_default=False)] = None,
    style_size: Annotated[Optional[int], typer.Option("--style-size", help="Shorter side the style images are resized to. (default: --image-size)", show_default=False)] = None,
    content_layer: Annotated[Optional[str], typer.Option("--content-layer", help="Layer whose features keep the content. (default: block7; 3 on squeezenet1_1)", show_default=False)] = None,
    content_weight: Annotated[Optional[float], typer.Option("--content-weight", help="Weight of the content loss.", show_default=False)] = None,
    style_layers: Annotated[Optional[str], typer.Option("--style-layers", help="Comma-separated layers whose Gram matrices carry the style, e.g. stem,block1,block2,block4,block7,block10 (squeezenet1_1: 1,4,6,7).", show_default=False)] = None,
    style_weights: Annotated[Optional[str], typer.Option("--style-weights", help="Comma-separated weights, one per style layer.", show_default=False)] = None,
    tv_weight: Annotated[Optional[float], typer.Option("--tv-weight", help="Weight of the total-variation (smoothness) loss.", show_default=False)] = None,
    init: Annotated[Optional[str], typer.Option("--init", help="Start from: content | random | FILE (an image). (default: content)", show_default=False)] = None,
    optimizer: Annotated[Optional[str], typer.Option("--optimizer", help="lbfgs | adam. (default: lbfgs; adam on squeezenet1_1)", show_default=False)] = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", "-n", help="Loss evaluations. (default: 300; 200 on squeezenet1_1)", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Learning rate (Adam; L-BFGS step scale). (default: 1.0; 3.0 on squeezenet1_1)", show_default=False)] = None,
    decay_lr: Annotated[Optional[float], typer.Option("--decay-lr", help="Adam: switch to this learning rate at --decay-at (the assignment: --lr 3 --decay-lr 0.1).", show_default=False)] = None,
    decay_at: Annotated[Optional[float], typer.Option("--decay-at", help="Fraction of the iterations after which --decay-lr applies. (default: 0.9)", show_default=False)] = None,
    style_blend_weights: Annotated[Optional[str], typer.Option("--style-blend-weights", help="Comma-separated weights of the style images (normalised to sum 1). (default: equal)", show_default=False)] = None,
    original_colors: Annotated[bool, typer.Option("--original-colors", help="Keep the content's colours: transfer the luminance only.")] = False,
    multiscale: Annotated[bool, typer.Option("--multiscale", help="Work coarse to fine (halving down to 128 px), for large outputs.")] = False,
    save_every: Annotated[int, typer.Option("--save-every", min=0, help="Also write the picture every K iterations as OUT_0050.png, ... (0: never).")] = 0,
    compare: Annotated[Optional[Path], typer.Option("--compare", help="Also write content, style(s) and result side by side.", show_default=False)] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the settings and the loss terms at start and end as JSON.", show_default=False)] = None,
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
    import sys
    import time

    import torch

    from a3cli.app import progress_bar
    from a3cli.engine.backbones import check_name, load_backbone
    from a3cli.engine.errors import A3Error
    from a3cli.engine.images import load_image, save_image, side_by_side, to_tensor
    from a3cli.engine.style import StyleConfig, StyleTransfer

    picked = setup(device, seed)
    if len(images) < 2:
        raise A3Error("give a content image and at least one style image: a3 stylize CONTENT STYLE [STYLE...]")
    check_name(model)
    given = {
        "image_size": image_size, "style_size": style_size, "content_layer": content_layer,
        "content_weight": content_weight, "style_layers": parse_list(style_layers, "--style-layers", False),
        "style_weights": parse_list(style_weights, "--style-weights", True), "tv_weight": tv_weight,
        "init": init, "optimizer": optimizer, "iterations": iterations, "lr": lr, "decay_lr": decay_lr,
        "decay_at": decay_at, "style_blend_weights": parse_list(style_blend_weights, "--style-blend-weights", True),
    }
    for path in (out, compare):
        if path is not None:
            check_image_suffix(path)
    settings = resolve_settings(model, preset, given)
    if "style_layers" in given and given["style_layers"] is not None and given["style_weights"] is None \
            and len(given["style_layers"]) != len(settings["style_weights"]):
        raise A3Error("--style-layers changed the number of layers: give --style-weights as well")
    config = StyleConfig(**settings, original_colors=original_colors, multiscale=multiscale)
    if config.init not in ("content", "random") and not Path(config.init).is_file():
        raise A3Error(f"--init {config.init!r} is not content, random or an image file")
    if config.init not in ("content", "random"):
        load_image(config.init)  # refuse a bad file now, not after loading the model
    content = load_image(images[0])
    styles = [load_image(path) for path in images[1:]]
    backbone = load_backbone(model, picked, weights)
    generator = torch.Generator().manual_seed(seed)
    transfer = StyleTransfer(backbone, content, styles, config, generator)

    def snapshot(step: int, image: torch.Tensor) -> None:
        save_image(image, snapshot_path(out, step))

    started = time.perf_counter()
    try:
        with progress_bar(config.iterations, f"stylize {backbone.name}") as progress:
            result = transfer.run(progress, snapshot, save_every)
    except KeyboardInterrupt:
        save_image(transfer.current_image(), out)
        print(f"wrote {out} (the picture so far)", file=sys.stderr)
        raise
    seconds = time.perf_counter() - started
    save_image(result.image, out)

    from rich.table import Table

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
        from dataclasses import asdict

        from a3cli.engine.files import write_json

        write_json(json_out, {"content": str(images[0]), "styles": [str(p) for p in images[1:]],
                              "model": backbone.name, "preset": preset, "config": asdict(config),
                              "seconds": round(seconds, 3), "start": result.start, "end": result.end,
                              "size": [result.image.shape[2], result.image.shape[1]]})
        console.print(f"wrote {json_out}")
