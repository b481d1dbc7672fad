"""The catalogue's records point at real code, and the training-run skeleton's rules hold for both trainers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from a3cli.engine import catalogue
from a3cli.engine.captioning.training import TrainConfig, train_captioner
from a3cli.engine.errors import A3Error
from a3cli.engine.runs import CHECKPOINT_NAME, merge_settings, open_run, save_run
from tests.helpers import run_cli, toy_data

CPU = torch.device("cpu")


def test_catalogue_does_not_import_torch():
    code = "import sys, a3cli.engine.catalogue, a3cli.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_record_names_code_that_exists():
    from torch import nn

    from a3cli.engine.backbones.builders import BUILDERS, Parts
    from a3cli.engine.gan.networks import LOSSES, NETWORKS
    from a3cli.engine.visualize.saliency import METHODS
    from a3cli.engine.visualize.saliency_config import SaliencyConfig

    for record in catalogue.BACKBONE_RECORDS:
        with torch.device("meta"):
            parts = BUILDERS[record.builder](record)
        assert isinstance(parts, Parts) and isinstance(parts.model, nn.Module), record.name
        names = [name for name, _ in parts.stages]
        if record.style:  # the tuned layers are layers of this network
            assert {record.style["content_layer"], *record.style["style_layers"]} <= set(names), record.name
            assert len(record.style["style_layers"]) == len(record.style["style_weights"])
        assert (record.package is None) != (record.torchvision_weights is None)
    for variant in catalogue.GAN_VARIANTS.values():
        for network in (variant.discriminator, variant.generator):
            assert callable(NETWORKS[network]), network
        for loss in (variant.discriminator_loss, variant.generator_loss):
            assert callable(LOSSES[loss]), loss
    for method in catalogue.SALIENCY_METHODS.values():
        assert callable(METHODS[method.name])
        assert method.passes is None or hasattr(SaliencyConfig(), method.passes)
    for preset in catalogue.STYLE_PRESETS.values():
        for model, settings in preset.items():
            assert len(settings["style_layers"]) == len(settings["style_weights"]), model


def test_a_new_backbone_is_one_record(monkeypatch, capsys, photos, tmp_path):
    """One record (ResNet-34 on the ResNet builder) and the engine knows it; stylize finds its settings there."""
    from a3cli.engine.backbones.registry import build_backbone
    from a3cli.engine.style.config import StyleConfig
    from a3cli.engine.style.settings import resolve_settings

    record = catalogue.BackboneRecord(
        "resnet34",
        "resnet",
        feature_dim=512,
        torchvision_weights="ResNet34_Weights",
        style={
            "content_layer": "layer1",
            "style_layers": ["stem"],
            "style_weights": [1.0],
            "content_weight": 1.0,
            "tv_weight": 0.0,
        },
    )
    monkeypatch.setitem(catalogue.BACKBONES, record.name, record)
    with torch.device("meta"):
        backbone = build_backbone("resnet34")
    assert backbone.layer_names == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert sum(p.numel() for p in backbone.model.parameters()) == 21_797_672
    assert resolve_settings("resnet34", None, StyleConfig(iterations=3)).content_layer == "layer1"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("A3_OFFLINE", "1")
    code, _, err = run_cli(["classify", str(photos["coffee"]), "--model", "resnet34"], capsys)
    assert code == 2 and "resnet34 weights are not available offline" in err and "resnet34-" in err


def test_merge_settings_keeps_the_runs_and_refuses_others():
    saved = {"lr": 0.1, "batch_size": 8}
    assert merge_settings({"lr": None, "batch_size": 8}, saved) == saved
    assert merge_settings({"lr": 0.5}, None) == {"lr": 0.5}
    with pytest.raises(A3Error, match="--batch-size 4 differs from the run being resumed"):
        merge_settings({"batch_size": 4}, saved)


def test_open_run_refuses_a_fresh_run_where_one_is(tmp_path):
    assert open_run(tmp_path, "gan", resume=False) is None
    save_run(tmp_path, "gan", {"step": 1})
    with pytest.raises(A3Error, match="already holds a run"):
        open_run(tmp_path, "gan", resume=False)
    assert open_run(tmp_path, "gan", resume=True)["step"] == 1
    with pytest.raises(A3Error, match="expected a captioner checkpoint"):
        open_run(tmp_path, "captioner", resume=True)


def test_caption_training_does_not_depend_on_what_ran_before(tmp_path):
    """The seeding rule: the same seed gives the same run, whatever drew random numbers first."""
    config = TrainConfig(cell_type="lstm", hidden_dim=8, wordvec_dim=4, batch_size=8, epochs=1)
    torch.manual_seed(1)
    first = train_captioner(toy_data(), config, tmp_path / "a", CPU, seed=3)
    torch.randn(1000)  # what a backbone build or a feature extraction would draw
    second = train_captioner(toy_data(), config, tmp_path / "b", CPU, seed=3)
    other = train_captioner(toy_data(), config, tmp_path / "c", CPU, seed=4)
    assert first["train_loss"] == second["train_loss"] != other["train_loss"]


def test_caption_resume_refuses_other_settings_and_keeps_the_runs(tmp_path):
    config = TrainConfig(cell_type="rnn", hidden_dim=8, wordvec_dim=4, batch_size=8, epochs=1)
    train_captioner(toy_data(), config, tmp_path, CPU)
    with pytest.raises(A3Error, match="already holds a run"):
        train_captioner(toy_data(), config, tmp_path, CPU)
    with pytest.raises(A3Error, match="--hidden-dim 16 differs"):
        train_captioner(toy_data(), TrainConfig(hidden_dim=16, epochs=2), tmp_path, CPU, resume=True)
    metrics = train_captioner(toy_data(), TrainConfig(epochs=2), tmp_path, CPU, resume=True)
    assert metrics["config"]["cell_type"] == "rnn" and metrics["model"]["hidden_dim"] == 8 and metrics["epochs"] == 2


def test_caption_train_cli_resumes_with_the_runs_data_and_refuses_a_different_one(tmp_path, capsys):
    from tests.helpers import write_coco_h5

    data = write_coco_h5(tmp_path / "coco")
    out = tmp_path / "run"
    common = ["--hidden-dim", "8", "--wordvec-dim", "4", "--out", str(out), "--device", "cpu"]
    code, _, err = run_cli(
        ["caption-train", "--data", str(data), "--max-train", "40", "--epochs", "1", *common], capsys
    )
    assert code == 0, err
    code, _, err = run_cli(["caption-train", "--resume", "--epochs", "2", *common], capsys)  # the run's data
    assert code == 0, err
    ckpt = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["data"]["max_train"] == 40
    code, _, err = run_cli(["caption-train", "--resume", "--max-train", "20", "--epochs", "3", *common], capsys)
    assert code == 2 and "--max-train 20 differs from the run being resumed (40)" in err


def test_a_non_finite_caption_loss_stops_with_the_last_good_checkpoint(tmp_path, capsys):
    from tests.helpers import write_coco_h5

    data = write_coco_h5(tmp_path / "coco")
    argv = [
        "caption-train",
        "--data",
        str(data),
        "--hidden-dim",
        "8",
        "--wordvec-dim",
        "4",
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    ]
    code, _, err = run_cli([*argv, "--lr", "inf"], capsys)
    assert code == 2 and "'--lr': inf is not a finite number" in err
    code, _, err = run_cli([*argv, "--lr", "1e30"], capsys)  # finite, but the weights blow up
    assert code == 2 and "non-finite loss at iteration" in err and "no checkpoint was written yet" in err
    assert not (tmp_path / "run" / CHECKPOINT_NAME).exists()


def test_a_signal_handled_while_the_ranks_agree_still_stops_the_run(tmp_path):
    """A rank blocked in the agreeing collective runs its signal handler right after the collective returns,
    before its answer is used: that request must stop the run at the next iteration, not be overwritten."""
    import os
    import signal

    from a3cli.engine.distributed import World
    from a3cli.engine.runs import train_loop

    class SignalDuringAgreement(World):
        def any(self, flag: bool) -> bool:
            if trainer.step == 3:
                os.kill(os.getpid(), signal.SIGINT)  # handled here, after the flag was read
            return flag

    class Toy:
        command, out, step, saves, stops = "gan-train", tmp_path, 0, [], 0

        def train_step(self):
            self.step += 1
            return {"loss": 1.0}

        def save(self):
            self.saves.append(self.step)

        def stopped(self):
            self.stops += 1

    trainer = Toy()
    with pytest.raises(KeyboardInterrupt):
        train_loop(trainer, 100, 1000, None, SignalDuringAgreement())
    assert trainer.step == 4 and trainer.saves == [4] and trainer.stops == 1


def test_the_resume_line_is_the_command_line_or_the_command_with_out(tmp_path, monkeypatch):
    """a3's own command line comes back with --resume; a program that calls the engine (its own sys.argv)
    gets the command with --out and --resume, with which a run keeps its settings."""
    from types import SimpleNamespace

    from a3cli.engine.distributed import World
    from a3cli.engine.runs import resume_command

    trainer = SimpleNamespace(command="gan-train", out=tmp_path / "my run")
    monkeypatch.setattr("sys.argv", ["a3", "gan-train", "--variant", "lsgan", "--out", "x"])
    assert resume_command(trainer, World()) == "a3 gan-train --variant lsgan --out x --resume"
    monkeypatch.setattr("sys.argv", ["a3", "gan-train", "--out", "x", "--resume"])
    assert resume_command(trainer, World()) == "a3 gan-train --out x --resume"
    monkeypatch.setattr("sys.argv", ["bench.py", "photos", "--iterations", "9"])
    assert resume_command(trainer, World()) == f"a3 gan-train --out '{tmp_path / 'my run'}' --resume"
