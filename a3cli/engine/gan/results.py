"""What a GAN run reports: each measurement while training, and the finished run (its summary's numbers by
attribute, and all that metrics.json holds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from a3cli.engine.gan.config import GanConfig
from a3cli.engine.generative.quality import Quality


@dataclass(frozen=True)
class Measurement:
    """A measurement while training: both generators' Fréchet distances, the better one's precision, recall
    and digits (MNIST only), and the best distance so far."""

    iteration: int
    fid: float
    best_fid: float
    ema_fid: Optional[float] = None
    precision: Optional[float] = None
    recall: Optional[float] = None
    kl: Optional[float] = None  # the drawn digits' distance from uniform
    digits: Optional[int] = None  # how many of the ten digits were drawn


@dataclass(frozen=True)
class GanResult:
    """A finished run: what its summary says, by attribute, and all that metrics.json holds."""

    metrics: dict[str, Any]  # metrics.json
    settings: GanConfig
    iterations: int
    train_seconds: float
    device: str
    losses: Optional[tuple[float, float]]  # the last D and G losses
    files: list[Path]  # what the run folder holds, metrics.json last
    samples: int = 0  # generated images per final measurement
    final: Optional[Quality] = None  # None: not measured
    ema: Optional[Quality] = None  # the averaged generator's
    best: Optional[Quality] = None  # best.pt's
    best_iteration: int = 0
    best_source: str = "generator"  # or "ema": the averaged generator

    @property
    def iterations_per_second(self) -> Optional[float]:
        return self.metrics["iterations_per_second"]
