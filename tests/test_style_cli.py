"""`a3 stylize` end to end on real photos, its presets' wiring, Ctrl-C, and user mistakes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from a3cli.engine.catalogue import BACKBONES
from a3cli.engine.catalogue import STYLE_PRESETS as PRESETS
from a3cli.engine.style.config import StyleConfig
from a3cli.engine.style.settings import resolve_settings
from tests.helpers import TITLE_LINE, torch_free_help
from tests.helpers import run_cli as run

TINY = ["--image-size", "32", "--iterations", "3", "--device", "cpu"]


def test_help_does_not_import_torch():
    text = torch_free_help(["stylize"])
    assert "--preset" in text and "--original-colors" in text


def test_stylize_writes_the_picture_keeping_the_aspect_ratio(photos, tmp_path, capsys):
    out, compare, report = tmp_path / "cat.png", tmp_path / "compare.png", tmp_path / "cat.json"
    code, stdout, err = run(
        [
            "stylize",
            str(photos["chelsea"]),
            str(photos["coffee"]),
            *TINY,
            "--out",
            str(out),
            "--compare",
            str(compare),
            "--json",
            str(report),
            "--save-every",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.height == 32 and picture.width == round(32 * 451 / 300)
    assert (tmp_path / "cat_0002.png").is_file() and not (tmp_path / "cat_0004.png").exists()
    with Image.open(compare) as picture:  # content, style and result at 32 px, framed, under their labels
        assert picture.width > 3 * 32 and picture.height == 32 + 8 + TITLE_LINE
        labels = np.asarray(picture.convert("L"))[:TITLE_LINE]
        assert labels.max() == 255 and (labels < 128).any()
    data = json.loads(report.read_text())
    assert set(data["start"]) == {"content", "style", "tv", "total"}
    assert data["end"]["total"] < data["start"]["total"]
    assert data["config"]["content_layer"] == BACKBONES["efficientnet_lite0"].style["content_layer"]
    assert "start" in stdout and "end" in stdout and "content" in stdout


def test_same_seed_gives_the_same_picture(photos, tmp_path, capsys):
    outputs = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        out = tmp_path / f"{name}.png"
        code, _, err = run(
            [
                "stylize",
                str(photos["chelsea"]),
                str(photos["coffee"]),
                *TINY,
                "--init",
                "random",
                "--seed",
                seed,
                "--out",
                str(out),
            ],
            capsys,
        )
        assert code == 0, err
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]


def test_several_styles_blended_with_original_colors(photos, tmp_path, capsys):
    out = tmp_path / "blend.jpg"
    code, _, err = run(
        [
            "stylize",
            str(photos["chelsea"]),
            str(photos["coffee"]),
            str(photos["flower"]),
            *TINY,
            "--style-blend-weights",
            "3,1",
            "--original-colors",
            "--multiscale",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    with Image.open(out) as picture:
        assert picture.format == "JPEG" and picture.height == 32


def test_ctrl_c_writes_the_current_picture(photos, tmp_path, capsys, monkeypatch):
    from a3cli.engine.style import transfer as style

    calls = {"n": 0}
    losses = style.StyleTransfer.losses

    def interrupting(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return losses(self, *args)

    monkeypatch.setattr(style.StyleTransfer, "losses", interrupting)
    out, compare, report = tmp_path / "partial.png", tmp_path / "compare.png", tmp_path / "partial.json"
    extras = ["--out", str(out), "--compare", str(compare), "--json", str(report)]
    code, _, err = run(["stylize", str(photos["chelsea"]), str(photos["coffee"]), *TINY, *extras], capsys)
    assert code == 130 and f"wrote {out} (the picture so far)" in err and err.strip().endswith("interrupted")
    with Image.open(out) as picture:
        assert picture.height == 32
    with Image.open(compare) as picture:  # the promised outputs too, of the picture so far
        assert picture.height == 32 + 8 + TITLE_LINE
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and set(data["start"]) == {"content", "style", "tv", "total"}
    assert data["end"] != data["start"]  # the last of the two evaluations made before the stop


def test_presets_on_squeezenet_are_the_assignments_numbers():
    starry = resolve_settings("squeezenet1_1", "starry-night", StyleConfig())
    assert starry.content_layer == "3" and starry.style_layers == ["1", "4", "6", "7"]
    assert starry.style_weights == [300000, 1000, 15, 3] and starry.content_weight == 6e-2
    assert starry.tv_weight == 2e-2 and starry.image_size == 192 and starry.style_size == 192
    assert (starry.optimizer, starry.lr, starry.decay_lr, starry.decay_at, starry.iterations) == (
        "adam",
        3.0,
        0.1,
        0.9,
        200,
    )
    composition = resolve_settings("squeezenet1_1", "composition-vii", StyleConfig())
    assert composition.style_weights == [20000, 500, 12, 1] and composition.style_size == 512
    assert composition.content_weight == 5e-2 and composition.tv_weight == 5e-2
    scream = resolve_settings("squeezenet1_1", "scream", StyleConfig())
    assert scream.style_weights == [200000, 800, 12, 1] and scream.style_size == 224
    assert scream.content_weight == 3e-2
    inversion = resolve_settings("squeezenet1_1", "feature-inversion", StyleConfig())
    assert inversion.style_weights == [0, 0, 0, 0] and inversion.init == "random"
    texture = resolve_settings("squeezenet1_1", "texture", StyleConfig())
    assert texture.content_weight == 0 and texture.init == "random"
    # What the user gives wins over the preset.
    assert resolve_settings("squeezenet1_1", "scream", StyleConfig(tv_weight=1.0, lr=None)).tv_weight == 1.0
    assert set(PRESETS) == {"composition-vii", "scream", "starry-night", "feature-inversion", "texture"}
    assert all(
        set(models) == {"squeezenet1_1", *(f"efficientnet_lite{v}" for v in range(3))} for models in PRESETS.values()
    )


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("model", ["squeezenet1_1", "efficientnet_lite0"])
def test_every_preset_runs_on_its_backbone(preset, model, photos):
    """The preset's layers exist and the run works: squeezenet1_1 with random weights (its pretrained
    weights are not available offline), which checks the wiring, not the look."""
    from a3cli.engine.backbones.registry import build_backbone, load_backbone
    from a3cli.engine.images import load_image
    from a3cli.engine.style.transfer import stylize

    if model == "squeezenet1_1":
        torch.manual_seed(0)
        backbone = build_backbone(model)
    else:
        backbone = load_backbone(model)
    settings = resolve_settings(model, preset, StyleConfig(image_size=32, style_size=32, iterations=2))
    content, style = load_image(photos["chelsea"]), load_image(photos["coffee"])
    result = stylize(backbone, content, [style], settings)
    assert result.image.shape[1] == 32 and len(result.history) >= 2
    if settings.content_weight == 0:
        assert result.start["content"] == 0
    if not any(settings.style_weights):
        assert result.start["style"] == 0


def test_squeezenet_offline_says_where_the_weights_go(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("A3_OFFLINE", "1")
    code, _, err = run(
        [
            "stylize",
            str(photos["chelsea"]),
            str(photos["coffee"]),
            "--preset",
            "scream",
            "--model",
            "squeezenet1_1",
            *TINY,
        ],
        capsys,
    )
    assert code == 2 and "not available offline" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["stylize", "{chelsea}"], "at least one style image"),
        (["stylize", "{chelsea}", "missing.jpg"], "no such file"),
        (["stylize", "{chelsea}", "{text}"], "not an image"),
        (["stylize", "{chelsea}", "{coffee}", "--content-layer", "block99"], "no layer 'block99'"),
        (["stylize", "{chelsea}", "{coffee}", "--style-weights", "1,2"], "6 style layers but 2 style weights"),
        (["stylize", "{chelsea}", "{coffee}", "--style-weights", "1,x,3"], "must be a number"),
        (["stylize", "{chelsea}", "{coffee}", "--style-layers", "stem,block1"], "give --style-weights as well"),
        (["stylize", "{chelsea}", "{coffee}", "--style-blend-weights", "1,1"], "but 2 blend weights"),
        (["stylize", "{chelsea}", "{coffee}", "--init", "nowhere.png"], "--init 'nowhere.png'"),
        (["stylize", "{chelsea}", "{coffee}", "--init", "{text}"], "not an image"),
        (["stylize", "{chelsea}", "{coffee}", "--optimizer", "sgd"], "--optimizer 'sgd'"),
        (["stylize", "{chelsea}", "{coffee}", "--preset", "monet"], "unknown preset 'monet'"),
        (["stylize", "{chelsea}", "{coffee}", "--preset", "scream", "--model", "vgg16"], "not vgg16"),
        (["stylize", "{chelsea}", "{coffee}", "--model", "alexnet"], "unknown model 'alexnet'"),
        (["stylize", "{chelsea}", "{coffee}", "--iterations", "0"], "--iterations"),
        (["stylize", "{chelsea}", "{coffee}", "--out", "{text}/x.png"], "cannot write"),
        (["stylize", "{chelsea}", "{coffee}", "--out", "x.txt"], "--out must name a PNG, JPEG or WebP file"),
        (["stylize", "{chelsea}", "{coffee}", "--out", "x.gif"], "--out must name a PNG, JPEG or WebP file"),
        (["stylize", "{chelsea}", "{coffee}", "--compare", "c.tif"], "--compare must name a PNG, JPEG or WebP"),
        (["stylize", "{chelsea}", "{coffee}", "--save-every", "-1"], "--save-every"),
    ],
)
def test_user_mistakes_end_with_one_line_and_status_2(argv, message, photos, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    argv = [a.format(text=text, chelsea=photos["chelsea"], coffee=photos["coffee"]) for a in argv]
    extra = [] if "--iterations" in argv else ["--iterations", "1"]
    code, out, err = run(argv + ["--image-size", "32", "--device", "cpu", *extra], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert "Traceback" not in err + out
