"""The `a3` command line: one thin driver per subcommand.

Each command parses its options, calls the engine and renders the result. torch and
the engine are imported inside the commands so that `a3 --help` stays instant. What
every command shares is enforced here, once: user mistakes end as one line on stderr
with exit status 2, a number option must be finite, and SIGTERM stops a command the
way Ctrl-C does (keeping what was made).
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import sys
import warnings
from collections.abc import Iterator

import typer

# Idle OpenMP threads sleep instead of spinning, so that a3 shares the cores with the machine's other programs
# (2-10x faster beside one busy process; docs/results.md). OpenMP reads it once, when torch loads: here, first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from a3cli.app import app, console

# The command modules register their commands on import, in the order of the assignment's parts (and of --help).
COMMANDS = (
    "basic",
    "caption_train",
    "caption_sample",
    "saliency",
    "fool",
    "classvis",
    "style",
    "gan",
    "gan_sample",
    "gan_classifier",
    "diffusion",
    "diffusion_sample",
)
for module in COMMANDS:
    importlib.import_module(f"a3cli.commands.{module}")


def every_command(command) -> Iterator:
    """The app and each of its commands."""
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from every_command(sub)


def flags_without_placeholder(app_command) -> None:
    """On/off flags take no value, so --help shows no placeholder for them (Typer would write <bool>)."""
    from typer._click import Context

    for command in every_command(app_command):
        help_option = command.get_help_option(Context(command, help_option_names=["-h", "--help"]))
        for param in [*command.params, help_option]:
            if getattr(param, "is_flag", False):
                param.metavar = ""


def help_that_folds() -> None:
    """--help's option tables break a word too long for a narrow terminal (an option's name, a default such as
    a list of layers) over lines instead of cutting it with an ellipsis: at 80 columns nothing is hidden."""
    from rich.table import Table
    from typer import rich_utils

    class FoldingTable(Table):
        def add_row(self, *renderables, **options) -> None:
            while len(self.columns) < len(renderables):
                self.add_column(overflow="fold")
            super().add_row(*renderables, **options)

    def folding_help(**options):
        columns = parameter_help(**options)
        for item in columns.renderables:
            item.overflow = "fold"  # its own overflow wins over the table's ellipsis
        return columns

    parameter_help = rich_utils._get_parameter_help
    rich_utils.Table = FoldingTable  # type: ignore[misc]
    rich_utils._get_parameter_help = folding_help


def finite_numbers_only(app_command) -> None:
    """Refuse inf and nan for every float option of every command, when the options are parsed, before
    any range check (which would call nan too large or too small)."""
    from typer._click.exceptions import BadParameter

    for param in (param for command in every_command(app_command) for param in command.params):
        if getattr(getattr(param, "type_descriptor", None), "annotation", None) is float:

            def process_value(ctx, value, param=param, process=param.process_value):
                try:
                    number = float(value)
                except (TypeError, ValueError):  # not given, or not a number: the option's own check says so
                    number = 0.0
                if not math.isfinite(number):
                    raise BadParameter(f"{number} is not a finite number", ctx=ctx, param=param)
                return process(ctx, value)

            param.process_value = process_value


def out_of_memory(error: BaseException) -> bool:
    """numpy's MemoryError, torch's CPU allocator (a RuntimeError), CUDA's OutOfMemoryError, and a library
    that cannot be mapped into memory as it is imported (an ImportError under an address-space limit)."""
    return (
        isinstance(error, MemoryError)
        or type(error).__name__ == "OutOfMemoryError"
        or "can't allocate memory" in str(error)
        or "failed to map segment" in str(error)
    )


def show_notes(show=warnings.showwarning):
    """The engine's notes (A3Note) as one `note: ...` line each, once; other warnings as Python shows them."""
    from a3cli.engine.errors import A3Note

    shown: set[str] = set()

    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, A3Note):
            if str(message) not in shown:
                print(f"note: {message}", file=sys.stderr)
            shown.add(str(message))
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def say_interrupted() -> None:
    """One line for a command stopped by Ctrl-C or SIGTERM: under torchrun rank 0 alone says it."""
    if int(os.environ.get("RANK", "0")) == 0:
        print("interrupted", file=sys.stderr)


def stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes end as one line on stderr with exit status 2."""
    # Typer vendors click; its usage errors are raised here because of standalone_mode=False.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    from a3cli.engine.errors import A3Error, RankLost

    command = typer.main.get_command(app)
    finite_numbers_only(command)
    flags_without_placeholder(command)
    help_that_folds()
    warnings.showwarning = show_notes()
    try:
        signal.signal(signal.SIGTERM, stop_on_sigterm)
    except ValueError:  # not the main thread
        pass
    try:
        code = command.main(args=argv, prog_name="a3", standalone_mode=False)
        if code == 130:  # Typer turns Ctrl-C inside a command into exit code 130
            say_interrupted()
    except NoArgsIsHelpError:  # bare `a3`: Typer has printed the help
        code = 0
    except UsageError as error:
        name = error.ctx.command_path if error.ctx else "a3"
        print(f"error: {error.format_message()} (see '{name} --help')", file=sys.stderr)
        code = 2
    except RankLost as error:
        if error.report:
            print(f"error: {error}", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(2)  # a process group with a dead rank cannot be left cleanly (engine/distributed.py)
    except A3Error as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except (MemoryError, RuntimeError, ImportError) as error:
        if not out_of_memory(error):
            raise
        print(
            "error: out of memory: the sizes asked for do not fit in the memory this process may use; ask for "
            "less, or fewer --threads",
            file=sys.stderr,
        )
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        say_interrupted()
        code = 130
    finally:
        console.file = None  # type: ignore[assignment]  # back to stdout, should --json - have moved it
    sys.exit(code if isinstance(code, int) else 0)
