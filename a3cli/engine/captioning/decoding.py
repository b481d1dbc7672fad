"""How a trained captioner turns image features into words: greedy, beam search, or drawn at a temperature."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from a3cli.engine.captioning.model import CaptioningRNN
from a3cli.engine.captioning.vocab import decode
from a3cli.engine.catalogue import CAPTION_SAMPLE_DEFAULTS
from a3cli.engine.errors import A3Error


@dataclass(frozen=True)
class Decoding:
    """How to turn scores into words: greedy (the default), beam search, or sampling; checked when made."""

    beam_size: int = CAPTION_SAMPLE_DEFAULTS["beam_size"]
    temperature: float | None = None  # set: draw words instead of taking the most likely
    top_k: int | None = None
    length_penalty: float = CAPTION_SAMPLE_DEFAULTS["length_penalty"]
    max_length: int = CAPTION_SAMPLE_DEFAULTS["max_length"]

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise A3Error("--beam-size must be at least 1")
        if self.beam_size > 1 and self.temperature is not None:
            raise A3Error("choose either --beam-size or --temperature, not both")


def generate_captions(
    model: CaptioningRNN, features: Tensor, decoding: Decoding = Decoding(), generator: torch.Generator | None = None
) -> list[str]:
    """One caption (a string) per feature row, decoded as `decoding` says; drawn words come from `generator`."""
    if decoding.temperature is not None:
        ids = model.sample_random(features, decoding.max_length, decoding.temperature, decoding.top_k, generator)
    elif decoding.beam_size > 1:
        ids = model.beam_search(features, decoding.beam_size, decoding.max_length, decoding.length_penalty)
    else:
        ids = model.sample(features, decoding.max_length)
    return [" ".join(decode(row, model.idx_to_word)) for row in ids.tolist()]
