"""Saliency, fooling images and class visualization: the engine against closed forms and its own claims."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from a3cli.engine.visualize.classvis import ClassVisConfig, ClassVisualization, FourierImage, blur, class_visualization, jitter, target_probability
from a3cli.engine.errors import A3Error
from a3cli.engine.visualize.fooling import FoolConfig, as_saved, fool
from a3cli.engine.visualize.saliency import (SaliencyConfig, integrated_gradients, randomize_weights, saliency,
                                   smoothgrad, vanilla_saliency)


class LinearModel:
    """Scores s = W·x + b: its input gradient is W's row, so every method has a closed form."""

    def __init__(self, h: int = 6, w: int = 5, classes: int = 4):
        g = torch.Generator().manual_seed(0)
        self.weight = torch.randn(classes, 3, h, w, generator=g, dtype=torch.float64)
        self.bias = torch.randn(classes, generator=g, dtype=torch.float64)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,kchw->nk", x, self.weight) + self.bias

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.25


def test_vanilla_saliency_of_a_linear_model_is_its_weight_row():
    model = LinearModel()
    x = torch.randn(3, 3, 6, 5, dtype=torch.float64)
    targets = torch.tensor([2, 0, 3])
    maps = vanilla_saliency(model, x, targets)
    assert torch.allclose(maps, model.weight[targets].abs().amax(dim=1))


def test_smoothgrad_without_noise_is_vanilla_and_with_noise_is_the_mean_of_noisy_maps():
    model = LinearModel()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    targets = torch.tensor([1, 3])
    assert torch.allclose(smoothgrad(model, x, targets, samples=5, noise=0.0), vanilla_saliency(model, x, targets))
    # A linear model's gradient does not depend on x, so noise leaves the map unchanged too.
    assert torch.allclose(smoothgrad(model, x, targets, samples=7, noise=0.5, batch_size=3),
                          vanilla_saliency(model, x, targets))


def test_integrated_gradients_of_a_linear_model_is_exact():
    model = LinearModel()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    targets = torch.tensor([0, 2])
    attributions = integrated_gradients(model, x, targets, steps=3, baseline="black", batch_size=4)
    x0 = model.normalize(torch.zeros_like(x))
    assert torch.allclose(attributions, (x - x0) * model.weight[targets])


def test_saliency_batched_equals_one_at_a_time_and_smoothgrad_is_smoother(lite0, photos):
    pictures = [Image.open(photos[name]).convert("RGB").resize((96, 96)) for name in ("chelsea", "coffee")]
    lite0.image_size = 64  # small and fast; the network takes any size
    try:
        together = saliency(lite0, pictures, config=SaliencyConfig(batch_size=2))
        alone = [saliency(lite0, [p]) for p in pictures]
        assert together.targets == [a.targets[0] for a in alone]
        for i, a in enumerate(alone):
            assert torch.allclose(together.maps[i], a.maps[0], rtol=1e-3, atol=1e-6 * float(a.maps[0].max()))
        assert together.maps.shape == (2, 64, 64) and together.images.shape == (2, 3, 64, 64)
        assert [t[0][0] for t in together.top] == together.targets and len(together.top[0]) == 5
        # SmoothGrad removes speckle: neighbouring pixels agree more than in the vanilla map.
        smooth = saliency(lite0, pictures[:1], config=SaliencyConfig("smoothgrad", samples=8, batch_size=8)).maps[0]
        vanilla = together.maps[0]

        def roughness(m):
            m = m / m.mean()
            return float((m[1:] - m[:-1]).abs().mean() + (m[:, 1:] - m[:, :-1]).abs().mean())

        assert roughness(smooth) < roughness(vanilla)
    finally:
        lite0.image_size = 224


def test_integrated_gradients_completeness_on_the_real_network(lite0, photos):
    x = lite0.preprocess(Image.open(photos["coffee"]).convert("RGB"), size=64)
    target = torch.tensor([967])
    # The score is only piecewise smooth along the path (ReLU6 kinks), so the sum converges slowly:
    # measured 4% off at 256 steps on this 64-pixel image (and 44% at 64 steps).
    attributions = integrated_gradients(lite0, x, target, steps=256, baseline="black", batch_size=64)
    with torch.no_grad():
        x0 = lite0.normalize(torch.zeros_like(x))
        gap = float(lite0.logits(x)[0, 967] - lite0.logits(x0)[0, 967])
    assert abs(float(attributions.sum()) - gap) < 0.1 * abs(gap)


def test_maps_depend_on_the_weights(photos):
    """Adebayo et al.'s sanity check: random weights give an unrelated map."""
    from a3cli.engine.backbones.registry import load_backbone

    trained, random_net = load_backbone(), randomize_weights(load_backbone(), "all")
    x = trained.preprocess(Image.open(photos["chelsea"]).convert("RGB"), size=96)
    target = torch.tensor([282])
    a, b = vanilla_saliency(trained, x, target)[0], vanilla_saliency(random_net, x, target)[0]

    def ranks(m):
        return m.flatten().argsort().argsort().double()

    rho = float(torch.corrcoef(torch.stack([ranks(a), ranks(b)]))[0, 1])
    assert abs(rho) < 0.5
    # Same weights, same map: the check above is not just noise between runs.
    assert torch.equal(vanilla_saliency(trained, x, target), vanilla_saliency(trained, x, target))


