"""Captioning data: vocabulary, tokenising, image features, and the three sources.

Every source ends as one `CaptionData`: a vocabulary in the assignment's form
(`word_to_idx`, `idx_to_word`, with `<NULL> <START> <END> <UNK>` first), and per
split the encoded captions (M, T) with `<START> ... <END>` padded by `<NULL>`,
the index of each caption's image, and one feature vector per image.

- `load_coco_h5(dir)`: the assignment's `coco_captioning` folder (HDF5 + JSON),
  whose features are already extracted (VGG16 fc7, or its 512-d PCA).
- `load_coco_json(images, annotations)`: a COCO-format captions file and its
  images; features come from a backbone once and are cached on disk.
- `load_shapes()`: a synthetic data set generated offline and deterministically,
  the default. Its captions name positions ("left of", "above"), which a
  globally pooled feature cannot see, so its features keep a coarse grid.

`FeatureSpec` says how features were made; a checkpoint stores it so that
sampling a new image extracts exactly the same kind of feature.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from a3cli.engine.errors import A3Error
from a3cli.engine.progress import Progress, report

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIAL_TOKENS = (NULL, START, END, UNK)


# ---------------------------------------------------------------------------------------------
# Vocabulary and tokens


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers; punctuation goes (as in the assignment's preprocessing)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def build_vocab(token_lists: Iterable[Sequence[str]], min_count: int = 1) -> tuple[dict[str, int], list[str]]:
    """Special tokens first, then words seen at least `min_count` times, most frequent first."""
    counts = Counter(word for tokens in token_lists for word in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    idx_to_word = list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS]
    return {w: i for i, w in enumerate(idx_to_word)}, idx_to_word


def encode(tokens: Sequence[str], word_to_idx: dict[str, int], max_length: int) -> list[int]:
    """`<START>` words `<END>`, padded with `<NULL>` to max_length + 2; unknown words become `<UNK>`."""
    unk = word_to_idx[UNK]
    ids = [word_to_idx.get(w, unk) for w in tokens[:max_length]]
    ids = [word_to_idx[START]] + ids + [word_to_idx[END]]
    return ids + [word_to_idx[NULL]] * (max_length + 2 - len(ids))


def decode(ids: Iterable[int], idx_to_word: Sequence[str]) -> list[str]:
    """Words up to the first `<END>`, without `<NULL>` and `<START>`."""
    words = []
    for i in ids:
        word = idx_to_word[int(i)]
        if word == END:
            break
        if word not in (NULL, START):
            words.append(word)
    return words


# ---------------------------------------------------------------------------------------------
# The data set every source produces


@dataclass
class Split:
    captions: torch.Tensor  # (M, T) int64, <START> ... <END> <NULL>...
    image_idxs: torch.Tensor  # (M,) int64 index into features
    features: torch.Tensor  # (num_images, D) float32
    images: list[str]  # one reference per image: a URL, a file path, or "shapes:<split>:<i>"

    def __len__(self) -> int:
        return len(self.captions)


@dataclass
class CaptionData:
    word_to_idx: dict[str, int]
    idx_to_word: list[str]
    splits: dict[str, Split]
    feature_spec: dict  # how features were made (FeatureSpec.as_dict(), or a description)
    source: str  # "coco_h5", "coco_json" or "shapes"
    # Backbone features are standardised with the training split's mean and std (kept in the
    # checkpoint, applied again when sampling): raw activations reach tens and would saturate
    # the RNN from h0 on. The assignment's precomputed features are used as they are (None).
    feature_norm: dict[str, torch.Tensor] | None = None

    @property
    def input_dim(self) -> int:
        return next(iter(self.splits.values())).features.shape[1]

    def references(self, split: str) -> list[list[list[str]]]:
        """Ground-truth captions of every image of a split, as token lists (for BLEU)."""
        s = self.splits[split]
        refs: list[list[list[str]]] = [[] for _ in range(len(s.features))]
        for caption, idx in zip(s.captions.tolist(), s.image_idxs.tolist()):
            refs[idx].append(decode(caption, self.idx_to_word))
        return refs


# ---------------------------------------------------------------------------------------------
# Features from a backbone


@dataclass(frozen=True)
class FeatureSpec:
    """How an image becomes a feature vector.

    layer "pooled" is the backbone's own pooled feature (what the assignment's
    fc7 is for VGG16), from the centre crop at image_size. Any other layer name
    is a stage of the backbone: the whole image is resized to image_size squared
    and the stage's map is average-pooled to a grid×grid layout and flattened,
    which keeps where things are.
    """

    backbone: str = "efficientnet_lite0"
    layer: str = "pooled"
    image_size: int = 224
    grid: int = 1

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        try:
            return cls(**{k: data[k] for k in ("backbone", "layer", "image_size", "grid")})
        except (KeyError, TypeError):
            raise A3Error(f"features of this checkpoint cannot be made from images: {data}") from None


def extract_features(backbone, images: Sequence[Image.Image] | Callable[[int], Image.Image], count: int | None,
                     spec: FeatureSpec, batch_size: int = 64, progress: Progress | None = None) -> torch.Tensor:
    """(N, D) float32 features on the CPU; `images` is a list or a function i -> image (to stream)."""
    get = images.__getitem__ if not callable(images) else images
    count = len(images) if count is None else count
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
        from a3cli.engine.images import to_tensor

        size = (spec.image_size, spec.image_size)
        x = torch.stack([to_tensor(img.convert("RGB").resize(size, Image.BILINEAR)) for img in images])
        fmap = backbone.features(backbone.normalize(x.to(backbone.device)), [spec.layer])[0]
        return F.adaptive_avg_pool2d(fmap, spec.grid).flatten(1).float()


def standardize(splits: dict[str, Split]) -> dict[str, torch.Tensor]:
    """Standardise every split's features in place with the training split's statistics."""
    train = splits["train"].features
    norm = {"mean": train.mean(0), "std": train.std(0).clamp_min(1e-3) if len(train) > 1 else torch.ones(train.shape[1])}
    for split in splits.values():
        split.features = apply_norm(split.features, norm)
    return norm


def apply_norm(features: torch.Tensor, norm: dict[str, torch.Tensor] | None) -> torch.Tensor:
    if norm is None:
        return features
    return (features - norm["mean"].to(features.device)) / norm["std"].to(features.device)


def cache_dir() -> Path:
    """Where extracted features are kept: $A3_CACHE, or ~/.cache/a3 ($XDG_CACHE_HOME respected)."""
    if os.environ.get("A3_CACHE"):
        return Path(os.environ["A3_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "a3"


def cached_features(key_parts: dict, make: Callable[[], torch.Tensor], folder: Path | None = None) -> torch.Tensor:
    """Features keyed by a hash of what made them (backbone, settings, file list): made once, then read."""
    from a3cli.engine.checkpoints import load_checkpoint, save_checkpoint

    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:20]
    path = (folder or cache_dir()) / "features" / f"{key}.pt"
    if path.is_file():
        try:
            state = load_checkpoint(path, kind="features")
            if state.get("key") == key_parts:
                return state["features"]
        except A3Error:
            pass  # a damaged cache file is made again
    features = make()
    save_checkpoint({"kind": "features", "key": key_parts, "features": features}, path)
    return features


# ---------------------------------------------------------------------------------------------
# a. the assignment's coco_captioning folder


def _read_h5(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    import h5py

    if not path.is_file():
        raise A3Error(f"missing file '{path}' (expected the assignment's coco_captioning layout)")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in keys if k not in f]
            if missing:
                raise A3Error(f"'{path}' has no dataset {missing[0]!r} (has: {', '.join(f.keys()) or 'nothing'})")
            return {k: np.asarray(f[k]) for k in keys}
    except A3Error:
        raise
    except Exception as error:
        raise A3Error(f"cannot read HDF5 file '{path}': {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise A3Error(f"missing file '{path}'")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise A3Error(f"'{path}' is not valid JSON: {error}") from None


def load_coco_h5(folder: str | Path, pca: bool = True, max_train: int | None = None) -> CaptionData:
    """The assignment's `load_coco_data`: captions, features, vocabulary and URLs of train and val.

    With `max_train`, that many training captions are drawn at random (with
    replacement, from NumPy's global generator) as the assignment does.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise A3Error(f"--data '{folder}' is not a folder")
    caps = _read_h5(folder / "coco2014_captions.h5",
                    ("train_captions", "train_image_idxs", "val_captions", "val_image_idxs"))
    vocab = _read_json(folder / "coco2014_vocab.json")
    if not isinstance(vocab, dict) or not isinstance(vocab.get("idx_to_word"), list) or not isinstance(vocab.get("word_to_idx"), dict):
        raise A3Error(f"'{folder / 'coco2014_vocab.json'}' must hold 'idx_to_word' (a list) and 'word_to_idx' (an object)")
    idx_to_word = [str(w) for w in vocab["idx_to_word"]]
    word_to_idx = {str(w): int(i) for w, i in vocab["word_to_idx"].items()}
    for token in (NULL, START, END):
        if token not in word_to_idx:
            raise A3Error(f"the vocabulary in '{folder}' lacks the token {token}")
    suffix = "_pca" if pca else ""
    splits = {}
    for name in ("train", "val"):
        feats = _read_h5(folder / f"{name}2014_vgg16_fc7{suffix}.h5", ("features",))["features"]
        urls_file = folder / f"{name}2014_urls.txt"
        urls = urls_file.read_text().split() if urls_file.is_file() else [""] * len(feats)
        captions, idxs = caps[f"{name}_captions"], caps[f"{name}_image_idxs"]
        if captions.ndim != 2 or idxs.shape != (len(captions),) or feats.ndim != 2:
            raise A3Error(f"malformed {name} data in '{folder}': captions {captions.shape}, "
                          f"image_idxs {idxs.shape}, features {feats.shape}")
        if len(captions) and (captions.min() < 0 or captions.max() >= len(idx_to_word)):
            raise A3Error(f"{name}_captions in '{folder}' hold word indices outside the vocabulary of {len(idx_to_word)}")
        if len(idxs) and (idxs.min() < 0 or idxs.max() >= len(feats)):
            raise A3Error(f"{name}_image_idxs in '{folder}' point past the {len(feats)} feature rows")
        if name == "train" and max_train is not None and max_train < len(captions):
            pick = np.random.randint(len(captions), size=max_train)
            captions, idxs = captions[pick], idxs[pick]
        splits[name] = Split(torch.as_tensor(captions.astype(np.int64)), torch.as_tensor(idxs.astype(np.int64)),
                             torch.as_tensor(feats.astype(np.float32)), urls)
    dims = {s.features.shape[1] for s in splits.values()}
    if len(dims) > 1:
        raise A3Error(f"train and val features in '{folder}' differ in size: {sorted(dims)}")
    spec = {"backbone": "vgg16", "layer": "fc7", "pca": pca, "note": "the assignment's precomputed features"}
    return CaptionData(word_to_idx, idx_to_word, splits, spec, "coco_h5")


# ---------------------------------------------------------------------------------------------
# b. COCO-format captions JSON with a folder of images


def load_coco_json(images_dir: str | Path, annotations: str | Path, spec: FeatureSpec, backbone_loader: Callable,
                   min_count: int = 1, max_length: int = 16, val_fraction: float = 0.1,
                   max_train: int | None = None, vocab: tuple[dict, list] | None = None,
                   progress: Progress | None = None) -> CaptionData:
    """Captions of a COCO-format JSON, features of its images (cached), split into train and val by image.

    `vocab` (word_to_idx, idx_to_word) reuses an existing vocabulary (resuming);
    otherwise it is built from the training captions.
    """
    images_dir, annotations = Path(images_dir), Path(annotations)
    if not images_dir.is_dir():
        raise A3Error(f"--images '{images_dir}' is not a folder")
    data = _read_json(annotations)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise A3Error(f"'{annotations}' is not a COCO captions file: it needs 'images' and 'annotations' lists")
    files: dict[int, str] = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
            raise A3Error(f"'{annotations}': every image needs 'id' and 'file_name' (found {str(entry)[:80]})")
        files[entry["id"]] = str(entry["file_name"])
    by_image: dict[int, list[list[str]]] = {}
    for entry in data["annotations"]:
        if not isinstance(entry, dict) or "image_id" not in entry or not isinstance(entry.get("caption"), str):
            raise A3Error(f"'{annotations}': every annotation needs 'image_id' and 'caption' (found {str(entry)[:80]})")
        if entry["image_id"] not in files:
            raise A3Error(f"'{annotations}': annotation refers to image id {entry['image_id']} that is not listed")
        by_image.setdefault(entry["image_id"], []).append(tokenize(entry["caption"]))
    ids = sorted(by_image)
    if len(ids) < 2:
        raise A3Error(f"'{annotations}' has captions for {len(ids)} image(s); at least 2 are needed")
    for i in ids:
        if not (images_dir / files[i]).is_file():
            raise A3Error(f"image '{images_dir / files[i]}' listed in '{annotations}' does not exist")
    order = ids[:]
    random.Random(0).shuffle(order)  # the split depends on the file only, not on --seed
    n_val = max(1, round(len(order) * val_fraction))
    split_ids = {"train": sorted(order[n_val:]), "val": sorted(order[:n_val])}

    if vocab is None:
        word_to_idx, idx_to_word = build_vocab((t for i in split_ids["train"] for t in by_image[i]), min_count)
    else:
        word_to_idx, idx_to_word = vocab

    from a3cli.engine.images import load_image

    all_ids = split_ids["train"] + split_ids["val"]
    paths = [images_dir / files[i] for i in all_ids]
    key = {"spec": spec.as_dict(),
           "files": [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]}

    def make() -> torch.Tensor:
        backbone = backbone_loader(spec.backbone)
        return extract_features(backbone, lambda i: load_image(paths[i]), len(paths), spec, progress=progress)

    features = cached_features(key, make)
    offset = {"train": 0, "val": len(split_ids["train"])}
    splits = {}
    for name, image_ids in split_ids.items():
        caps, idxs = [], []
        for k, i in enumerate(image_ids):
            for tokens in by_image[i]:
                caps.append(encode(tokens, word_to_idx, max_length))
                idxs.append(k)
        captions, image_idxs = torch.tensor(caps), torch.tensor(idxs)
        if name == "train" and max_train is not None and max_train < len(captions):
            pick = torch.randperm(len(captions))[:max_train]
            captions, image_idxs = captions[pick], image_idxs[pick]
        feats = features[offset[name]: offset[name] + len(image_ids)]
        splits[name] = Split(captions, image_idxs, feats, [str(images_dir / files[i]) for i in image_ids])
    norm = standardize(splits)
    return CaptionData(word_to_idx, idx_to_word, splits, spec.as_dict(), "coco_json", norm)


# ---------------------------------------------------------------------------------------------
# c. shapes: a synthetic data set, generated offline and deterministically

SHAPES_VERSION = 1
SHAPE_COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 90, 230),
                "yellow": (235, 210, 40), "purple": (150, 60, 190), "white": (235, 235, 235)}
