"""The `a3` command line: one thin driver per subcommand.

Each command parses its options, calls the engine and renders the result. torch and
the engine are imported inside the commands so that `a3 --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Hands-on tools for the ideas of CS231n Assignment 3: captioning, saliency, fooling images, "
    "class visualization, style transfer and GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()

DEFAULT_MODEL = "efficientnet_lite0"  # the engine's DEFAULT_BACKBONE; repeated here to keep --help torch-free

DeviceOption = Annotated[
    str, typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps (auto: CUDA, then MPS, then CPU).")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed, for repeatable runs.")]
ModelOption = Annotated[
    str,
    typer.Option("--model", "-m", help="Backbone: efficientnet_lite0 (offline), squeezenet1_1, vgg16, vgg19, resnet18."),
]
WeightsOption = Annotated[
    Optional[Path], typer.Option("--weights", help="Load the backbone's weights from this state_dict file.")
]


def setup(device: str, seed: int):
    """Seed everything and resolve --device: the first step of every command."""
    from a3cli.engine.device import resolve_device, seed_everything

    seed_everything(seed)
    return resolve_device(device)


@app.command()
def info(device: DeviceOption = "auto", seed: SeedOption = 0) -> None:
    """Versions, the device `auto` picks, and which backbones work offline right now.

    Example: a3 info
    """
    import platform

    import torch
    import torchvision

    from a3cli import __version__
    from a3cli.engine.backbones import backbone_names, weights_status

    picked = setup(device, seed)
    table = Table(show_header=False, box=None)
    table.add_row("a3", __version__)
    table.add_row("python", platform.python_version())
    table.add_row("torch", torch.__version__)
    table.add_row("torchvision", torchvision.__version__)
    cuda = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "not available"
    table.add_row("CUDA", cuda)
    table.add_row(f"device ({device})", str(picked))
    console.print(table)

    models = Table(title="backbones")
    models.add_column("model")
    models.add_column("offline")
    models.add_column("weights", overflow="fold")
    for name in backbone_names():
        ok, where = weights_status(name)
        models.add_row(name, "[green]yes[/]" if ok else "[yellow]no[/]", where)
    console.print(models)


@app.command()
def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, ...).", show_default=False)],
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, max=1000, help="How many classes to show.")] = 5,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write a PNG: each image beside its top-k bar chart.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the predictions as JSON.")] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Top-k ImageNet predictions for each image.

    Examples:

      a3 classify examples/coffee.jpg

      a3 classify examples/*.jpg --top 3 --out predictions.png --json predictions.json

      a3 classify photo.jpg --model squeezenet1_1 --weights squeezenet1_1-b8a52dc0.pth
    """
    from a3cli.engine.backbones import classify as top_k
    from a3cli.engine.backbones import load_backbone
    from a3cli.engine.images import load_image

    picked = setup(device, seed)
    pictures = [load_image(path) for path in images]  # fail on a bad file before loading the model
    backbone = load_backbone(model, picked, weights)
    results = []
    all_predictions = top_k(backbone, pictures, top)
    for path, predictions in zip(images, all_predictions):
        table = Table(title=f"{path}  ({backbone.name})", title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("class")
        table.add_column("index", justify="right")
        table.add_column("probability", justify="right")
        for rank, (index, name, prob) in enumerate(predictions, 1):
            table.add_row(str(rank), name, str(index), f"{prob:.3f}")
        console.print(table)
        results.append({"image": str(path), "model": backbone.name,
                        "top": [{"index": i, "class": n, "probability": p} for i, n, p in predictions]})
    if out is not None:
        from a3cli.engine.plots import predictions_figure

        predictions_figure(pictures, [str(p.name) for p in images], all_predictions, out)
        console.print(f"wrote {out}")
    if json_out is not None:
        from a3cli.engine.files import write_json

        write_json(json_out, results)
        console.print(f"wrote {json_out}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes end as one line on stderr with exit status 2."""
    # Typer vendors click; its usage errors are raised here because of standalone_mode=False.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    from a3cli.engine.errors import A3Error

    try:
        code = app(args=argv, prog_name="a3", standalone_mode=False)
    except NoArgsIsHelpError as error:
        print(error.ctx.get_help() if error.ctx else str(error))
        code = 0
    except UsageError as error:
        command = error.ctx.command_path if error.ctx else "a3"
        print(f"error: {error.format_message()} (see '{command} --help')", file=sys.stderr)
        code = 2
    except A3Error as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
