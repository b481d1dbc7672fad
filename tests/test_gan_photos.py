"""GANs on your own RGB pictures at 64 px: the DCGAN paper's networks, a folder read lazily, Lite0 Fréchet."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import run_cli as run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def crops(tmp_path_factory, photos):
    """24 RGB crops cut from the bundled photos, some in a sub-folder, and one file that is no image."""
    folder = tmp_path_factory.mktemp("crops")
    (folder / "more").mkdir()
    rng = random.Random(0)
    for name, path in sorted(photos.items()):
        with Image.open(path) as photo:
            photo = photo.convert("RGB")
            for k in range(4):
                side = rng.randint(64, min(photo.size) // 2)
                x, y = rng.randint(0, photo.width - side), rng.randint(0, photo.height - side)
                crop = photo.crop((x, y, x + side, y + side))
                crop.save(folder / ("more" if k % 2 else ".") / f"{name}_{k}.jpg")
    (folder / "notes.jpg").write_text("not a picture")
    return folder


def test_dcgan_at_64_px_on_a_folder_of_photos(tmp_path, crops, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(["gan-train", "--variant", "dcgan", "--dataset", str(crops), "--image-size", "64",
                             "--channels", "3", "--iterations", "2", "--batch-size", "8", "--eval-every", "0",
                             "--fid-samples", "16", "--out", str(out), "--device", "cpu"], capsys)
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

    code, stdout, err = run(["gan-sample", "--checkpoint", str(out), "-n", "4", "--out", str(tmp_path / "s.png"),
                             "--device", "cpu"], capsys)
    assert code == 0, err
    with Image.open(tmp_path / "s.png") as sampled:
        assert sampled.mode == "RGB" and sampled.size[0] >= 2 * 64


@pytest.mark.parametrize("argv, message", [
    (["--channels", "3"], "--channels 3 needs --image-size 64"),
    (["--image-size", "64", "--variant", "dcgan"], "give --dataset FOLDER"),
    (["--image-size", "64", "--variant", "gan", "--dataset", "{empty}"], "not gan"),
    (["--image-size", "32"], "--image-size 32"),
    (["--image-size", "64", "--variant", "wgan-gp", "--dataset", "{empty}"], "no readable images"),
])
def test_sizes_and_folders_refused_clearly(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{empty}", str(tmp_path / "empty")) for a in argv]
    code, _, err = run(["gan-train", *argv, "--out", str(tmp_path / "run"), "--device", "cpu"], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_64_px_networks_have_pytorch_examples_sizes():
    from a3cli.engine.gan.networks64 import critic64, discriminator64, generator64

    def count(model):
        return sum(p.numel() for p in model.parameters())

    # pytorch/examples/dcgan with nz=100, ngf=ndf=64, nc=3
    assert count(generator64(100, 3)) == 3_576_704 and count(discriminator64(3)) == 2_765_568
    G, D = generator64(96, 1), critic64(1)
    x = G(torch.rand(5, 96) * 2 - 1)
    assert x.shape == (5, 1, 64, 64) and x.abs().max() <= 1
    assert D(x).shape == (5, 1)
    # LayerNorm, not BatchNorm: one sample's score does not depend on the rest of the batch
    assert torch.allclose(D(x[:1]), D(x)[:1], atol=1e-6)


def test_a_folder_read_as_gray_is_the_luminance_of_its_colours(crops):
    from a3cli.engine.gan.folders import ImageFolder

    gray, rgb = ImageFolder(crops, 64, 1)[0], ImageFolder(crops, 64, 3)[0]
    assert gray.shape == (1, 64, 64) and rgb.shape == (3, 64, 64)
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]  # Pillow's "L", in [-1, 1] here
    assert torch.allclose(gray[0], luminance, atol=2 / 255 + 1e-6)


def test_gray_pictures_at_64_px_train_end_to_end(tmp_path, crops, capsys):
    out = tmp_path / "gray"
    code, _, err = run(["gan-train", "--variant", "wgan-gp", "--dataset", str(crops), "--image-size", "64",
                        "--iterations", "1", "--batch-size", "4", "--no-fid", "--out", str(out), "--device", "cpu"],
                       capsys)
    assert code == 0, err
    with Image.open(out / "samples.png") as grid:
        pixels = np.asarray(grid.convert("RGB"), dtype=np.int16)
    assert (pixels[..., 0] == pixels[..., 1]).all() and pixels.std() > 0  # gray samples, not blank
