"""Image files and their captions, by split, as a captions file lists them: what the file sources share.

A source (a COCO-format JSON, a Karpathy split file, COCO's folder layout) reads its file
into `ListedCaptions`; `load_listed` builds the vocabulary from the training captions,
extracts every image's features once (cached) and makes the CaptionData; `check_listed`
says what loading would find and cost, without extracting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from a3cli.engine.captioning.data import CaptionData, Split, standardize
from a3cli.engine.captioning.features import FeatureSpec, cache_path, cached_features, extract_features, features_of
from a3cli.engine.captioning.vocab import build_vocab, encode
from a3cli.engine.device import seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.images import load_image
from a3cli.engine.progress import Progress


@dataclass
class ListedImage:
    path: Path
    captions: list[list[str]]  # tokenised


@dataclass
class ListedCaptions:
    source: str  # "coco_json", "karpathy" or "coco"
    splits: dict[str, list[ListedImage]]  # "train", "val" and maybe "test", in this order
    missing: list[Path] = field(default_factory=list)  # listed, but no such file
    unreadable: list[Path] = field(default_factory=list)  # listed, but not an image

    def images(self) -> list[ListedImage]:
        return [image for split in self.splits.values() for image in split]


def unreadable(path: Path) -> bool:
    """Whether a file is no image PIL can open (its header only is read: fast on many files)."""
    try:
        Image.open(path).close()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return True
    return False


def some_paths(paths: Sequence[Path | str], shown: int = 3) -> str:
    """Files named in a message: 'a.jpg', 'b.jpg', 'c.jpg' and 12 more."""
    named = ", ".join(f"'{path}'" for path in paths[:shown])
    return named + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def drop_absent(listed: ListedCaptions) -> ListedCaptions:
    """The images that exist and open; the others are counted in `missing` and `unreadable`, their captions dropped."""
    missing, bad = [], []
    splits: dict[str, list[ListedImage]] = {}
    for name, images in listed.splits.items():
        kept = []
        for image in images:
            if not image.path.is_file():
                missing.append(image.path)
            elif unreadable(image.path):
                bad.append(image.path)
            else:
                kept.append(image)
        splits[name] = kept
    if listed.splits.get("train") and not splits.get("train"):  # refused before any feature is extracted
        absent = [image.path for image in listed.splits["train"]]
        raise A3Error(
            f"the training split has no images: all {len(absent)} listed are missing or unreadable "
            f"({some_paths(absent)})"
        )
    return ListedCaptions(listed.source, splits, listed.missing + missing, listed.unreadable + bad)


def cache_key(listed: ListedCaptions, spec: FeatureSpec) -> dict:
    """What the features depend on: the settings and every file (path, size, modification time)."""
    paths = [image.path for image in listed.images()]
    return {
        "spec": spec.as_dict(),
        "files": [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in paths],
    }


def load_listed(
    listed: ListedCaptions,
    spec: FeatureSpec,
    backbone_loader: Callable,
    min_count: int,
    max_length: int,
    max_train: int | None = None,
    vocab: tuple[dict, list] | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> CaptionData:
    """The captions encoded, the images' features (cached, standardised), the vocabulary of the training captions.

    `vocab` (word_to_idx, idx_to_word) reuses an existing vocabulary (resuming). With
    `max_train`, that many training captions are drawn at random (seeded with `seed`).
    """
    if vocab is None:
        word_to_idx, idx_to_word = build_vocab(
            (t for image in listed.splits["train"] for t in image.captions), min_count
        )
    else:
        word_to_idx, idx_to_word = vocab
    paths = [image.path for image in listed.images()]

    def make() -> torch.Tensor:
        backbone = backbone_loader(spec.backbone)
        return extract_features(backbone, lambda i: load_image(paths[i]), len(paths), spec, progress=progress)

    features = cached_features(cache_key(listed, spec), make)
    splits, offset = {}, 0
    for name, images in listed.splits.items():
        caps, idxs = [], []
        for k, image in enumerate(images):
            for tokens in image.captions:
                caps.append(encode(tokens, word_to_idx, max_length))
                idxs.append(k)
        captions = torch.tensor(caps, dtype=torch.long).reshape(len(caps), max_length + 2)
        image_idxs = torch.tensor(idxs, dtype=torch.long)
        if name == "train" and max_train is not None and max_train < len(captions):
            pick = torch.randperm(len(captions), generator=seeded_generator(seed))[:max_train]
            captions, image_idxs = captions[pick], image_idxs[pick]
        feats = features[offset : offset + len(images)]
        splits[name] = Split(captions, image_idxs, feats, [str(image.path) for image in images])
        offset += len(images)
    norm = standardize(splits)
    skipped = [str(p) for p in listed.missing + listed.unreadable]
    return CaptionData(word_to_idx, idx_to_word, splits, spec.as_dict(), listed.source, norm, skipped)


@dataclass
class ListedCheck:
    """What loading a listed source would find, and what extracting its features would cost."""

    images: dict[str, int]  # per split
    captions: dict[str, int]
    missing: list[str]
    unreadable: list[str]
    words: int  # vocabulary size at --min-count, the special tokens included
    min_count: int
    feature_dim: int
    seconds_per_image: float  # measured on a few images
    cached: bool  # the features are cached already: nothing to extract

    @property
    def total_images(self) -> int:
        return sum(self.images.values())

    @property
    def extraction_minutes(self) -> float:
        return self.seconds_per_image * self.total_images / 60

    @property
    def cache_bytes(self) -> int:
        return self.total_images * self.feature_dim * 4  # float32


def check_listed(
    listed: ListedCaptions, spec: FeatureSpec, backbone_loader: Callable, min_count: int, sample: int = 8
) -> ListedCheck:
    """Every image resolved (missing and unreadable files counted), the vocabulary built, extraction timed.

    The time is measured on up to `sample` images after a warm-up batch of as many
    (the first batch pays for setting up), with the backbone on the device it will
    extract on.
    """
    present = drop_absent(listed)
    images = present.images()
    word_to_idx, _ = build_vocab((t for image in present.splits["train"] for t in image.captions), min_count)
    cached = bool(images) and cache_path(cache_key(present, spec)).is_file()
    dim, per_image = 0, 0.0
    if images:
        backbone = backbone_loader(spec.backbone)
        timed = images[sample : 2 * sample] or images[:sample]
        dim = features_of(backbone, [load_image(image.path) for image in images[:sample]], spec).shape[1]
        started = time.perf_counter()  # reading the files is part of extracting
        pictures = [load_image(image.path) for image in timed]
        features = features_of(backbone, pictures, spec)
        float(features.sum())  # wait for the device
        per_image = (time.perf_counter() - started) / len(pictures)
    return ListedCheck(
        images={name: len(split) for name, split in present.splits.items()},
        captions={name: sum(len(image.captions) for image in split) for name, split in present.splits.items()},
        missing=[str(p) for p in present.missing],
        unreadable=[str(p) for p in present.unreadable],
        words=len(word_to_idx),
        min_count=min_count,
        feature_dim=dim,
        seconds_per_image=per_image,
        cached=cached,
    )
