"""How the engine reports progress without printing: one callback type.

Long loops (training, optimisation) take `progress: Progress | None` and call
`progress(step, {"loss": ...})` with the step counted from 1. The CLI passes a rich
progress bar (`a3cli.app.progress_bar`); library users pass their own function or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Optional

Progress = Callable[[int, Mapping[str, float]], None]

# Seconds a trainer spends measuring besides its steps, reported beside its losses (and not shown as
# numbers) so that the time left counts them: spent so far, and still to come, the remaining evaluations
# and the final measurement, from their cost measured so far.
MEASURING_SPENT, MEASURING_LEFT = "measuring_seconds", "measuring_seconds_left"
TIMINGS = (MEASURING_SPENT, MEASURING_LEFT)


def report(progress: Optional[Progress], step: int, metrics: Mapping[str, float]) -> None:
    """Call `progress` if there is one."""
    if progress is not None:
        progress(step, metrics)
