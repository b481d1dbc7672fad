"""Helpers and data builders that several test modules share."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from a3cli.cli import main
from a3cli.engine.captioning.data import CaptionData, Split
from a3cli.engine.captioning.shapes import shapes_vocab
from a3cli.engine.captioning.vocab import END, NULL, START, UNK, encode


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run `a3 ARGV` in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def capture_figures(monkeypatch) -> list[dict]:
    """What every figure a3 saves from now on says, read before it is closed: its title ("" if none), each
    picture's title and colour (axes titles, in order), the other texts drawn on it, its colour bars' labels and
    its legends' entries."""
    from a3cli.engine import figures

    seen: list[dict] = []
    save = figures.save_figure

    def saving(fig, path):
        every = [*fig.axes, *(inset for ax in fig.axes for inset in ax.child_axes)]
        plots = [ax for ax in every if not hasattr(ax, "_colorbar")]
        seen.append(
            {
                "title": fig._suptitle.get_text() if fig._suptitle else "",
                "axes": [(ax.get_title(), ax.title.get_color()) for ax in plots],
                "texts": [t.get_text() for ax in plots for t in ax.texts],
                "colorbars": [ax.get_ylabel() for ax in every if hasattr(ax, "_colorbar")],
                "legends": [t.get_text() for ax in plots if ax.get_legend() for t in ax.get_legend().get_texts()],
            }
        )
        return save(fig, path)

    monkeypatch.setattr(figures, "save_figure", saving)
    return seen


TITLE_LINE = 24  # px: the white strip of a one-line title on a picture (images.titled)


def assert_crisp(picture, factor: int) -> None:
    """The picture is a smaller one enlarged `factor` times by nearest neighbour: each pixel a square of one colour."""
    pixels = np.asarray(picture.convert("RGB"))
    assert pixels.shape[0] % factor == 0 and pixels.shape[1] % factor == 0
    small = pixels[::factor, ::factor]
    assert np.array_equal(small.repeat(factor, axis=0).repeat(factor, axis=1), pixels)


def torch_free_help(argv: list[str]) -> str:
    """Run `a3 ARGV --help` in a fresh interpreter, check it imported no torch, and return the help text."""
    code = (
        "import sys\n"
        "from a3cli.cli import main\n"
        "try:\n"
        f"    main({[*argv, '--help']!r})\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage" in result.stdout
    assert result.stdout.strip().endswith("NO-TORCH"), "the help imported torch"
    return result.stdout


def write_coco_h5(
    folder: Path,
    n_train=40,
    n_val=12,
    d=16,
    pca_d=8,
    vocab_extra=("a", "cat", "dog", "on", "mat"),
    captions_per_image=2,
):
    """A tiny data set in exactly the layout of the assignment's coco_captioning folder."""
    rng = np.random.default_rng(0)
    i2w = [NULL, START, END, UNK, *vocab_extra]
    w2i = {w: i for i, w in enumerate(i2w)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "coco2014_vocab.json").write_text(json.dumps({"idx_to_word": i2w, "word_to_idx": w2i}))
    with h5py.File(folder / "coco2014_captions.h5", "w") as f:
        for split, n_img in (("train", n_train), ("val", n_val)):
            caps = np.zeros((n_img * captions_per_image, 17), dtype=np.int32)
            for row in range(len(caps)):
                length = rng.integers(2, 8)
                caps[row, 0], caps[row, length + 1] = 1, 2
                caps[row, 1 : length + 1] = rng.integers(4, len(i2w), size=length)
            f[f"{split}_captions"] = caps
            f[f"{split}_image_idxs"] = np.repeat(np.arange(n_img), captions_per_image).astype(np.int32)
    for split, n_img in (("train", n_train), ("val", n_val)):
        for suffix, dim in (("", d), ("_pca", pca_d)):
            with h5py.File(folder / f"{split}2014_vgg16_fc7{suffix}.h5", "w") as f:
                f["features"] = rng.standard_normal((n_img, dim)).astype(np.float32)
        (folder / f"{split}2014_urls.txt").write_text(
            "\n".join(f"http://images.cocodataset.org/{split}2014/{i}.jpg" for i in range(n_img)) + "\n"
        )
    return folder


def write_coco_json(folder: Path, photos: dict[str, Path]) -> Path:
    from PIL import Image

    names = ["coffee", "chelsea", "rocket", "china"]
    texts = {
        "coffee": ["A cup of coffee on a table.", "coffee in a white cup"],
        "chelsea": ["A cat looking to the side", "an orange cat"],
        "rocket": ["A rocket on a launch pad"],
        "china": ["A temple with trees, in China"],
    }
    folder.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i, name in enumerate(names):
        Image.open(photos[name]).resize((96, 72)).save(folder / f"{name}.jpg")
        images.append({"id": 100 + i, "file_name": f"{name}.jpg"})
        anns += [{"id": len(anns), "image_id": 100 + i, "caption": t} for t in texts[name]]
    path = folder / "captions.json"
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


def toy_data(n_images=24, dim=10, seed=0) -> CaptionData:
    """Captions that are a function of the features: 'a <size> <color> <kind>' read off feature signs."""
    g = torch.Generator().manual_seed(seed)
    w2i, i2w = shapes_vocab()
    sizes, colors, kinds = ["small", "large"], ["red", "green", "blue", "yellow"], ["circle", "square"]
    splits = {}
    for name, n in (("train", n_images), ("val", 8)):
        feats = torch.randn(n, dim, generator=g)
        caps = []
        for f in feats:
            words = ["a", sizes[int(f[0] > 0)], colors[int(f[1] > 0) * 2 + int(f[2] > 0)], kinds[int(f[3] > 0)]]
            caps.append(encode(words, w2i, 6))
        splits[name] = Split(torch.tensor(caps), torch.arange(n), feats, [str(i) for i in range(n)])
    return CaptionData(w2i, i2w, splits, {"note": "toy"}, "toy")


def write_crops(folder: Path, photos: dict[str, Path]) -> Path:
    """24 RGB crops cut from the bundled photos, some in a sub-folder, and one file that is no image."""
    import random

    from PIL import Image

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


def untrained_classifier(path: Path) -> Path:
    """An untrained MNIST classifier: its features still give a Fréchet distance (and it loads fast)."""
    from a3cli.engine.generative.classifier import MnistClassifier, save_classifier

    torch.manual_seed(0)
    return save_classifier(MnistClassifier(), path, {"test_accuracy": 0.1})


def quick_batchnorm_fit(monkeypatch) -> None:
    """The averaged DCGAN generator's statistics refitted on 128 noise vectors, not 1,024: same code, less time."""
    from a3cli.engine.gan import batchnorm

    monkeypatch.setattr(batchnorm, "BATCHNORM_SAMPLES", 128)
