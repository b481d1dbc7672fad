"""`a3 saliency`, `a3 fool` and `a3 classvis` end to end on real photos, and the mistakes a user can make."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import capture_figures, torch_free_help
from tests.helpers import run_cli as run


@pytest.mark.parametrize("command", ["saliency", "fool", "classvis"])
def test_help_does_not_import_torch(command):
    torch_free_help([command])


def test_saliency_writes_a_panel_and_map_per_image(photos, tmp_path, capsys, monkeypatch):
    figures = capture_figures(monkeypatch)
    out, js = tmp_path / "maps.png", tmp_path / "maps.json"
    code, stdout, err = run(
        [
            "saliency",
            str(photos["coffee"]),
            str(photos["chelsea"]),
            "--out",
            str(out),
            "--npy",
            "--json",
            str(js),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "espresso" in stdout
    records = json.loads(js.read_text())
    assert [r["class"]["name"] for r in records][0] == "espresso"
    for record, stem, figure in zip(records, ("coffee", "chelsea"), figures, strict=True):
        assert record["panel"] == str(tmp_path / f"maps_{stem}.png") and len(record["top"]) == 5
        # Each panel names its image, the model, the method and the class with its probability, which is the
        # top class's; its map has a colour scale saying what it measures.
        name, probability = record["class"]["name"], record["class"]["probability"]
        assert probability == pytest.approx(record["top"][0]["probability"])
        title = f"{stem}.jpg · efficientnet_lite0 · vanilla\nmap for {name} (p {probability:.2f})"
        assert figure["title"] == title and figure["colorbars"] == ["|∂score/∂pixel|, max over channels"]
        with Image.open(record["panel"]) as panel:
            assert panel.format == "PNG" and panel.width > 3 * 224 and panel.height >= 224
        saliency = np.load(record["npy"])
        assert saliency.shape == (224, 224) and saliency.min() >= 0 and saliency.max() > 0


def test_saliency_for_a_named_class_with_integrated_gradients(photos, tmp_path, capsys, monkeypatch):
    figures = capture_figures(monkeypatch)
    out, js = tmp_path / "cup.png", tmp_path / "cup.json"
    code, stdout, err = run(
        [
            "saliency",
            str(photos["coffee"]),
            "--class",
            "CUP",
            "--method",
            "ig",
            "--steps",
            "2",
            "--rule",
            "midpoint",
            "--baseline",
            "blur",
            "--out",
            str(out),
            "--json",
            str(js),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "968 'cup'" in stdout and out.is_file()
    (record,) = json.loads(js.read_text())
    assert record["method"] == "integrated-gradients" and (record["steps"], record["rule"]) == (2, "midpoint")
    (figure,) = figures  # a map for another class than the top one says both
    cup, top = record["class"], record["top"][0]
    assert figure["title"].endswith(
        f"map for cup (p {cup['probability']:.2f}); the model's top class: espresso (p {top['probability']:.2f})"
    )
    error = abs(record["attribution_sum"] - record["score_gap"])
    assert record["completeness_error"] == pytest.approx(error, rel=1e-4, abs=1e-6)
    assert record["relative_completeness_error"] == pytest.approx(error / abs(record["score_gap"]), rel=1e-4)
    assert "completeness (2 midpoint steps, blur baseline)" in stdout
    assert f"{record['relative_completeness_error']:.1%}" in stdout
    if record["relative_completeness_error"] > 0.05:
        assert "try more --steps" in stdout


def test_saliency_gradcam_with_faithfulness_end_to_end(photos, tmp_path, capsys):
    small = tmp_path / "small.png"
    with Image.open(photos["coffee"]) as photo:
        photo.resize((96, 64)).save(small)
    out, js = tmp_path / "cam.png", tmp_path / "cam.json"
    argv = ["saliency", str(small), "--method", "gradcam", "--faithfulness", "--faithfulness-steps", "4"]
    code, stdout, err = run(argv + ["--out", str(out), "--json", str(js), "--device", "cpu"], capsys)
    assert code == 0, err
    assert "deletion AUC" in stdout and out.is_file()
    (record,) = json.loads(js.read_text())
    assert record["method"] == "gradcam" and record["layer"] == "head" and record["faithfulness_steps"] == 4
    deletion, insertion = record["deletion_curve"], record["insertion_curve"]
    assert len(deletion) == len(insertion) == 5
    # The deletion curve starts at the photo's probability of its predicted class; insertion ends there.
    assert deletion[0] == pytest.approx(record["top"][0]["probability"], abs=1e-4)
    assert insertion[-1] == pytest.approx(deletion[0]) and insertion[0] == pytest.approx(deletion[-1])
    assert record["deletion_auc"] == pytest.approx(np.trapezoid(deletion, np.linspace(0, 1, 5)))
    assert record["insertion_auc"] == pytest.approx(np.trapezoid(insertion, np.linspace(0, 1, 5)))
    with Image.open(record["faithfulness_png"]) as figure:
        assert figure.format == "PNG" and record["faithfulness_png"] == str(tmp_path / "cam_faithfulness.png")


def test_fool_end_to_end(photos, tmp_path, capsys, monkeypatch):
    figures = capture_figures(monkeypatch)
    out, js = tmp_path / "fooled.png", tmp_path / "fool.json"
    code, stdout, err = run(
        [
            "fool",
            str(photos["chelsea"]),
            "--target",
            "tarantula",
            "--out",
            str(out),
            "--json",
            str(js),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    numbers = json.loads(js.read_text())
    assert numbers["success"] and numbers["target"]["class"] == "tarantula" and numbers["final"]["index"] == 76
    assert numbers["original"]["class"] != "tarantula" and 0 < numbers["iterations"] <= 100
    assert 0 < numbers["linf"] <= 255 and numbers["l2"] >= numbers["linf"]
    for path in (out, tmp_path / "fooled_diff.png", tmp_path / "fooled_panel.png"):
        assert Image.open(path).format == "PNG"
    # The panel says the classes before and after with their probabilities, and the difference's scale.
    (figure,) = figures
    before, after = (f"{numbers[k]['class']} (p {numbers[k]['probability']:.2f})" for k in ("original", "final"))
    assert figure["title"].startswith(f"chelsea.jpg · efficientnet_lite0: {before} → {after}\nfooled in ")
    assert [title for title, _ in figure["axes"]][:2] == [f"original\n{before}", f"fooling image\n{after}"]
    assert figure["colorbars"] == ["change per colour channel (0-255 levels)"]
    # The saved file fools the model: `a3 classify` feeds a 224 x 224 image to it unchanged.
    code, stdout, err = run(["classify", str(out), "--top", "1", "--json", str(tmp_path / "c.json")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "c.json").read_text())[0]["top"][0]["index"] == 76


def test_fool_within_a_budget(photos, tmp_path, capsys, lite0):
    out, js = tmp_path / "rocket.png", tmp_path / "rocket.json"
    code, stdout, err = run(
        [
            "fool",
            str(photos["rocket"]),
            "--target",
            "goldfish",
            "--epsilon",
            "4",
            "--out",
            str(out),
            "--json",
            str(js),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    numbers = json.loads(js.read_text())
    assert numbers["success"] and numbers["final"]["class"] == "goldfish" and numbers["epsilon"] == 4
    assert 0 < numbers["linf"] <= 4 and "(budget ε = 4)" in stdout
    # The file keeps to the budget: compare it with the photo as the network saw it.
    fooled = np.asarray(Image.open(out), dtype=int)
    seen = lite0.deprocess(lite0.preprocess(Image.open(photos["rocket"]).convert("RGB")))[0]
    original = (seen.permute(1, 2, 0) * 255).round().int().numpy()
    assert np.abs(fooled - original).max() == numbers["linf"]
    code, stdout, err = run(
        [
            "fool",
            str(photos["rocket"]),
            "--target",
            "goldfish",
            "--epsilon",
            "1",
            "--max-iter",
            "1",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "could not fool the model within --epsilon 1 in 1 steps" in " ".join(stdout.split())


def test_classvis_writes_image_frames_and_gif(tmp_path, capsys):
    out, js = tmp_path / "cv.png", tmp_path / "cv.json"
    code, stdout, err = run(
        [
            "classvis",
            "--class",
            "Egyptian cat",
            "--iterations",
            "4",
            "--size",
            "48",
            "--max-jitter",
            "4",
            "--save-every",
            "2",
            "--out",
            str(out),
            "--json",
            str(js),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    numbers = json.loads(js.read_text())
    assert numbers["class"] == {"index": 285, "name": "Egyptian cat"} and 0 <= numbers["target_probability"] <= 1
    assert numbers["settings"]["iterations"] == 4 and numbers["settings"]["lr"] > 0  # per-model default filled in
    assert sorted(p.name for p in (tmp_path / "cv_frames").iterdir()) == ["00002.png", "00004.png"]
    with Image.open(tmp_path / "cv.gif") as gif:
        assert gif.n_frames == 2
    assert Image.open(out).size == (48, 48)


@pytest.mark.parametrize("model, size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_saliency_fool_and_classvis_on_lite1_and_lite2(model, size, photos, tmp_path, capsys):
    """The other offline backbones, at their native input sizes, with their defaults filled in."""
    code, stdout, err = run(
        [
            "saliency",
            str(photos["coffee"]),
            "--model",
            model,
            "--npy",
            "--out",
            str(tmp_path / "s.png"),
            "--json",
            str(tmp_path / "s.json"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    (record,) = json.loads((tmp_path / "s.json").read_text())
    assert record["model"] == model and record["class"]["name"] == "espresso"
    assert np.load(record["npy"]).shape == (size, size)
    code, stdout, err = run(
        [
            "fool",
            str(photos["coffee"]),
            "--model",
            model,
            "--target",
            "goldfish",
            "--epsilon",
            "2",
            "--max-iter",
            "2",
            "--out",
            str(tmp_path / "f.png"),
            "--json",
            str(tmp_path / "f.json"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    numbers = json.loads((tmp_path / "f.json").read_text())
    assert numbers["iterations"] <= 2 and numbers["linf"] <= 2 and Image.open(tmp_path / "f.png").size == (size, size)
    code, stdout, err = run(
        [
            "classvis",
            "--class",
            "goldfish",
            "--model",
            model,
            "--iterations",
            "2",
            "--size",
            "48",
            "--out",
            str(tmp_path / "c.png"),
            "--json",
            str(tmp_path / "c.json"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    numbers = json.loads((tmp_path / "c.json").read_text())
    assert numbers["model"] == model and numbers["settings"]["param"] == "fourier"


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
        (["fool", "{coffee}", "--target", "tabby", "--out", "{tmp}/x.jpg"], "lossy"),
        (["fool", "{coffee}", "--target", "1", "--confidence", "2"], "--confidence"),
        (["fool", "{coffee}", "--target", "1", "--epsilon", "0.5"], "--epsilon must be between 1 and 255"),
        (["saliency", "{coffee}", "--method", "ig", "--rule", "simpson"], "unknown --rule 'simpson'"),
        (["saliency", "{coffee}", "--method", "gradcam", "--layer", "block99"], "has no --layer 'block99'"),
        (["saliency", "{coffee}", "--faithfulness", "--faithfulness-steps", "0"], "--faithfulness-steps must be"),
        (["classvis"], "Missing option '--class'"),
        (["classvis", "--class", "dog"], "closest: "),
        (["classvis", "--class", "1", "--param", "cppn"], "unknown --param 'cppn'"),
        (["classvis", "--class", "1", "--size", "64", "--max-jitter", "64"], "--max-jitter"),
        (["classvis", "--objective", "block99:1"], "has no layer 'block99'"),
        (["classvis", "--objective", "block4:40"], "block4 has channels 0-39, not 40"),
        (["classvis", "--objective", "block4:0-99"], "block4 has channels 0-39, not 99"),
        (["classvis", "--objective", "block4:1@8,0", "--size", "64"], "map is 8×8 at --size 64"),
        (["classvis", "--objective", "block4"], "expected LAYER:CHANNEL"),
        (["classvis", "--objective", "block4:3-1"], "is empty"),
        (["classvis", "--objective", "block10:0-99999999999999999999999"], "channels and positions go up to 100,000"),
        (["classvis", "--objective", "block10:0-999"], "a sheet draws at most 256 channels, not 1000"),
        (["saliency", "{coffee}", "--method", "gradcam", "--layer", ""], "--layer is empty"),
        (["classvis", "--objective", "head:1279", "--iterations", "2"], "channel 1279 of head is inactive"),
        (["classvis", "--objective", "head:1278-1279", "--iterations", "2"], "channels 1278, 1279 of head are"),
        (["classvis", "--class", "1", "--objective", "block4:1"], "--class and --objective exclude each other"),
        (["fool", "{coffee}", "--untargeted", "--target", "1"], "--untargeted takes no --target"),
        (["fool", "{coffee}", "--untargeted", "--confidence", "0.5"], "--confidence needs a --target"),
    ],
)
def test_mistakes_end_in_one_line(argv, message, photos, tmp_path, capsys):
    argv = [a.format(coffee=photos["coffee"], tmp=tmp_path) for a in argv] + ["--device", "cpu"]
    code, out, err = run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err


def test_classvis_draws_a_sheet_of_channels_and_a_neuron(tmp_path, capsys):
    out, js = tmp_path / "sheet.png", tmp_path / "sheet.json"
    common = ["--iterations", "2", "--size", "48", "--max-jitter", "4", "--device", "cpu"]
    code, stdout, err = run(
        ["classvis", "--objective", "block4:0-3", "--save-every", "1", "--out", str(out), "--json", str(js), *common],
        capsys,
    )
    assert code == 0, err
    numbers = json.loads(js.read_text())
    assert numbers["objective"] == {"kind": "channel", "layer": "block4", "channels": [0, 1, 2, 3]}
    assert [p["name"] for p in numbers["pictures"]] == ["block4:0", "block4:1", "block4:2", "block4:3"]
    assert 0 <= numbers["diagonal_share"]["channels"] <= 1 and numbers["settings"]["param"] == "fourier"
    sheet = Image.open(out)
    assert sheet.size == (2 * 48 + 6, 2 * 48 + 6)  # one grid: 2×2 pictures, 2-px padding
    pixels = np.asarray(sheet.convert("RGB")).astype(int)
    for y, x in ((2, 2), (2, 52), (52, 2), (52, 52)):  # each picture's channel number, black on white in its corner
        corner = pixels[y : y + 14, x : x + 14].reshape(-1, 3)
        assert (corner == 255).all(axis=1).any() and (corner <= 40).all(axis=1).any()
    assert sorted(p.name for p in (tmp_path / "sheet_frames").iterdir()) == ["00001.png", "00002.png"]
    assert "excited most by their own picture" in " ".join(stdout.split())
    code, stdout, err = run(
        ["classvis", "--objective", "block10:5@1,2", "--param", "pixel", "--out", str(out), "--json", str(js), *common],
        capsys,
    )
    assert code == 0, err
    numbers = json.loads(js.read_text())
    assert numbers["objective"] == {"kind": "neuron", "layer": "block10", "channels": [5], "x": 1, "y": 2}
    assert "diagonal_share" not in numbers and Image.open(out).size == (48, 48)


def test_fool_untargeted_end_to_end(photos, tmp_path, capsys):
    out, js = tmp_path / "u.png", tmp_path / "u.json"
    argv = ["fool", str(photos["coffee"]), "--untargeted", "--epsilon", "2", "--out", str(out), "--json", str(js)]
    code, stdout, err = run([*argv, "--device", "cpu"], capsys)
    assert code == 0, err
    numbers = json.loads(js.read_text())
    assert numbers["untargeted"] and numbers["success"] and numbers["target"] is None and numbers["linf"] <= 2
    assert numbers["new_class"] == numbers["final"] and numbers["final"]["index"] != numbers["original"]["index"]
    code, stdout, err = run(["classify", str(out), "--top", "1", "--json", str(tmp_path / "c.json")], capsys)
    assert code == 0, err
    (record,) = json.loads((tmp_path / "c.json").read_text())
    assert record["top"][0]["index"] == numbers["new_class"]["index"]  # the saved PNG shows the new class


def test_fool_toward_the_class_the_photo_already_has_does_nothing(photos, tmp_path, capsys):
    out = tmp_path / "same.png"
    argv = ["fool", str(photos["coffee"]), "--target", "espresso", "--out", str(out), "--device", "cpu"]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    said = " ".join(stdout.split())  # (rich wraps at the terminal's width)
    assert said.startswith("'espresso' (p 0.")
    assert said.endswith(") is already the top class: nothing to do, nothing written")
    assert list(tmp_path.iterdir()) == []  # no copy of the photo, no blank difference
