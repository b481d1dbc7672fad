"""The COCO sources: the assignment's coco_captioning folder, a COCO-format captions file, COCO's own layout.

- `load_coco_h5(dir)`: the assignment's folder (HDF5 + JSON), whose features are
  already extracted (VGG16 fc7, or its 512-d PCA).
- `load_coco_json(images, annotations)`: a COCO-format captions file and its images;
  features come from a backbone once and are cached on disk.
- `listed_coco_layout(dir)`: a COCO 2014 or 2017 download (train and val images and
  their captions files, found by their standard names), loaded like the captions file.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from a3cli.engine.captioning.data import CaptionData, Split
from a3cli.engine.captioning.features import FeatureSpec
from a3cli.engine.captioning.listed import ListedCaptions, ListedImage, load_listed
from a3cli.engine.captioning.vocab import END, NULL, START, tokenize
from a3cli.engine.catalogue import CAPTION_JSON_DEFAULTS
from a3cli.engine.errors import A3Error
from a3cli.engine.files import inside_folder, read_json
from a3cli.engine.progress import Progress


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
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise A3Error(f"cannot read HDF5 file '{path}': {reason}") from None


def load_coco_h5(folder: str | Path, pca: bool = True, max_train: int | None = None, seed: int = 0) -> CaptionData:
    """The assignment's `load_coco_data`: captions, features, vocabulary and URLs of train and val.

    With `max_train`, that many training captions are drawn at random with
    replacement, as the assignment does (NumPy's generator, seeded with `seed`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise A3Error(f"--data '{folder}' is not a folder")
    caps = _read_h5(
        folder / "coco2014_captions.h5", ("train_captions", "train_image_idxs", "val_captions", "val_image_idxs")
    )
    vocab = read_json(folder / "coco2014_vocab.json", "the vocabulary")
    if not (
        isinstance(vocab, dict)
        and isinstance(vocab.get("idx_to_word"), list)
        and isinstance(vocab.get("word_to_idx"), dict)
    ):
        raise A3Error(
            f"'{folder / 'coco2014_vocab.json'}' must hold 'idx_to_word' (a list) and 'word_to_idx' (an object)"
        )
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
            raise A3Error(
                f"malformed {name} data in '{folder}': captions {captions.shape}, "
                f"image_idxs {idxs.shape}, features {feats.shape}"
            )
        if len(captions) and (captions.min() < 0 or captions.max() >= len(idx_to_word)):
            raise A3Error(
                f"{name}_captions in '{folder}' hold word indices outside the vocabulary of {len(idx_to_word)}"
            )
        if len(idxs) and (idxs.min() < 0 or idxs.max() >= len(feats)):
            raise A3Error(f"{name}_image_idxs in '{folder}' point past the {len(feats)} feature rows")
        if name == "train" and max_train is not None and max_train < len(captions):
            pick = np.random.RandomState(seed % 2**32).randint(len(captions), size=max_train)
            captions, idxs = captions[pick], idxs[pick]
        splits[name] = Split(
            torch.as_tensor(captions.astype(np.int64)),
            torch.as_tensor(idxs.astype(np.int64)),
            torch.as_tensor(feats.astype(np.float32)),
            urls,
        )
    dims = {s.features.shape[1] for s in splits.values()}
    if len(dims) > 1:
        raise A3Error(f"train and val features in '{folder}' differ in size: {sorted(dims)}")
    return CaptionData(word_to_idx, idx_to_word, splits, h5_feature_spec(pca), "coco_h5")


def h5_feature_spec(pca: bool) -> dict:
    """What the assignment's features are: one flat VGG16 fc7 vector (or its PCA) per image."""
    return {"backbone": "vgg16", "layer": "fc7", "pca": pca, "note": "the assignment's precomputed features"}


def is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_coco_captions(
    images_dir: Path, annotations: Path, least: int = 2
) -> tuple[dict[int, str], dict[int, list[list[str]]]]:
    """The image files (by id) and tokenised captions (by image id) of a COCO-format JSON, checked.

    At least `least` images must have captions.
    """
    if not images_dir.is_dir():
        raise A3Error(f"--images '{images_dir}' is not a folder")
    data = read_json(annotations, "--annotations")
    if not (
        isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)
    ):
        raise A3Error(f"'{annotations}' is not a COCO captions file: it needs 'images' and 'annotations' lists")
    files: dict[int, str] = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or not is_id(entry.get("id")) or not isinstance(entry.get("file_name"), str):
            raise A3Error(
                f"'{annotations}': every image needs 'id' and 'file_name' (an integer and a name; "
                f"found {str(entry)[:80]})"
            )
        inside_folder(images_dir, entry["file_name"], annotations)
        files[entry["id"]] = entry["file_name"]
    by_image: dict[int, list[list[str]]] = {}
    for entry in data["annotations"]:
        if not isinstance(entry, dict) or not is_id(entry.get("image_id")) or not isinstance(entry.get("caption"), str):
            raise A3Error(
                f"'{annotations}': every annotation needs 'image_id' and 'caption' (an integer and a text; "
                f"found {str(entry)[:80]})"
            )
        if entry["image_id"] not in files:
            raise A3Error(f"'{annotations}': annotation refers to image id {entry['image_id']} that is not listed")
        by_image.setdefault(entry["image_id"], []).append(tokenize(entry["caption"]))
    if len(by_image) < least:
        raise A3Error(f"'{annotations}' has captions for {len(by_image)} image(s); at least {least} are needed")
    return files, by_image


