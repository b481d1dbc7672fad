"""Which data a captioner trains on: one of five sources, chosen by options, with its features.

`CaptionSource` holds the options as given (None: not given, so a resumed run takes
its own value); `load` picks the source and fills in each source's defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional

import torch

from a3cli.engine.captioning.coco import (
    h5_feature_spec,
    listed_coco_json,
    listed_coco_layout,
    load_coco_h5,
    load_coco_json,
)
from a3cli.engine.captioning.data import CaptionData
from a3cli.engine.captioning.features import FeatureSpec
from a3cli.engine.captioning.karpathy import listed_karpathy, train_splits
from a3cli.engine.captioning.listed import ListedCaptions, ListedCheck, check_listed, drop_absent, load_listed
from a3cli.engine.captioning.shapes import SHAPES_FEATURES, load_shapes
from a3cli.engine.catalogue import CAPTION_JSON_DEFAULTS
from a3cli.engine.errors import A3Error
from a3cli.engine.progress import Progress


@dataclass
class CaptionSource:
    data: Optional[str] = None  # the assignment's coco_captioning folder (HDF5 + JSON) ...
    pca: Optional[bool] = None  # ... with its 512-d PCA features (default) or the 4096-d fc7
    images: Optional[str] = None  # a folder of images ...
    annotations: Optional[str] = None  # ... and their COCO-format captions JSON
    karpathy: Optional[str] = None  # or a Karpathy split file for the --images folder ...
    train_splits: Optional[str] = None  # ... training on these of its splits (KARPATHY_TRAIN_SPLITS)
    coco: Optional[str] = None  # a COCO 2014 or 2017 download in its own layout
    dataset: Optional[str] = None  # the built-in data set: shapes (the default)
    model: Optional[str] = None  # backbone, stage, grid and image size of the features
    layer: Optional[str] = None
    grid: Optional[int] = None
    image_size: Optional[int] = None
    min_count: Optional[int] = None  # JSON: words seen fewer times become <UNK> (CAPTION_JSON_DEFAULTS)
    max_length: Optional[int] = None  # JSON: longest training caption in words (CAPTION_JSON_DEFAULTS)
    max_train: Optional[int] = None  # train on this many captions only
    train_images: Optional[int] = None  # shapes: how many training images to draw (CAPTION_SHAPES_SPLITS)

    def settings(self) -> dict[str, Any]:
        """The options as given, for the checkpoint (paths as text)."""
        return {name: str(v) if isinstance(v, Path) else v for name, v in asdict(self).items()}

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> CaptionSource:
        return cls(**{f.name: settings.get(f.name) for f in fields(cls)})

    def kind(self) -> str:
        """Which source the options choose: "coco_h5", "coco_json", "karpathy", "coco" or "shapes" (the default)."""
        chosen = [
            name
            for name, value in (
                ("--data", self.data),
                ("--karpathy", self.karpathy),
                ("--images/--annotations", self.annotations or (self.images and not self.karpathy)),
                ("--coco", self.coco),
                ("--dataset", self.dataset),
            )
            if value
        ]
        if len(chosen) > 1:
            raise A3Error(f"choose one data source, not {' and '.join(chosen)}")
        if self.train_splits is not None and self.karpathy is None:
            raise A3Error("--train-splits is for --karpathy (the splits of a Karpathy file)")
        if self.data is not None:
            return "coco_h5"
        if self.coco is not None:
            return "coco"
        if self.karpathy is not None:
            if self.images is None:
                raise A3Error("--karpathy needs --images DIR, the folder its file names are in")
            return "karpathy"
        if self.images is not None or self.annotations is not None:
            if self.images is None or self.annotations is None:
                raise A3Error("--images and --annotations go together")
            return "coco_json"
        if (self.dataset or "shapes") != "shapes":
            raise A3Error(f"--dataset {self.dataset!r}: the built-in data set is 'shapes'")
        return "shapes"

    def check(self) -> str:
        """The source's kind, once the options that only one source takes are checked."""
        kind = self.kind()
        if self.train_images is not None and kind != "shapes":
            raise A3Error("--train-images is for the built-in shapes data set (other sources have their own images)")
        return kind

    def feature_spec(self) -> dict:
        """How the chosen source's features are made, known before any is extracted."""
        kind = self.kind()
        if kind == "coco_h5":
            return h5_feature_spec(self.pca is not False)
        default = SHAPES_FEATURES if kind == "shapes" else FeatureSpec()
        return FeatureSpec(
            backbone=self.model or default.backbone,
            layer=self.layer or default.layer,
            image_size=self.image_size or default.image_size,
            grid=self.grid or default.grid,
        ).as_dict()

    def load(
        self,
        device: torch.device,
        vocab: tuple[dict, list] | None = None,
        progress: Progress | None = None,
        seed: int = 0,
    ) -> CaptionData:
        """The chosen source's data; with no option at all, shapes. `vocab` reuses a run's vocabulary."""
        from a3cli.engine.backbones.registry import load_backbone

        kind = self.check()
        if kind == "coco_h5":
            assert self.data is not None  # (kind() saw it)
            return load_coco_h5(self.data, pca=self.pca is not False, max_train=self.max_train, seed=seed)
        backbone = lambda name: load_backbone(name, device)  # noqa: E731
        spec = FeatureSpec.from_dict(self.feature_spec())
        if kind in ("karpathy", "coco"):
            return load_listed(
                drop_absent(self.listed()),
                spec,
                backbone,
                self.min_count or CAPTION_JSON_DEFAULTS["min_count"],
                self.max_length or CAPTION_JSON_DEFAULTS["max_length"],
                self.max_train,
                vocab,
                progress,
                seed,
            )
        if kind == "coco_json":
            assert self.images is not None and self.annotations is not None  # (kind() saw them)
            return load_coco_json(
                self.images,
                self.annotations,
                spec,
                backbone,
                self.min_count or CAPTION_JSON_DEFAULTS["min_count"],
                self.max_length or CAPTION_JSON_DEFAULTS["max_length"],
                max_train=self.max_train,
                vocab=vocab,
                progress=progress,
                seed=seed,
            )
        sizes = {"train": self.train_images} if self.train_images else None
        return load_shapes(backbone, spec, sizes=sizes, max_train=self.max_train, progress=progress)

    def listed(self) -> ListedCaptions:
        """The images and captions a file source lists (before any file is opened)."""
        kind = self.check()
        if kind == "coco":
            assert self.coco is not None  # (kind() saw it)
            return listed_coco_layout(self.coco)
        if kind == "karpathy":
            assert self.karpathy is not None and self.images is not None  # (kind() saw them)
            return listed_karpathy(self.karpathy, self.images, train_splits(self.train_splits))
        if kind == "coco_json":
            assert self.images is not None and self.annotations is not None  # (kind() saw them)
            return listed_coco_json(Path(self.images), Path(self.annotations))
        raise A3Error("--check reads captions files: give --images/--annotations, --karpathy or --coco")

    def check_files(self, device: torch.device) -> ListedCheck:
        """What training would read: every image resolved, the counts, the vocabulary, extraction timed."""
        from a3cli.engine.backbones.registry import load_backbone

        return check_listed(
            self.listed(),
            FeatureSpec.from_dict(self.feature_spec()),
            lambda name: load_backbone(name, device),
            self.min_count or CAPTION_JSON_DEFAULTS["min_count"],
        )
