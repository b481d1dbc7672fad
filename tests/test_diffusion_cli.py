"""`a3 diffusion-train` and `diffusion-sample` end to end on the offline digits: a run, its resume, its
samples (grid, array, denoising strip, one class guided) and the mistakes refused before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli, untrained_classifier, write_crops

TINY = ["--width", "8", "--batch-size", "16", "--timesteps", "50", "--eval-steps", "2", "--eval-samples", "20"]


def train(tmp_path, capsys, out, *extra: str):
    classifier = tmp_path / "classifier.pt"
    if not classifier.exists():
        untrained_classifier(classifier)
    argv = ["diffusion-train", "--out", str(out), "--no-download", "--data-root", str(tmp_path)]
    argv += ["--classifier", str(classifier), "--fid-samples", "40", "--device", "cpu", *extra]
    return run_cli(argv, capsys)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny conditional run, trained once for the sampling tests."""
    import _pytest.capture  # noqa: F401  (run_cli needs a capsys; this fixture makes its own)

    tmp = tmp_path_factory.mktemp("diffusion")
    out = tmp / "run"

    class Capture:
        def readouterr(self):
            return "", ""

    code, _, _ = train(tmp, Capture(), out, *TINY, "--classes", "--iterations", "4", "--eval-every", "2")
    assert code == 0
    return out


def test_train_writes_the_run_and_reports_the_judge(tmp_path, capsys):
    out = tmp_path / "run"
    schedule = ["--eval-every", "3", "--sample-every", "3"]
    code, stdout, err = train(tmp_path, capsys, out, *TINY, *schedule, "--iterations", "6", "--print-json")
    assert code == 0, err
    metrics = json.loads(stdout)  # --print-json: stdout holds metrics.json alone
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 6 and metrics["frechet_distance"] > 0 and metrics["interrupted"] is False
    assert [row["iteration"] for row in metrics["frechet_history"]] == [3, 6]
    assert metrics["frechet_samples"] == {"real": 40, "generated": 40, "tracked": 20}
    assert "iteration 3: Fréchet distance" in err and "digits drawn" in err and "diffusion: 6 iterations" in err
    for name in ("checkpoint.pt", "best.pt", "samples.png", "samples.gif", "losses.png", "frechet.png"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "samples").iterdir()) == [f"iter_00000{i}.png" for i in (0, 3, 6)]


