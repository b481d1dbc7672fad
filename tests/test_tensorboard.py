"""The TensorBoard event files of a run, read back with TensorBoard's own reader: losses every iteration, the
Fréchet distance, precision and recall, BLEU and CIDEr-D where measured, the sample grids; none when off."""

from __future__ import annotations

import pytest
import torch

from a3cli.engine.captioning.training import CaptionTraining, TrainConfig
from a3cli.engine.device import seed_everything
from a3cli.engine.diffusion.config import DiffusionConfig
from a3cli.engine.diffusion.training import prepare_diffusion
from a3cli.engine.distributed import World
from a3cli.engine.gan.config import GanConfig
from a3cli.engine.gan.training import prepare_gan
from tests.helpers import quick_batchnorm_fit, toy_data, untrained_classifier

pytest.importorskip("tensorboard")
pytestmark = pytest.mark.usefixtures("one_thread")


def events(folder) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[int]]]:
    """The scalars (tag -> [(step, value)]) and images (tag -> [step]) of the event files in `folder`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    log.Reload()
    scalars = {tag: [(e.step, e.value) for e in log.Scalars(tag)] for tag in log.Tags()["scalars"]}
    images = {tag: [e.step for e in log.Images(tag)] for tag in log.Tags()["images"]}
    return scalars, images


def test_a_gan_run_logs_its_losses_measurements_and_grids(tmp_path, monkeypatch):
    quick_batchnorm_fit(monkeypatch)
    classifier = untrained_classifier(tmp_path / "classifier.pt")
    base = dict(variant="dcgan", batch_size=8, iterations=4, sample_every=2, eval_every=2, eval_samples=40)
    common = dict(data_root=tmp_path / "no-data", download=False, classifier=classifier, fid_samples=60, **base)
    seed_everything(0)
    training = prepare_gan(GanConfig(out=tmp_path / "run", **common))
    metrics = training.train().metrics
    scalars, images = events(tmp_path / "run")
    assert [step for step, _ in scalars["loss/d_loss"]] == [1, 2, 3, 4]
    assert [value for _, value in scalars["loss/g_loss"]] == pytest.approx(training.history["g_loss"])
    for model in ("generator", "ema"):
        for number in ("frechet_distance", "precision", "recall", "kl_to_uniform", "digits_covered"):
            assert [step for step, _ in scalars[f"frechet/{model}/{number}"]] == [2, 4]
    history = metrics["frechet_history"]
    assert [v for _, v in scalars["frechet/ema/frechet_distance"]] == pytest.approx(
        [row["ema"]["frechet_distance"] for row in history]
    )
    assert scalars["final report/final/frechet_distance"][0] == (4, pytest.approx(metrics["frechet_distance"]))
    assert images["samples"] == [0, 2, 4]
    prepare_gan(GanConfig(out=tmp_path / "quiet", tensorboard=False, **common)).train()
    assert not list((tmp_path / "quiet").glob("events.out.tfevents.*"))


def test_a_diffusion_run_logs_its_loss_and_measurements(tmp_path):
    classifier = untrained_classifier(tmp_path / "classifier.pt")
    config = DiffusionConfig(
        out=tmp_path / "run",
        data_root=tmp_path / "no-data",
        download=False,
        classifier=classifier,
        fid_samples=20,
        width=8,
        batch_size=16,
        timesteps=50,
        eval_steps=2,
        eval_samples=20,
        eval_every=2,
        sample_every=2,
        iterations=2,
    )
    seed_everything(0)
    prepare_diffusion(config).train()
    scalars, images = events(tmp_path / "run")
    assert [step for step, _ in scalars["loss/loss"]] == [1, 2]
    assert [step for step, _ in scalars["frechet/ema/frechet_distance"]] == [2]
    assert images["samples"] == [0, 2]


def test_a_caption_run_logs_its_losses_and_scores(tmp_path):
    torch.manual_seed(0)
    data = toy_data(n_images=32)
    config = TrainConfig(cell_type="rnn", hidden_dim=16, wordvec_dim=8, batch_size=16, epochs=2)
    metrics = CaptionTraining(data, config, tmp_path, World(device=torch.device("cpu"))).train()
    scalars, _ = events(tmp_path)
    assert [value for _, value in scalars["loss/training"]] == pytest.approx(metrics["train_loss"])
    assert [step for step, _ in scalars["loss/validation"]] == [2, 4]  # each epoch's end
    assert scalars["val/bleu4"] == [(4, pytest.approx(metrics["bleu"]["val"]["bleu4"]))]
    assert scalars["val/cider_d"] == [(4, pytest.approx(metrics["cider"]["val"]))]
