"""The Typer app, the options every command shares, and the progress bar.

Command modules in `a3cli.commands` register themselves on `app`. Nothing here
imports torch, so that `a3 --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from contextlib import contextmanager
from typing import Annotated, Callable, Iterator, Mapping, Optional

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




def top_table(title: str, top: list[tuple[int, str, float]]) -> Table:
    """Top-k predictions (index, class, probability) as a table: classify, saliency, fool, classvis."""
    table = Table(title=title, title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("class")
    table.add_column("index", justify="right")
    table.add_column("probability", justify="right")
    for rank, (index, name, prob) in enumerate(top, 1):
        table.add_row(str(rank), name, str(index), f"{prob:.3f}")
    return table


@contextmanager
def progress_bar(total: int, description: str) -> Iterator[Callable[[int, Mapping[str, float]], None]]:
    """A rich progress bar on stderr, given to the engine as its `progress(step, metrics)` callback.

    The engine counts steps from 1 and passes the numbers worth watching (losses); the
    bar shows them beside the count and the time left. stdout stays free for results.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"))
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total, metrics="")

        def report(step: int, metrics: Mapping[str, float]) -> None:
            shown = "  ".join(f"{name} {value:.4g}" for name, value in metrics.items())
            bar.update(task, completed=step, metrics=shown)

        yield report