def test_saliency_config_refuses_bad_values():
    for bad in (SaliencyConfig(method="guided"), SaliencyConfig(baseline="pink"), SaliencyConfig(samples=0)):
        with pytest.raises(A3Error):
            bad.check()


def test_as_saved_gives_what_an_8bit_file_holds(lite0):
    x = torch.randn(1, 3, 8, 8) * 2
    q = as_saved(lite0, x)
    pixels = lite0.deprocess(q) * 255
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)
    assert float(pixels.min()) >= -1e-3 and float(pixels.max()) <= 255 + 1e-3
    assert torch.allclose(as_saved(lite0, q), q, atol=1e-6)


def test_fool_reaches_the_target_on_the_saved_image(lite0, photos, tmp_path):
    from a3cli.engine.images import load_image, save_image

    picture = load_image(photos["chelsea"]).resize((80, 80))
    x = lite0.preprocess(picture, size=64)
    steps = []
    result = fool(lite0, x, FoolConfig(target=76, max_iter=100), progress=lambda s, m: steps.append(s))
    assert result.success and result.target == 76 and result.final_class == 76
    assert result.original_class != 76 and result.iterations == len(steps) > 0
    # The claim is about the file: write it, read it back, classify it.
    path = save_image(result.fooled, tmp_path / "fooled.png")
    again = lite0.normalize(torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)[None].float() / 255)
    with torch.no_grad():
        assert int(lite0.logits(again).argmax()) == 76
    diff = (result.fooled - result.original) * 255
    assert result.linf == pytest.approx(float(diff.abs().max()), abs=1e-3) and 1 <= result.linf <= 255
    assert result.l2 == pytest.approx(float(diff.norm()), rel=1e-4)


def test_fool_with_no_steps_reports_failure_and_changes_nothing(lite0, photos):
    x = lite0.preprocess(Image.open(photos["coffee"]).convert("RGB"), size=64)
    result = fool(lite0, x, FoolConfig(target=1, max_iter=0))
    assert not result.success and result.iterations == 0 and result.l2 == 0 and result.linf == 0
    assert result.final_class == result.original_class != 1


def test_fool_config_checks():
    for bad in (FoolConfig(1, lr=0), FoolConfig(1, max_iter=-1), FoolConfig(1, confidence=1.5)):
        with pytest.raises(A3Error):
            bad.check()


def test_jitter_is_undone_and_blur_keeps_the_mean():
    x = torch.rand(1, 3, 10, 12)
    assert torch.equal(jitter(jitter(x, 3, 5), -3, -5), x)
    assert torch.equal(jitter(x, 2, 0)[..., 2:], x[..., :-2])
    assert torch.equal(blur(x, 0), x)
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(blur(flat, 1.0), flat)
    assert float(blur(x, 1.0).var()) < float(x.var())


def test_fourier_image_is_a_valid_picture():
    image = FourierImage(32, torch.device("cpu"), torch.Generator().manual_seed(0))
    x = image()
    assert x.shape == (1, 3, 32, 32) and float(x.detach().min()) >= 0 and float(x.detach().max()) <= 1
    x.sum().backward()
    assert image.spectrum.grad is not None and image.spectrum.grad.abs().sum() > 0


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_classvis_raises_the_class_probability_and_hands_out_frames(lite0, param):
    config = ClassVisConfig(target=130, iterations=16, size=64, param=param, save_every=4, max_jitter=4,
                            blur_every=4, lr=None if param == "pixel" else 0.1)
    frames = {}
    image = class_visualization(lite0, config, on_frame=lambda step, im: frames.setdefault(step, im), seed=1)
    assert image.shape == (3, 64, 64) and float(image.min()) >= 0 and float(image.max()) <= 1
    assert list(frames) == [4, 8, 12, 16] and torch.equal(frames[16], image)
    first, _ = target_probability(lite0, frames[4], 130)
    prob, top = target_probability(lite0, image, 130)
    assert prob > 2 * first and len(top) == 5
    again = class_visualization(lite0, config, seed=1)
    assert torch.equal(again, image)  # the seed makes it repeatable


def test_classvis_keeps_the_image_on_interrupt(lite0):
    def stop(step, metrics):
        if step == 2:
            raise KeyboardInterrupt

    drawing = ClassVisualization(lite0, ClassVisConfig(target=1, iterations=5, size=32, max_jitter=2))
    with pytest.raises(KeyboardInterrupt):
        drawing.run(progress=stop)
    kept = [drawing.current_image()]
    assert len(kept) == 1 and kept[0].shape == (3, 32, 32)


def test_classvis_config_checks():
    for bad in (ClassVisConfig(1, param="cppn"), ClassVisConfig(1, iterations=0), ClassVisConfig(1, lr=-1.0),
                ClassVisConfig(1, size=16), ClassVisConfig(1, max_jitter=300)):
        with pytest.raises(A3Error):
            bad.check()
