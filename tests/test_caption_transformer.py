"""The Transformer cell: its layers against PyTorch's, decoding with kept keys and values against recomputing
the prefix, its loss, the assignment's overfit check through the CLI, and the mistakes users make."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from a3cli.engine import CaptioningRNN
from a3cli.engine.captioning.cells.base import State
from a3cli.engine.captioning.cells.transformer import TransformerCell
from a3cli.engine.layers.transformer import causal_mask
from tests.helpers import run_cli, write_coco_h5

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = {"<NULL>": 0, "<START>": 1, "<END>": 2, **{f"w{i}": i + 3 for i in range(9)}}


def transformer(grid_cells: int = 1, seed: int = 0, dropout: float = 0.0) -> CaptioningRNN:
    torch.manual_seed(seed)
    model = CaptioningRNN(
        WORDS,
        input_dim=6 * grid_cells,
        wordvec_dim=16,
        cell_type="transformer",
        dtype=torch.float64,
        grid_cells=grid_cells,
        num_heads=2,
        num_layers=2,
        ffn_dim=32,
        dropout=dropout,
    )
    with torch.no_grad():  # larger weights than N(0, 0.02): peaky, varied next-word distributions
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    return model.eval()


def torch_decoder(cell: TransformerCell) -> nn.TransformerDecoder:
    """PyTorch's post-norm decoder holding the cell's weights."""
    layers = cell.decoder
    E, heads, ffn = layers[0].self_attn.embed_dim, layers[0].self_attn.num_heads, layers[0].ffn[0].out_features
    layer = nn.TransformerDecoderLayer(E, heads, ffn, dropout=0.0, batch_first=True, dtype=torch.float64)
    decoder = nn.TransformerDecoder(layer, num_layers=len(layers))
    for theirs, ours in zip(decoder.layers, layers):
        for attention, mine in ((theirs.self_attn, ours.self_attn), (theirs.multihead_attn, ours.cross_attn)):
            linears = (mine.query, mine.key, mine.value)
            attention.in_proj_weight.data = torch.cat([lin.weight.data for lin in linears])
            attention.in_proj_bias.data = torch.cat([lin.bias.data for lin in linears])
            attention.out_proj.load_state_dict(mine.proj.state_dict())
        theirs.linear1.load_state_dict(ours.ffn[0].state_dict())
        theirs.linear2.load_state_dict(ours.ffn[3].state_dict())
        for norm, mine in (
            (theirs.norm1, ours.norm_self),
            (theirs.norm2, ours.norm_cross),
            (theirs.norm3, ours.norm_ffn),
        ):
            norm.load_state_dict(mine.state_dict())
    return decoder.eval()


@pytest.mark.parametrize("grid_cells", [1, 4])
def test_the_cell_is_pytorchs_post_norm_decoder_over_words_with_positions(grid_cells):
    model = transformer(grid_cells)
    cell = model.cell
    features, words = torch.randn(3, 6 * grid_cells, dtype=torch.float64), torch.randint(0, 12, (3, 7))
    x, memory = model.W_embed[words], model.memory(features)
    assert memory.shape == (3, grid_cells, 16)
    blocked = ~causal_mask(7)  # PyTorch: True = may not attend
    theirs = torch_decoder(cell)(cell.positions(x), memory, tgt_mask=blocked)
    torch.testing.assert_close(cell.sequence(x, memory), theirs, rtol=1e-6, atol=1e-9)


def test_the_loss_is_averaged_over_every_position():
    model = transformer(seed=1)
    features, captions = torch.randn(4, 6, dtype=torch.float64), torch.randint(3, 12, (4, 9))
    captions[:, 0], captions[1, 5:] = 1, 0
    scores = model.cell.sequence(model.W_embed[captions[:, :-1]], model.memory(features)) @ model.W_vocab
    scores = scores + model.b_vocab
    targets = captions[:, 1:]
    nll = F.cross_entropy(scores.transpose(1, 2), targets, reduction="none")
    expected = (nll * (targets != 0)).sum() / targets.numel()  # masked positions count, as zeros
    assert model.loss(features, captions).item() == pytest.approx(expected.item(), rel=1e-12)


class Recomputed(State):
    """A decoding state that keeps the words read so far, for decoding that recomputes the whole prefix."""

    def __init__(self, x: torch.Tensor, memory: torch.Tensor) -> None:
        self.x, self.memory = x, memory

    def select(self, rows):
        return Recomputed(self.x[rows], self.memory[rows])


def recomputing(cell: TransformerCell, monkeypatch) -> None:
    """Make `cell` decode by running the whole prefix through its layers at every step."""

    def start(memory):
        return Recomputed(memory.new_zeros(memory.shape[0], 0, memory.shape[2]), memory)

    def step(x, state):
        prefix = torch.cat([state.x, x[:, None]], dim=1)
        return cell.sequence(prefix, state.memory)[:, -1], Recomputed(prefix, state.memory)

    monkeypatch.setattr(cell, "start", start)
    monkeypatch.setattr(cell, "step", step)


@pytest.mark.parametrize("grid_cells", [1, 4])
def test_decoding_with_kept_keys_and_values_equals_recomputing_the_prefix(grid_cells, monkeypatch):
    model = transformer(grid_cells, seed=2)
    features = torch.randn(6, 6 * grid_cells, dtype=torch.float64)
    kept = model.sample(features, max_length=10), model.beam_search(features, beam_size=3, max_length=10)
    drawn = model.sample_random(features, 10, temperature=1.5, generator=torch.Generator().manual_seed(0))
    assert (kept[0] != 0).sum() > 12  # captions of several words, not <END> at once
    recomputing(model.cell, monkeypatch)
    assert torch.equal(model.sample(features, max_length=10), kept[0])
    assert torch.equal(model.beam_search(features, beam_size=3, max_length=10), kept[1])
    again = model.sample_random(features, 10, temperature=1.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, drawn)


def test_attention_weights_are_the_last_layers_cross_attention():
    model = transformer(grid_cells=4, seed=3)
    features, words = torch.randn(2, 24, dtype=torch.float64), torch.randint(0, 12, (2, 5))
    weights = model.attention_weights(features, words)
    assert weights.shape == (2, 5, 4)
    torch.testing.assert_close(weights.sum(dim=2), torch.ones(2, 5, dtype=torch.float64))
    assert model.cell.decoder[-1].cross_attn.keep_weights is False  # kept only while asked


def test_the_assignments_overfit_check_through_the_cli(tmp_path, capsys):
    """The notebook's check: 50 captions, width 256, 2 heads, 2 layers, Adam 1e-3, batch 25, 100 epochs; on
    512-d features (as the assignment's PCA ones) and captions of 50 words."""
    words = tuple(f"w{i}" for i in range(50))
    data = write_coco_h5(tmp_path / "coco", n_train=50, pca_d=512, vocab_extra=words, captions_per_image=1)
    out = tmp_path / "run"
    argv = "--cell-type transformer --wordvec-dim 256 --num-heads 2 --num-layers 2 --lr 1e-3"
    argv += " --batch-size 25 --epochs 100 --max-train 50 --device cpu"
    code, stdout, err = run_cli(["caption-train", "--data", str(data), *argv.split(), "--out", str(out)], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["num_heads"] == 2 and metrics["model"]["cell_type"] == "transformer"
    assert metrics["train_loss"][-1] < 0.05, metrics["train_loss"][-10:]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--cell-type", "transformer", "--num-heads", "3"], "--num-heads 3 does not divide --wordvec-dim 128"),
        (["--cell-type", "transformer", "--num-layers", "0"], "--num-layers"),
        (["--cell-type", "lstm", "--num-heads", "2"], "--num-heads is for --cell-type transformer, not lstm"),
    ],
)
def test_transformer_mistakes_end_in_one_line(options, message, tmp_path, capsys):
    data = write_coco_h5(tmp_path / "coco")
    code, _, err = run_cli(["caption-train", "--data", str(data), *options, "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_transformer_run_resumed_as_another_cell_is_refused(tmp_path, capsys):
    data, out = write_coco_h5(tmp_path / "coco"), tmp_path / "run"
    small = ["--wordvec-dim", "8", "--num-heads", "2", "--ffn-dim", "16", "--epochs", "1", "--device", "cpu"]
    code, _, err = run_cli(
        ["caption-train", "--data", str(data), "--cell-type", "transformer", *small, "--out", str(out)], capsys
    )
    assert code == 0, err
    code, _, err = run_cli(
        ["caption-train", "--out", str(out), "--resume", "--cell-type", "lstm", "--epochs", "2"], capsys
    )
    assert code == 2 and "--cell-type lstm differs from the run being resumed (transformer)" in err, err
