"""The training loop: exact resume (also after Ctrl-C), its pictures, non-finite losses, and the CLI end to end."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from PIL import Image

from tests.helpers import run_cli, torch_free_help
from a3cli.engine import A3Error
from a3cli.engine.checkpoints import load_checkpoint
from a3cli.engine.device import seed_everything
from a3cli.engine.catalogue import GAN_VARIANTS as VARIANTS
from a3cli.engine.gan.training import GanConfig, train_gan
from a3cli.engine.layers import losses


def config(tmp_path, out: str, **changes) -> GanConfig:
    """Tiny runs on the offline MNIST digits (no download attempts in tests)."""
    base = dict(out=tmp_path / out, batch_size=8, sample_every=2, data_root=tmp_path / "no-data", download=False,
                fid=False)
    base.update(changes)
    return GanConfig(**base)


def train(cfg: GanConfig, progress=None) -> dict:
    seed_everything(cfg.seed)  # what the CLI's setup() does first
    return train_gan(cfg, torch.device("cpu"), progress)


def same_state(a: dict, b: dict) -> bool:
    def flat(x):
        if isinstance(x, torch.Tensor):
            return [x]
        if isinstance(x, dict):
            return [t for k in sorted(x, key=str) for t in flat(x[k])]
        if isinstance(x, (list, tuple)):
            return [t for v in x for t in flat(v)]
        return [torch.tensor(float(x))] if isinstance(x, (int, float)) else []

    fa, fb = flat(a), flat(b)
    return len(fa) == len(fb) and all(torch.equal(x, y) for x, y in zip(fa, fb))


@pytest.mark.parametrize("variant, changes", [("dcgan", {}), ("wgan-gp", {"n_critic": 2})])
def test_resume_after_ctrl_c_continues_the_same_run(tmp_path, variant, changes):
    straight = train(config(tmp_path, "straight", variant=variant, iterations=4, **changes))
    assert straight["iterations"] == 4

    def interrupt_at_two(step, metrics):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # held until the iteration ends, then checkpointed

    with pytest.raises(KeyboardInterrupt):
        train(config(tmp_path, "split", variant=variant, iterations=4, **changes), interrupt_at_two)
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt", kind="gan")["step"] == 2
    seed_everything(123)  # a resumed run takes every RNG state from the checkpoint
    train_gan(config(tmp_path, "split", iterations=4, resume=True), torch.device("cpu"))
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert a["step"] == b["step"] == 4 and b["run"]["variant"] == variant
    for key in ("generator", "discriminator", "g_optimizer", "d_optimizer", "history"):
        assert same_state(a[key], b[key]), key


def test_outputs_and_metrics(tmp_path):
    metrics = train(config(tmp_path, "run", variant="lsgan", iterations=4, sample_every=2))
    out = tmp_path / "run"
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "iter_000000.png", "iter_000002.png", "iter_000004.png"]
    with Image.open(out / "samples.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (8 * 30 + 2, 8 * 30 + 2)
    with Image.open(out / "losses.png") as curves:
        assert curves.format == "PNG"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["iterations"] == 4 and saved["settings"]["lr"] == 1e-3 and saved["settings"]["beta1"] == 0.5
    assert "offline fallback" in saved["dataset"]
    # Epochs count full batches of the data: 5,000 digits at batch 1,000 is 5 per epoch.
    short = train(config(tmp_path, "epochs", epochs=1, batch_size=1000, sample_every=100))
    assert short["iterations"] == 5


def test_wgan_gp_uses_its_papers_settings(tmp_path):
    metrics = train(config(tmp_path, "w", variant="wgan-gp", iterations=1, n_critic=1))
    settings = metrics["settings"]
    assert (settings["lr"], settings["beta1"], settings["beta2"], settings["gp_weight"]) == (1e-4, 0.0, 0.9, 10.0)
    assert VARIANTS["wgan-gp"].n_critic == 5


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_loss = losses.generator_loss

    def loss_that_explodes(scores):
        calls["n"] += 1
        return real_loss(scores) * (float("nan") if calls["n"] == 3 else 1.0)

    monkeypatch.setattr(losses, "generator_loss", loss_that_explodes)  # the "gan" variant's generator loss
    with pytest.raises(A3Error, match=r"non-finite loss at iteration 3 .*last good checkpoint"):
        train(config(tmp_path, "nan", iterations=5, checkpoint_every=1))
    saved = load_checkpoint(tmp_path / "nan" / "checkpoint.pt", kind="gan")
    assert saved["step"] == 2
    assert all(torch.isfinite(t).all() for t in saved["generator"].values())


def test_resume_refuses_other_settings_and_fresh_runs_refuse_an_existing_one(tmp_path):
    train(config(tmp_path, "r", iterations=1))
    with pytest.raises(A3Error, match="--variant dcgan differs from the run being resumed"):
        train(config(tmp_path, "r", iterations=2, resume=True, variant="dcgan"))
    with pytest.raises(A3Error, match="already holds a run"):
        train(config(tmp_path, "r", iterations=2))


# ---- the command line ----



def test_gan_train_and_sample_end_to_end(tmp_path, capsys):
    from a3cli.engine.gan.frechet import MnistClassifier, save_classifier

    torch.manual_seed(0)
    classifier = save_classifier(MnistClassifier(), tmp_path / "classifier.pt", {"test_accuracy": 0.1})
    out = tmp_path / "run"
    code, stdout, err = run_cli(["gan-train", "--variant", "gan", "--iterations", "3", "--batch-size", "16",
                                 "--sample-every", "3", "--out", str(out), "--no-download", "--data-root",
                                 str(tmp_path), "--fid-samples", "300", "--classifier", str(classifier),
                                 "--device", "cpu"], capsys)
    assert code == 0, err
    metrics = json.loads(stdout)
    assert metrics["iterations"] == 3 and metrics["frechet_distance"] > 0
    assert metrics["frechet_samples"] == {"real": 300, "generated": 300}
    assert "offline fallback" in err  # the user is told the data set is the small fallback
    code, stdout, err = run_cli(["gan-sample", "--checkpoint", str(out / "checkpoint.pt"), "-n", "16",
                                 "--out", str(tmp_path / "s.png"), "--device", "cpu"], capsys)
    assert code == 0, err
    with Image.open(tmp_path / "s.png") as grid:
        assert grid.size == (4 * 30 + 2, 4 * 30 + 2)
    # Resuming continues from iteration 3 to 5.
    code, stdout, err = run_cli(["gan-train", "--out", str(out), "--resume", "--iterations", "5", "--no-fid",
                                 "--no-download", "--data-root", str(tmp_path), "--device", "cpu"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["iterations"] == 5 and json.loads(stdout)["settings"]["batch_size"] == 16


@pytest.mark.parametrize(
    "argv, message",
    [
        (["gan-train", "--variant", "vae"], "--variant 'vae' is not one of"),
        (["gan-train", "--dataset", "{tmp}/missing", "--no-download"], "not mnist, fashion-mnist or an existing folder"),
        (["gan-train", "--resume", "--out", "{tmp}/none"], "does not exist"),
        (["gan-train", "--dataset", "{photos}", "--out", "{tmp}/p"], "fewer than --batch-size 128"),
        (["gan-train", "--iterations", "0"], "--iterations"),
        (["gan-train", "--lr", "-1", "--out", "{tmp}/lr", "--no-download", "--data-root", "{tmp}"], "--lr must be positive"),
        (["gan-train", "--classifier", "{tmp}/none.pt", "--out", "{tmp}/c"], "--classifier"),
        (["gan-sample", "--checkpoint", "{tmp}/missing.pt"], "does not exist"),
        (["gan-sample", "--checkpoint", "{classifier}"], "expected a gan checkpoint"),
        (["gan-sample"], "Missing option"),
    ],
)
def test_user_mistakes_give_one_error_line(argv, message, tmp_path, photos, capsys):
    from a3cli.engine.gan.frechet import MnistClassifier, save_classifier

    classifier = save_classifier(MnistClassifier(), tmp_path / "c.pt", {})
    argv = [a.format(tmp=tmp_path, photos=photos["coffee"].parent, classifier=classifier) for a in argv]
    code, out, err = run_cli(argv + ["--device", "cpu"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["gan-train", "gan-sample", "gan-classifier"])
def test_help_does_not_import_torch(command):
    torch_free_help([command])
