"""The settings of a fooling image, each written once: its default (engine/catalogue.py) and its help.

Checked when made. Plain data (no torch): `a3 --help` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from a3cli.engine.catalogue import FOOL_DEFAULTS
from a3cli.engine.errors import A3Error
from a3cli.engine.options import INPUTS, LOSS, setting


@dataclass
class FoolConfig:
    """What to make the network see, and how far to go. The target is a class index or name, resolved on the
    backbone's classes (`FoolingImage`); without one (`untargeted`), any class but the original will do."""

    target: Optional[str] = setting(None, "Class to make the model see: index or name.", "--target", "-t", panel=INPUTS)
    untargeted: bool = setting(False, "No target: until the top-1 class changes.", panel=LOSS)
    # the assignment's lr·g/‖g‖₂ (normalised space); with epsilon, lr·sign(g) in 0..255 units
    lr: float = setting(FOOL_DEFAULTS["lr"], "Step length (lr·g/‖g‖₂; with --epsilon lr·sign g).")
    max_iter: int = setting(FOOL_DEFAULTS["max_iter"], "Most gradient steps.", min=0, max=100000)
    confidence: Optional[float] = setting(None, "Also go on until the target has this probability.")
    # most any pixel may change, in 0..255 units (None: no bound)
    epsilon: Optional[float] = setting(None, "Budget per pixel (0-255 units): PGD steps.", panel=LOSS)

    def __post_init__(self) -> None:
        if self.target is None and not self.untargeted:
            raise A3Error("Missing option '--target' (or --untargeted: any class but the original)")
        if self.target is not None and self.untargeted:
            raise A3Error("--untargeted takes no --target: give one of the two")
        if not self.lr > 0:
            raise A3Error("--lr must be positive")
        if self.max_iter < 0:
            raise A3Error("--max-iter must be 0 or more")
        if self.confidence is not None and self.target is None:
            raise A3Error("--confidence needs a --target (an untargeted run stops when the top-1 class changes)")
        if self.confidence is not None and not 0 < self.confidence < 1:
            raise A3Error("--confidence must be between 0 and 1 (exclusive)")
        if self.epsilon is not None and not 1 <= self.epsilon <= 255:
            raise A3Error("--epsilon must be between 1 and 255 (pixel units: an 8-bit file changes by whole steps)")
