"""The style-transfer engine: targets computed once, shallow forwards, the losses, colours, schedules.

Tiny pictures (32-48 px) and a few iterations keep this fast; the numbers are
checked against independent computations, not against themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from a3cli.engine import gram_matrix, tv_loss
from a3cli.engine.errors import A3Error
from a3cli.engine.images import load_image, to_tensor
from a3cli.engine.style.colors import keep_colors, luminance_only
from a3cli.engine.style.settings import resolve_settings
from a3cli.engine.style.transfer import StyleConfig, StyleTransfer, stylize

LAYERS = dict(content_layer="block4", style_layers=["stem", "block1", "block4"])


def config(**changes) -> StyleConfig:
    settings = dict(
        **LAYERS, content_weight=0.3, style_weights=[1e5, 5e3, 5e3], tv_weight=3.0, image_size=32, iterations=4
    )
    settings.update(changes)
    return resolve_settings("efficientnet_lite0", None, StyleConfig(**settings))


@pytest.fixture(scope="module")
def pictures(photos):
    return {name: load_image(photos[name]) for name in ("chelsea", "coffee", "flower")}


def stages_run(backbone, action) -> list[str]:
    """Names of the backbone's stages that ran during `action()`, in order."""
    ran = []
    handles = [
        stage.register_forward_hook(lambda *_, name=name: ran.append(name))
        for name, stage in backbone.stages
        if hasattr(stage, "register_forward_hook")
    ]
    # efficientnet_lite0's stem and head are bound methods, not modules: wrap those.
    originals = {}
    for i, (name, stage) in enumerate(backbone.stages):
        if not hasattr(stage, "register_forward_hook"):
            originals[i] = stage
            backbone.stages[i] = (name, lambda x, f=stage, name=name: (ran.append(name), f(x))[1])
    try:
        action()
    finally:
        for handle in handles:
            handle.remove()
        for i, stage in originals.items():
            backbone.stages[i] = (backbone.stages[i][0], stage)
    return ran


def test_targets_are_computed_once_and_forwards_stop_at_the_deepest_layer(lite0, pictures):
    transfer = StyleTransfer(
        lite0, pictures["chelsea"], [pictures["coffee"], pictures["flower"]], config(optimizer="adam", lr=0.05)
    )
    ran = stages_run(lite0, lambda: transfer.run())
    # One forward of the content, one of each style, one per iteration, one to measure the result: 1 + 2 + 4 + 1.
    assert ran.count("stem") == 8
    assert "block5" not in ran and "head" not in ran  # block4 is the deepest layer asked for
    assert ran.count("block4") == 8


def test_zero_weights_drop_layers(lite0, pictures):
    inversion = StyleTransfer(
        lite0,
        pictures["chelsea"],
        [pictures["coffee"]],
        config(content_layer="block1", style_weights=[0, 0, 0], iterations=2, optimizer="adam"),
    )
    ran = stages_run(lite0, lambda: inversion.run())
    assert ran.count("stem") == 1 + 2 + 1 and "block2" not in ran  # no style forward at all; stops at block1
    texture = StyleTransfer(
        lite0,
        pictures["chelsea"],
        [pictures["coffee"]],
        config(content_layer="block7", content_weight=0, iterations=2, optimizer="adam"),
    )
    ran = stages_run(lite0, lambda: texture.run())
    assert ran.count("stem") == 1 + 2 + 1 and "block5" not in ran  # no content forward; stops at block4


