"""The Typer app, the options every command shares, and what commands show: tables, progress, files.

Command modules in `a3cli.commands` register themselves on `app`. Nothing here
imports torch, so that `a3 --help` stays instant; help texts read the torch-free
catalogue (`a3cli.engine.catalogue`).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from a3cli.engine.catalogue import DEFAULT_BACKBONE, show
from a3cli.engine.options import (
    IMAGE_SUFFIXES,
    IMAGE_TYPES,
    INPUTS,
    LOSS,
    METHOD,
    MODEL,
    OPTIMISATION,
    RUN,
    Machine,
    Option,
    Seeded,
)
from a3cli.engine.progress import MEASURING_LEFT, MEASURING_SPENT, TIMINGS

app = typer.Typer(
    help="Hands-on tools for the ideas of CS231n Assignment 3: captioning, saliency, fooling images, "
    "class visualization, style transfer, GANs and diffusion. The examples of each command's --help name the photos in "
    "./examples: `a3 examples` writes them there.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()


DEFAULT_MODEL = DEFAULT_BACKBONE


def with_default(help: str, default: object) -> str:
    """A help text and its default, written as Typer writes the defaults it shows ([default: X])."""
    return f"{help} \\[default: {show(default)}]".strip()  # an escaped bracket: rich markup


def option(*flags: str, help: str, panel: Optional[str] = OPTIMISATION, shown: object = None, **limits: Any) -> Any:
    """An option: one line of help, in its help panel. `shown`: the default as the help writes it, for an
    option left None so that the engine fills in the default (of the model, the variant or the resumed run)."""
    if shown is not None:
        help, limits = with_default(help, shown), {**limits, "show_default": False}
    return typer.Option(*flags, help=help, rich_help_panel=panel, **limits)


def show_version(value: bool) -> None:
    if value:
        from a3cli import __version__

        print(f"a3 {__version__}")
        raise typer.Exit()


@app.callback()
def common_options(
    version: Annotated[
        bool, option("--version", help="Print the version and exit.", panel=None, callback=show_version, is_eager=True)
    ] = False,
) -> None:
    pass


def say(text: str) -> None:
    """One line of results on stdout, as written (no highlighting, no wrapping)."""
    console.print(text, highlight=False, soft_wrap=True)


def option_parameter(field: dataclasses.Field, annotation: Any) -> inspect.Parameter:
    """A config field as the command parameter Typer reads: its flags, help, panel and limits."""
    spec: Option = field.metadata["option"]
    default = field.default
    if field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    elif default is dataclasses.MISSING:  # a required option
        default = inspect.Parameter.empty
    flags = spec.flags or (f"--{field.name.replace('_', '-')}",)
    limits = {"show_default": default is not None, **spec.limits}
    info = option(*flags, help=spec.help, panel=spec.panel, shown=spec.shown, **limits)
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(field.name, kind, default=default, annotation=Annotated[annotation, info])


def field_option(config: type, name: str) -> Any:
    """A config field's option, for a command that takes that one setting (and not the whole config)."""
    field = next(field for field in dataclasses.fields(config) if field.name == name)
    return option_parameter(field, typing.get_type_hints(config)[name]).annotation


# The arguments and options several commands share, each declared once.
ImagesArgument = Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, ...).", show_default=False)]
ModelOption = Annotated[str, option("--model", "-m", help="ImageNet backbone (a3 info lists them).", panel=MODEL)]
WeightsOption = Annotated[
    Optional[Path], option("--weights", help="The backbone's weights from this state_dict file.", panel=MODEL)
]
JsonOption = Annotated[
    Optional[Path], option("--json", help="Also write the numbers as JSON (-: on stdout).", panel=INPUTS)
]
STDOUT = Path("-")  # --json -: the JSON alone on stdout, every other line on stderr
PrintJsonOption = Annotated[
    bool, option("--print-json", help="Print metrics.json on stdout, and the summary on stderr.", panel=INPUTS)
]
SeedOption = field_option(Seeded, "seed")
DeviceOption = field_option(Machine, "device")
ThreadsOption = field_option(Machine, "threads")


PANELS = (INPUTS, MODEL, METHOD, LOSS, OPTIMISATION)  # in --help, in this order; a command's own panels, then RUN


def panel_rank(parameter: inspect.Parameter) -> int:
    """Where a parameter's panel shows in --help: arguments first, RUN last (a stable sort keeps the order within)."""
    info = next(
        (item for item in getattr(parameter.annotation, "__metadata__", ()) if hasattr(item, "rich_help_panel")), None
    )
    panel = getattr(info, "rich_help_panel", None)
    if panel is None or isinstance(info, typer.models.ArgumentInfo):
        return -1
    return PANELS.index(panel) if panel in PANELS else len(PANELS) + (panel == RUN)


