"""CaptioningRNN against the assignment's reference losses, an independent autograd model, and exhaustive search;
its decoders, and their ids turned into words."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from a3cli.engine import CaptioningRNN
from a3cli.engine.captioning.cells.attention import AttentionState
from a3cli.engine.captioning.cells.lstm import LSTMState
from a3cli.engine.captioning.cells.rnn import RNNState
from a3cli.engine.captioning.decoding import Decoding, generate_captions

pytestmark = pytest.mark.usefixtures("one_thread")


def assignment_model(cell_type: str) -> tuple[CaptioningRNN, torch.Tensor, torch.Tensor]:
    """The notebook's check: parameters, features and captions set by np.linspace / arange."""
    N, D, W, H, T = 10, 20, 30, 40, 13
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V = len(word_to_idx)
    model = CaptioningRNN(
        word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type, dtype=torch.float64
    )
    with torch.no_grad():
        for p in model.params.values():
            p.copy_(torch.from_numpy(np.linspace(-1.4, 1.3, num=p.numel()).reshape(p.shape)))
    low, high = (-1.5, 0.3) if cell_type == "rnn" else (-0.5, 1.7)
    features = torch.from_numpy(np.linspace(low, high, num=N * D).reshape(N, D))
    captions = torch.from_numpy((np.arange(N * T) % V).reshape(N, T))
    return model, features, captions


@pytest.mark.parametrize("cell_type, expected", [("rnn", 9.83235591003), ("lstm", 9.82445935443)])
def test_assignment_reference_loss(cell_type, expected):
    model, features, captions = assignment_model(cell_type)
    assert model.loss(features, captions).item() == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_parameters_are_the_assignments(cell_type):
    torch.manual_seed(0)
    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, **{f"w{i}": i + 3 for i in range(997)}}
    V, D, W, H = len(w2i), 2000, 300, 400
    model = CaptioningRNN(w2i, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type)
    k = 4 if cell_type == "lstm" else 1
    shapes = {name: tuple(p.shape) for name, p in model.params.items()}
    assert shapes == {
        "W_embed": (V, W),
        "W_proj": (D, H),
        "b_proj": (H,),
        "Wx": (W, k * H),
        "Wh": (H, k * H),
        "b": (k * H,),
        "W_vocab": (H, V),
        "b_vocab": (V,),
    }
    for name, scale in [
        ("W_embed", 1 / 100),
        ("W_proj", 1 / math.sqrt(D)),
        ("Wx", 1 / math.sqrt(W)),
        ("Wh", 1 / math.sqrt(H)),
        ("W_vocab", 1 / math.sqrt(H)),
    ]:
        std = model.params[name].std().item()
        assert std == pytest.approx(scale, rel=0.05), name
    for name in ("b_proj", "b", "b_vocab"):
        assert torch.count_nonzero(model.params[name]) == 0


def reference_loss(model: CaptioningRNN, features, captions):
    """The same model written with plain autograd ops (no engine cores), step by step.

    Attention as EECS 498's A4 writes it: cells projected by W_proj, h0 = c0 = their mean,
    softmax(A·h / sqrt(H)) over the cells, the attended vector through Wattn into the gates.
    """
    P = model.params
    if model.cell_type == "attention":
        N, L = features.shape[0], model.grid_cells
        A = features.reshape(N, -1, L).permute(0, 2, 1) @ P["W_proj"] + P["b_proj"]
        h = c = A.mean(1)
    else:
        h = features @ P["W_proj"] + P["b_proj"]
        c = torch.zeros_like(h)
    H = h.shape[1]
    total = 0.0
    for t in range(captions.shape[1] - 1):
        x = P["W_embed"][captions[:, t]]
        a = x @ P["Wx"] + h @ P["Wh"] + P["b"]
        if model.cell_type == "attention":
            weights = torch.softmax(torch.einsum("nlh,nh->nl", A, h) / math.sqrt(H), dim=1)
            a = a + torch.einsum("nl,nlh->nh", weights, A) @ P["Wattn"]
        if model.cell_type == "rnn":
            h = torch.tanh(a)
        else:
            i, f, o, g = (
                a[:, :H].sigmoid(),
                a[:, H : 2 * H].sigmoid(),
                a[:, 2 * H : 3 * H].sigmoid(),
                a[:, 3 * H :].tanh(),
            )
            c = f * c + i * g
            h = o * torch.tanh(c)
        scores = h @ P["W_vocab"] + P["b_vocab"]
        target = captions[:, t + 1]
        nll = F.cross_entropy(scores, target, reduction="none")
        total = total + (nll * (target != 0)).sum()
    return total / features.shape[0]


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_loss_and_gradients_match_an_independent_model(cell_type):
    torch.manual_seed(1)
    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "b": 4, "c": 5}
    D = 7 * 9 if cell_type == "attention" else 7  # attention: 7 channels on a 3x3 grid
    model = CaptioningRNN(
        w2i, input_dim=D, wordvec_dim=5, hidden_dim=6, cell_type=cell_type, dtype=torch.float64, grid_cells=9
    )
    features = torch.randn(4, D, dtype=torch.float64)
    captions = torch.randint(0, 6, (4, 9))
    captions[:, -3:] = 0  # padding is masked out
    loss = model.loss(features, captions)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    ref = reference_loss(model, features, captions)
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-11, msg=name)


