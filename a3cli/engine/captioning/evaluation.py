"""How good a captioner is: the teacher-forced loss of a split; corpus BLEU, CIDEr-D and exact matches of its
greedy captions."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

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


def ngram_counts(words: Sequence[str], n: int = 4) -> Counter[tuple[str, ...]]:
    """How often each 1- to n-gram occurs in a caption."""
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def cider_d(
    references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0
) -> float:
    """Corpus CIDEr-D (Vedantam et al. 2015), as coco-caption computes it: the number published captioners report.

    Each caption is a vector of tf-idf weights per n-gram order (document frequencies from the
    reference set: in how many images' references an n-gram occurs); per order, the hypothesis
    weights are clipped to the reference's (min) before the cosine, which is multiplied by a
    Gaussian penalty on the length difference (sigma 6). The mean over orders 1..n and over an
    image's references, times 10, is the image's score; the corpus score is the mean over images.
    As in coco-caption, a caption's "length" is its number of bigrams.
    """
    if not hypotheses:
        return 0.0
    refs = [[ngram_counts(r, n) for r in image] for image in references]
    document_frequency = Counter(gram for image in refs for gram in set().union(*image))
    log_images = math.log(len(refs))

    def vector(counts: Counter) -> tuple[list[dict], list[float], int]:
        weights: list[dict] = [{} for _ in range(n)]
        for gram, tf in counts.items():
            weights[len(gram) - 1][gram] = tf * (log_images - math.log(max(1.0, document_frequency[gram])))
        norms = [math.sqrt(sum(w * w for w in order.values())) for order in weights]
        return weights, norms, sum(tf for gram, tf in counts.items() if len(gram) == 2)

    scores = []
    for image, hypothesis in zip(refs, hypotheses):
        hyp, hyp_norms, hyp_length = vector(ngram_counts(hypothesis, n))
        total = 0.0
        for ref_counts in image:
            ref, ref_norms, ref_length = vector(ref_counts)
            penalty = math.exp(-((hyp_length - ref_length) ** 2) / (2 * sigma**2))
            for k in range(n):
                overlap = sum(min(w, ref[k].get(g, 0.0)) * ref[k].get(g, 0.0) for g, w in hyp[k].items())
                if hyp_norms[k] and ref_norms[k]:
                    overlap /= hyp_norms[k] * ref_norms[k]
                total += overlap * penalty
        scores.append(10.0 * total / n / len(image))
    return sum(scores) / len(scores)


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


@dataclass(frozen=True)
class Agreement:
    """How generated captions agree with the true ones: word for word, and by CIDEr-D."""

    exact: dict  # exact_match's counts (for shapes, also by number of shapes)
    cider: float  # corpus CIDEr-D


def agreement(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]]) -> Agreement:
    """Each hypothesis against all of its image's reference captions."""
    return Agreement(exact_match(references, hypotheses), cider_d(references, hypotheses))


def shapes_agreement(truths: Sequence[str], captions: Sequence[str]) -> Agreement:
    """Captions of shapes pictures against their one true caption each."""
    cider = cider_d([[truth.split()] for truth in truths], [caption.split() for caption in captions])
    return Agreement(shapes_exact_match(truths, captions), cider)


@dataclass
class Scores:
    """How a split's greedy captions score."""

    bleu: dict[str, float]  # bleu1 .. bleu4
    cider: float  # CIDEr-D
    exact: dict  # exact_match's counts


def evaluate(model: CaptioningRNN, data: CaptionData, split: str, device: torch.device, max_length: int) -> Scores:
    """BLEU-1..4, CIDEr-D and the exact-match count of the model's greedy captions for every image of `split`."""
    s = data.splits[split]
    refs = data.references(split)
    keep = [i for i, r in enumerate(refs) if r]  # images without captions (after --max-train) do not count
    captions = greedy_captions(model, s.features[keep], device, max_length)
    hyps = [decode(c, data.idx_to_word) for c in captions.tolist()]
    kept = [refs[i] for i in keep]
    groups = [count_objects(r[0]) for r in kept] if data.source == "shapes" else None
    return Scores(bleu(kept, hyps), cider_d(kept, hyps), exact_match(kept, hyps, groups))
