"""Which settings a style-transfer run uses: the engine's defaults, the backbone's, a preset's, then the options
given.

The numbers themselves are data in the catalogue (`STYLE_DEFAULTS`, `BackboneRecord.style`, `STYLE_PRESETS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from a3cli.engine.backbones.registry import backbone_record
from a3cli.engine.catalogue import STYLE_DEFAULTS, STYLE_PRESETS
from a3cli.engine.errors import A3Error
from a3cli.engine.style.config import StyleConfig

# What a backbone without style settings of its own starts from (the user gives layers and weights).
GENERIC_WEIGHTS = {"content_weight": 1e-2, "tv_weight": 1e-2}


def resolve_settings(model: str, preset: Optional[str], config: StyleConfig) -> StyleConfig:
    """The config with the settings left None filled in: the engine's defaults, then the model's, then the
    preset's; what the config already holds wins. Checked again as it is made (StyleConfig.__post_init__)."""
    own = backbone_record(model).style
    presets = preset_settings(model, preset)
    given = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    named = {name for name, value in given.items() if value is not None}
    if own is None and not {"content_layer", "style_layers", "style_weights"} <= named:
        raise A3Error(f"{model} has no default layers: give --content-layer, --style-layers and --style-weights")
    settings = {**STYLE_DEFAULTS, **(own if own is not None else GENERIC_WEIGHTS), **presets}
    settings.update({name: given[name] for name in named})
    if (
        "style_layers" in named
        and "style_weights" not in named
        and len(settings["style_layers"]) != len(settings["style_weights"])
    ):
        raise A3Error("--style-layers changed the number of layers: give --style-weights as well")
    return dataclasses.replace(config, **settings)


def preset_settings(model: str, preset: Optional[str]) -> dict[str, Any]:
    """The preset's settings for this model ({} without a preset)."""
    if preset is None:
        return {}
    if preset not in STYLE_PRESETS:
        raise A3Error(f"unknown preset {preset!r}; choose one of: {', '.join(STYLE_PRESETS)}")
    if model not in STYLE_PRESETS[preset]:
        raise A3Error(f"preset {preset!r} has settings for {' and '.join(STYLE_PRESETS[preset])} only, not {model}")
    return STYLE_PRESETS[preset][model]


def content_and_styles(images: Sequence[Path]) -> tuple[Path, list[Path]]:
    """The photo and the style images of `a3 stylize CONTENT STYLE [STYLE...]`."""
    if len(images) < 2:
        raise A3Error("give a content image and at least one style image: a3 stylize CONTENT STYLE [STYLE...]")
    return images[0], list(images[1:])
