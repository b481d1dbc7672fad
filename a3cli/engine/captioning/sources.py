"""Which data a captioner trains on: one of five sources, chosen by options (config.CaptionSource), with its
features.

`CaptionSource` holds the options as given (None: not given, so a resumed run takes
its own value); `load_source` picks the source and fills in each source's defaults.
"""

from __future__ import annotations

from pathlib import Path

import torch

from a3cli.engine.captioning.coco import (
    h5_feature_spec,
    listed_coco_json,
    listed_coco_layout,
    load_coco_h5,
    load_coco_json,
)
from a3cli.engine.captioning.config import CaptionSource
from a3cli.engine.captioning.data import CaptionData
from a3cli.engine.captioning.features import FeatureSpec
from a3cli.engine.captioning.karpathy import listed_karpathy, train_splits
from a3cli.engine.captioning.listed import ListedCaptions, ListedCheck, check_listed, drop_absent, load_listed
from a3cli.engine.captioning.shapes import SHAPES_FEATURES, load_shapes
from a3cli.engine.catalogue import CAPTION_JSON_DEFAULTS
from a3cli.engine.errors import A3Error
from a3cli.engine.progress import Progress


def feature_spec(source: CaptionSource) -> dict:
    """How the chosen source's features are made, known before any is extracted."""
    kind = source.kind()
    if kind == "coco_h5":
        return h5_feature_spec(source.pca is not False)
    default = SHAPES_FEATURES if kind == "shapes" else FeatureSpec()
    return FeatureSpec(
        backbone=source.model or default.backbone,
        layer=source.layer or default.layer,
        image_size=source.image_size or default.image_size,
        grid=source.grid or default.grid,
    ).as_dict()


def load_source(
    source: CaptionSource,
    device: torch.device,
    vocab: tuple[dict, list] | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> CaptionData:
    """The chosen source's data; with no option at all, shapes. `vocab` reuses a run's vocabulary."""
    from a3cli.engine.backbones.registry import load_backbone

    kind = source.check()
    if kind == "coco_h5":
        assert source.data is not None  # (kind() saw it)
        return load_coco_h5(source.data, pca=source.pca is not False, max_train=source.max_train, seed=seed)
    backbone = lambda name: load_backbone(name, device)  # noqa: E731
    spec = FeatureSpec.from_dict(feature_spec(source))
    min_count = source.min_count or CAPTION_JSON_DEFAULTS["min_count"]
    max_length = source.max_length or CAPTION_JSON_DEFAULTS["max_length"]
    if kind in ("karpathy", "coco"):
        listed = drop_absent(listed_captions(source))
        return load_listed(listed, spec, backbone, min_count, max_length, source.max_train, vocab, progress, seed)
    if kind == "coco_json":
        assert source.images is not None and source.annotations is not None  # (kind() saw them)
        return load_coco_json(
            source.images,
            source.annotations,
            spec,
            backbone,
            min_count,
            max_length,
            max_train=source.max_train,
            vocab=vocab,
            progress=progress,
            seed=seed,
        )
    sizes = {"train": source.train_images} if source.train_images else None
    return load_shapes(backbone, spec, sizes=sizes, max_train=source.max_train, progress=progress)


def listed_captions(source: CaptionSource) -> ListedCaptions:
    """The images and captions a file source lists (before any file is opened)."""
    kind = source.check()
    if kind == "coco":
        assert source.coco is not None  # (kind() saw it)
        return listed_coco_layout(source.coco)
    if kind == "karpathy":
        assert source.karpathy is not None and source.images is not None  # (kind() saw them)
        return listed_karpathy(source.karpathy, source.images, train_splits(source.train_splits))
    if kind == "coco_json":
        assert source.images is not None and source.annotations is not None  # (kind() saw them)
        return listed_coco_json(Path(source.images), Path(source.annotations))
    raise A3Error("--check reads captions files: give --images/--annotations, --karpathy or --coco")


def check_files(source: CaptionSource, device: torch.device) -> ListedCheck:
    """What training would read: every image resolved, the counts, the vocabulary, extraction timed."""
    from a3cli.engine.backbones.registry import load_backbone

    return check_listed(
        listed_captions(source),
        FeatureSpec.from_dict(feature_spec(source)),
        lambda name: load_backbone(name, device),
        source.min_count or CAPTION_JSON_DEFAULTS["min_count"],
    )
