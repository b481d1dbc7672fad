"""What every training run shares: its folder, its checkpoint, resume, Ctrl-C and the random state.

A run lives in one folder (`--out`) with one checkpoint, `checkpoint.pt`: a kind-tagged
dict written atomically every N iterations, at the end, and when Ctrl-C stops the run;
it holds every global RNG state, so `--resume` continues the very same run. A fresh run
refuses a folder that already holds one. When resuming, a setting left out takes the
run's value and a setting given differently is refused.

The loop (`train_loop`) drives any trainer with `step`, `train_step()`, `save()` and
`stopped()`: gan-train and caption-train differ only in what one step does.
"""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol

from a3cli.engine.checkpoints import load_checkpoint, save_checkpoint
from a3cli.engine.device import rng_state
from a3cli.engine.errors import A3Error
from a3cli.engine.progress import Progress, report

CHECKPOINT_NAME = "checkpoint.pt"


def checkpoint_path(out: str | Path) -> Path:
    return Path(out) / CHECKPOINT_NAME


def open_run(out: str | Path, kind: str, resume: bool) -> Optional[dict[str, Any]]:
    """The checkpoint of the run to resume, or None for a fresh run (refused where a run already is)."""
    path = checkpoint_path(out)
    if resume:
        return load_checkpoint(path, kind=kind)
    if path.exists():
        raise A3Error(f"'{out}' already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, "
                      "or choose another --out")
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
            raise A3Error(f"--{name.replace('_', '-')} {value} differs from the run being resumed "
                          f"({saved[name]}); leave it out, or start a new run in another --out")
        merged[name] = saved[name] if name in saved else value
    return merged


def save_run(out: str | Path, kind: str, state: Mapping[str, Any]) -> Path:
    """The checkpoint, with every global RNG state, written atomically."""
    return save_checkpoint({"kind": kind, **state, "rng": rng_state()}, checkpoint_path(out))


class DeferredInterrupt:
    """Ctrl-C during an iteration is held until the iteration ends, so the checkpoint is consistent.

    A second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self) -> "DeferredInterrupt":
        try:
            self.previous = signal.signal(signal.SIGINT, self.handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class Trainer(Protocol):
    out: Path
    step: int  # iterations done

    def train_step(self) -> dict[str, float]:
        """One iteration, counted in `step`; returns the numbers to show (losses)."""

    def save(self) -> None:
        """Write the checkpoint (`save_run`)."""

    def stopped(self) -> None:
        """The run stops early (Ctrl-C): write what people look at."""


def train_loop(trainer: Trainer, total: int, save_every: int, progress: Optional[Progress] = None) -> None:
    """Iterate up to `total`, checkpointing every `save_every` iterations and at the end.

    Ctrl-C (or a KeyboardInterrupt from `progress`) ends the current iteration, writes
    the checkpoint, calls `stopped()` and re-raises. A non-finite number stops the run
    with an A3Error and leaves the last good checkpoint.
    """
    with DeferredInterrupt() as interrupt:
        while trainer.step < total:
            numbers = trainer.train_step()
            bad = {name: value for name, value in numbers.items() if not math.isfinite(value)}
            if bad:
                kept = (f"the last good checkpoint, '{checkpoint_path(trainer.out)}', is kept"
                        if checkpoint_path(trainer.out).exists() else "no checkpoint was written yet")
                shown = ", ".join(f"{name} {value}" for name, value in numbers.items())
                raise A3Error(f"non-finite loss at iteration {trainer.step} ({shown}): training stopped; {kept}; "
                              "try a smaller --lr")
            try:
                report(progress, trainer.step, numbers)
            except KeyboardInterrupt:
                interrupt.requested = True
            if interrupt.requested or trainer.step % save_every == 0 or trainer.step == total:
                trainer.save()
            if interrupt.requested:
                trainer.stopped()
                raise KeyboardInterrupt
