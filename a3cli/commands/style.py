"""`a3 stylize`: neural style transfer on your own photos.

The settings come in three layers, each overriding the one before: the model's
defaults, a --preset, and the options given on the command line. The numbers are
data in the catalogue (a3cli/engine/catalogue.py), so `--help` can show them instantly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from a3cli.app import (
    DEFAULT_MODEL,
    INPUTS,
    MODEL,
    ModelOption,
    SeedOption,
    WeightsOption,
    app,
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
from a3cli.engine.catalogue import STYLE_PRESETS
from a3cli.engine.options import IMAGE_TYPES, Machine
from a3cli.engine.style.config import StyleConfig

if TYPE_CHECKING:  # (the engine imports torch: only for the type checker here)
    from a3cli.engine.style.transfer import StyleResult, StyleTransfer

ImagesArgument = Annotated[
    list[Path], typer.Argument(help="CONTENT STYLE [STYLE...]: the photo, then style images.", show_default=False)
]
OutOption = Annotated[Path, option("--out", "-o", help=f"The stylised picture ({IMAGE_TYPES}).", panel=INPUTS)]
PresetOption = Annotated[Optional[str], option("--preset", help=" | ".join(STYLE_PRESETS), panel=MODEL)]
SaveEveryOption = Annotated[
    int, option("--save-every", min=0, help="Also write OUT_0050.png ... every K (0: never).", panel=INPUTS)
]
CompareOption = Annotated[
    Optional[Path],
    option("--compare", help="Also write content, styles and result in a row.", panel=INPUTS),
]
JsonOutOption = Annotated[
    Optional[Path], option("--json", help="Settings and loss terms as JSON (-: on stdout).", panel=INPUTS)
]

EPILOG = """Examples:

  a3 stylize examples/chelsea.jpg examples/ihc.jpg --out cat.png

  a3 stylize photo.jpg starry.jpg --preset starry-night -m squeezenet1_1

  a3 stylize photo.jpg a.jpg b.jpg --style-blend-weights 3,1 --original-colors

  a3 stylize examples/chelsea.jpg examples/brick.jpg --preset texture"""


def snapshot_path(out: Path, step: int) -> Path:
    return out.with_name(f"{out.stem}_{step:04d}{out.suffix}")


@app.command("stylize", epilog=EPILOG)
@configured
def stylize_command(
    images: ImagesArgument,
    *,
    out: OutOption = Path("stylized.png"),
    preset: PresetOption = None,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    config: StyleConfig,
    save_every: SaveEveryOption = 0,
    compare: CompareOption = None,
    json_out: JsonOutOption = None,
    machine: Machine,
    seed: SeedOption = 0,
) -> None:
    """Paint a photo in the style of other images (Gatys et al., part 4 of the assignment).

    Settings: the model's defaults, then --preset, then the options given.
    """
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.images import load_image, save_image
    from a3cli.engine.style.settings import content_and_styles, resolve_settings
    from a3cli.engine.style.transfer import StyleTransfer

    torch_device = seeded_device(machine, seed)
    content_path, style_paths = content_and_styles(images)
    check_output(out, "image")
    check_output(compare, "image", flag="--compare")
    check_output(json_out, "json")
    settings = resolve_settings(model, preset, config)
    content = load_image(content_path)
    styles = [load_image(path) for path in style_paths]
    backbone = load_backbone(model, torch_device, weights)
    transfer = StyleTransfer(backbone, content, styles, settings, seed)
    started = time.perf_counter()

    def write_extras(result: StyleResult, interrupted: bool = False) -> None:
        """--compare and --json: also for a run stopped early, of the picture so far."""
        if compare is not None:
            write_comparison(content, styles, result, compare)
        if json_out is not None:
            seconds = time.perf_counter() - started
            write_style_json(json_out, images, backbone.name, preset, settings, seconds, result, interrupted)

    with on_interrupt(lambda: write_extras(transfer.so_far(), interrupted=True)):
        result = run_transfer(transfer, out, save_every)
    save_image(result.image, out)
    seconds = time.perf_counter() - started
    console.print(f"{backbone.name}, {settings.optimizer}, {settings.iterations} iterations, {seconds:.1f} s")
    show_loss_terms(result)
    console.print(f"wrote {out} ({result.image.shape[2]}x{result.image.shape[1]})")
    write_extras(result)


def run_transfer(transfer: StyleTransfer, out: Path, save_every: int) -> StyleResult:
    """The optimisation with a progress bar, snapshots every `save_every`, and the picture kept on Ctrl-C."""
    from a3cli.engine.images import save_image

    def snapshot(step: int, image) -> None:
        save_image(image, snapshot_path(out, step))

    with (
        picture_kept_on_interrupt(out, transfer.current_image),
        progress_bar(transfer.config.iterations, f"stylize {transfer.backbone.name}") as progress,
    ):
        return transfer.run(progress, snapshot, save_every)


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
    names = ["style"] if len(styles) == 1 else [f"style {k}" for k in range(1, len(styles) + 1)]
    save_image(side_by_side(panels, height=result.image.shape[1], labels=["content", *names, "result"]), path)
    console.print(f"wrote {path}")


def write_style_json(
    path: Path,
    images: list[Path],
    model: str,
    preset: Optional[str],
    config: StyleConfig,
    seconds: float,
    result: StyleResult,
    interrupted: bool = False,
) -> None:
    """The settings and the loss terms at the start and the end (of a stopped run: its last evaluation)."""
    from dataclasses import asdict

    save_json(
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
            "interrupted": interrupted,
        },
    )
