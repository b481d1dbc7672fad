"""The settings of a class visualization, each written once: its default (engine/catalogue.py) and its help.

A tuned setting left None takes the catalogue's value for the backbone and --param (`resolved`), which
--help calls "per model". Checked when made. Plain data (no torch): `a3 --help` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Optional

from a3cli.engine.backbones.imagenet_names import resolve_class
from a3cli.engine.catalogue import CLASSVIS_PARAMS, CLASSVIS_SIZE, classvis_param, classvis_settings
from a3cli.engine.errors import A3Error
from a3cli.engine.options import INPUTS, LOSS, setting
from a3cli.engine.visualize.objectives import ChannelObjective, ClassObjective, Objective, parse_objective

TUNED = ("iterations", "lr", "l2_reg", "blur_every", "blur_sigma", "max_jitter")  # the catalogue's settings


@dataclass
class ClassVisConfig:
    """What to draw and how. What to draw is a class (`target`: an index or a name, resolved on the backbone's
    classes) or a channel or neuron (`objective`), exactly one of the two."""

    target: Optional[str] = setting(None, "ImageNet class to draw: index or name.", "--class", "-c", panel=INPUTS)
    objective: Optional[ChannelObjective] = setting(
        None,
        "Or a channel: LAYER:C, LAYER:C1-C2, LAYER:C@X,Y.",
        panel=INPUTS,
        parser=parse_objective,
        metavar="<str>",  # as --help writes a text option
    )
    param: Optional[str] = setting(None, " | ".join(CLASSVIS_PARAMS), shown="per model")
    iterations: Optional[int] = setting(
        None, "Steps.", "--iterations", "-n", shown="per model and --param", min=1, max=100000
    )
    lr: Optional[float] = setting(None, "lr·g/‖g‖₂ (pixel) or Adam's lr.", shown="per model")
    l2_reg: Optional[float] = setting(None, "λ of the λ‖I‖² penalty.", panel=LOSS, min=0.0)
    blur_every: Optional[int] = setting(None, "Gaussian blur every K steps (pixel; 0: never).", min=0, max=1000000)
    blur_sigma: Optional[float] = setting(None, "σ of that blur, pixels.", min=0.0)
    max_jitter: Optional[int] = setting(None, "Random shift up to this many pixels.", min=0, max=512)
    size: int = setting(CLASSVIS_SIZE, "Image side, pixels.", panel=INPUTS, min=32, max=1024)
    # hand a frame to `on_frame` every this many steps (0: never)
    save_every: int = setting(0, "A frame every K steps: OUT_frames/, OUT.gif.", panel=INPUTS, min=0, max=1000000)
    init_std: float = 1.0  # pixel: std of the starting noise, in the normalised space

    def __post_init__(self) -> None:
        """Checked when made, and again when `resolved` fills in the tuned settings."""
        if self.target is None and self.objective is None:
            raise A3Error("Missing option '--class' (or --objective LAYER:CHANNEL)")
        if self.target is not None and self.objective is not None:
            raise A3Error("--class and --objective exclude each other: give one of the two")
        if self.param is not None and self.param not in CLASSVIS_PARAMS:
            raise A3Error(f"unknown --param {self.param!r}; choose one of: {', '.join(CLASSVIS_PARAMS)}")
        if self.iterations is not None and self.iterations < 1:
            raise A3Error("--iterations must be at least 1")
        if self.lr is not None and not self.lr > 0:
            raise A3Error("--lr must be positive")
        if any(v is not None and v < 0 for v in (self.l2_reg, self.blur_sigma, self.max_jitter, self.save_every)):
            raise A3Error("--l2-reg, --blur-sigma, --max-jitter and --save-every must be 0 or more")
        if self.blur_every is not None and self.blur_every < 0:
            raise A3Error("--blur-every must be 0 (never) or more")
        if not 32 <= self.size <= 1024:
            raise A3Error("--size must be between 32 and 1024")
        if self.max_jitter is not None and self.max_jitter >= self.size:
            raise A3Error("--max-jitter must be smaller than --size")

    def goal(self, classes: Sequence[str]) -> Objective:
        """What is maximised: `objective`, or the score of the class `target` names among `classes`."""
        if self.objective is not None:
            return self.objective
        assert self.target is not None  # __post_init__ asks for one of the two
        return ClassObjective(resolve_class(self.target, classes))

    def resolved(self, backbone: str) -> ClassVisConfig:
        """Every setting filled in: given ones kept, the rest from the catalogue (backbone and --param)."""
        param = self.param or classvis_param(backbone)
        defaults = classvis_settings(backbone, param)
        filled = {name: defaults[name] if getattr(self, name) is None else getattr(self, name) for name in TUNED}
        return replace(self, param=param, **filled)

    def settings(self) -> dict:
        """The tuned settings, the size and the parametrisation, for a report."""
        return {**{name: getattr(self, name) for name in TUNED}, "size": self.size, "param": self.param}
