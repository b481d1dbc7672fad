"""How long a generative run will still spend measuring: what the time left on its bar adds to its steps."""

from __future__ import annotations

from typing import Any, Optional, Protocol

from a3cli.engine.progress import MEASURING_LEFT, MEASURING_SPENT


class MeasuredRun(Protocol):
    """What a generative trainer (gan/, diffusion/) has that its measuring time is read from."""

    step: int
    total: int
    eval_seconds: float
    frechet_history: list[dict[str, Any]]
    best: Optional[dict[str, Any]]
    judge: Optional[Any]
    settings: Any
    final_reuses_evaluation: bool  # the final measurement begins with the last evaluation's pictures


def measuring_of(run: MeasuredRun) -> dict[str, float]:
    """The run's time spent and still to come measuring (none without a judge), for the bar's time left."""
    if run.judge is None:
        return {}
    s = run.settings
    spent, measured = run.eval_seconds, len(run.frechet_history)
    again = best_measured_again(run.frechet_history, run.best)
    reused = min(s.eval_samples, s.fid_samples) if run.final_reuses_evaluation else 0
    return measuring_times(
        run.step, run.total, s.eval_every, s.eval_samples, s.fid_samples, spent, measured, again, reused
    )


def best_measured_again(history: list[dict[str, Any]], best: Optional[dict[str, Any]]) -> float:
    """The share of an evaluation's models that the final measurement adds for best.pt: none while best.pt
    holds weights of the latest evaluation (the final report reuses their numbers), else one model."""
    if not history or best is None or best["iteration"] == history[-1]["iteration"]:
        return 0.0
    return 1 / (len(history[-1]) - 1)  # an entry: its iteration and each model measured


def measuring_times(
    step: int,
    total: int,
    eval_every: int,
    eval_samples: int,
    fid_samples: int,
    spent: float,
    measured: int,
    again: float = 0.0,
    reused: int = 0,
) -> dict[str, float]:
    """Seconds spent measuring so far (`spent`, over `measured` evaluations of `eval_samples` images) and
    the seconds still to come: the evaluations left (every `eval_every` iterations and at the last) and the
    final measurement on `fid_samples` images, of the same models and, `again` (`best_measured_again`), of
    best.pt, less the `reused` pictures it takes from the last evaluation. Before the first evaluation nothing
    is known of the cost: spent alone."""
    if not measured:
        return {MEASURING_SPENT: spent}
    per_evaluation = spent / measured
    later = total // eval_every - step // eval_every if eval_every else 0  # multiples of eval_every to come
    later += step < total and (not eval_every or total % eval_every != 0)  # and the last iteration
    final = per_evaluation * ((1 + again) * fid_samples - reused) / eval_samples
    return {MEASURING_SPENT: spent, MEASURING_LEFT: later * per_evaluation + final}
