"""Which settings a style-transfer run uses: the backbone's defaults, then a preset, then the options given.

The numbers themselves are data in the catalogue (`BackboneRecord.style`, `STYLE_PRESETS`).
"""

from __future__ import annotations

from typing import Any, Optional

from a3cli.engine.catalogue import BACKBONES, STYLE_PRESETS
from a3cli.engine.errors import A3Error

# What a backbone without style settings of its own starts from (the user gives layers and weights).
GENERIC_WEIGHTS = {"content_weight": 1e-2, "tv_weight": 1e-2}


def resolve_settings(model: str, preset: Optional[str], given: dict[str, Any]) -> dict[str, Any]:
    """Model defaults, then the preset, then the options actually given (those not None)."""
    if preset is not None:
        if preset not in STYLE_PRESETS:
            raise A3Error(f"unknown preset {preset!r}; choose one of: {', '.join(STYLE_PRESETS)}")
        if model not in STYLE_PRESETS[preset]:
            raise A3Error(f"preset {preset!r} has settings for {' and '.join(STYLE_PRESETS[preset])} only, not {model}")
    own = BACKBONES[model].style if model in BACKBONES else None
    named = {key for key, value in given.items() if value is not None}
    if own is None and not {"content_layer", "style_layers", "style_weights"} <= named:
        raise A3Error(f"{model} has no default layers: give --content-layer, --style-layers and --style-weights")
    settings = dict(own if own is not None else GENERIC_WEIGHTS)
    if preset is not None:
        settings.update(STYLE_PRESETS[preset][model])
    settings.update({key: value for key, value in given.items() if value is not None})
    if (
        "style_layers" in named
        and "style_weights" not in named
        and len(settings["style_layers"]) != len(settings["style_weights"])
    ):
        raise A3Error("--style-layers changed the number of layers: give --style-weights as well")
    return settings