def test_loss_terms_match_an_independent_computation(lite0, pictures):
    cfg = config()
    transfer = StyleTransfer(lite0, pictures["chelsea"], [pictures["coffee"]], cfg)
    content, target, grams = transfer.prepare(32)
    image = content + 0.1 * torch.randn(content.shape, generator=torch.Generator().manual_seed(1))

    def all_features(x):  # the whole trunk, stage by stage, keeping every output
        out = {}
        for name, stage in lite0.stages:
            x = stage(x)
            out[name] = x
        return out

    with torch.no_grad():
        feats_image, feats_content = all_features(image), all_features(content)
        style = lite0.preprocess(pictures["coffee"], size=32, crop=False)
        feats_style = all_features(style)
        terms = transfer.losses(image, target, grams)
        expected_content = 0.3 * ((feats_image["block4"] - feats_content["block4"]) ** 2).sum()
        expected_style = sum(
            w * ((gram_matrix(feats_image[layer]) - gram_matrix(feats_style[layer])) ** 2).sum()
            for layer, w in zip(cfg.style_layers, cfg.style_weights)
        )
    torch.testing.assert_close(terms["content"], expected_content, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(terms["style"], expected_style, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(terms["tv"], tv_loss(image, 3.0))
    assert terms["content"] > 0 and terms["style"] > 0


def test_blend_weights_average_the_gram_matrices(lite0, pictures):
    cfg = config(style_blend_weights=[3.0, 1.0])
    transfer = StyleTransfer(lite0, pictures["chelsea"], [pictures["coffee"], pictures["flower"]], cfg)
    _, _, grams = transfer.prepare(32)
    with torch.no_grad():
        singles = [
            lite0.features(lite0.preprocess(pictures[name], size=32, crop=False), cfg.style_layers)
            for name in ("coffee", "flower")
        ]
    for i, blended in enumerate(grams):
        torch.testing.assert_close(blended, 0.75 * gram_matrix(singles[0][i]) + 0.25 * gram_matrix(singles[1][i]))


@pytest.mark.parametrize("optimizer, lr", [("lbfgs", 1.0), ("adam", 0.05)])
def test_optimisation_lowers_the_loss_and_keeps_the_aspect_ratio(lite0, pictures, optimizer, lr):
    result = stylize(lite0, pictures["chelsea"], [pictures["coffee"]], config(optimizer=optimizer, lr=lr, iterations=6))
    assert result.end["total"] < 0.8 * result.start["total"]
    assert len(result.history) >= 6  # L-BFGS's last line search may take a few more evaluations
    w, h = pictures["chelsea"].size
    assert result.image.shape[1] == 32 and abs(result.image.shape[2] / 32 - w / h) < 0.05
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_adam_follows_the_assignments_schedule_and_stays_in_range(lite0, pictures, monkeypatch):
    seen = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    transfer = StyleTransfer(
        lite0,
        pictures["chelsea"],
        [pictures["coffee"]],
        config(optimizer="adam", lr=3.0, decay_lr=0.1, decay_at=0.9, iterations=10),
    )
    transfer.run()
    assert seen == [3.0] * 9 + [0.1]  # 3.0, then 0.1 from iteration 9 of 10 (the assignment: 180 of 200)
    pixels = lite0.deprocess(transfer.image.detach())
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5  # lr 3 would leave the range unclamped


def test_random_init_is_repeatable_with_a_seed(lite0, pictures):
    def run(seed):
        return stylize(
            lite0, pictures["chelsea"], [pictures["coffee"]], config(init="random", iterations=3), seed=seed
        ).image

    first, again, other = run(5), run(5), run(6)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_init_from_a_file_is_resized_to_the_output(lite0, pictures, photos):
    transfer = StyleTransfer(lite0, pictures["chelsea"], [pictures["coffee"]], config(init=str(photos["rocket"])))
    content, _, _ = transfer.prepare(32)
    start = transfer.initial_image(content)
    assert start.shape == content.shape and not torch.allclose(start, content)


def test_multiscale_works_coarse_to_fine(lite0, pictures):
    cfg = config(image_size=64, min_scale_size=16, iterations=7, multiscale=True, optimizer="adam", lr=0.05)
    transfer = StyleTransfer(lite0, pictures["chelsea"], [pictures["coffee"]], cfg)
    assert transfer.scales() == [16, 32, 64]
    steps = []
    result = transfer.run(progress=lambda step, metrics: steps.append(step))
    assert steps == list(range(1, 8))  # 2 + 2 + 3 iterations, one bar
    assert result.image.shape[1] == 64


def test_snapshots_every_k_iterations(lite0, pictures):
    shots = []
    stylize(
        lite0,
        pictures["chelsea"],
        [pictures["coffee"]],
        config(iterations=5),
        snapshot=lambda step, image: shots.append((step, tuple(image.shape))),
        save_every=2,
    )
    assert [s for s, _ in shots] == [2, 4]
    assert shots[0][1][0] == 3


def test_interrupted_run_keeps_the_picture_so_far(lite0, pictures):
    transfer = StyleTransfer(lite0, pictures["chelsea"], [pictures["coffee"]], config(iterations=50))

    def stop_at_three(step, metrics):
        assert set(metrics) == {"content", "style", "tv"}
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transfer.run(progress=stop_at_three)
    image = transfer.current_image()
    assert image.shape[1] == 32 and 0 <= image.min() and image.max() <= 1


def test_keep_colors_takes_luminance_from_the_image_and_colour_from_the_content(pictures):
    content = pictures["flower"].resize((48, 32))
    image = to_tensor(pictures["coffee"].resize((48, 32)))
    mixed = keep_colors(image, content)
    y, cb, cr = (
        np.asarray(c, dtype=float)
        for c in Image.fromarray((mixed.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        .convert("YCbCr")
        .split()
    )
    y_img = np.asarray(
        Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).convert("YCbCr"), dtype=float
    )[..., 0]
    _, cb_c, cr_c = (np.asarray(c, dtype=float) for c in content.convert("YCbCr").split())
    # Round trips through 8-bit RGB cost a few levels where colours leave the RGB gamut.
    assert np.median(np.abs(y - y_img)) <= 1 and np.median(np.abs(cb - cb_c)) <= 2 and np.median(np.abs(cr - cr_c)) <= 2


def test_luminance_only_style_is_grey_with_the_contents_brightness(pictures):
    grey = np.asarray(luminance_only(pictures["flower"], pictures["coffee"]), dtype=float)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    y_content = np.asarray(pictures["coffee"].convert("YCbCr"), dtype=float)[..., 0]
    assert abs(grey[..., 0].mean() - y_content.mean()) < 2
    assert abs(grey[..., 0].std() - y_content.std()) < 3


def test_original_colors_run_keeps_the_content_colours(lite0, pictures):
    result = stylize(lite0, pictures["chelsea"], [pictures["flower"]], config(original_colors=True, iterations=3))
    out = Image.fromarray((result.image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    content = pictures["chelsea"].resize(out.size, Image.BICUBIC)
    cb, cr = (np.asarray(c, dtype=float) for c in out.convert("YCbCr").split()[1:])
    cb_c, cr_c = (np.asarray(c, dtype=float) for c in content.convert("YCbCr").split()[1:])
    assert np.median(np.abs(cb - cb_c)) <= 2 and np.median(np.abs(cr - cr_c)) <= 2


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(content_layer="block99"), "no layer 'block99'"),
        (dict(style_weights=[1.0]), "3 style layers but 1 style weights"),
        (dict(style_blend_weights=[1.0, 2.0]), "1 style image(s) but 2 blend weights"),
        (dict(optimizer="sgd"), "--optimizer"),
        (dict(iterations=0), "--iterations"),
        (dict(tv_weight=-1.0), "non-negative"),
    ],
)
def test_bad_settings_are_refused_before_any_work(lite0, pictures, changes, message):
    with pytest.raises(A3Error, match=message.replace("(", r"\(").replace(")", r"\)")):
        StyleTransfer(lite0, pictures["chelsea"], [pictures["coffee"]], config(**changes))


def test_random_start_is_the_assignments_noise_in_pixels(lite0, pictures):
    """The assignment starts from U(0, 1) in SqueezeNet's normalised space: ImageNet mean + std·U(0, 1) in pixels."""
    from a3cli.engine.catalogue import IMAGENET_MEAN, IMAGENET_STD

    transfer = StyleTransfer(lite0, pictures["chelsea"], [pictures["coffee"]], config(init="random"), seed=7)
    content, _, _ = transfer.prepare(32)
    pixels = lite0.deprocess(transfer.initial_image(content))
    noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(7))
    expected = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) + torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * noise
    torch.testing.assert_close(pixels, expected, rtol=1e-5, atol=1e-5)
