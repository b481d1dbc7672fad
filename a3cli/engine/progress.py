"""How the engine reports progress without printing: one callback type.

Long loops (training, optimisation) take `progress: Progress | None` and call
`progress(step, {"loss": ...})` with the step counted from 1. The CLI passes a rich
progress bar (`a3cli.app.progress_bar`); library users pass their own function or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Optional

Progress = Callable[[int, Mapping[str, float]], None]


def report(progress: Optional[Progress], step: int, metrics: Mapping[str, float]) -> None:
    """Call `progress` if there is one."""
    if progress is not None:
        progress(step, metrics)