def listed_coco_json(images_dir: Path, annotations: Path, val_fraction: float = 0.1) -> ListedCaptions:
    """A COCO-format JSON's images and captions, one image in ten held out for validation (by the file alone)."""
    files, by_image = read_coco_captions(images_dir, annotations)
    for i in sorted(by_image):
        if not (images_dir / files[i]).is_file():
            raise A3Error(f"image '{images_dir / files[i]}' listed in '{annotations}' does not exist")
    order = sorted(by_image)
    random.Random(0).shuffle(order)  # the split depends on the file only, not on --seed
    n_val = max(1, round(len(order) * val_fraction))
    split_ids = {"train": sorted(order[n_val:]), "val": sorted(order[:n_val])}
    return ListedCaptions(
        "coco_json",
        {name: [ListedImage(images_dir / files[i], by_image[i]) for i in ids] for name, ids in split_ids.items()},
    )


def load_coco_json(
    images_dir: str | Path,
    annotations: str | Path,
    spec: FeatureSpec,
    backbone_loader: Callable,
    min_count: int = CAPTION_JSON_DEFAULTS["min_count"],
    max_length: int = CAPTION_JSON_DEFAULTS["max_length"],
    val_fraction: float = 0.1,
    max_train: int | None = None,
    vocab: tuple[dict, list] | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> CaptionData:
    """Captions of a COCO-format JSON, features of its images (cached), split into train and val by image.

    `vocab` (word_to_idx, idx_to_word) reuses an existing vocabulary (resuming);
    otherwise it is built from the training captions. With `max_train`, that many
    training captions are drawn at random (seeded with `seed`).
    """
    listed = listed_coco_json(Path(images_dir), Path(annotations), val_fraction)
    return load_listed(listed, spec, backbone_loader, min_count, max_length, max_train, vocab, progress, seed)


# COCO's own layout: the images of each split in a folder, the captions in annotations/.
COCO_LAYOUTS = {
    year: {split: (f"{split}{year}", f"annotations/captions_{split}{year}.json") for split in ("train", "val")}
    for year in ("2017", "2014")
}


def coco_layout(folder: Path) -> dict[str, tuple[Path, Path]]:
    """The images folder and captions file of train and val in a COCO 2014 or 2017 download, found by name."""
    if not folder.is_dir():
        raise A3Error(f"--coco '{folder}' is not a folder")
    for year, layout in COCO_LAYOUTS.items():
        parts = [name for pair in layout.values() for name in pair]
        if any((folder / name).exists() for name in parts):
            found = {name: (folder / name).is_file() == name.endswith(".json") for name in parts}
            missing = [name for name in parts if not ((folder / name).exists() and found[name])]
            if missing:
                raise A3Error(
                    f"--coco '{folder}' looks like COCO {year} but lacks {', '.join(missing)} "
                    f"(expected {', '.join(parts)})"
                )
            return {split: (folder / images, folder / captions) for split, (images, captions) in layout.items()}
    expected = " or ".join(
        ", ".join(name for pair in layout.values() for name in pair) for layout in COCO_LAYOUTS.values()
    )
    raise A3Error(f"--coco '{folder}' holds no COCO layout: expected {expected}")


def listed_coco_layout(folder: str | Path) -> ListedCaptions:
    """COCO's train and val images and captions, from its folder layout."""
    splits = {}
    for split, (images_dir, captions_file) in coco_layout(Path(folder)).items():
        files, by_image = read_coco_captions(images_dir, captions_file, least=1)
        splits[split] = [ListedImage(images_dir / files[i], by_image[i]) for i in sorted(by_image)]
    return ListedCaptions("coco", splits)
