"""What a diffusion run reports: its summary's numbers by attribute, and all that metrics.json holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from a3cli.engine.diffusion.config import DiffusionConfig
from a3cli.engine.generative.quality import Quality


@dataclass(frozen=True)
class DiffusionResult:
    metrics: dict[str, Any]  # metrics.json
    settings: DiffusionConfig
    iterations: int
    train_seconds: float
    device: str
    loss: Optional[float]  # the last iteration's
    files: list[Path]  # what the run folder holds, metrics.json last
    samples: int = 0  # generated images per final measurement
    final: Optional[Quality] = None  # None: not measured
    best: Optional[Quality] = None  # best.pt's
    best_iteration: int = 0

    @property
    def iterations_per_second(self) -> Optional[float]:
        return self.metrics["iterations_per_second"]
