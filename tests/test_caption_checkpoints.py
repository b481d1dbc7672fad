"""Captioners of every cell, in the checkpoint layout a3 writes, load and caption as they always have.

tests/fixtures holds small exported captioners of the rnn, lstm and attention cells and, in
captioners.json, what each (and the shipped shapes captioner) gives on fixed inputs: greedy, beam and
drawn captions, the loss and, for attention, where it looked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from a3cli.engine.captioning.sampling import load_captioner
from a3cli.engine.files import SHIPPED_CAPTIONER

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "captioners.json").read_text())
FILES = {cell: FIXTURES / f"caption_{cell}.pt" for cell in ("rnn", "lstm", "attention")} | {
    "shipped": SHIPPED_CAPTIONER
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_saved_captioner_captions_as_it_always_has(name):
    model, _ = load_captioner(FILES[name])
    expected = EXPECTED[name]
    generator = torch.Generator().manual_seed(expected["features_seed"])
    features = torch.randn(4, model.input_dim, generator=generator)
    captions = torch.randint(4, len(model.idx_to_word), (4, 9), generator=generator)
    captions[:, 0] = model.word_to_idx["<START>"]
    captions[2, 6:] = model.word_to_idx["<NULL>"]
    assert model.max_word_run == expected["max_word_run"]
    # Decoded as before the n-gram repeat rule, which has its own tests (test_caption_sampling.py); these
    # random features make them say <NULL>, which the rule masks.
    assert model.repeat_limits is not None
    model.repeat_limits = None
    assert model.sample(features, max_length=12).tolist() == expected["greedy"]
    assert model.beam_search(features, beam_size=3, max_length=12).tolist() == expected["beam"]
    drawn = model.sample_random(
        features, max_length=12, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(1)
    )
    assert drawn.tolist() == expected["drawn"]
    with torch.no_grad():
        assert float(model.loss(features, captions)) == pytest.approx(expected["loss"], rel=1e-6)
    if "attention" in expected:
        weights = model.attention_weights(features, captions[:, :-1])
        assert weights.double().sum(dim=2).mean().item() == pytest.approx(expected["attention"], rel=1e-6)
        assert weights[0, 0].tolist() == pytest.approx(expected["attention_first"], rel=1e-5)