def configured(command: Callable[..., None]) -> Callable[..., None]:
    """A command whose options are the fields of its configs: each parameter annotated with a config class
    (engine/options.py `setting`) stands for that class's options and receives the config made from them."""
    signature = inspect.signature(command, eval_str=True)
    configs: dict[str, Any] = {}
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if not dataclasses.is_dataclass(parameter.annotation):
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
            continue
        cls = configs[parameter.name] = parameter.annotation
        hints = typing.get_type_hints(cls)
        options = [field for field in dataclasses.fields(cls) if "option" in field.metadata]
        parameters += [option_parameter(field, hints[field.name]) for field in options]

    def run(**values: Any) -> None:
        for name, cls in configs.items():
            given = {
                field.name: values.pop(field.name) for field in dataclasses.fields(cls) if "option" in field.metadata
            }
            values[name] = cls(**given)
        command(**values)

    run.__name__, run.__doc__, run.__module__ = command.__name__, command.__doc__, command.__module__
    run.__signature__ = signature.replace(parameters=sorted(parameters, key=panel_rank))  # type: ignore[attr-defined]
    return run


def seeded_device(device: str | Machine, seed: int, threads: Optional[int] = None):
    """Set torch's threads, seed every generator and resolve --device: the first step of every command
    (engine/device.py)."""
    from a3cli.engine.device import resolve_device, seed_everything, use_threads

    if isinstance(device, Machine):
        device, threads = device.device, device.threads
    use_threads(threads)
    seed_everything(seed)
    return resolve_device(device)


