"""Device choice, seeding, atomic writes and checkpoints."""

from __future__ import annotations

import os
import pickle
import re

import pytest
import torch

from a3cli.engine.checkpoints import load_checkpoint, save_checkpoint
from a3cli.engine.device import resolve_device, seed_everything
from a3cli.engine.errors import A3Error
from a3cli.engine.files import atomic_write, write_json


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    for bad in ("gpu", "cuda:x", "cuda:-1", ""):
        with pytest.raises(A3Error, match="is not one of"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(A3Error, match="CUDA is not available"):
            resolve_device("cuda:0")
    else:
        assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_seed_repeats_random_draws():
    import random

    import numpy as np

    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "sub" / "result.json"
    write_json(target, {"a": 1})
    assert target.read_text().strip().startswith("{")

    def broken(f):
        f.write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert '"a": 1' in target.read_text()
    assert os.listdir(target.parent) == ["result.json"]  # no temporary file left


def test_atomic_write_reports_unwritable_places(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(A3Error, match="cannot write"):
        write_json(blocker / "inside.json", {})


def test_checkpoint_round_trip_and_refusals(tmp_path):
    state = {"kind": "gan", "step": 3, "weights": {"w": torch.arange(4.0)}, "config": {"lr": 1e-3}}
    path = save_checkpoint(state, tmp_path / "ckpt.pt")
    loaded = load_checkpoint(path, kind="gan")
    assert loaded["step"] == 3 and torch.equal(loaded["weights"]["w"], torch.arange(4.0))
    with pytest.raises(A3Error, match="is a gan checkpoint, expected a captioner checkpoint"):
        load_checkpoint(path, kind="captioner")
    with pytest.raises(A3Error, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(A3Error, match="cannot load checkpoint"):
        load_checkpoint(garbage)
    # A pickle carrying a class (code) is refused by weights_only=True.
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "gan", "obj": A3Error("x")}, evil)
    with pytest.raises(A3Error, match="cannot load checkpoint"):
        load_checkpoint(evil)


@pytest.mark.parametrize(
    "write, says",
    [
        (lambda p: p.write_bytes(b"%PDF-1.4\n%fake report\n"), "it is a PDF document, not a PyTorch file"),
        (lambda p: p.write_bytes(pickle.dumps({"scores": [1, 2, 3]})), "it is a Python pickle, not an a3 file"),
        (lambda p: torch.save(torch.nn.Linear(2, 2).state_dict(), p), "a PyTorch file of another program (no a3"),
        (lambda p: torch.save({"model": torch.nn.Linear(2, 2)}, p), "a PyTorch file of another program: it needs code"),
        (lambda p: p.write_text("hello"), "it is a text file, not a PyTorch file"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_named_for_what_it_is(tmp_path, write, says):
    path = tmp_path / "given.pt"
    write(path)
    with pytest.raises(A3Error, match=re.escape(says)) as refused:
        load_checkpoint(path, kind="captioner")
    assert "weights_only" not in str(refused.value) and "\n" not in str(refused.value)


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    from a3cli.engine.checkpoints import load_checkpoint, save_checkpoint
    from a3cli.engine.device import rng_state, seed_everything, set_rng_state

    seed_everything(5)
    save_checkpoint({"rng": rng_state()}, tmp_path / "rng.pt")
    first = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3).tolist())
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.rand(), np.random.randn(), torch.rand(3).tolist()) == first


def test_progress_bar_reports_steps_and_metrics(capsys):
    from a3cli.app import progress_bar

    with progress_bar(3, "training") as progress:
        for step in range(1, 4):
            progress(step, {"loss": 1.0 / step})
    err = capsys.readouterr().err
    assert "training" in err and "3/3" in err and "loss 0.3333" in err


def test_loss_curves_figure_writes_a_png(tmp_path):
    from PIL import Image

    from a3cli.engine.figures import loss_curves_figure

    loss_curves_figure({"D": [1.0 / (i + 1) for i in range(200)], "G": [0.5] * 200}, tmp_path / "curve.png")
    with Image.open(tmp_path / "curve.png") as picture:
        assert picture.format == "PNG" and picture.width > 300
