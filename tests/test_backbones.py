"""Backbones: real predictions on real photos, named layers, and the offline weights paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from a3cli.engine.backbones import builders
from a3cli.engine.backbones.efficientnet_lite import EfficientNetLite, SamePadConv2d, lite_stages
from a3cli.engine.backbones.registry import classify, load_backbone
from a3cli.engine.backbones.weights import package_weights_file, weights_status
from a3cli.engine.catalogue import BACKBONES
from a3cli.engine.errors import A3Error

CATS = {"tiger cat", "tabby", "Egyptian cat", "Persian cat", "Siamese cat"}


def test_efficientnet_lite0_loads_strictly_with_the_expected_size(lite0):
    assert lite0.name == "efficientnet_lite0"
    state = torch.load(package_weights_file(BACKBONES["efficientnet_lite0"]), weights_only=True)
    assert len(state) == 296
    assert sum(p.numel() for p in lite0.model.parameters()) == 4_652_008
    assert not lite0.model.training
    assert all(not p.requires_grad for p in lite0.model.parameters())
    assert len(lite0.classes) == 1000 and lite0.classes[967] == "espresso"


def test_lite_scaling_gives_the_published_stages():
    """Lite0's stages as the DESIGN lists them; Lite1 deepens them, Lite2 also widens them."""
    assert lite_stages() == [
        (3, 1, 1, 32, 16, 1),
        (3, 2, 6, 16, 24, 2),
        (5, 2, 6, 24, 40, 2),
        (3, 2, 6, 40, 80, 3),
        (5, 1, 6, 80, 112, 3),
        (5, 2, 6, 112, 192, 4),
        (3, 1, 6, 192, 320, 1),
    ]
    lite1, lite2 = lite_stages(1.0, 1.1), lite_stages(1.1, 1.2)
    assert [s[5] for s in lite1] == [s[5] for s in lite2] == [1, 3, 3, 4, 4, 5, 1]
    assert [s[4] for s in lite1] == [16, 24, 40, 80, 112, 192, 320]
    assert [s[4] for s in lite2] == [16, 24, 48, 88, 120, 208, 352]


@pytest.mark.parametrize(
    "name, size, parameters", [("efficientnet_lite1", 240, 5_416_680), ("efficientnet_lite2", 260, 6_092_072)]
)
def test_lite1_and_lite2_load_strictly_and_recognise_photos(name, size, parameters, photos, lite0):
    backbone = load_backbone(name)  # strict: every key of the package's file fits, none is missing
    state = torch.load(package_weights_file(BACKBONES[name]), weights_only=True)
    assert len(state) == 386 and len(backbone.layer_names) == 1 + 21 + 1
    assert sum(p.numel() for p in backbone.model.parameters()) == parameters
    assert backbone.image_size == size and backbone.preprocess(Image.new("RGB", (400, 300))).shape[-1] == size
    names = ["coffee", "chelsea", "china"]
    results = classify(backbone, [Image.open(photos[n]).convert("RGB") for n in names], top=1)
    assert [r[0][1] for r in results[::2]] == ["espresso", "palace"] and results[1][0][1] in CATS
    # Same channels and strides at the style layers Lite0's settings use (catalogue.LITE12_LAYERS).
    x = backbone.normalize(torch.rand(1, 3, 64, 64))
    style = BACKBONES[name].style
    shapes = [f.shape[1:] for f in backbone.features(x, style["style_layers"])]
    expected = [f.shape[1:] for f in lite0.features(x, BACKBONES["efficientnet_lite0"].style["style_layers"])]
    assert [s[1:] for s in shapes] == [s[1:] for s in expected]
    assert shapes[:3] == expected[:3] and (name == "efficientnet_lite2" or shapes == expected)