def check_output(path: Optional[Path], kind: str = "file", why: str = "", flag: str = "--out") -> None:
    """Refuse an output that cannot be written, before the work rather than after it.

    kind: "file" (weights, arrays), "json" (a file, or - for stdout), "image" (PNG, JPEG or WebP), "png",
    or "folder" (a run folder).
    A temporary file is made and removed where the output goes: permission bits alone pass a read-only
    or special file system (/proc), and root has every permission.
    """
    from a3cli.engine.errors import A3Error
    from a3cli.engine.files import probe_folder

    if path is None:
        return
    if kind == "json" and path == STDOUT:
        console.file = sys.stderr  # stdout carries the JSON alone
        return
    if kind == "png" and path.suffix.lower() != ".png":
        raise A3Error(f"{flag} must name a .png file{why}, not '{path}'")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise A3Error(f"cannot write into '{path}': it is a file, not a folder")
    if kind != "folder" and path.is_dir():
        raise A3Error(f"cannot write '{path}': it is a folder")
    if kind != "folder" and path.exists() and not path.is_file():
        raise A3Error(f"cannot write '{path}': it exists and is not a regular file")
    if kind == "image" and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise A3Error(f"{flag} must name a {IMAGE_TYPES} file ({', '.join(IMAGE_SUFFIXES)}), not '{path}'")
    existing = path if kind == "folder" else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise A3Error(f"cannot write '{path}': '{existing}' is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise A3Error(f"cannot write '{path}': no permission to write in '{existing}'")
    failure = probe_folder(existing)
    if failure is not None:
        raise A3Error(f"cannot write '{path}': {failure} (no file can be made in '{existing}')")


def check_class_name(spec: Optional[str]) -> None:
    """A class asked for by name or index, checked against the ImageNet names before torch or a model loads,
    so that a typo is refused at once (with the closest names)."""
    if spec is not None:
        from a3cli.engine.backbones.imagenet_classes import IMAGENET_CLASSES
        from a3cli.engine.backbones.imagenet_names import resolve_class

        resolve_class(spec, IMAGENET_CLASSES)


def save_json(path: Optional[Path], data: Any) -> None:
    """The numbers as JSON (when asked for): written to `path` and said, or printed alone on stdout (-)."""
    import json

    from a3cli.engine.files import write_json

    if path == STDOUT:
        print(json.dumps(data, indent=2), file=sys.stdout, flush=True)
    elif path is not None:
        write_json(path, data)
        say(f"wrote {path}")


@contextmanager
def on_interrupt(keep: Callable[[], None]) -> Iterator[None]:
    """On Ctrl-C (or SIGTERM), call `keep()`, which writes what the command promised so far, and stop."""
    try:
        yield
    except KeyboardInterrupt:
        keep()
        raise


def metrics_printed_on_interrupt(out: Path, print_json: bool):
    """With --print-json, a run stopped by Ctrl-C or SIGTERM still prints the metrics.json it wrote so far."""

    def keep() -> None:
        metrics = out / "metrics.json"
        if print_json and metrics.is_file():
            print(metrics.read_text(encoding="utf-8"), end="", flush=True)

    return on_interrupt(keep)


def picture_kept_on_interrupt(path: Path, current: Callable[[], Any]):
    """On Ctrl-C, save `current()` (the picture so far) to `path`, say so, and stop."""

    def keep() -> None:
        from a3cli.engine.images import save_image

        save_image(current(), path)
        print(f"wrote {path} (the picture so far)", file=sys.stderr)

    return on_interrupt(keep)


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


def top_records(top: list[tuple[int, str, float]]) -> list[dict[str, Any]]:
    """Top-k predictions for JSON."""
    return [{"index": index, "class": name, "probability": prob} for index, name, prob in top]


WARM_UP_STEPS = 10  # steps before time is measured: the first ones also allocate, cache and load
ANNOUNCED_AFTER = 60.0  # seconds: a run expected to take longer says so once, in words


def duration(seconds: float) -> str:
    """'45 s', '12 min', '1 h 20 min': a time as people say it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"


class Estimate:
    """Time left from the speed measured on this machine after a warm-up, with whatever else it is running,
    plus the measuring still to come that the trainer reports (engine/progress.py TIMINGS); said once in
    words when the speed is first known and the run is long."""

    def __init__(self, total: Optional[int]) -> None:
        self.total, self.announced = total, False
        self.first: Optional[int] = None
        self.warm_at: Optional[tuple[float, int, float]] = None  # (time, step, measuring spent) after the warm-up

    def update(self, step: int, measuring: float = 0.0, measuring_left: float = 0.0) -> tuple[str, Optional[str]]:
        """(the bar's time-left text, a line to print once or None). `measuring`: seconds spent measuring so
        far, which the steps' speed leaves out; `measuring_left`: seconds of it still to come."""
        now = time.monotonic()
        if self.first is None:
            self.first = step
        if self.warm_at is None and step >= self.first + WARM_UP_STEPS:
            self.warm_at = (now, step, measuring)
        if self.total is not None and step >= self.total:  # the end, maybe of a resumed run's last few steps
            return (f"measuring, {duration(measuring_left)} left" if measuring_left >= 1 else ""), None
        if self.total is None or self.warm_at is None or step < self.warm_at[1] + WARM_UP_STEPS // 2:
            return ("estimating" if self.total else ""), None
        stepping = max(now - self.warm_at[0] - (measuring - self.warm_at[2]), 1e-9)
        rate = (step - self.warm_at[1]) / stepping
        seconds = (self.total - step) / rate + measuring_left
        left = duration(seconds)
        if self.announced or seconds < ANNOUNCED_AFTER:
            return f"{left} left", None
        self.announced = True
        speed = f"{rate:.1f} steps/s" if rate >= 1 else f"{1 / rate:.1f} s per step"
        measuring_too = ", measuring included" if measuring_left else ""
        line = f"measured {speed} on this machine: about {left} to go of {self.total:,} steps{measuring_too}"
        return f"{left} left", line


@contextmanager
def progress_bar(total: Optional[int], description: str) -> Iterator[Callable[[int, Mapping[str, float]], None]]:
    """A rich progress bar on stderr, given to the engine as its `progress(step, metrics)` callback.

    The engine counts steps from 1 and passes the numbers worth watching (losses); the
    bar shows them beside the count and the time left (`Estimate`). stdout stays free for results.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Column

    folding = Column(overflow="fold")  # at 80 columns a long description or number wraps, never cut
    columns = (
        TextColumn("{task.description}", table_column=folding),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn("{task.fields[left]}", table_column=Column(overflow="fold")),
        TextColumn("{task.fields[metrics]}", table_column=Column(overflow="fold")),
    )
    estimate = Estimate(total)
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total, metrics="", left="")

        def report(step: int, metrics: Mapping[str, float]) -> None:
            shown = "  ".join(f"{name} {value:.4g}" for name, value in metrics.items() if name not in TIMINGS)
            left, line = estimate.update(step, metrics.get(MEASURING_SPENT, 0.0), metrics.get(MEASURING_LEFT, 0.0))
            if line is not None and not bar.console.is_terminal:  # a live bar shows the estimate; a log gets a line
                bar.console.print(line, highlight=False, soft_wrap=True)
            bar.update(task, completed=step, metrics=shown, left=left)

        yield report


def lazy_progress_bar(description: str) -> tuple[Callable[[int, Mapping[str, float]], None], Callable[[], None]]:
    """(progress callback, close): a bar that appears only if the engine reports anything (feature extraction)."""
    state: dict[str, Any] = {}

    def progress(step: int, metrics: Mapping[str, float]) -> None:
        if "bar" not in state:
            state["cm"] = progress_bar(None, description)
            state["bar"] = state["cm"].__enter__()
        state["bar"](step, metrics)

    def close() -> None:
        if "cm" in state:
            state["cm"].__exit__(None, None, None)

    return progress, close
