"""How a trained captioner turns image features into words: greedy, beam search, or drawn at a temperature."""

from __future__ import annotations

import torch
from torch import Tensor

from a3cli.engine.captioning.config import Decoding
from a3cli.engine.captioning.model import CaptioningRNN
from a3cli.engine.captioning.vocab import decode

__all__ = ["Decoding", "generate_captions"]


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
