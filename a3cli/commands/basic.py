"""`a3 info` and `a3 classify`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from a3cli.app import (
    DEFAULT_MODEL,
    INPUTS,
    ImagesArgument,
    JsonOption,
    ModelOption,
    SeedOption,
    WeightsOption,
    app,
    check_output,
    configured,
    console,
    option,
    save_json,
    say,
    seeded_device,
    top_records,
    top_table,
)
from a3cli.engine.options import Machine


@app.command()
@configured
def info(machine: Machine, seed: SeedOption = 0) -> None:
    """Versions, the device `auto` picks, and which backbones work offline right now.

    Example: a3 info
    """
    import platform

    import torch
    import torchvision

    from a3cli import __version__
    from a3cli.engine.backbones.weights import weights_status
    from a3cli.engine.catalogue import BACKBONE_RECORDS

    torch_device = seeded_device(machine, seed)
    table = Table(show_header=False, box=None)
    table.add_row("a3", __version__)
    table.add_row("python", platform.python_version())
    table.add_row("torch", torch.__version__)
    table.add_row("torchvision", torchvision.__version__)
    cuda = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "not available"
    table.add_row("CUDA", cuda)
    table.add_row(f"device ({machine.device})", str(torch_device))
    table.add_row("CPU threads", f"{torch.get_num_threads()} (OpenMP wait policy {os.environ.get('OMP_WAIT_POLICY')})")
    console.print(table)

    models = Table(title="backbones")
    models.add_column("model")
    models.add_column("offline")
    models.add_column("weights", overflow="fold")
    for record in BACKBONE_RECORDS:
        ok, where = weights_status(record)
        models.add_row(record.name, "[green]yes[/]" if ok else "[yellow]no[/]", where)
    console.print(models)


@app.command()
@configured
def examples(
    machine: Machine,
    folder: Annotated[
        str, typer.Argument(help="Where to write the photos (made if missing).", show_default=True)
    ] = "examples",
) -> None:
    """Write the bundled example photos, which the --help examples name, into a folder.

    Files already there are left as they are; a link where a photo goes is replaced by the photo, never
    written through.

    Example: a3 examples && a3 classify examples/coffee.jpg
    """
    from a3cli.engine.errors import A3Error
    from a3cli.engine.files import EXAMPLES_DIR, atomic_write

    if not folder.strip():
        raise A3Error("the folder name is empty: give a folder, e.g. a3 examples photos")
    target_folder = Path(folder)
    check_output(target_folder, "folder")
    written, kept = [], []
    for source in sorted(EXAMPLES_DIR.glob("*.jpg")) + [EXAMPLES_DIR / "README.md"]:
        target = target_folder / source.name
        if target.exists() and not target.is_symlink():
            kept.append(source.name)
        else:  # written beside and renamed over a link, so a link's target is never touched
            atomic_write(target, lambda f, source=source: f.write(source.read_bytes()))
            written.append(source.name)
    if written:
        say(f"wrote {len(written)} files to {target_folder}: {', '.join(written)}")
    if kept:
        say(f"kept {len(kept)} files already in {target_folder}: {', '.join(kept)}")


@app.command()
@configured
def classify(
    images: ImagesArgument,
    machine: Machine,
    model: ModelOption = DEFAULT_MODEL,
    weights: WeightsOption = None,
    top: Annotated[int, option("--top", "-k", min=1, max=1000, help="How many classes to show.", panel=INPUTS)] = 5,
    out: Annotated[
        Optional[Path], option("--out", "-o", help="A PNG: each image beside its top-k bar chart.", panel=INPUTS)
    ] = None,
    json_out: JsonOption = None,
    seed: SeedOption = 0,
) -> None:
    """Top-k ImageNet predictions for each image.

    Examples:

      a3 classify examples/coffee.jpg

      a3 classify examples/*.jpg --top 3 --out top3.png --json top3.json

      a3 classify photo.jpg -m squeezenet1_1 --weights squeezenet1_1-b8a52dc0.pth
    """
    from a3cli.engine.backbones.registry import classify as top_k
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.images import load_image

    torch_device = seeded_device(machine, seed)
    check_output(out, "png")
    check_output(json_out, "json")
    pictures = [load_image(path) for path in images]  # fail on a bad file before loading the model
    backbone = load_backbone(model, torch_device, weights)
    results = []
    all_predictions = top_k(backbone, pictures, top)
    for path, predictions in zip(images, all_predictions):
        console.print(top_table(f"{path}  ({backbone.name})", predictions))
        results.append({"image": str(path), "model": backbone.name, "top": top_records(predictions)})
    if out is not None:
        from a3cli.engine.figures import predictions_figure

        predictions_figure(pictures, [str(p.name) for p in images], all_predictions, out)
        console.print(f"wrote {out}")
    save_json(json_out, results)