def test_real_photos_are_recognised(lite0, photos):
    names = ["coffee", "chelsea", "flower", "china", "rocket"]
    results = classify(lite0, [Image.open(photos[n]).convert("RGB") for n in names], top=5)
    top1 = {name: result[0][1] for name, result in zip(names, results)}
    top2 = {name: {c for _, c, _ in result[:2]} for name, result in zip(names, results)}
    assert top1["coffee"] == "espresso"
    assert results[0][0][2] > 0.8
    assert top1["chelsea"] in CATS
    assert top1["flower"] == "daisy"
    assert top1["china"] == "palace"
    assert top2["rocket"] & {"missile", "projectile"}
    for result in results:  # probabilities sorted and summing to at most 1
        probs = [p for _, _, p in result]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-5


def test_same_padding_matches_tensorflow_rule():
    """TF SAME on stride 2: total pad k - 2 for even inputs, extra pixel on the bottom/right."""
    torch.manual_seed(0)
    conv = SamePadConv2d(2, 3, 5, stride=2)
    for size in (8, 9):
        x = torch.randn(1, 2, size, size)
        total = max((-(-size // 2) - 1) * 2 + 5 - size, 0)
        before, after = total // 2, total - total // 2
        expected = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, stride=2)
        assert torch.allclose(conv(x), expected)
        assert conv(x).shape[-1] == -(-size // 2)


def test_any_image_size_and_named_layers(lite0):
    x = torch.rand(2, 3, 193, 257)
    logits = lite0.logits(lite0.normalize(x))
    assert logits.shape == (2, 1000)
    assert lite0.pooled(lite0.normalize(x)).shape == (2, 1280)
    stem, block4, head = lite0.features(lite0.normalize(x), ["stem", "block4", "head"])
    assert stem.shape[1] == 32 and block4.shape[1] == 40 and head.shape[1] == 1280
    # Asking in another order returns them in that order.
    head2, stem2 = lite0.features(lite0.normalize(x), ["head", "stem"])
    assert torch.equal(head, head2) and torch.equal(stem, stem2)
    with pytest.raises(A3Error, match="no layer 'block99'"):
        lite0.features(x, ["block99"])


def test_preprocess_and_deprocess(lite0):
    img = Image.new("RGB", (300, 200), (255, 0, 127))
    cropped = lite0.preprocess(img)
    assert cropped.shape == (1, 3, 224, 224)
    kept = lite0.preprocess(img, size=100, crop=False)
    assert kept.shape == (1, 3, 100, 150)
    # (x - 127) / 128 on the 0..255 scale, as the Lite models were trained.
    assert torch.allclose(cropped[0, :, 0, 0], torch.tensor([128 / 128, -127 / 128, 0.0]), atol=1e-5)
    restored = lite0.deprocess(cropped)
    assert torch.allclose(restored[0, :, 5, 5], torch.tensor([1.0, 0.0, 127 / 255]), atol=1e-5)


def test_vgg_layers_are_named_like_neural_style():
    with torch.device("meta"):
        stages = builders.vgg(BACKBONES["vgg19"]).stages
    names = [name for name, _ in stages]
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert {"relu4_2", "relu5_1", "conv5_4", "pool5"} <= set(names)
    assert sum(name.startswith("conv") for name in names) == 16


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A temporary torch hub cache, and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("A3_OFFLINE", "1")
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_torchvision_weights_from_the_hub_cache(hub):
    from torchvision.models import squeezenet1_1

    torch.manual_seed(1)
    reference = squeezenet1_1()
    hub.mkdir(parents=True)
    torch.save(reference.state_dict(), hub / "squeezenet1_1-b8a52dc0.pth")
    ok, where = weights_status(BACKBONES["squeezenet1_1"])
    assert ok and "hub cache" in where
    backbone = load_backbone("squeezenet1_1")
    assert torch.equal(backbone.model.features[0].weight, reference.features[0].weight)
    assert backbone.layer_names[:4] == ["0", "1", "2", "3"] and backbone.feature_dim == 512
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(backbone.logits(x), reference.eval()(x), atol=1e-5)
        # Features are not overwritten by later in-place ReLUs.
        conv, relu = backbone.features(x, ["0", "1"])
        assert conv.min() < 0 and relu.min() >= 0


def test_offline_without_cached_weights_says_what_to_do(hub):
    ok, where = weights_status(BACKBONES["resnet18"])
    assert not ok and "resnet18-f37072fd.pth" in where
    with pytest.raises(A3Error) as error:
        load_backbone("resnet18")
    message = str(error.value)
    assert "resnet18-f37072fd.pth" in message and str(hub) in message
    assert "--weights" in message and "--model efficientnet_lite0" in message


def test_weights_file_option_and_its_errors(hub, tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(2)
    reference = resnet18()
    good = tmp_path / "mine.pth"
    torch.save(reference.state_dict(), good)
    backbone = load_backbone("resnet18", weights=good)
    assert torch.equal(backbone.model.fc.weight, reference.fc.weight)
    assert [n for n, _ in backbone.stages] == ["stem", "layer1", "layer2", "layer3", "layer4"]

    with pytest.raises(A3Error, match="do not fit efficientnet_lite0"):
        load_backbone("efficientnet_lite0", weights=good)
    with pytest.raises(A3Error, match="does not exist"):
        load_backbone("resnet18", weights=tmp_path / "missing.pth")
    # A pickle that would run code is refused by weights_only=True.
    evil = tmp_path / "evil.pth"
    torch.save({"model": EfficientNetLite}, evil)
    with pytest.raises(A3Error, match="cannot load weights"):
        load_backbone("resnet18", weights=evil)
    with pytest.raises(A3Error, match="unknown model 'alexnet'"):
        load_backbone("alexnet")


def test_classify_in_batches_gives_the_same_answers(lite0, photos):
    images = [Image.open(photos[n]).convert("RGB") for n in ("coffee", "chelsea", "flower")]
    together = classify(lite0, images, top=3)
    one_by_one = classify(lite0, images, top=3, batch_size=1)
    for a, b in zip(together, one_by_one):
        assert [i for i, _, _ in a] == [i for i, _, _ in b]
        assert all(abs(p - q) < 1e-5 for (_, _, p), (_, _, q) in zip(a, b))


def test_an_image_of_the_input_size_goes_in_unchanged(lite0):
    from a3cli.engine.images import to_tensor

    rng = np.random.default_rng(0)
    exact = Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))
    torch.testing.assert_close(lite0.preprocess(exact), lite0.normalize(to_tensor(exact)[None]))
    larger = exact.resize((230, 230))
    assert lite0.preprocess(larger).shape == (1, 3, 224, 224)


@pytest.mark.parametrize("model", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_work_in_the_commands_with_model(model, photos, tmp_path, capsys, monkeypatch):
    """classify, stylize (with a preset) and caption-train/caption-sample take them offline; saliency, fool
    and classvis: tests/test_visualize_cli.py."""
    from tests.helpers import run_cli as run
    from tests.helpers import write_coco_json

    code, stdout, err = run(
        [
            "classify",
            str(photos["coffee"]),
            "--model",
            model,
            "--top",
            "1",
            "--json",
            str(tmp_path / "c.json"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "espresso" in stdout and model in stdout
    out = tmp_path / "styled.png"
    code, stdout, err = run(
        [
            "stylize",
            str(photos["chelsea"]),
            str(photos["coffee"]),
            "--model",
            model,
            "--preset",
            "scream",
            "--image-size",
            "32",
            "--style-size",
            "32",
            "--iterations",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert Image.open(out).size[1] == 32
    monkeypatch.setenv("A3_CACHE", str(tmp_path / "cache"))
    ann = write_coco_json(tmp_path / "imgs", photos)
    code, stdout, err = run(
        [
            "caption-train",
            "--images",
            str(tmp_path / "imgs"),
            "--annotations",
            str(ann),
            "--model",
            model,
            "--image-size",
            "64",
            "--hidden-dim",
            "8",
            "--wordvec-dim",
            "8",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "run"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["feature_spec"]["backbone"] == model
    code, stdout, err = run(
        [
            "caption-sample",
            str(photos["rocket"]),
            "--checkpoint",
            str(tmp_path / "run" / "checkpoint.pt"),
            "--out",
            str(tmp_path / "cap.png"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "rocket.jpg" in stdout
