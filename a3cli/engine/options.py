"""Settings that are also command-line options, each written once: a field of its command's config.

A field made by `setting` carries its default and what `--help` says of it; the CLI
builds the option from the field (`a3cli.app.configured`), so a new option is one
field here and nothing in the command. Options that several commands share are
declared once below. Plain data, no torch and no Typer: `a3 --help` reads it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Optional

# The panels that group a command's options in --help (typer's rich_help_panel), in the order they show.
INPUTS = "Inputs and outputs"
MODEL = "Model"
METHOD = "Method"
LOSS = "Loss"
OPTIMISATION = "Optimisation"
RUN = "Run"

# The picture files that outputs of any image type may be (the others are PNG only), as their help names them.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
IMAGE_TYPES = "PNG, JPEG or WebP"


@dataclass(frozen=True)
class Option:
    """What --help says of a setting and how the command line spells it."""

    help: str
    flags: tuple[str, ...] = ()  # default: the field's name, --like-this
    panel: str = OPTIMISATION
    shown: object = None  # the default as --help writes it, for a field left None until the engine fills it in
    limits: dict[str, Any] = field(default_factory=dict)  # typer.Option's min, max, metavar, show_default


def setting(
    default: Any = MISSING,
    help: str = "",
    *flags: str,
    panel: str = OPTIMISATION,
    shown: object = None,
    factory: Any = MISSING,
    run: bool = False,
    **limits: Any,
) -> Any:
    """A config field that is also an option. `run=True`: it defines a training run (stored in its checkpoint,
    refused when changed on --resume)."""
    metadata = {"option": Option(help, flags, panel, shown, limits), "run": run}
    return field(default=default, default_factory=factory, metadata=metadata)


def run_settings(config: Any) -> dict[str, Any]:
    """The fields of a config that define its run, by name, in the order the class declares them."""
    fields = config.__dataclass_fields__
    return {name: getattr(config, name) for name in fields if fields[name].metadata.get("run")}


def check_limits(config: Any) -> None:
    """Refuse a value under its option's `min`: the CLI's own limit, said again for library callers."""
    from a3cli.engine.errors import A3Error

    for name, spec in config.__dataclass_fields__.items():
        least = spec.metadata["option"].limits.get("min") if "option" in spec.metadata else None
        value = getattr(config, name)
        if least is not None and value is not None and value < least:
            raise A3Error(f"--{name.replace('_', '-')} must be at least {least}")


# ---- options that several commands share: one declaration each -------------------------------------


def seed_setting(run: bool = False) -> Any:
    return setting(0, "Random seed, for repeatable runs.", panel=RUN, min=0, max=2**32 - 1, metavar="INT", run=run)


def run_folder_setting(default: str, holds: str) -> Any:
    return setting(Path(default), f"Run folder: {holds}.", "--out", "-o", panel=INPUTS)


def resume_setting() -> Any:
    return setting(False, "Continue the run in --out from its checkpoint.", panel=INPUTS)


def checkpoint_every_setting(unit: str, shown: str) -> Any:
    return setting(None, f"Checkpoint every N {unit}", panel=RUN, shown=shown, min=1, metavar="N")


def tensorboard_setting() -> Any:
    return setting(
        True,
        "Write TensorBoard event files into the run folder (with the tensorboard package installed).",
        "--tensorboard/--no-tensorboard",
        panel=RUN,
    )


def optional_path(help: str, *flags: str, panel: str = INPUTS) -> Optional[Path]:
    return setting(None, help, *flags, panel=panel)


@dataclass
class Machine:
    """Where a command computes: every command takes these two."""

    device: str = setting("auto", "auto (CUDA, then MPS, then CPU) | cpu | cuda[:N] | mps.", panel=RUN)
    threads: Optional[int] = setting(
        None,
        "CPU threads for torch.",
        panel=RUN,
        shown="the cores this process may run on, one per physical core at most",
        min=1,
        metavar="INT",
    )


@dataclass
class Seeded:
    """The seed, for a command whose config has none of its own."""

    seed: int = seed_setting()
