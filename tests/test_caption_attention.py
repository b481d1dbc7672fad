"""The attention LSTM captioner: gradients, learning where things are, old checkpoints, refusing flat features."""

from __future__ import annotations

import pytest
import torch

from a3cli.engine.captioning.data import CaptionData, Split
from a3cli.engine.captioning.features import grid_cells
from a3cli.engine.captioning.model import CaptioningRNN
from a3cli.engine.captioning.shapes import shapes_vocab
from a3cli.engine.captioning.training import TrainConfig, train_captioner
from a3cli.engine.captioning.vocab import decode, encode
from a3cli.engine.errors import A3Error
from a3cli.engine.layers.attention import (
    attention_lstm_forward,
    attention_lstm_step_forward,
    attention_lstm_steps,
    dot_product_attention,
)
from a3cli.engine.layers.rnn import lstm_step_forward

pytestmark = pytest.mark.usefixtures("one_thread")


def attention_inputs(N=3, T=4, W=5, H=6, L=4, seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    return {
        "x": randn(N, T, W),
        "h": randn(N, H),
        "c": randn(N, H),
        "A": randn(N, L, H),
        "Wx": randn(W, 4 * H),
        "Wh": randn(H, 4 * H),
        "Wattn": randn(H, 4 * H),
        "b": randn(4 * H),
    }


def test_attention_weights_are_a_softmax_of_scaled_dot_products():
    p = attention_inputs()
    attn, weights = dot_product_attention(p["h"], p["A"])
    scores = torch.stack([p["A"][n] @ p["h"][n] for n in range(3)]) / 6**0.5
    torch.testing.assert_close(weights, scores.softmax(1))
    torch.testing.assert_close(attn, torch.stack([weights[n] @ p["A"][n] for n in range(3)]))


def test_attention_step_gradcheck():
    p = attention_inputs()
    inputs = (p["x"][:, 0], p["h"], p["c"], p["A"], p["Wx"], p["Wh"], p["Wattn"], p["b"])
    assert torch.autograd.gradcheck(attention_lstm_step_forward, inputs)


def test_attention_sequence_gradcheck():
    p = attention_inputs()
    inputs = (p["x"], p["A"], p["Wx"], p["Wh"], p["Wattn"], p["b"])
    assert torch.autograd.gradcheck(attention_lstm_forward, inputs)


def test_the_sequence_is_the_step_repeated_from_the_grid_mean():
    p = attention_inputs()
    hs, weights = attention_lstm_steps(p["x"], p["A"], p["Wx"], p["Wh"], p["Wattn"], p["b"])
    h = c = p["A"].mean(1)
    for t in range(4):
        attn, w = dot_product_attention(h, p["A"])
        # The gates are the engine's LSTM step with [x, attn] as input and [Wx; Wattn] as its weights.
        h, c = lstm_step_forward(
            torch.cat([p["x"][:, t], attn], 1), h, c, torch.cat([p["Wx"], p["Wattn"]]), p["Wh"], p["b"]
        )
        torch.testing.assert_close(hs[:, t], h)
        torch.testing.assert_close(weights[:, t], w)


def test_the_fused_sequence_gives_the_steps_outputs_and_gradients():
    """attention_lstm_forward's hand-derived backward against autograd through the step loop."""
    p = attention_inputs(N=5, T=6, L=7)
    params = (p["x"], p["A"], p["Wx"], p["Wh"], p["Wattn"], p["b"])
    fused, looped = attention_lstm_forward(*params), attention_lstm_steps(*params)
    for a, b in zip(fused, looped):
        torch.testing.assert_close(a, b)
    upstream = torch.randn(fused[0].shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for a, b in zip(
        torch.autograd.grad((fused[0] * upstream).sum(), params),
        torch.autograd.grad((looped[0] * upstream).sum(), params),
    ):
        torch.testing.assert_close(a, b)


COLORS, KINDS = ("red", "green", "blue"), ("circle", "square")


def grid_toy(n_images=16, seed=0) -> CaptionData:
    """Objects in the cells of a 2x2 grid (one-hot colour and kind); captions name them in cell order.

    Which colour goes with which kind, and in what order, is only known by looking at each
    cell: the model must attend to get the captions right.
    """
    g = torch.Generator().manual_seed(seed)
    w2i, i2w = shapes_vocab()
    feats = 0.05 * torch.randn(n_images, 5, 2, 2, generator=g)
    caps = []
    for k in range(n_images):
        cells = torch.randperm(4, generator=g)[: 1 + k % 2].sort().values.tolist()
        words = []
        for cell in cells:
            color, kind = int(torch.randint(3, (1,), generator=g)), int(torch.randint(2, (1,), generator=g))
            feats[k, color, cell // 2, cell % 2] += 1
            feats[k, 3 + kind, cell // 2, cell % 2] += 1
            words += (["left", "of"] if words else []) + ["a", COLORS[color], KINDS[kind]]
        caps.append(encode(words, w2i, 8))
    split = Split(torch.tensor(caps), torch.arange(n_images), feats.flatten(1), [str(i) for i in range(n_images)])
    return CaptionData(w2i, i2w, {"train": split}, {"backbone": "toy", "layer": "cells", "grid": 2}, "toy")


def test_a_tiny_attention_captioner_learns_its_captions_exactly(tmp_path):
    data = grid_toy()
    config = TrainConfig(
        cell_type="attention", hidden_dim=32, wordvec_dim=16, lr=2e-2, lr_decay=1.0, batch_size=16, epochs=80
    )
    metrics = train_captioner(data, config, tmp_path, torch.device("cpu"), seed=0)
    assert metrics["model"] == {
        "input_dim": 20,
        "wordvec_dim": 16,
        "hidden_dim": 32,
        "cell_type": "attention",
        "grid_cells": 4,
        "cell_positions": True,
    }
    from a3cli.engine.captioning.sampling import load_captioner

    model, _ = load_captioner(tmp_path / "checkpoint.pt")
    train = data.splits["train"]
    got = [decode(c, data.idx_to_word) for c in model.sample(train.features, 10).tolist()]
    want = [decode(c, data.idx_to_word) for c in train.captions.tolist()]
    assert got == want


def test_without_cell_positions_the_order_of_the_cells_cannot_matter():
    """Why attention learns W_pos: without it, swapping the grid's cells leaves the loss unchanged, so the model
    cannot know which shape is left of which; with it, each cell's place counts."""
    w2i, _ = shapes_vocab()
    feats = torch.randn(4, 5 * 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    swapped = feats.view(4, 5, 4)[:, :, [1, 0, 3, 2]].flatten(1)  # the cells left <-> right
    caps = torch.tensor([encode("a red circle left of a blue square".split(), w2i, 10)] * 4)
    for positions in (False, True):
        torch.manual_seed(0)
        model = CaptioningRNN(w2i, 20, 8, 6, "attention", torch.float64, grid_cells=4, cell_positions=positions)
        assert ("W_pos" in model.params) == positions
        assert bool(torch.isclose(model.loss(feats, caps), model.loss(swapped, caps))) != positions
    with pytest.raises(A3Error, match="cell positions are for the attention captioner"):
        CaptioningRNN(w2i, 20, cell_type="lstm", cell_positions=True)


def test_attention_runs_and_checkpoints_from_before_cell_positions_still_load():
    from a3cli.engine.captioning.checkpoint import CaptionCheckpoint
    from a3cli.engine.captioning.model import model_from_checkpoint
    from a3cli.engine.captioning.training import resolve_settings

    w2i, _ = shapes_vocab()
    old = CaptioningRNN(w2i, 20, 8, 6, "attention", grid_cells=4)
    config = {"input_dim": 20, "wordvec_dim": 8, "hidden_dim": 6, "cell_type": "attention", "grid_cells": 4}
    loaded = model_from_checkpoint(CaptionCheckpoint(weights=old.state_dict(), model_config=config, word_to_idx=w2i))
    assert not loaded.cell_positions
    saved = {
        "cell_type": "attention",
        "hidden_dim": 6,
        "wordvec_dim": 8,
        "lr": 1e-3,
        "lr_decay": 1.0,
        "batch_size": 4,
        "epochs": 1,
        "grad_clip": 5.0,
        "max_length": 30,
    }
    assert resolve_settings(TrainConfig(), saved).cell_positions is False
    assert resolve_settings(TrainConfig(cell_type="attention"), None).cell_positions is True
    with pytest.raises(A3Error, match="--cell-positions is for --cell-type attention"):
        resolve_settings(TrainConfig(cell_type="lstm", cell_positions=True), None)


def test_attention_refuses_flat_features_in_one_clear_line():
    assert grid_cells({"backbone": "efficientnet_lite0", "layer": "block4", "image_size": 64, "grid": 4}) == 16
    for spec in (
        {"backbone": "vgg16", "layer": "fc7", "pca": True},
        {"layer": "pooled", "grid": 1},
        {"layer": "block4", "grid": 1},
    ):
        with pytest.raises(A3Error, match="attends over a grid of image features.*--grid N"):
            grid_cells(spec)
    with pytest.raises(A3Error, match="grid of at least 2 cells"):
        CaptioningRNN(shapes_vocab()[0], input_dim=10, cell_type="attention", grid_cells=1)
