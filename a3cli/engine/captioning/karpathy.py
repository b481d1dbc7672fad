"""Karpathy's split files (dataset_coco.json, dataset_flickr8k.json, dataset_flickr30k.json): the splits the field uses.

Each image has a `filename` (under a `filepath` folder for COCO), a `split` of train,
restval, val or test, and `sentences` whose `tokens` are the caption's words. The
training split is the union of `train_splits` (train and restval, as the field trains);
val and test are a3's val and test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from a3cli.engine.captioning.listed import ListedCaptions, ListedImage
from a3cli.engine.captioning.vocab import tokenize
from a3cli.engine.catalogue import KARPATHY_SPLITS, KARPATHY_TRAIN_SPLITS
from a3cli.engine.errors import A3Error
from a3cli.engine.files import inside_folder, read_json


def train_splits(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """`--train-splits train,restval` as names, checked (None: the default)."""
    if spec is None:
        return KARPATHY_TRAIN_SPLITS
    names = tuple(name.strip() for name in (spec.split(",") if isinstance(spec, str) else spec) if name.strip())
    allowed = [s for s in KARPATHY_SPLITS if s not in ("val", "test")]
    if not names or any(name not in allowed for name in names):
        raise A3Error(f"--train-splits {','.join(names) or repr(spec)}: choose among {', '.join(allowed)}")
    return names


def sentence_tokens(sentence: object) -> list[str] | None:
    """A sentence's words: its `tokens`, or its `raw` text tokenised; None if it has neither."""
    if isinstance(sentence, dict) and isinstance(sentence.get("tokens"), list):
        return tokenize(" ".join(str(token) for token in sentence["tokens"]))
    if isinstance(sentence, dict) and isinstance(sentence.get("raw"), str):
        return tokenize(sentence["raw"])
    return None


def read_entry(entry: object, images_dir: Path, file: Path) -> tuple[str, ListedImage]:
    """One image of the split file: its split and its file with its captions, checked."""
    if not (
        isinstance(entry, dict) and isinstance(entry.get("filename"), str) and entry.get("split") in KARPATHY_SPLITS
    ):
        raise A3Error(
            f"'{file}': every image needs a 'filename' and a 'split' ({', '.join(KARPATHY_SPLITS)}); "
            f"found {str(entry)[:80]}"
        )
    relative = Path(str(entry.get("filepath") or "")) / entry["filename"]
    inside_folder(images_dir, str(relative) if entry["filename"] else "", file)
    sentences = entry.get("sentences")
    captions = [sentence_tokens(s) for s in sentences] if isinstance(sentences, list) else [None]
    if not captions or any(c is None for c in captions):
        raise A3Error(f"'{file}': image {str(relative)!r} needs 'sentences', each with 'tokens' (a list of words)")
    return entry["split"], ListedImage(images_dir / relative, [c for c in captions if c is not None])


def listed_karpathy(
    file: str | Path, images_dir: str | Path, train: Sequence[str] = KARPATHY_TRAIN_SPLITS
) -> ListedCaptions:
    """The images and captions of a Karpathy split file: train (the `train` splits), val and test."""
    file, images_dir = Path(file), Path(images_dir)
    if not images_dir.is_dir():
        raise A3Error(f"--images '{images_dir}' is not a folder")
    data = read_json(file, "--karpathy")
    if not (isinstance(data, dict) and isinstance(data.get("images"), list)):
        raise A3Error(f"--karpathy '{file}' is not a Karpathy split file: it needs an 'images' list")
    splits: dict[str, list[ListedImage]] = {"train": [], "val": [], "test": []}
    for entry in data["images"]:
        split, image = read_entry(entry, images_dir, file)
        name = "train" if split in train else split
        if name in splits:
            splits[name].append(image)
    if not splits["train"] or not splits["val"]:
        counts = ", ".join(f"{name} {len(images)}" for name, images in splits.items())
        raise A3Error(
            f"--karpathy '{file}' needs training and val images (with --train-splits {','.join(train)}: {counts})"
        )
    if not splits["test"]:
        del splits["test"]
    return ListedCaptions("karpathy", splits)
