"""`a3 gan-train`, `gan-sample` and `gan-classifier` end to end: on MNIST and on a folder of RGB pictures
at 64 px, their messages and their mistakes, and their help without torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from a3cli.engine.generative.classifier import MnistClassifier, save_classifier
from a3cli.engine.generative.pictures import GRID_MIN_WIDTH
from tests.helpers import (
    TITLE_LINE,
    assert_crisp,
    quick_batchnorm_fit,
    run_cli,
    torch_free_help,
    untrained_classifier,
    write_crops,
)


@pytest.fixture(scope="module")
def crops(tmp_path_factory, photos):
    return write_crops(tmp_path_factory.mktemp("crops"), photos)


@pytest.fixture
def classifier(tmp_path):
    return untrained_classifier(tmp_path / "classifier.pt")


# ---- MNIST ----


def test_gan_train_and_sample_end_to_end(tmp_path, classifier, capsys, monkeypatch):
    quick_batchnorm_fit(monkeypatch)
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        [
            "gan-train",
            "--variant",
            "gan",
            "--iterations",
            "3",
            "--batch-size",
            "16",
            "--sample-every",
            "3",
            "--eval-every",
            "2",
            "--eval-samples",
            "50",
            "--out",
            str(out),
            "--no-download",
            "--data-root",
            str(tmp_path),
            "--fid-samples",
            "300",
            "--classifier",
            str(classifier),
            "--device",
            "cpu",
            "--print-json",
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads(stdout)  # --print-json: stdout holds metrics.json alone
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 3 and metrics["frechet_distance"] > 0 and metrics["interrupted"] is False
    assert "gan: 3 iterations in" in err and f"wrote {out}: " in err  # the summary went to stderr
    assert metrics["frechet_samples"] == {"real": 300, "generated": 300, "tracked": 50}
    assert "offline fallback" in err  # the user is told the data set is the small fallback
    assert "iteration 2: Fréchet distance" in err and "iteration 3: Fréchet distance" in err  # the progress lines
    assert f"best {metrics['best_frechet_distance']:.1f}" in err  # the final report
    # A run folder gives its best.pt; a checkpoint file gives the run's averaged generator.
    for given, used in ((out, "best.pt"), (out / "checkpoint.pt", "checkpoint.pt")):
        code, stdout, err = run_cli(
            ["gan-sample", "--checkpoint", str(given), "-n", "16", "--out", str(tmp_path / "s.png"), "--device", "cpu"],
            capsys,
        )
        assert code == 0, err
        assert used in stdout
        with Image.open(tmp_path / "s.png") as grid:
            # 4 x 4 digits of 28 px with 2 px between them are 122 px, enlarged 5 times to reach 512, under
            # a line of title
            assert grid.size == (5 * 122, 5 * 122 + TITLE_LINE) and grid.width >= GRID_MIN_WIDTH > 4 * 122
            assert_crisp(grid.crop((0, TITLE_LINE, grid.width, grid.height)), 5)
    assert "averaged generator at iteration 3" in stdout
    code, stdout, err = run_cli(
        [
            "gan-sample",
            "--checkpoint",
            str(out),
            "-n",
            "5",
            "--out",
            str(tmp_path / "s.png"),
            "--npy",
            str(tmp_path / "s.npy"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    array = np.load(tmp_path / "s.npy")
    assert array.shape == (5, 28, 28) and array.dtype == np.uint8 and array.std() > 0
    # Resuming continues from iteration 3 to 5.
    code, stdout, err = run_cli(
        [
            "gan-train",
            "--out",
            str(out),
            "--resume",
            "--iterations",
            "5",
            "--no-fid",
            "--no-download",
            "--data-root",
            str(tmp_path),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "note: resuming from iteration 3 of 5" in err
    lines = stdout.splitlines()  # a short summary; the metrics are in metrics.json
    assert len(lines) == 2 and lines[0].startswith("gan: 5 iterations in ") and "final losses D " in lines[0]
    assert lines[1].startswith(f"wrote {out}: ") and lines[1].endswith("metrics.json")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 5 and metrics["settings"]["batch_size"] == 16
    # Latent walks and nearest training images, from the run folder.
    walk, near = tmp_path / "walk.png", tmp_path / "near.png"
    code, stdout, err = run_cli(["gan-sample", "-c", str(out), "--interpolate", "3", "--out", str(walk)], capsys)
    assert code == 0, err
    assert "3 latent walks of 8 steps" in stdout
    with Image.open(walk) as grid:
        assert grid.size == (3 * 242, 3 * 92 + TITLE_LINE)  # 3 rows of 8 digits (28 px, 2 between), 3 times, titled
    argv = ["gan-sample", "-c", str(out), "--nearest", "--out", str(near), "--data-root", str(tmp_path)]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "16 samples of" in stdout and "offline fallback" in stdout and "MNIST classifier" in stdout
    with Image.open(near) as grid:
        assert grid.width == 3 * 242 and grid.height - 3 * 122 in (TITLE_LINE, TITLE_LINE + 20)  # 16 pairs, 4 a row
    code, stdout, err = run_cli(["gan-sample", "-c", str(out), "--nearest", "--interpolate", "2"], capsys)
    assert code == 2 and "give one of them" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["gan-train", "--variant", "vae"], "--variant 'vae' is not one of"),
        (
            ["gan-train", "--dataset", "{tmp}/missing", "--no-download"],
            "not mnist, fashion-mnist or an existing folder",
        ),
        (["gan-train", "--resume", "--out", "{tmp}/none"], "does not exist"),
        (["gan-train", "--dataset", "{photos}", "--out", "{tmp}/p"], "fewer than --batch-size 128"),
        (["gan-train", "--iterations", "0"], "--iterations"),
        (
            ["gan-train", "--lr", "-1", "--out", "{tmp}/lr", "--no-download", "--data-root", "{tmp}"],
            "--lr must be positive",
        ),
        (["gan-train", "--classifier", "{tmp}/none.pt", "--out", "{tmp}/c"], "--classifier"),
        (["gan-train", "--classifier", "{tmp}", "--out", "{tmp}/c"], "is a folder"),
        (["gan-train", "--classifier", "{text}", "--out", "{tmp}/c"], "--classifier: cannot load"),
        (["gan-train", "--classifier", "{gan}", "--out", "{tmp}/c"], "expected a mnist-classifier checkpoint"),
        (["gan-train", "--ema", "1", "--out", "{tmp}/e"], "--ema"),
        (["gan-sample", "--checkpoint", "{tmp}"], "not a gan-train run folder"),
        (["gan-sample", "--checkpoint", "{tmp}/missing.pt"], "does not exist"),
        (["gan-sample", "--checkpoint", "{classifier}"], "expected a gan checkpoint"),
        (["gan-sample"], "Missing option"),
    ],
)
def test_user_mistakes_give_one_error_line(argv, message, tmp_path, photos, capsys):
    classifier = save_classifier(MnistClassifier(), tmp_path / "c.pt", {})
    (tmp_path / "text.pt").write_text("not a checkpoint")
    torch.save({"kind": "gan"}, tmp_path / "gan.pt")
    argv = [
        a.format(
            tmp=tmp_path,
            photos=photos["coffee"].parent,
            classifier=classifier,
            text=tmp_path / "text.pt",
            gan=tmp_path / "gan.pt",
        )
        for a in argv
    ]
    code, out, err = run_cli(argv + ["--device", "cpu"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["gan-train", "gan-sample", "gan-classifier"])
def test_help_does_not_import_torch(command):
    torch_free_help([command])


# ---- a folder of RGB pictures at 64 px ----


@pytest.mark.usefixtures("one_thread")
def test_dcgan_at_64_px_on_a_folder_of_photos(tmp_path, crops, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        [
            "gan-train",
            "--variant",
            "dcgan",
            "--dataset",
            str(crops),
            "--image-size",
            "64",
            "--channels",
            "3",
            "--iterations",
            "2",
            "--batch-size",
            "8",
            "--eval-every",
            "0",
            "--fid-samples",
            "16",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["image_size"] == 64 and metrics["settings"]["channels"] == 3
    assert metrics["settings"]["lr"] == 2e-4  # the DCGAN paper's, not the assignment's 1e-3
    assert "24 images" in metrics["dataset"] and "1 unreadable" in metrics["dataset"]
    assert metrics["frechet_distance"] > 0 and "EfficientNet-Lite0" in metrics["frechet_features"]
    with Image.open(out / "samples.png") as grid:
        assert grid.mode == "RGB"
        pixels = torch.from_numpy(np.asarray(grid, dtype=np.float32))
    assert (pixels[..., 0] - pixels[..., 1]).abs().max() > 0  # colour, not gray in RGB
    assert grid.size[0] > 8 * 64  # 64 samples of 64 px

    code, stdout, err = run_cli(
        ["gan-sample", "--checkpoint", str(out), "-n", "4", "--out", str(tmp_path / "s.png"), "--device", "cpu"], capsys
    )
    assert code == 0, err
    with Image.open(tmp_path / "s.png") as sampled:
        assert sampled.mode == "RGB" and sampled.size[0] >= 2 * 64


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--channels", "3"], "--channels 3 needs --image-size 64"),
        (["--image-size", "64", "--variant", "dcgan"], "give --dataset FOLDER"),
        (["--image-size", "64", "--variant", "gan", "--dataset", "{empty}"], "not gan"),
        (["--image-size", "32"], "--image-size 32"),
        (["--image-size", "64", "--variant", "wgan-gp", "--dataset", "{empty}"], "no readable images"),
    ],
)
@pytest.mark.usefixtures("one_thread")
def test_sizes_and_folders_refused_clearly(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{empty}", str(tmp_path / "empty")) for a in argv]
    code, _, err = run_cli(["gan-train", *argv, "--out", str(tmp_path / "run"), "--device", "cpu"], capsys)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.usefixtures("one_thread")
def test_gray_pictures_at_64_px_train_end_to_end(tmp_path, crops, capsys):
    out = tmp_path / "gray"
    code, _, err = run_cli(
        [
            "gan-train",
            "--variant",
            "wgan-gp",
            "--dataset",
            str(crops),
            "--image-size",
            "64",
            "--iterations",
            "1",
            "--batch-size",
            "4",
            "--no-fid",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    with Image.open(out / "samples.png") as grid:
        pixels = np.asarray(grid.convert("RGB"), dtype=np.int16)
    assert (pixels[..., 0] == pixels[..., 1]).all() and pixels.std() > 0  # gray samples, not blank


@pytest.mark.parametrize("command", ["gan-train", "diffusion-train"])
def test_print_json_of_a_stopped_run_prints_its_metrics_so_far(command, tmp_path, classifier, capsys, monkeypatch):
    import os
    import signal

    from a3cli.engine import runs

    real_report = runs.report

    def stop_at_two(progress, step, metrics):
        real_report(progress, step, metrics)
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # held until the iteration ends, then checkpointed

    monkeypatch.setattr(runs, "report", stop_at_two)
    out = tmp_path / "run"
    small = ["--width", "8", "--timesteps", "50", "--eval-steps", "2"] if command == "diffusion-train" else []
    argv = [command, "--out", str(out), "--iterations", "4", "--batch-size", "16", "--no-fid", "--print-json"]
    code, stdout, err = run_cli(
        [*argv, *small, "--data-root", str(tmp_path), "--no-download", "--device", "cpu"], capsys
    )
    assert code == 130, err
    metrics = json.loads(stdout)  # stdout holds the metrics so far, and nothing else
    assert metrics["interrupted"] is True and metrics["iterations"] == 2
    assert metrics == json.loads((out / "metrics.json").read_text())
