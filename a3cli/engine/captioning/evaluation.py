"""How good a captioner is: the teacher-forced loss of a split; corpus BLEU and exact matches of its greedy captions."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from a3cli.engine.captioning.data import CaptionData, Split
from a3cli.engine.captioning.model import CaptioningRNN
from a3cli.engine.captioning.shapes import count_objects
from a3cli.engine.captioning.vocab import decode


@torch.no_grad()
def split_loss(model: CaptioningRNN, split: Split, device: torch.device, batch_size: int = 500) -> float:
    """The teacher-forced loss over a whole split (per caption, as the training loss)."""
    total = 0.0
    for start in range(0, len(split), batch_size):
        caps = split.captions[start : start + batch_size].to(device)
        feats = split.features[split.image_idxs[start : start + batch_size]].to(device)
        total += float(model.loss(feats, caps)) * len(caps)
    return total / max(len(split), 1)


@torch.no_grad()
def greedy_captions(
    model: CaptioningRNN, features: torch.Tensor, device: torch.device, max_length: int, batch_size: int = 500
) -> torch.Tensor:
    """Greedy captions of many images, in batches: (N, max_length) on the CPU."""
    out = [
        model.sample(features[i : i + batch_size].to(device), max_length).cpu()
        for i in range(0, len(features), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, max_length, dtype=torch.long)


def bleu(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-1..4 (nltk), each image's hypothesis against all its reference captions."""
    from nltk.translate.bleu_score import corpus_bleu

    weights = [(1.0,), (0.5, 0.5), (1 / 3,) * 3, (0.25,) * 4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns when no n-gram of some order matches
        scores = corpus_bleu(references, hypotheses, weights=weights)
    return {f"bleu{n}": float(s) for n, s in enumerate(scores, 1)}


def exact_match(
    references: Sequence[Sequence[Sequence[str]]],
    hypotheses: Sequence[Sequence[str]],
    groups: Sequence[int] | None = None,
) -> dict:
    """How many hypotheses equal one of their image's references word for word; by group when given.

    BLEU forgives a swapped colour or place; a person reading the caption does not.
    Groups (for shapes: the number of objects) get their own counts under "by_objects".
    """
    right = [list(h) in [list(r) for r in refs] for refs, h in zip(references, hypotheses)]
    result = _counted(right)
    if groups is not None:
        result["by_objects"] = {
            str(g): _counted([ok for ok, k in zip(right, groups) if k == g]) for g in sorted(set(groups))
        }
    return result


def _counted(right: Sequence[bool]) -> dict:
    return {"correct": sum(right), "total": len(right), "rate": sum(right) / len(right) if right else 0.0}


def format_exact(result: dict) -> str:
    """'131/200 (65.5 %); 1 shape 65/66, 2 shapes 48/66, 3 shapes 18/68' for printing."""
    text = f"{result['correct']}/{result['total']} ({100 * result['rate']:.1f} %)"
    by = result.get("by_objects")
    if by:
        text += "; " + ", ".join(
            f"{k} shape{'s' if k != '1' else ''} {v['correct']}/{v['total']}" for k, v in by.items()
        )
    return text


def shapes_exact_match(truths: Sequence[str], captions: Sequence[str]) -> dict:
    """exact_match of captions of shapes pictures against their one true caption each, by number of shapes."""
    references = [[truth.split()] for truth in truths]
    groups = [count_objects(refs[0]) for refs in references]
    return exact_match(references, [caption.split() for caption in captions], groups)


def evaluate(
    model: CaptioningRNN, data: CaptionData, split: str, device: torch.device, max_length: int
) -> tuple[dict[str, float], dict]:
    """BLEU-1..4 and the exact-match count of the model's greedy captions for every image of `split`."""
    s = data.splits[split]
    refs = data.references(split)
    keep = [i for i, r in enumerate(refs) if r]  # images without captions (after --max-train) do not count
    captions = greedy_captions(model, s.features[keep], device, max_length)
    hyps = [decode(c, data.idx_to_word) for c in captions.tolist()]
    kept = [refs[i] for i in keep]
    groups = [count_objects(r[0]) for r in kept] if data.source == "shapes" else None
    return bleu(kept, hyps), exact_match(kept, hyps, groups)
