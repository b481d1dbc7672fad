"""What every training run shares: its folder, its checkpoint, resume, Ctrl-C and the random state.

A run lives in one folder (`--out`) with one checkpoint, `checkpoint.pt`: a kind-tagged
dict written atomically every N iterations, at the end, and when Ctrl-C or SIGTERM stops
the run; it holds every global RNG state, so `--resume` continues the very same run. A
process holds the folder's lock for as long as it lives (the OS drops it when the process
dies, so a crashed run never blocks the next one); a second run in the same folder is
refused, and so is a fresh run where a checkpoint already is. When resuming, a setting
left out takes the run's value and a setting given differently is refused.

The loop (`train_loop`) drives any trainer with `step`, `train_step()`, `save()` and
`stopped()`: gan-train and caption-train differ only in what one step does.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import sys
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

if sys.platform == "win32":  # Windows has no fcntl: runs are not locked
    fcntl = None
else:
    import fcntl

from a3cli.engine.checkpoints import load_checkpoint, save_checkpoint
from a3cli.engine.device import rng_state
from a3cli.engine.distributed import World, first_to_report, leave_broken_group, lost_contact, restarted
from a3cli.engine.errors import A3Error, A3Note, RankLost, WriteError
from a3cli.engine.files import cannot_write
from a3cli.engine.progress import Progress, report

CHECKPOINT_NAME = "checkpoint.pt"
LOCK_NAME = ".a3-run.lock"
_held_locks: dict[Path, Any] = {}  # run folder -> its open lock file, kept open while this process lives


def checkpoint_path(out: str | Path) -> Path:
    return Path(out) / CHECKPOINT_NAME


def lock_run_folder(out: str | Path) -> None:
    """Take the folder's lock for the life of this process, or refuse: another process is running there."""
    folder = Path(out).resolve()
    if fcntl is None or folder in _held_locks:
        return
    if folder.exists() and not folder.is_dir():
        raise A3Error(f"--out '{out}' is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_NAME, "a+")
    except OSError as error:
        raise A3Error(f"cannot use '{out}' as a run folder: {error.strerror or error}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise A3Error(
            f"'{out}' is in use by another a3 run (process {owner}); wait for it to end, or choose another --out"
        ) from None
    try:  # unbuffered, so that a full disk fails here and not again when the file is closed
        os.ftruncate(handle.fileno(), 0)
        os.pwrite(handle.fileno(), str(os.getpid()).encode(), 0)
    except OSError as error:  # a full disk or a file-size limit: refused before any work
        handle.close()
        raise cannot_write(folder / LOCK_NAME, error) from None
    _held_locks[folder] = handle


def remove_stale_temporary_files(out: str | Path) -> None:
    """Half-written files (checkpoint.pt, best.pt, ...) a killed process left behind: atomic writes'
    .NAME.UUID.tmp files (engine/files.py). Only the run holding the folder's lock calls this."""
    for path in Path(out).glob(".*.*.tmp"):
        path.unlink(missing_ok=True)


def open_run(
    out: str | Path, kind: str, resume: bool, world: World = World(), required: Iterable[str] = ()
) -> Optional[dict[str, Any]]:
    """The checkpoint of the run to resume (refused if it lacks a `required` key), or None for a fresh run
    (refused where a run already is).

    Takes the folder's lock first, so that two runs started together cannot both start fresh.
    Under torchrun rank 0 alone holds the lock and tidies the folder; the other ranks only read.
    A job that torchrun restarted (--max-restarts) resumes its run by itself.
    """
    path = checkpoint_path(out)
    resume = resume or (restarted() and path.exists())
    if resume and not path.exists():
        raise A3Error(f"checkpoint file '{path}' does not exist: there is no run to resume in '{out}'")
    if world.main:
        lock_run_folder(out)
        remove_stale_temporary_files(out)
    if resume:
        return load_checkpoint(path, kind=kind, required=required)
    if path.exists():
        raise A3Error(
            f"'{out}' already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, or choose another --out"
        )
    return None


def merge_settings(given: Mapping[str, Any], saved: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """A run's settings: those given (None: not given), or when resuming the run's own.

    A value given when resuming must equal the run's: continuing a run with other
    settings would silently train something else.
    """
    if saved is None:
        return dict(given)
    merged = {}
    for name, value in given.items():
        if value is not None and name in saved and value != saved[name]:
            raise A3Error(
                f"--{name.replace('_', '-')} {value} differs from the run being resumed "
                f"({saved[name]}); leave it out, or start a new run in another --out"
            )
        merged[name] = saved[name] if name in saved else value
    return merged


def save_run(out: str | Path, kind: str, state: Mapping[str, Any]) -> Path:
    """The checkpoint, with every global RNG state, written atomically."""
    return save_checkpoint({"kind": kind, **state, "rng": rng_state()}, checkpoint_path(out))


class DeferredInterrupt:
    """Ctrl-C (or SIGTERM, what schedulers and `timeout` send) during an iteration is held until the
    iteration ends, so the checkpoint is consistent. A second one interrupts at once; under torchrun only
    one that comes `echo` seconds after the first, since torchrun passes on the Ctrl-C that the terminal
    already sent every rank."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, echo: float = 0.0) -> None:
        self.requested = False
        self.echo, self.first = echo, 0.0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> DeferredInterrupt:
        try:
            self.previous = {signum: signal.signal(signum, self.handle) for signum in self.SIGNALS}
        except ValueError:  # not the main thread: leave the signals alone
            self.previous = {}
        return self

    def handle(self, signum, frame) -> None:
        now = time.monotonic()
        if self.requested and self.first and now - self.first >= self.echo:
            raise KeyboardInterrupt
        self.requested, self.first = True, self.first or now

    def __exit__(self, *exc) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)


class Trainer(Protocol):
    command: str  # the a3 command that runs it, for the line that resumes a stopped run
    out: Path
    step: int  # iterations done

    def train_step(self) -> dict[str, float]:
        """One iteration, counted in `step`; returns the numbers to show (losses)."""

    def save(self) -> None:
        """Write the checkpoint (`save_run`)."""

    def stopped(self) -> None:
        """The run stops early (Ctrl-C): write what people look at, and metrics.json so far (`interrupted`)."""


def train_loop(
    trainer: Trainer, total: int, save_every: int, progress: Optional[Progress] = None, world: World = World()
) -> None:
    """Iterate up to `total`, checkpointing every `save_every` iterations and at the end.

    Ctrl-C (or a KeyboardInterrupt from `progress`) ends the current iteration, writes
    the checkpoint, calls `stopped()`, notes the command that resumes the run and re-raises.
    A non-finite number stops the run with an A3Error and leaves the last good checkpoint, and
    so does a file that cannot be written (WriteError). Under torchrun the ranks agree after
    every iteration on whether to stop, so they all stop at the same one; a rank that dies
    stops the others (RankLost).
    """
    saved = Saved(trainer.step if checkpoint_path(trainer.out).exists() else None)
    if saved.step is not None and world.main:  # a fresh run cannot start where a checkpoint is
        warnings.warn(A3Note(f"resuming from iteration {trainer.step} of {total}"), stacklevel=2)
    try:
        with DeferredInterrupt(echo=5.0 if world.distributed else 0.0) as interrupt:
            while trainer.step < total:
                iterate(trainer, total, save_every, progress, world, interrupt, saved)
    except WriteError as error:
        raise WriteError(f"{error}; {saved.kept()}") from None
    except RuntimeError as error:
        why = lost_contact(error, world)
        if why is None:
            raise
        leave_broken_group()
        on_disk = Saved(saved_step(trainer.out))  # rank 0 writes: the rank that died may have been killed mid-save
        raise RankLost(
            f"rank {world.rank} of {world.world_size} lost contact with another rank ({why}) "
            f"at iteration {trainer.step}: the job stopped; {on_disk.kept()}; resume it with: "
            f"{resume_command(trainer, world)}",
            report=first_to_report(),
        ) from None


@dataclass
class Saved:
    """The iteration of the run's last checkpoint, if it has one: what a run that stops on a fault keeps."""

    step: Optional[int]

    def kept(self) -> str:
        if self.step is None:
            return "no checkpoint was written yet"
        return f"the last good checkpoint (iteration {self.step}) is kept"


def saved_step(out: Path) -> Optional[int]:
    """The iteration of the checkpoint in a run folder as it is on disk (None: none, or unreadable)."""
    try:
        return int(load_checkpoint(checkpoint_path(out), required=("step",))["step"])
    except (A3Error, OSError, KeyError, TypeError, ValueError):
        return None


def iterate(
    trainer: Trainer,
    total: int,
    save_every: int,
    progress: Optional[Progress],
    world: World,
    interrupt: DeferredInterrupt,
    saved: Saved,
) -> None:
    """One iteration of `train_loop`, its checks and its checkpoint."""
    numbers = trainer.train_step()
    bad = {name: value for name, value in numbers.items() if not math.isfinite(value)}
    if bad:
        kept = (
            f"the last good checkpoint, '{checkpoint_path(trainer.out)}', is kept"
            if checkpoint_path(trainer.out).exists()
            else "no checkpoint was written yet"
        )
        shown = ", ".join(f"{name} {value}" for name, value in numbers.items())
        raise A3Error(
            f"non-finite loss at iteration {trainer.step} ({shown}): training stopped; {kept}; try a smaller --lr"
        )
    try:
        report(progress, trainer.step, numbers)
    except KeyboardInterrupt:
        interrupt.requested = True
    # The agreed answer is never written back into the flag: a signal handled while the ranks agree (right
    # after the collective returns, where a rank blocked in it runs its handler) would be overwritten and lost.
    stop = world.any(interrupt.requested)
    if stop or trainer.step % save_every == 0 or trainer.step == total:
        trainer.save()
        saved.step = trainer.step
    if stop:
        trainer.stopped()
        if world.main:
            warnings.warn(
                A3Note(
                    f"stopped at iteration {trainer.step} of {total}: {CHECKPOINT_NAME} and metrics.json (marked "
                    f"interrupted) are in '{trainer.out}'; resume with: {resume_command(trainer, world)}"
                ),
                stacklevel=2,
            )
        raise KeyboardInterrupt


def resume_command(trainer: Trainer, world: World) -> str:
    """The command line that continues this run, under torchrun as before: this process's own options and
    --resume when it runs the trainer's command; else (a program that calls the engine) the command with
    --out and --resume, with which a run keeps its settings."""
    args = sys.argv[1:] if sys.argv[1:2] == [trainer.command] else [trainer.command, "--out", str(trainer.out)]
    args += [] if "--resume" in args else ["--resume"]
    launcher = f"torchrun --nproc-per-node {world.world_size} -m a3cli" if world.distributed else "a3"
    return f"{launcher} {shlex.join(args)}"
