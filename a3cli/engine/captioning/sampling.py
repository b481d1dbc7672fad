"""Captioning with a trained captioner: image files, a shapes split with its truth, or the assignment's features."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from a3cli.engine.captioning.checkpoint import CaptionCheckpoint, read_caption_checkpoint
from a3cli.engine.captioning.coco import load_coco_h5
from a3cli.engine.captioning.data import apply_norm, longest_word_run
from a3cli.engine.captioning.decoding import Decoding, generate_captions
from a3cli.engine.captioning.evaluation import Agreement, agreement, shapes_agreement
from a3cli.engine.captioning.features import FeatureSpec, features_of
from a3cli.engine.captioning.model import CaptioningRNN, model_from_checkpoint
from a3cli.engine.captioning.repeats import RepeatLimits, repeat_limits_of
from a3cli.engine.captioning.shapes import SHAPES_SPLITS, draw_scene, shapes_captions, shapes_split, shapes_vocab
from a3cli.engine.captioning.vocab import NULL, decode, encode
from a3cli.engine.device import seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.files import SHIPPED_CAPTIONER


def load_captioner(
    path: str | Path, device: torch.device | str = "cpu", attention: bool = False
) -> tuple[CaptioningRNN, CaptionCheckpoint]:
    """The model of a captioner checkpoint (a run's or an exported one) and the checkpoint itself.

    `attention`: where each word looked is asked for, which only an attention captioner can show.
    """
    if Path(path) == SHIPPED_CAPTIONER and not SHIPPED_CAPTIONER.is_file():
        raise A3Error(f"the shipped checkpoint '{path}' is missing: run 'make weights' or pass --checkpoint")
    ckpt = read_caption_checkpoint(path)
    model = model_from_checkpoint(ckpt, device)
    if attention and not (model.record.attends and model.grid_cells > 1):
        what = f"a {model.cell_type} captioner" + (" of flat features" if model.record.attends else "")
        raise A3Error(
            "--attention-maps needs an attention captioner, one that attends over a feature grid (trained "
            f"with --cell-type attention); '{path}' is {what}"
        )
    model.max_word_run = word_run_limit(ckpt)
    model.repeat_limits = repeat_limits(ckpt)
    return model, ckpt


# How often one word may come in a row when a checkpoint does not say (those from before training
# recorded it): twice ("a very very big dog") is as often as captions ordinarily repeat a word.
UNRECORDED_WORD_RUN = 2


def word_run_limit(ckpt: CaptionCheckpoint) -> int:
    """The most times a caption may repeat one word in a row: as often as the training captions ever do.

    Training records it (`max_word_run`); for a shapes captioner without it, it is counted in the
    shapes training captions, which are generated (1: the grammar never repeats a word); else
    UNRECORDED_WORD_RUN.
    """
    if ckpt.max_word_run is not None:
        return max(1, int(ckpt.max_word_run))
    if ckpt.source == "shapes":
        word_to_idx = ckpt.word_to_idx
        return longest_word_run(shapes_captions(shapes_split("train"), word_to_idx), word_to_idx[NULL])
    return UNRECORDED_WORD_RUN


def repeat_limits(ckpt: CaptionCheckpoint) -> RepeatLimits | None:
    """How often a caption may repeat a word or an n-gram (repeats.py): as its training captions do, recorded
    in the checkpoint; for a shapes captioner without the record, counted in the shapes training captions;
    else no limit."""
    if ckpt.repeat_limits is not None:
        return RepeatLimits.of(ckpt.repeat_limits)
    if ckpt.source == "shapes":
        return repeat_limits_of(shapes_captions(shapes_split("train"), ckpt.word_to_idx), ckpt.word_to_idx)
    return None


def shown_caption(caption: str, max_length: int) -> str:
    """The caption as a3 shows it: one that reached the length cap without <END> says it was cut there."""
    if len(caption.split()) < max_length:
        return caption
    return f"{caption} … (cut at the {max_length}-word cap, --max-length)"


def picture_features(
    model: CaptioningRNN, ckpt: CaptionCheckpoint, pictures: Sequence[Image.Image], batch_size: int = 32
) -> Iterator[torch.Tensor]:
    """Features of the pictures in batches, made exactly as the checkpoint's training features were."""
    from a3cli.engine.backbones.registry import load_backbone

    if ckpt.source == "coco_h5":
        raise A3Error(
            "this captioner was trained on the assignment's precomputed features; "
            "caption those with --data DIR instead of image files"
        )
    spec = FeatureSpec.from_dict(ckpt.feature_spec)
    backbone = load_backbone(spec.backbone, model.W_proj.device)
    for start in range(0, len(pictures), batch_size):
        yield apply_norm(features_of(backbone, pictures[start : start + batch_size], spec), ckpt.feature_norm)


def feature_distance(features: torch.Tensor) -> list[float]:
    """How far each picture's standardised features (N, D) lie from the training pictures' mean.

    The mean absolute z-score over the dimensions (features standardised with the training split's
    mean and std): about 0.7 for pictures like the training ones, more for others. It separates
    shapes pictures from photos better than the root-mean-square, which a few dimensions far out
    in an ordinary shapes picture (a shape where few training pictures have one) dominate.
    """
    return features.float().abs().mean(dim=1).tolist()


@dataclass
class CaptionedPictures:
    captions: list[str]  # one per picture
    attention: torch.Tensor | None = None  # if asked: (words, grid, grid), where the first caption's words looked
    distances: list[float] | None = None  # with standardised features: each picture's feature_distance
    agreement: Agreement | None = None  # given the true captions: how the captions agree with them


def caption_pictures(
    model: CaptioningRNN,
    ckpt: CaptionCheckpoint,
    pictures: Sequence[Image.Image],
    decoding: Decoding,
    seed: int = 0,
    attention: bool = False,
    truths: Sequence[str] | None = None,
) -> CaptionedPictures:
    """One caption per picture; with `attention`, also where the model looked for each word of the first one;
    with `truths` (a shapes split's), how the captions agree with them.

    The attention maps read the first picture's features as they were made to caption it, not made again.
    """
    generator = seeded_generator(seed, model.W_proj.device)
    captions: list[str] = []
    distances: list[float] = []
    first: torch.Tensor | None = None
    for batch in picture_features(model, ckpt, pictures):
        first = batch[0] if first is None else first
        captions += generate_captions(model, batch, decoding, generator)
        distances += feature_distance(batch)
    maps = caption_attention(model, first, captions[0]) if attention and first is not None else None
    distances_kept = distances if ckpt.feature_norm is not None else None
    agreement = shapes_agreement(truths, captions) if truths is not None else None
    return CaptionedPictures(captions, maps, distances_kept, agreement)


# When a shapes captioner's picture is not a shapes picture: its feature_distance is above SHAPES_FAR.
# Measured with the shipped captioner (benchmarks/bench_caption.py distance): the 1,000 held-out shapes
# pictures (val and test) lie at 0.42 to 1.14, the 10,000 training pictures at up to 1.23 (SHAPES_NEAR),
# the six bundled photos (examples/*.jpg) at 1.74 (rocket) to 2.11; other photos tried: 1.43 (moon) to 2.04.
SHAPES_NEAR = 1.23  # the farthest of the shapes pictures
SHAPES_FAR = 1.4


def far_from_training(ckpt: CaptionCheckpoint, distances: Sequence[float] | None) -> list[str | None]:
    """Per picture, what its figure says beside the caption when the picture lies far from the shapes pictures
    a shapes captioner knows (None: near, or nothing to say)."""
    if ckpt.source != "shapes" or distances is None:
        return [None] * len(distances or [])
    return [
        f"far from the shapes pictures: distance {distance:.2f} (they lie ≤ {SHAPES_NEAR:.2f})"
        if distance > SHAPES_FAR
        else None
        for distance in distances
    ]


def training_note(ckpt: CaptionCheckpoint, names: Sequence[str], distances: Sequence[float] | None) -> str | None:
    """What someone captioning other pictures with the synthetic shapes captioner should know (None: nothing).

    Said when a picture's features lie far from the shapes pictures' (feature_distance), so it names
    those pictures and how far they are.
    """
    notes = far_from_training(ckpt, distances)
    far = [f"{name} (distance {d:.2f})" for name, d, note in zip(names, distances or [], notes) if note is not None]
    if not far:
        return None
    which = f"{far[0]} is" if len(far) == 1 else f"{', '.join(far[:-1])} and {far[-1]} are"
    return (
        f"note: {which} far from what this captioner was trained on (shapes pictures ≤ {SHAPES_NEAR:.2f}): "
        "it was trained only on a3's synthetic shapes (circles, squares, triangles and diamonds in six "
        "colours), so it describes every picture in those words; to caption photos, train one on captioned "
        "photos: a3 caption-train --coco DIR, --karpathy FILE --images DIR, or --images DIR --annotations "
        "captions.json"
    )


@dataclass
class CaptionedExample:
    image: str  # URL or index of the image
    generated: str
    truth: str
    exact: bool  # the generated caption is one of the image's captions, word for word
    references: list[list[str]]  # all of the image's captions, as words (for CIDEr-D)


@dataclass
class CaptionedSplit:
    examples: list[CaptionedExample]
    agreement: Agreement  # of the generated captions with all of their images' captions


def caption_coco_split(
    model: CaptioningRNN,
    ckpt: CaptionCheckpoint,
    folder: str | Path,
    split: str,
    num: int,
    decoding: Decoding,
    seed: int = 0,
) -> CaptionedSplit:
    """`num` random captions of the assignment's split (train or val), generated beside the truth, and how
    they agree with it."""
    spec = ckpt.feature_spec
    coco = load_coco_h5(folder, pca=bool(spec.get("pca", True)) if isinstance(spec, dict) else True)
    if split not in coco.splits:
        raise A3Error(f"--split {split!r}: choose train or val")
    if coco.idx_to_word != ckpt.idx_to_word or coco.input_dim != model.input_dim:
        raise A3Error(
            f"the captioner was not trained on the features in '{folder}' (vocabulary or feature size differ)"
        )
    s = coco.splits[split]
    device = model.W_proj.device
    rows = torch.randperm(len(s), generator=seeded_generator(seed))[:num]
    generated = generate_captions(
        model, s.features[s.image_idxs[rows]].to(device), decoding, seeded_generator(seed, device)
    )
    examples = []
    for row, caption in zip(rows.tolist(), generated):
        idx = int(s.image_idxs[row])
        truth = " ".join(decode(s.captions[row].tolist(), coco.idx_to_word))
        references = [decode(c, coco.idx_to_word) for c in s.captions[s.image_idxs == idx].tolist()]
        name = str(s.images[idx]) if idx < len(s.images) else str(idx)
        examples.append(CaptionedExample(name, caption, truth, caption.split() in references, references))
    return CaptionedSplit(
        examples, agreement([e.references for e in examples], [e.generated.split() for e in examples])
    )


def shapes_examples(split: str, num: int, ckpt: CaptionCheckpoint) -> tuple[list[Image.Image], list[str]]:
    """The first `num` pictures of a shapes split, with their true captions; refused for a captioner of other
    words, whose captions could never match the truth."""
    if split not in SHAPES_SPLITS:
        raise A3Error(f"--split {split!r}: shapes has {', '.join(SHAPES_SPLITS)}")
    if not set(shapes_vocab()[0]) <= set(ckpt.word_to_idx):
        raise A3Error(
            f"--dataset shapes: this captioner was trained on {ckpt.source or 'other data'}, whose words are not "
            "the shapes' (a, small, red, circle, left of, above ...): its captions cannot be compared with the truth"
        )
    scenes = shapes_split(split, min(num, SHAPES_SPLITS[split]))
    return [draw_scene(scene) for scene in scenes], [scene.caption() for scene in scenes]


def caption_attention(model: CaptioningRNN, features: torch.Tensor, caption: str) -> torch.Tensor:
    """The weights (words, grid, grid) over the picture's cells while each word of `caption` was chosen.

    `features` is the picture's row (D,) as picture_features made it to caption it (not extracted again).
    """
    words = caption.split()
    ids = encode(words, model.word_to_idx, len(words))[:-1]  # <START> and the words: no <END>, no padding
    weights = model.attention_weights(features[None], torch.tensor([ids], device=features.device))[0]
    grid = math.isqrt(model.grid_cells)
    return weights[: len(ids) - 1].reshape(-1, grid, grid).cpu()  # row t chose word t + 1