FEATURE_DIM = {"rnn": 3, "lstm": 3, "attention": 3 * 4}  # attention: 3 channels on a 2x2 grid


def tiny_model(cell_type="lstm", seed=0):
    torch.manual_seed(seed)
    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "b": 4}
    model = CaptioningRNN(
        w2i,
        input_dim=FEATURE_DIM[cell_type],
        wordvec_dim=4,
        hidden_dim=5,
        cell_type=cell_type,
        dtype=torch.float64,
        grid_cells=4,
    )
    with torch.no_grad():  # larger weights make the distributions peaky and varied
        for p in model.parameters():
            p.normal_(0, 1.5)
    return model


def first_state(model, feature):
    """The decoder's state before the first word, computed here from the formulas (not by the model)."""
    if model.cell_type == "attention":
        cells = feature.view(1, 3, 4).transpose(1, 2)  # channel-major (C, L) -> (L, C)
        A = cells @ model.W_proj + model.b_proj
        return AttentionState(A.mean(1), A.mean(1), A)
    h = feature @ model.W_proj + model.b_proj
    return LSTMState(h, torch.zeros_like(h)) if model.cell_type == "lstm" else RNNState(h)


def manual_greedy(model, feature, max_length):
    state = first_state(model, feature)
    word, out = model._start, []
    for _ in range(max_length):
        scores, state = model._step(torch.tensor([word]), state)
        word = int(scores.argmax())
        out.append(word)
        if word == model._end:
            break
    return out


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_greedy_sample_follows_the_argmax_and_stops_at_end(cell_type):
    model = tiny_model(cell_type)
    features = torch.randn(16, FEATURE_DIM[cell_type], dtype=torch.float64) * 2
    sampled = model.sample(features, max_length=6)
    assert sampled.shape == (16, 6)
    for row, feature in zip(sampled.tolist(), features):
        expected = manual_greedy(model, feature[None], 6)
        assert row[: len(expected)] == expected
        assert all(w == model._null for w in row[len(expected) :])  # <NULL> after <END>


@torch.no_grad()
def sequence_score(model, feature, words, alpha):
    """Length-normalised log-probability of a full caption ending with <END>."""
    state = first_state(model, feature)
    prev, total = model._start, 0.0
    for w in words:
        scores, state = model._step(torch.tensor([prev]), state)
        total += float(scores.log_softmax(1)[0, w])
        prev = w
    return total / len(words) ** alpha


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_wide_beam_search_finds_the_exhaustive_best(cell_type):
    model = tiny_model(cell_type, seed=3)
    V, L, alpha = 5, 4, 0.7
    features = torch.randn(5, FEATURE_DIM[cell_type], dtype=torch.float64)
    found = model.beam_search(features, beam_size=V**L, max_length=L, length_penalty=alpha)
    for feature, row in zip(features, found.tolist()):
        candidates = [
            list(body) + [model._end]
            for n in range(L)
            for body in itertools.product([w for w in range(V) if w != model._end], repeat=n)
        ]
        best = max(candidates, key=lambda ws: sequence_score(model, feature[None], ws, alpha))
        got = row[: row.index(model._end) + 1] if model._end in row else row
        assert sequence_score(model, feature[None], got, alpha) == pytest.approx(
            sequence_score(model, feature[None], best, alpha)
        )


def test_beam_of_one_and_cold_sampling_equal_greedy():
    model = tiny_model("lstm", seed=5)
    features = torch.randn(8, 3, dtype=torch.float64)
    greedy = model.sample(features, max_length=7)
    assert torch.equal(model.beam_search(features, beam_size=1, max_length=7), greedy)
    assert torch.equal(model.sample_random(features, 7, temperature=1e-4), greedy)
    assert torch.equal(model.sample_random(features, 7, temperature=5.0, top_k=1), greedy)


def test_hot_sampling_varies_and_respects_top_k():
    model = tiny_model("rnn", seed=6)
    features = torch.randn(1, 3, dtype=torch.float64).repeat(200, 1)
    gen = torch.Generator().manual_seed(0)
    drawn = model.sample_random(features, 1, temperature=3.0, generator=gen)[:, 0]
    assert len(set(drawn.tolist())) >= 4
    scores, _ = model._step(torch.tensor([model._start]), first_state(model, features[:1]))
    top2 = set(scores.topk(2).indices[0].tolist())
    drawn = model.sample_random(features, 1, temperature=3.0, top_k=2, generator=gen)[:, 0]
    assert set(drawn.tolist()) <= top2 and len(set(drawn.tolist())) == 2


def test_generate_captions_turns_ids_into_words():
    model = tiny_model("lstm", seed=5)
    features = torch.randn(3, 3, dtype=torch.float64)
    ids = model.sample(features, 7)
    texts = generate_captions(model, features, Decoding(max_length=7))
    for row, text in zip(ids.tolist(), texts):
        words = [model.idx_to_word[i] for i in row]
        words = words[: words.index("<END>")] if "<END>" in words else words
        assert text == " ".join(w for w in words if w not in ("<NULL>", "<START>"))
