"""The settings of `a3 saliency`, each written once: its default (engine/catalogue.py) and its help.

A config is checked when it is made, and its method (a name or an alias) is resolved to its
catalogue record then, which travels with it. Plain data (no torch): `a3 --help` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from a3cli.engine.catalogue import (
    BACKBONES,
    DEFAULT_BACKBONE,
    IG_RULES,
    SALIENCY_ALIASES,
    SALIENCY_BASELINES,
    SALIENCY_DEFAULTS,
    SALIENCY_METHODS,
    SaliencyMethod,
)
from a3cli.engine.errors import A3Error
from a3cli.engine.options import METHOD, setting

D = SALIENCY_DEFAULTS


def methods_help() -> str:
    """What --help says of --method: each method's record, with its aliases."""
    named = [" ".join([m.name, *(f"({alias})" for alias in m.aliases)]) for m in SALIENCY_METHODS.values()]
    return "; ".join(f"{name}: {m.help}" for name, m in zip(named, SALIENCY_METHODS.values())) + "."


def gradcam_layer_shown() -> str:
    return f"per model; {BACKBONES[DEFAULT_BACKBONE].gradcam_layer} on {DEFAULT_BACKBONE}"


@dataclass
class SaliencyConfig:
    """How `a3 saliency` makes its maps; `record` is the method's catalogue record."""

    method: str = setting(D["method"], methods_help(), panel=METHOD)  # a name or an alias (`ig`)
    samples: int = setting(D["samples"], "SmoothGrad: noisy copies averaged.", panel=METHOD, min=1, max=10000)
    noise: float = setting(D["noise"], "SmoothGrad: noise std / value range.", panel=METHOD, min=0.0)
    steps: int = setting(D["steps"], "Integrated Gradients: points on the path.", panel=METHOD, min=1, max=1000)
    rule: str = setting(D["rule"], f"Integrated Gradients: {' | '.join(IG_RULES)}.", panel=METHOD)
    baseline: str = setting(D["baseline"], f"Integrated Gradients: {' | '.join(SALIENCY_BASELINES)}.", panel=METHOD)
    # Grad-CAM's stage; None until `for_backbone` names the backbone's gradcam_layer (else its last stage)
    layer: Optional[str] = setting(
        D["layer"], "Grad-CAM: the stage it weighs.", panel=METHOD, shown=gradcam_layer_shown()
    )
    faithfulness: bool = setting(
        D["faithfulness"], "Deletion and insertion curves: OUT_faithfulness.png.", panel=METHOD
    )
    faithfulness_steps: int = setting(
        D["faithfulness_steps"], "Steps of those curves, from none to all pixels.", panel=METHOD, max=1000
    )
    batch_size: int = setting(D["batch_size"], "Images (or copies) per pass.", panel=METHOD, min=1, max=4096)
    record: SaliencyMethod = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.method = SALIENCY_ALIASES.get(self.method, self.method)
        if self.method not in SALIENCY_METHODS:
            names = [*SALIENCY_METHODS, *SALIENCY_ALIASES]
            raise A3Error(f"unknown saliency method {self.method!r}; choose one of: {', '.join(names)}")
        if self.baseline not in SALIENCY_BASELINES:
            raise A3Error(f"unknown baseline {self.baseline!r}; choose one of: {', '.join(SALIENCY_BASELINES)}")
        if self.rule not in IG_RULES:
            raise A3Error(f"unknown --rule {self.rule!r}; choose one of: {', '.join(IG_RULES)}")
        if self.samples < 1 or self.steps < 1 or self.batch_size < 1:
            raise A3Error("--samples, --steps and --batch-size must be at least 1")
        if self.layer is not None and not self.layer.strip():
            raise A3Error("--layer is empty: name a stage of the model, or leave it out for its default")
        if self.faithfulness_steps < 1:
            raise A3Error(f"--faithfulness-steps must be at least 1, not {self.faithfulness_steps}")
        if self.noise < 0:
            raise A3Error("--noise must be 0 or more")
        self.record = SALIENCY_METHODS[self.method]
