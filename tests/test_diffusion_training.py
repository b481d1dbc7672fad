"""A diffusion run stopped by Ctrl-C and resumed with its folder alone is the run that never stopped: the
same weights, optimiser, history, measurements, best.pt and grids, its own length and schedule kept."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from a3cli.engine.checkpoints import load_checkpoint
from a3cli.engine.device import seed_everything
from a3cli.engine.diffusion.config import DiffusionConfig
from a3cli.engine.diffusion.training import prepare_diffusion
from a3cli.engine.errors import A3Error
from tests.helpers import untrained_classifier


def config(tmp_path, out: str, **changes) -> DiffusionConfig:
    """Tiny runs on the offline digits, measured every 2 iterations on few samples."""
    base = dict(
        out=tmp_path / out,
        data_root=tmp_path / "no-data",
        download=False,
        classifier=tmp_path / "classifier.pt",
        fid_samples=40,
    )
    return DiffusionConfig(**{**base, **changes})


def started(tmp_path, out: str, **changes) -> DiffusionConfig:
    schedule = dict(width=8, batch_size=16, timesteps=50, eval_steps=2, eval_samples=20, eval_every=2, sample_every=2)
    return config(tmp_path, out, **{"classes": True, "iterations": 4, **schedule, **changes})


def train(cfg: DiffusionConfig, progress=None) -> dict:
    seed_everything(cfg.seed)  # what the CLI does first
    return prepare_diffusion(cfg).train(progress).metrics


def flat(x) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for k in sorted(x, key=str) for t in flat(x[k])]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in flat(v)]
    return [torch.tensor(float(x))] if isinstance(x, (int, float)) else []


def same(a, b) -> bool:
    fa, fb = flat(a), flat(b)
    return len(fa) == len(fb) and all(torch.equal(x, y) for x, y in zip(fa, fb))


@pytest.fixture(autouse=True)
def classifier(tmp_path):
    return untrained_classifier(tmp_path / "classifier.pt")


def test_resume_after_ctrl_c_with_the_folder_alone_is_the_straight_run(tmp_path):
    straight = train(started(tmp_path, "straight"))

    def interrupt_at_one(step, losses):
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)  # held until the iteration ends, then checkpointed

    with pytest.raises(KeyboardInterrupt):
        train(started(tmp_path, "split"), interrupt_at_one)
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt", kind="diffusion")["step"] == 1
    seed_everything(123)  # a resumed run takes every RNG state from the checkpoint
    resumed = prepare_diffusion(config(tmp_path, "split", resume=True)).train().metrics
    a, b = (load_checkpoint(tmp_path / run / "checkpoint.pt") for run in ("straight", "split"))
    assert a["step"] == b["step"] == b["total"] == 4 and b["run"] == a["run"]
    for key in ("model", "ema_model", "optimizer", "history"):
        assert same(a[key], b[key]), key
    assert [row["iteration"] for row in b["frechet_history"]] == [2, 4]  # the run's schedule, not the default
    assert a["frechet_history"] == b["frechet_history"] and a["best"] == b["best"]
    best_a, best_b = (load_checkpoint(tmp_path / run / "best.pt", kind="diffusion") for run in ("straight", "split"))
    assert same(best_a, best_b)
    for key in ("frechet_distance", "best_frechet_distance", "frechet_history"):
        assert straight[key] == resumed[key], key
    for step in (0, 2, 4):
        grid = f"samples/iter_{step:06d}.png"
        assert (tmp_path / "straight" / grid).read_bytes() == (tmp_path / "split" / grid).read_bytes()


def test_resume_refuses_other_settings(tmp_path):
    train(started(tmp_path, "r", iterations=1, fid=False))
    with pytest.raises(A3Error, match="--objective x0 differs from the run being resumed"):
        prepare_diffusion(config(tmp_path, "r", resume=True, objective="x0"))
    with pytest.raises(A3Error, match="already holds a run"):
        prepare_diffusion(started(tmp_path, "r"))


def test_the_final_measurement_draws_only_what_the_last_evaluation_did_not(tmp_path, monkeypatch):
    from a3cli.engine.diffusion import training

    drawn: list[int] = []
    draw_images = training.draw_images

    def counted(diffusion, noise, *args, **kwargs):
        drawn.append(len(noise))
        return draw_images(diffusion, noise, *args, **kwargs)

    monkeypatch.setattr(training, "draw_images", counted)
    metrics = train(started(tmp_path, "run", iterations=2, eval_samples=20, fid_samples=50, sample_every=100))
    grids = training.GRID_ROWS**2
    # the evaluation at the last iteration drew 20; the final measurement of the same weights draws the other 30
    assert [n for n in drawn if n != grids] == [20, 30]
    assert metrics["best_iteration"] == 2 and metrics["best"]["frechet_distance"] == metrics["frechet_distance"]


def test_the_guide_is_the_averaged_model_at_a_quarter_of_the_run(tmp_path):
    metrics = train(started(tmp_path, "guided", classes=False, iterations=8))
    early = train(started(tmp_path, "early", classes=False, iterations=2))  # the same first two iterations
    guided, stopped = (load_checkpoint(tmp_path / run / "checkpoint.pt") for run in ("guided", "early"))
    assert guided["guide_iteration"] == 2 and same(guided["guide_model"], stopped["ema_model"])
    assert not same(guided["guide_model"], guided["ema_model"])
    best = load_checkpoint(tmp_path / "guided" / "best.pt")
    assert ("guide_model" in best) == (best["step"] >= 2)
    assert metrics["sampler"] == "DDIM, 2 steps, eta 0, autoguidance 1.25 by the model of iteration 2"
    assert early["sampler"] == "DDIM, 2 steps, eta 0, autoguidance 1.25 by the model of iteration 1"
    train(started(tmp_path, "plain", classes=False, iterations=8, autoguidance=0.0))
    assert "guide_model" not in load_checkpoint(tmp_path / "plain" / "checkpoint.pt")
