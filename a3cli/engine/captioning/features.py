"""Image features for captioning: how an image becomes a vector (`FeatureSpec`), made once and cached.

A checkpoint stores the spec, so that captioning a new image extracts exactly the
kind of feature the model was trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from a3cli.engine.catalogue import CAPTION_FEATURES
from a3cli.engine.checkpoints import load_checkpoint, save_checkpoint
from a3cli.engine.errors import A3Error, A3Note, WriteError
from a3cli.engine.files import unwritable
from a3cli.engine.images import to_tensor
from a3cli.engine.progress import Progress, report


@dataclass(frozen=True)
class FeatureSpec:
    """How an image becomes a feature vector.

    layer "pooled" is the backbone's own pooled feature (what the assignment's
    fc7 is for VGG16), from the centre crop at image_size. Any other layer name
    is a stage of the backbone: the whole image is resized to image_size squared
    and the stage's map is average-pooled to a grid×grid layout and flattened,
    which keeps where things are.
    """

    backbone: str = CAPTION_FEATURES["backbone"]
    layer: str = CAPTION_FEATURES["layer"]
    image_size: int = CAPTION_FEATURES["image_size"]
    grid: int = CAPTION_FEATURES["grid"]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        try:
            return cls(**{k: data[k] for k in ("backbone", "layer", "image_size", "grid")})
        except (KeyError, TypeError):
            raise A3Error(f"features of this checkpoint cannot be made from images: {data}") from None


def grid_cells(spec: dict, needed: bool = True) -> int:
    """How many grid cells a feature vector of `spec` (FeatureSpec.as_dict()) holds: what a cell that reads
    tokens reads, one per grid cell.

    Flat vectors (layer "pooled", a grid of 1, the assignment's fc7) are one cell; where a grid is
    `needed` (attention has nothing to attend over) they are refused in one line that says what to give.
    """
    layer, grid = spec.get("layer"), spec.get("grid")
    if layer is None or layer == "pooled" or not isinstance(grid, int) or grid < 2:
        if not needed:
            return 1
        what = " ".join(str(part) for part in (spec.get("backbone"), layer) if part)
        raise A3Error(
            f"--cell-type attention attends over a grid of image features, but these ({what}"
            f"{', grid 1' if grid == 1 else ''}) are one flat vector per image: extract a grid from "
            "images with --layer STAGE --grid N (N >= 2), or use --cell-type lstm"
        )
    return grid * grid


def extract_features(
    backbone,
    images: Sequence[Image.Image] | Callable[[int], Image.Image],
    count: int | None,
    spec: FeatureSpec,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> torch.Tensor:
    """(N, D) float32 features on the CPU; `images` is a list or a function i -> image (to stream)."""
    if callable(images):
        if count is None:
            raise TypeError("extract_features: give `count` with a function of i")
        get = images
    else:
        get, count = images.__getitem__, len(images) if count is None else count
    out = []
    with torch.no_grad():
        for start in range(0, count, batch_size):
            batch = [get(i) for i in range(start, min(start + batch_size, count))]
            out.append(features_of(backbone, batch, spec).cpu())
            report(progress, min(start + batch_size, count), {})
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def features_of(backbone, images: Sequence[Image.Image], spec: FeatureSpec) -> torch.Tensor:
    """Features of a few PIL images, on the backbone's device."""
    with torch.no_grad():
        if spec.layer == "pooled":
            return backbone.pooled(backbone.preprocess(images, size=spec.image_size, crop=True)).float()
        size = (spec.image_size, spec.image_size)
        x = torch.stack([to_tensor(img.convert("RGB").resize(size, Image.Resampling.BILINEAR)) for img in images])
        fmap = backbone.features(backbone.normalize(x.to(backbone.device)), [spec.layer])[0]
        return F.adaptive_avg_pool2d(fmap, spec.grid).flatten(1).float()


def cache_dir() -> Path:
    """Where extracted features are kept: $A3_CACHE, or ~/.cache/a3 ($XDG_CACHE_HOME respected)."""
    if os.environ.get("A3_CACHE"):
        return Path(os.environ["A3_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "a3"


def cache_path(key_parts: dict, folder: Path | None = None) -> Path:
    """The cache file of the features that `key_parts` describe."""
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:20]
    return (folder or cache_dir()) / "features" / f"{key}.pt"


def cached_features(key_parts: dict, make: Callable[[], torch.Tensor], folder: Path | None = None) -> torch.Tensor:
    """Features keyed by a hash of what made them (backbone, settings, file list): made once, then read."""
    path = cache_path(key_parts, folder)
    if path.is_file():
        try:
            state = load_checkpoint(path, kind="features")
            if state.get("key") == key_parts:
                return state["features"]
        except A3Error:
            pass  # a damaged cache file is made again
    why = unwritable(path.parent)
    if why is not None:  # said before the work, and the work is done all the same
        warnings.warn(
            A3Note(f"the feature cache '{path.parent}' cannot be written ({why}): features are not kept"), stacklevel=2
        )
    features = make()
    if why is None:
        try:
            save_checkpoint({"kind": "features", "key": key_parts, "features": features}, path)
        except WriteError as error:  # the disk filled up during the work
            warnings.warn(A3Note(f"features are not kept: {error}"), stacklevel=2)
    return features
