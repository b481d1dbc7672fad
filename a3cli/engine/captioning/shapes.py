"""shapes: a synthetic captioning data set, generated offline and deterministically (the default).

Its captions name positions ("left of", "above"), which a globally pooled feature
cannot see, so its features keep a coarse grid.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw

from a3cli.engine.captioning.data import CaptionData, Split, standardize
from a3cli.engine.captioning.features import FeatureSpec, cached_features, extract_features
from a3cli.engine.captioning.vocab import SPECIAL_TOKENS, encode, tokenize
from a3cli.engine.catalogue import CAPTION_SHAPES_FEATURES, CAPTION_SHAPES_SPLITS
from a3cli.engine.errors import A3Error
from a3cli.engine.progress import Progress

SHAPES_VERSION = 1
SHAPE_COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 190),
    "white": (235, 235, 235),
}
SHAPE_KINDS = ("circle", "square", "triangle", "diamond")
SHAPE_SIZES = {"small": 0.09, "large": 0.16}  # radius as a fraction of the image side
SHAPES_SPLITS = CAPTION_SHAPES_SPLITS
SHAPES_SEEDS = {"train": 1, "val": 2, "test": 3}
SHAPES_FEATURES = FeatureSpec(**CAPTION_SHAPES_FEATURES)
SHAPES_IMAGE_SIZE = 128
SHAPES_MAX_WORDS = 3 * 4 + 2 * 2  # three "a size color kind" and two relations


@dataclass
class ShapeScene:
    """What one shapes image shows; `caption()` is a function of it, so captions are unambiguous."""

    objects: list[tuple[str, str, str, float, float]]  # (size, color, kind, x, y), x and y in 0..1
    relation: str = ""  # "left of" or "above" when there are several, listed in that order
    background: int = 40

    def caption(self) -> str:
        parts = [f"a {size} {color} {kind}" for size, color, kind, _, _ in self.objects]
        return f" {self.relation} ".join(parts)


def shapes_scene(rng: random.Random) -> ShapeScene:
    """One to three shapes; several are laid out in a row (left of) or a column (above)."""
    count = rng.choice((1, 2, 3))
    objects = []
    relation = rng.choice(("left of", "above")) if count > 1 else ""
    for k in range(count):
        size = rng.choice(tuple(SHAPE_SIZES))
        color = rng.choice(tuple(SHAPE_COLORS))
        kind = rng.choice(SHAPE_KINDS)
        if count == 1:
            along, across = rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75)
        else:
            # Slot k of `count` along the row or column, jittered; anywhere across it.
            along = (k + 0.5) / count + rng.uniform(-0.04, 0.04)
            across = rng.uniform(0.25, 0.75)
        x, y = (along, across) if relation != "above" else (across, along)
        objects.append((size, color, kind, x, y))
    return ShapeScene(objects, relation, background=rng.randint(20, 70))


def draw_scene(scene: ShapeScene, size: int = SHAPES_IMAGE_SIZE) -> Image.Image:
    img = Image.new("RGB", (size, size), (scene.background,) * 3)
    draw = ImageDraw.Draw(img)
    for size_name, color, kind, x, y in scene.objects:
        r = SHAPE_SIZES[size_name] * size
        cx, cy = x * size, y * size
        fill = SHAPE_COLORS[color]
        if kind == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif kind == "square":
            s = r * 0.85
            draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
        elif kind == "triangle":
            h = r * math.sqrt(3) / 2
            draw.polygon([(cx, cy - r), (cx - r, cy + h * 0.9), (cx + r, cy + h * 0.9)], fill=fill)
        else:  # diamond
            draw.polygon([(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)], fill=fill)
    return img


def shapes_split(split: str, count: int | None = None) -> list[ShapeScene]:
    """The scenes of a split: the same on every machine (each split has its own fixed seed)."""
    if split not in SHAPES_SPLITS:
        raise A3Error(f"shapes has no split {split!r}; choose one of: {', '.join(SHAPES_SPLITS)}")
    rng = random.Random(f"a3-shapes-{SHAPES_VERSION}-{SHAPES_SEEDS[split]}")
    return [shapes_scene(rng) for _ in range(SHAPES_SPLITS[split] if count is None else count)]


def count_objects(tokens: Sequence[str]) -> int:
    """How many shapes a shapes caption names (one kind word each)."""
    return sum(word in SHAPE_KINDS for word in tokens)


def shapes_captions(scenes: Sequence[ShapeScene], word_to_idx: dict[str, int]) -> torch.Tensor:
    """The scenes' captions encoded as the captioner reads them: (M, SHAPES_MAX_WORDS + 2)."""
    return torch.tensor([encode(tokenize(s.caption()), word_to_idx, SHAPES_MAX_WORDS) for s in scenes])


def shapes_vocab() -> tuple[dict[str, int], list[str]]:
    """Every word the grammar can produce, so the vocabulary does not depend on the sample."""
    words = ["a", *SHAPE_SIZES, *SHAPE_COLORS, *SHAPE_KINDS, "left", "of", "above"]
    idx_to_word = list(SPECIAL_TOKENS) + words
    return {w: i for i, w in enumerate(idx_to_word)}, idx_to_word


def load_shapes(
    backbone_loader: Callable,
    spec: FeatureSpec = SHAPES_FEATURES,
    sizes: dict[str, int] | None = None,
    max_train: int | None = None,
    progress: Progress | None = None,
) -> CaptionData:
    """The shapes data set with features of `spec`, extracted once and cached on disk."""
    sizes = {**SHAPES_SPLITS, **(sizes or {})}
    word_to_idx, idx_to_word = shapes_vocab()
    splits = {}
    for name in SHAPES_SPLITS:
        scenes = shapes_split(name, sizes[name])
        key = {
            "dataset": "shapes",
            "version": SHAPES_VERSION,
            "split": name,
            "count": len(scenes),
            "spec": spec.as_dict(),
        }

        def make(scenes=scenes) -> torch.Tensor:
            backbone = backbone_loader(spec.backbone)
            return extract_features(backbone, lambda i: draw_scene(scenes[i]), len(scenes), spec, progress=progress)

        features = cached_features(key, make)
        captions = shapes_captions(scenes, word_to_idx)
        image_idxs = torch.arange(len(scenes))
        if name == "train" and max_train is not None and max_train < len(captions):
            captions, image_idxs = captions[:max_train], image_idxs[:max_train]
        splits[name] = Split(captions, image_idxs, features, [f"shapes:{name}:{i}" for i in range(len(scenes))])
    norm = standardize(splits)
    return CaptionData(word_to_idx, idx_to_word, splits, spec.as_dict(), "shapes", norm)