SHAPE_KINDS = ("circle", "square", "triangle", "diamond")
SHAPE_SIZES = {"small": 0.09, "large": 0.16}  # radius as a fraction of the image side
SHAPES_SPLITS = {"train": 10000, "val": 500, "test": 500}
SHAPES_SEEDS = {"train": 1, "val": 2, "test": 3}
# An early stage of a small image, pooled to a 4x4 grid (640-d): its cells stay local enough to say
# which colour, size and kind is where (a later stage mixes neighbours, and its captions confuse
# them), and it is cheap to extract (about 4 ms of CPU per image).
SHAPES_FEATURES = FeatureSpec(backbone="efficientnet_lite0", layer="block4", image_size=64, grid=4)
SHAPES_IMAGE_SIZE = 128


@dataclass
class ShapeScene:
    """What one shapes image shows; `caption()` is a function of it, so captions are unambiguous."""

    objects: list[tuple[str, str, str, float, float]]  # (size, color, kind, x, y), x and y in 0..1
    relation: str = ""  # "left of" or "above" when there are several, listed in that order
    background: int = 40
    extra: dict = field(default_factory=dict)

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


def shapes_vocab() -> tuple[dict[str, int], list[str]]:
    """Every word the grammar can produce, so the vocabulary does not depend on the sample."""
    words = ["a", *SHAPE_SIZES, *SHAPE_COLORS, *SHAPE_KINDS, "left", "of", "above"]
    idx_to_word = list(SPECIAL_TOKENS) + words
    return {w: i for i, w in enumerate(idx_to_word)}, idx_to_word


