"""Pretrained ImageNet classifiers, all presented the same way.

Every backbone is an ordered list of named stages (the trunk, whose outputs are the
feature layers style transfer picks from), a head that turns the last stage into
logits, a pooled feature vector (for captioning), its pre/de-processing and the 1000
class names. Commands never care which network is behind it. What differs between
backbones is one record each in `a3cli.engine.catalogue`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from a3cli.engine.backbones.builders import BUILDERS, Stage
from a3cli.engine.backbones.imagenet_classes import IMAGENET_CLASSES
from a3cli.engine.backbones.weights import fit_weights, read_state_dict, weights_file
from a3cli.engine.catalogue import BACKBONES, DEFAULT_BACKBONE, BackboneRecord
from a3cli.engine.errors import A3Error
from a3cli.engine.images import resize_shorter_side, shorter_side_size, to_tensor

Prediction = tuple[int, str, float]  # (class index, class name, probability)


@lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names in torchvision's order (no download needed)."""
    return list(IMAGENET_CLASSES)


@dataclass
class Backbone:
    """A frozen pretrained classifier with named feature layers."""

    name: str
    model: nn.Module
    stages: list[tuple[str, Stage]]
    head: Callable[[torch.Tensor], torch.Tensor]  # last stage output -> logits
    pool: Callable[[torch.Tensor], torch.Tensor]  # last stage output -> (N, feature_dim)
    feature_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str
    image_size: int = 224
    classes: list[str] = field(default_factory=imagenet_classes, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def layer_names(self) -> list[str]:
        return [name for name, _ in self.stages]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], (N, 3, H, W) -> the network's input scale."""
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def deprocess(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input scale -> images in [0, 1] (not clamped)."""
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return x * std + mean

    def pixel_range(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised values of black and white, (1, 3, 1, 1) each: the bounds of a valid picture."""
        black = torch.zeros(1, 3, 1, 1, device=self.device, dtype=dtype)
        return self.normalize(black), self.normalize(black + 1)

    def top_classes(self, probs: torch.Tensor, k: int = 5) -> list[list[Prediction]]:
        """The k likeliest classes of each row of probabilities (N, classes)."""
        values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
        return [
            [(int(i), self.classes[int(i)], float(p)) for p, i in zip(row_p, row_i)]
            for row_p, row_i in zip(values.cpu(), indices.cpu())
        ]

    def preprocess(
        self, images: Image.Image | Sequence[Image.Image], size: int | None = None, crop: bool = True
    ) -> torch.Tensor:
        """PIL images -> a normalised batch on the backbone's device.

        With `crop` (classification) the shorter side goes to size·256/224 and the
        centre size×size is kept, as these networks were evaluated; without it the
        shorter side goes to `size` and the aspect ratio is kept (single images only).
        An image that already is size×size goes in unchanged: resampling the
        224-px pictures that `a3 fool` and `a3 classvis` write would change them.
        """
        if isinstance(images, Image.Image):
            images = [images]
        size = size or self.image_size
        batch = []
        for img in images:
            if img.size == (size, size):
                batch.append(to_tensor(img.convert("RGB")))
                continue
            img = resize_shorter_side(img.convert("RGB"), self.resized_side(size, crop))
            if crop:
                left, top = (img.width - size) // 2, (img.height - size) // 2
                img = img.crop((left, top, left + size, top + size))
            batch.append(to_tensor(img))
        if not crop and len({t.shape for t in batch}) > 1:
            raise ValueError("uncropped images of different shapes cannot form one batch")
        return self.normalize(torch.stack(batch).to(self.device))

    def resized_side(self, size: int | None = None, crop: bool = True) -> int:
        """The shorter side `preprocess` resizes an image to: size·256/224 before the crop, else size."""
        size = size or self.image_size
        return round(size * 256 / 224) if crop else size

    def check_resizable(self, images: Sequence[Image.Image]) -> None:
        """Refuse, before any work, an image `preprocess` could not resize (too elongated)."""
        for img in images:
            if img.size != (self.image_size, self.image_size):
                shorter_side_size(img, self.resized_side())

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> list[torch.Tensor]:
        """Outputs of the named stages, in the order asked; stops after the deepest one."""
        unknown = [name for name in layers if name not in self.layer_names]
        if unknown:
            raise A3Error(f"{self.name} has no layer {unknown[0]!r}; its layers are: {', '.join(self.layer_names)}")
        wanted = set(layers)
        deepest = max(self.layer_names.index(name) for name in layers)
        found = {}
        for name, stage in self.stages[: deepest + 1]:
            x = stage(x)
            if name in wanted:
                found[name] = x
        return [found[name] for name in layers]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for _, stage in self.stages:
            x = stage(x)
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """One feature vector per image, (N, feature_dim): what a captioner sees."""
        return self.pool(self.trunk(x))


def backbone_names() -> list[str]:
    return list(BACKBONES)


def backbone_record(name: str) -> BackboneRecord:
    """The catalogue's record for `name`, or a clear error listing the choices."""
    record = BACKBONES.get(name)
    if record is None:
        raise A3Error(f"unknown model {name!r}; choose one of: {', '.join(BACKBONES)}")
    return record


def build_backbone(name: str) -> Backbone:
    """The backbone with random weights, frozen (`load_backbone` loads the pretrained ones)."""
    record = backbone_record(name)
    parts = BUILDERS[record.builder](record)
    parts.model.eval().requires_grad_(False)
    return Backbone(
        name=name,
        model=parts.model,
        stages=parts.stages,
        head=parts.head,
        pool=parts.pool,
        feature_dim=record.feature_dim,
        mean=record.mean,
        std=record.std,
        source="random weights",
        image_size=record.image_size,
    )


def load_backbone(
    name: str = DEFAULT_BACKBONE, device: torch.device | str = "cpu", weights: str | Path | None = None
) -> Backbone:
    """Build a backbone, load its pretrained weights (or `weights`), freeze it and move it to `device`."""
    backbone = build_backbone(name)
    if weights is not None:
        path = Path(weights)
        backbone.source = f"file {path}"
    else:
        path, backbone.source = weights_file(BACKBONES[name])
    fit_weights(backbone.model, read_state_dict(path, name), name, path)
    backbone.model.to(device)
    return backbone


def classify(
    backbone: Backbone, images: Sequence[Image.Image], top: int = 5, batch_size: int = 32
) -> list[list[Prediction]]:
    """Top-k (index, class name, probability) for each image, in batches."""
    with torch.no_grad():
        probs = torch.cat(
            [
                backbone.logits(backbone.preprocess(images[i : i + batch_size])).softmax(dim=1)
                for i in range(0, len(images), batch_size)
            ]
        )
    return backbone.top_classes(probs, top)
