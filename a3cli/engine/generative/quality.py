"""A generative model judged on many samples (generative/judge.py), as its summary reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Quality:
    """A generator judged on many samples: its Fréchet distance, and what the judge adds (precision and
    recall; on MNIST the digits drawn)."""

    frechet_distance: float
    precision: Optional[float] = None
    recall: Optional[float] = None
    kl_to_uniform: Optional[float] = None
    digits_covered: Optional[int] = None

    @classmethod
    def of(cls, judged: dict[str, Any]) -> Quality:
        """From a judge's numbers (judge.py)."""
        return cls(**{name: judged[name] for name in cls.__dataclass_fields__ if name in judged})
