"""Captioner training: learning, its files and checkpoints, and resuming a run killed mid-epoch."""

from __future__ import annotations

import json
import math

import pytest
import torch

from a3cli.engine.captioning.sampling import load_captioner
from a3cli.engine.captioning.training import TrainConfig, train_captioner
from a3cli.engine.captioning.vocab import decode
from a3cli.engine.checkpoints import load_checkpoint
from a3cli.engine.errors import A3Error
from a3cli.engine.runs import CHECKPOINT_NAME as CHECKPOINT
from tests.helpers import capture_figures, toy_data

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def test_training_learns_and_writes_its_files(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    torch.manual_seed(0)
    data = toy_data(n_images=64)
    config = TrainConfig(cell_type="lstm", hidden_dim=32, wordvec_dim=16, lr=1e-2, batch_size=16, epochs=15)
    metrics = train_captioner(data, config, tmp_path, CPU, export=tmp_path / "small.pt")
    losses = metrics["train_loss"]
    assert len(losses) == 15 * 4 and losses[-1] < 0.25 * losses[0]
    assert len(metrics["val_loss"]) == 15 and metrics["bleu"]["val"]["bleu1"] > 0.7
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["train_loss"] == losses and set(saved["bleu"]["val"]) == {"bleu1", "bleu2", "bleu3", "bleu4"}
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    (loss,) = figures  # both losses, and the validation split's scores in the title
    assert loss["legends"] == ["training loss (mean of 2)", "validation loss"]
    bleu4 = metrics["bleu"]["val"]["bleu4"]
    assert f"validation split: BLEU-4 {bleu4:.3f}, CIDEr-D {metrics['cider']['val']:.3f}" in loss["axes"][0][0]
    model, ckpt = load_captioner(tmp_path / CHECKPOINT)
    raw = load_checkpoint(tmp_path / CHECKPOINT)
    assert raw["kind"] == "captioner" and ckpt.progress["epoch"] == 15 and ckpt.optimizer is not None
    assert ckpt.rng is not None
    small, small_ckpt = load_captioner(tmp_path / "small.pt")
    assert small_ckpt.optimizer is None and small_ckpt.idx_to_word == data.idx_to_word
    for a, b in zip(model.parameters(), small.parameters()):
        assert torch.equal(a, b)


def test_overfits_the_training_captions_exactly():
    torch.manual_seed(0)
    data = toy_data(n_images=20)
    config = TrainConfig(cell_type="rnn", hidden_dim=64, wordvec_dim=32, lr=1e-2, batch_size=20, epochs=30)
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        train_captioner(data, config, out, CPU)
        model, _ = load_captioner(f"{out}/{CHECKPOINT}")
    train = data.splits["train"]
    got = [decode(c, data.idx_to_word) for c in model.sample(train.features, 8).tolist()]
    want = [decode(c, data.idx_to_word) for c in train.captions.tolist()]
    assert got == want


CELLS = {
    "lstm": {"cell_type": "lstm", "hidden_dim": 16, "lr_decay": 0.9},  # the step schedule
    # with dropout, drawn every step, and the cosine schedule, computed from the step
    "transformer": {"cell_type": "transformer", "num_heads": 2, "ffn_dim": 16},
}


@pytest.mark.parametrize("cell", list(CELLS))
def test_a_run_killed_mid_epoch_resumes_exactly(cell, tmp_path):
    data = toy_data(n_images=40)
    config = TrainConfig(**CELLS[cell], wordvec_dim=8, batch_size=8, epochs=3)
    torch.manual_seed(7)
    whole = train_captioner(data, config, tmp_path / "whole", CPU)

    def stop_at(step):
        def progress(i, metrics):
            if i == step:
                raise KeyboardInterrupt

        return progress

    torch.manual_seed(7)
    with pytest.raises(KeyboardInterrupt):
        train_captioner(data, config, tmp_path / "cut", CPU, progress=stop_at(7))  # in epoch 2 of 3
    ckpt = load_checkpoint(tmp_path / "cut" / CHECKPOINT, kind="captioner")
    assert (ckpt["epoch"], ckpt["position"], len(ckpt["train_loss"])) == (1, 2, 7)
    so_far = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert so_far["interrupted"] is True and (so_far["iterations"], so_far["total_iterations"]) == (7, 15)
    assert so_far["train_loss"] == ckpt["train_loss"] and "bleu" not in so_far
    torch.manual_seed(12345)  # the resumed run takes its RNG state from the checkpoint
    resumed = train_captioner(data, TrainConfig(), tmp_path / "cut", CPU, resume=True)  # its settings: the run's
    assert resumed["train_loss"] == whole["train_loss"] and resumed["val_loss"] == whole["val_loss"]
    a, _ = load_captioner(tmp_path / "whole" / CHECKPOINT)
    b, _ = load_captioner(tmp_path / "cut" / CHECKPOINT)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    # Resuming with more epochs trains on; resuming on other data is refused.
    longer = train_captioner(data, TrainConfig(epochs=4), tmp_path / "cut", CPU, resume=True)
    assert len(longer["train_loss"]) == 4 * 5 and longer["train_loss"][:15] == whole["train_loss"]
    other = toy_data(dim=12)
    with pytest.raises(A3Error, match="other data"):
        train_captioner(other, config, tmp_path / "cut", CPU, resume=True)
    with pytest.raises(A3Error, match="does not exist"):
        train_captioner(data, config, tmp_path / "nothing", CPU, resume=True)


def test_the_cosine_schedule_anneals_to_zero_and_refuses_a_decay_per_epoch(tmp_path):
    from a3cli.engine.captioning.training import CaptionTraining, resolve_settings
    from a3cli.engine.distributed import World
    from a3cli.engine.errors import A3Error

    config = TrainConfig(cell_type="transformer", num_heads=2, ffn_dim=16, wordvec_dim=8, batch_size=8, epochs=2)
    assert resolve_settings(config, None).lr_schedule == "cosine"
    training = CaptionTraining(toy_data(n_images=40), config, tmp_path / "run", World(device=CPU))
    rates = []
    while training.step < training.total:
        training.train_step()
        rates.append(training.optimizer.param_groups[0]["lr"])
    total = training.total
    assert rates == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * k / total)) for k in range(total)])
    with pytest.raises(A3Error, match="--lr-decay is the step schedule's"):
        resolve_settings(TrainConfig(cell_type="transformer", lr_decay=0.9), None)
    assert resolve_settings(TrainConfig(cell_type="lstm"), None).lr_schedule == "step"
