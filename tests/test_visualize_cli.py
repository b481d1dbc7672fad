"""`a3 saliency`, `a3 fool` and `a3 classvis` end to end on real photos, and the mistakes a user can make."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli as run, torch_free_help




@pytest.mark.parametrize("command", ["saliency", "fool", "classvis"])
def test_help_does_not_import_torch(command):
    torch_free_help([command])


def test_saliency_writes_a_panel_and_map_per_image(photos, tmp_path, capsys):
    out, js = tmp_path / "maps.png", tmp_path / "maps.json"
    code, stdout, err = run(["saliency", str(photos["coffee"]), str(photos["chelsea"]), "--out", str(out),
                             "--npy", "--json", str(js), "--device", "cpu"], capsys)
    assert code == 0, err
    assert "espresso" in stdout
    records = json.loads(js.read_text())
    assert [r["class"]["name"] for r in records][0] == "espresso"
    for record, stem in zip(records, ("coffee", "chelsea")):
        assert record["panel"] == str(tmp_path / f"maps_{stem}.png") and len(record["top"]) == 5
        with Image.open(record["panel"]) as panel:
            assert panel.format == "PNG" and panel.width > 3 * 224 and panel.height >= 224
        saliency = np.load(record["npy"])
        assert saliency.shape == (224, 224) and saliency.min() >= 0 and saliency.max() > 0


def test_saliency_for_a_named_class_with_integrated_gradients(photos, tmp_path, capsys):
    out = tmp_path / "cup.png"
    code, stdout, err = run(["saliency", str(photos["coffee"]), "--class", "CUP", "--method",
                             "integrated-gradients", "--steps", "2", "--baseline", "blur", "--out", str(out),
                             "--device", "cpu"], capsys)
    assert code == 0, err
    assert "968 'cup'" in stdout and out.is_file()


def test_fool_end_to_end(photos, tmp_path, capsys):
    out, js = tmp_path / "fooled.png", tmp_path / "fool.json"
    code, stdout, err = run(["fool", str(photos["chelsea"]), "--target", "tarantula", "--out", str(out),
                             "--json", str(js), "--device", "cpu"], capsys)
    assert code == 0, err
    numbers = json.loads(js.read_text())
    assert numbers["success"] and numbers["target"]["class"] == "tarantula" and numbers["final"]["index"] == 76
    assert numbers["original"]["class"] != "tarantula" and 0 < numbers["iterations"] <= 100
    assert 0 < numbers["linf"] <= 255 and numbers["l2"] >= numbers["linf"]
    for path in (out, tmp_path / "fooled_diff.png", tmp_path / "fooled_panel.png"):
        assert Image.open(path).format == "PNG"
    # The saved file fools the model: `a3 classify` feeds a 224 x 224 image to it unchanged.
    code, stdout, err = run(["classify", str(out), "--top", "1", "--json", str(tmp_path / "c.json")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "c.json").read_text())[0]["top"][0]["index"] == 76


def test_classvis_writes_image_frames_and_gif(tmp_path, capsys):
    out, js = tmp_path / "cv.png", tmp_path / "cv.json"
    code, stdout, err = run(["classvis", "--class", "Egyptian cat", "--iterations", "4", "--size", "48",
                             "--max-jitter", "4", "--save-every", "2", "--out", str(out), "--json", str(js),
                             "--device", "cpu"], capsys)
    assert code == 0, err
    numbers = json.loads(js.read_text())
    assert numbers["class"] == {"index": 285, "name": "Egyptian cat"} and 0 <= numbers["target_probability"] <= 1
    assert numbers["settings"]["iterations"] == 4 and numbers["settings"]["lr"] > 0  # per-model default filled in
    assert sorted(p.name for p in (tmp_path / "cv_frames").iterdir()) == ["00002.png", "00004.png"]
    with Image.open(tmp_path / "cv.gif") as gif:
        assert gif.n_frames == 2
    assert Image.open(out).size == (48, 48)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["saliency", "missing.jpg"], "no such file"),
        (["saliency", "{coffee}", "--class", "tarantla"], "closest: tarantula (76)"),
        (["saliency", "{coffee}", "--method", "guided"], "unknown saliency method 'guided'"),
        (["saliency", "{coffee}", "--out", "{tmp}/x.jpg"], "--out must name a .png"),
        (["fool", "{coffee}"], "Missing option '--target'"),
        (["fool", "{coffee}", "--target", "1000"], "out of range"),
        (["fool", "{coffee}", "--target", "panda"], "ambiguous"),
        (["fool", "{coffee}", "--target", "cat", "--out", "{tmp}/x.jpg"], "lossy"),
        (["fool", "{coffee}", "--target", "1", "--confidence", "2"], "--confidence"),
        (["classvis"], "Missing option '--class'"),
        (["classvis", "--class", "dog"], "closest: "),
        (["classvis", "--class", "1", "--param", "cppn"], "unknown --param 'cppn'"),
        (["classvis", "--class", "1", "--size", "64", "--max-jitter", "64"], "--max-jitter"),
    ],
)
def test_mistakes_end_in_one_line(argv, message, photos, tmp_path, capsys):
    argv = [a.format(coffee=photos["coffee"], tmp=tmp_path) for a in argv] + ["--device", "cpu"]
    code, out, err = run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