def load_shapes(backbone_loader: Callable, spec: FeatureSpec = SHAPES_FEATURES,
                sizes: dict[str, int] | None = None, max_train: int | None = None,
                progress: Progress | None = None) -> CaptionData:
    """The shapes data set with features of `spec`, extracted once and cached on disk."""
    sizes = {**SHAPES_SPLITS, **(sizes or {})}
    word_to_idx, idx_to_word = shapes_vocab()
    max_length = 3 * 4 + 2 * 2  # three "a size color kind" and two relations
    splits = {}
    for name in SHAPES_SPLITS:
        scenes = shapes_split(name, sizes[name])
        key = {"dataset": "shapes", "version": SHAPES_VERSION, "split": name, "count": len(scenes),
               "spec": spec.as_dict()}

        def make(scenes=scenes) -> torch.Tensor:
            backbone = backbone_loader(spec.backbone)
            return extract_features(backbone, lambda i: draw_scene(scenes[i]), len(scenes), spec, progress=progress)

        features = cached_features(key, make)
        captions = torch.tensor([encode(tokenize(s.caption()), word_to_idx, max_length) for s in scenes])
        image_idxs = torch.arange(len(scenes))
        if name == "train" and max_train is not None and max_train < len(captions):
            captions, image_idxs = captions[:max_train], image_idxs[:max_train]
        splits[name] = Split(captions, image_idxs, features, [f"shapes:{name}:{i}" for i in range(len(scenes))])
    norm = standardize(splits)
    return CaptionData(word_to_idx, idx_to_word, splits, spec.as_dict(), "shapes", norm)