def test_sample_a_grid_an_array_a_chain_and_one_class(run, tmp_path, capsys):
    grid, array = tmp_path / "s.png", tmp_path / "s.npy"
    code, stdout, err = run_cli(
        [
            "diffusion-sample",
            "--checkpoint",
            str(run),
            "-n",
            "12",
            "--steps",
            "3",
            "--out",
            str(grid),
            "--npy",
            str(array),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "DDIM in 3 steps" in stdout and "best.pt" in stdout
    samples = np.load(array)
    assert samples.shape == (12, 28, 28) and samples.dtype == np.uint8
    with Image.open(grid) as picture:
        assert picture.width >= 512
    code, stdout, err = run_cli(
        [
            "diffusion-sample",
            "--checkpoint",
            str(run / "checkpoint.pt"),
            "--chain",
            "--steps",
            "5",
            "--out",
            str(tmp_path / "chain.png"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert (tmp_path / "chain.png").is_file() and (tmp_path / "chain.gif").is_file()
    with Image.open(tmp_path / "chain.gif") as animation:
        assert animation.n_frames == 6  # x_T and the 5 steps
    code, stdout, err = run_cli(
        [
            "diffusion-sample",
            "--checkpoint",
            str(run),
            "--class",
            "3",
            "--guidance",
            "1.5",
            "--sampler",
            "ddpm",
            "-n",
            "4",
            "--out",
            str(tmp_path / "threes.png"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "ancestral DDPM in 50 steps, class 3 with guidance 1.5" in stdout
    near = tmp_path / "near.png"
    code, stdout, err = run_cli(
        [
            "diffusion-sample",
            "--checkpoint",
            str(run),
            "--nearest",
            "--steps",
            "2",
            "--out",
            str(near),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "16 samples of the diffusion averaged model" in stdout and "training images lie" in stdout
    with Image.open(near) as sheet:  # 16 samples beside their neighbours: 4 rows of 8
        assert sheet.width > sheet.height


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps"),
        (["--steps", "51"], "more than the model's 50 diffusion steps"),
        (["--class", "10"], "classes are 0 to 9"),
        (["--guidance", "2"], "give --class C too"),
        (["--sampler", "ddpm", "--steps", "5"], "leave out --steps"),
    ],
)
def test_sampling_mistakes_are_one_line(run, tmp_path, capsys, argv, message):
    code, stdout, err = run_cli(
        ["diffusion-sample", "--checkpoint", str(run), "--out", str(tmp_path / "x.png"), "--device", "cpu", *argv],
        capsys,
    )
    assert code == 2 and stdout == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "x.png").exists()


def test_guidance_needs_a_model_that_learnt_classes_and_autoguidance_a_guide(tmp_path, capsys):
    out = tmp_path / "plain"
    code, _, err = train(tmp_path, capsys, out, *TINY, "--iterations", "1", "--no-fid", "--autoguidance", "0")
    assert code == 0, err
    sample = ["diffusion-sample", "--checkpoint", str(out), "--device", "cpu", "--out", str(tmp_path / "x.png")]
    code, _, err = run_cli([*sample, "--autoguidance", "1"], capsys)
    assert code == 2 and "this one has no guide" in err and err.count("\n") == 1
    code, _, err = run_cli(
        [
            "diffusion-sample",
            "--checkpoint",
            str(out),
            "--class",
            "1",
            "--guidance",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "x.png"),
        ],
        capsys,
    )
    assert code == 2 and "trained with --classes" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--schedule", "quadratic"], "--schedule 'quadratic' is not one of linear, cosine, sigmoid"),
        (["--objective", "score"], "--objective 'score'"),
        (["--precision", "half"], "--precision 'half' is not one of float32, bfloat16"),
        (["--eval-steps", "60"], "more than --timesteps 50"),
        (["--classes", "--dataset", "."], "a folder has none"),
    ],
)
def test_training_mistakes_are_one_line_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    code, stdout, err = train(tmp_path, capsys, out, *TINY, "--iterations", "2", *argv)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not (out / "checkpoint.pt").exists()


def test_a_folder_of_rgb_pictures_at_64_px(tmp_path, photos, capsys):
    (tmp_path / "crops").mkdir()
    folder, out = write_crops(tmp_path / "crops", photos), tmp_path / "rgb"
    argv = ["diffusion-train", "--dataset", str(folder), "--image-size", "64", "--channels", "3", "--width", "8"]
    argv += ["--batch-size", "4", "--timesteps", "20", "--iterations", "2", "--no-fid", "--device", "cpu"]
    code, _, err = run_cli([*argv, "--out", str(out)], capsys)
    assert code == 0, err
    array = tmp_path / "rgb.npy"
    code, stdout, err = run_cli(
        [
            "diffusion-sample",
            "-c",
            str(out),
            "-n",
            "3",
            "--steps",
            "2",
            "--npy",
            str(array),
            "--out",
            str(tmp_path / "rgb.png"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    samples = np.load(array)
    assert samples.shape == (3, 64, 64, 3) and samples.dtype == np.uint8


def test_the_shipped_model_draws_the_digit_asked_for(tmp_path, capsys):
    """Without --checkpoint, diffusion-sample takes weights/diffusion_digits.pt (make weights); guided by its
    label, nearly every sample is read as that digit by the digit classifier, which did not make them."""
    import torch

    from a3cli.engine.files import SHIPPED_DIFFUSION, SHIPPED_MNIST_CLASSIFIER
    from a3cli.engine.generative.classifier import load_classifier

    if not (SHIPPED_DIFFUSION.is_file() and SHIPPED_MNIST_CLASSIFIER.is_file()):
        pytest.skip("weights/diffusion_digits.pt or the MNIST classifier not built (make weights)")
    out, array = tmp_path / "sevens.png", tmp_path / "sevens.npy"
    argv = ["diffusion-sample", "--class", "7", "-n", "16", "--steps", "20", "--out", str(out), "--npy", str(array)]
    code, stdout, err = run_cli([*argv, "--device", "cpu"], capsys)
    assert code == 0, err
    assert "diffusion_digits.pt" in stdout and "class 7 with guidance 2" in stdout
    pictures = torch.from_numpy(np.load(array)).float().div(255).unsqueeze(1)
    classifier, _ = load_classifier(SHIPPED_MNIST_CLASSIFIER)
    with torch.no_grad():
        read = classifier(pictures).argmax(dim=1)
    assert (read == 7).sum() >= 15, read.tolist()
