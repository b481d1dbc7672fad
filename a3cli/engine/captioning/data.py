"""The data set every captioning source produces.

A vocabulary in the assignment's form (`word_to_idx`, `idx_to_word`, with `<NULL>
<START> <END> <UNK>` first), and per split the encoded captions (M, T) with
`<START> ... <END>` padded by `<NULL>`, the index of each caption's image, and one
feature vector per image. The sources: `coco.load_coco_h5` (the assignment's
folder), `coco.load_coco_json` (a COCO-format captions file and its images) and
`shapes.load_shapes` (synthetic, offline, the default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from a3cli.engine.captioning.vocab import decode


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
    source: str  # "coco_h5", "coco_json", "karpathy", "coco" or "shapes"
    # Backbone features are standardised with the training split's mean and std (kept in the
    # checkpoint, applied again when sampling): raw activations reach tens and would saturate
    # the RNN from h0 on. The assignment's precomputed features are used as they are (None).
    feature_norm: dict[str, torch.Tensor] | None = None
    skipped: list[str] = field(default_factory=list)  # images the source lists but that are missing or unreadable

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


def standardize(splits: dict[str, Split]) -> dict[str, torch.Tensor]:
    """Standardise every split's features in place with the training split's statistics."""
    train = splits["train"].features
    norm = {
        "mean": train.mean(0),
        "std": train.std(0).clamp_min(1e-3) if len(train) > 1 else torch.ones(train.shape[1]),
    }
    for split in splits.values():
        split.features = apply_norm(split.features, norm)
    return norm


def apply_norm(features: torch.Tensor, norm: dict[str, torch.Tensor] | None) -> torch.Tensor:
    if norm is None:
        return features
    return (features - norm["mean"].to(features.device)) / norm["std"].to(features.device)


def longest_word_run(captions: torch.Tensor, null: int) -> int:
    """The most times one word follows itself in a row in encoded captions (M, T): what decoding may repeat.

    Captions are `<START> ... <END>` padded with `<NULL>`; the padding is no word.
    """
    longest = run = torch.ones(len(captions), dtype=torch.long)
    for t in range(1, captions.shape[1]):
        again = (captions[:, t] == captions[:, t - 1]) & (captions[:, t] != null)
        run = torch.where(again, run + 1, 1)
        longest = torch.maximum(longest, run)
    return int(longest.max()) if len(captions) else 1
