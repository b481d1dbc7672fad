"""Saliency, fooling images and class visualization: the engine against closed forms and its own claims."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from a3cli.engine.backbones.registry import Backbone
from a3cli.engine.errors import A3Error
from a3cli.engine.visualize.classvis import (
    ClassVisConfig,
    ClassVisualization,
    FourierImage,
    blur,
    class_visualization,
    held_out_probability,
    jitter,
    sheet_activations,
    target_probability,
)
from a3cli.engine.visualize.fooling import FoolConfig, as_saved, bounds, fool
from a3cli.engine.visualize.objectives import ChannelObjective, diagonal_share, parse_objective
from a3cli.engine.visualize.saliency import (
    SaliencyConfig,
    baseline_image,
    completeness,
    integrated_gradients,
    method_maps,
    path_rule,
    randomize_weights,
    saliency,
    smoothgrad,
    vanilla_saliency,
)


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
    assert torch.allclose(
        smoothgrad(model, x, targets, samples=7, noise=0.5, batch_size=3), vanilla_saliency(model, x, targets)
    )


def test_integrated_gradients_of_a_linear_model_is_exact():
    model = LinearModel()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    targets = torch.tensor([0, 2])
    attributions = integrated_gradients(model, x, targets, steps=3, baseline="black", batch_size=4)
    x0 = model.normalize(torch.zeros_like(x))
    assert torch.allclose(attributions, (x - x0) * model.weight[targets])


class CubicModel(LinearModel):
    """Scores s = (W·x)³: along a straight path the gradient is a quadratic in α, so Integrated Gradients'
    integral is exact with 2 Gauss–Legendre points but not with the midpoint rule."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.einsum("nchw,kchw->nk", x, self.weight) / 10).pow(3)


@pytest.mark.parametrize("steps", [1, 2, 5, 16])
def test_path_rules_integrate_polynomials(steps):
    """Gauss–Legendre with n points is exact up to degree 2n − 1, squared (α = u²) up to n − 1, the midpoint
    rule up to degree 1."""
    for rule, exact_degree in (
        ("gauss-legendre", 2 * steps - 1),
        ("gauss-legendre-squared", steps - 1),
        ("midpoint", 1),
    ):
        alphas, weights = path_rule(rule, steps)
        assert alphas.shape == weights.shape == (steps,) and float(alphas.min()) > 0 and float(alphas.max()) < 1
        for degree in range(exact_degree + 1):
            assert float((weights * alphas**degree).sum()) == pytest.approx(1 / (degree + 1), abs=1e-12)
    alphas, weights = path_rule("midpoint", 4)
    assert float((weights * alphas**2).sum()) != pytest.approx(1 / 3, abs=1e-4)
    # The squared rule puts more of its points near the baseline (α = 0) than plain Gauss–Legendre.
    squared, plain = path_rule("gauss-legendre-squared", 64)[0], path_rule("gauss-legendre", 64)[0]
    assert int((squared < 0.06).sum()) > 2 * int((plain < 0.06).sum())


def test_integrated_gradients_completeness_by_rule():
    model = CubicModel()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([1, 2])
    x0 = baseline_image(model, x, "grey")
    exact = integrated_gradients(model, x, targets, steps=2, baseline=x0, rule="gauss-legendre")
    numbers = completeness(model, x, x0, targets, exact)
    gap = model.logits(x)[[0, 1], targets] - model.logits(x0)[[0, 1], targets]
    assert torch.allclose(numbers["score_gap"], gap) and torch.allclose(numbers["attribution_sum"], gap)
    assert float(numbers["relative_completeness_error"].max()) < 1e-12
    # The squared rule is exact too with 3 points (the integrand is a quadratic in α);
    # the midpoint rule misses the quadratic's curvature: an error that shrinks as 1/steps².
    squared = integrated_gradients(model, x, targets, steps=3, baseline=x0, rule="gauss-legendre-squared")
    assert torch.allclose(squared, exact)
    errors = [
        float(
            completeness(
                model, x, x0, targets, integrated_gradients(model, x, targets, steps=k, baseline=x0, rule="midpoint")
            )["completeness_error"][0]
        )
        for k in (4, 8)
    ]
    assert errors[0] > 1e-9 and errors[1] == pytest.approx(errors[0] / 4, rel=1e-6)
    # In the batch: the method returns the map and the same numbers per image.
    maps, batch_numbers = method_maps(
        model, x, targets, SaliencyConfig("ig", steps=2, baseline="grey", rule="gauss-legendre")
    )
    assert torch.allclose(maps, exact.abs().sum(dim=1)) and set(batch_numbers) == set(numbers)


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


def test_integrated_gradients_defaults_are_complete_on_a_real_photo(lite0, photos):
    """At the default rule and steps the attributions add up to s(x) − s(black) within 5% (224 px)."""
    result = saliency(lite0, [Image.open(photos["chelsea"]).convert("RGB")], config=SaliencyConfig("ig"))
    numbers = result.numbers[0]
    x = lite0.preprocess(Image.open(photos["chelsea"]).convert("RGB"))
    with torch.no_grad():
        scores = lite0.logits(torch.cat([x, lite0.normalize(torch.zeros_like(x))]))[:, result.targets[0]]
    assert numbers["score_gap"] == pytest.approx(float(scores[0] - scores[1]), rel=1e-4)
    error = abs(numbers["attribution_sum"] - numbers["score_gap"])
    assert numbers["completeness_error"] == pytest.approx(error, rel=1e-4, abs=1e-6)
    assert numbers["relative_completeness_error"] == pytest.approx(error / abs(numbers["score_gap"]), rel=1e-4)
    assert numbers["relative_completeness_error"] < 0.05


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
    for bad in (
        dict(method="guided"),
        dict(baseline="pink"),
        dict(samples=0),
        dict(rule="simpson"),
    ):
        with pytest.raises(A3Error):
            SaliencyConfig(**bad)
    assert SaliencyConfig(method="ig").method == "integrated-gradients"


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
    for bad in (
        dict(lr=0),
        dict(max_iter=-1),
        dict(confidence=1.5),
        dict(epsilon=0.5),
        dict(epsilon=300),
    ):
        with pytest.raises(A3Error):
            FoolConfig("1", **bad)


def test_fool_within_a_budget_keeps_every_pixel_of_the_file_within_it(lite0, photos, tmp_path):
    from a3cli.engine.images import load_image, save_image

    x = lite0.preprocess(load_image(photos["chelsea"]), size=128)  # (at 64 px, 3 steps are not enough)
    result = fool(lite0, x, FoolConfig(target=76, epsilon=3, max_iter=100))
    assert result.success and result.final_class == 76 and result.epsilon == 3
    path = save_image(result.fooled, tmp_path / "fooled.png")
    saved = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1).double()
    original = (result.original.double() * 255).round()
    assert float((saved - original).abs().max()) == result.linf <= 3
    with torch.no_grad():
        assert int(lite0.logits(lite0.normalize(saved[None].float() / 255)).argmax()) == 76
    # One step of one pixel unit cannot fool it: the run says so, and keeps to its budget.
    short = fool(lite0, x, FoolConfig(target=76, epsilon=1, max_iter=1))
    assert not short.success and short.iterations == 1 and short.linf == 1


def test_budget_bounds_are_whole_8bit_steps_inside_the_valid_range(lite0):
    pixels = torch.tensor([0, 1, 128, 254, 255], dtype=torch.float32).view(1, 1, 1, 5).expand(1, 3, 1, 5) / 255
    lo, hi = bounds(lite0, lite0.normalize(pixels), epsilon=2.7)  # 2.7 -> 2 whole steps
    assert torch.allclose(lite0.deprocess(lo)[0, 0, 0] * 255, torch.tensor([0.0, 0, 126, 252, 253]), atol=1e-4)
    assert torch.allclose(lite0.deprocess(hi)[0, 0, 0] * 255, torch.tensor([2.0, 3, 130, 255, 255]), atol=1e-4)


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
    # On a coarser grid (as lucent's 128 px), upsampled: fewer numbers, the same picture size.
    coarse = FourierImage(64, torch.device("cpu"), torch.Generator().manual_seed(0), resolution=16)
    assert coarse().shape == (1, 3, 64, 64) and coarse.spectrum.shape == (1, 3, 16, 9, 2)


def test_held_out_probability_averages_crops_of_the_saved_picture(lite0, photos):
    """A photo keeps its class under crops and rescales; the same pixels shuffled do not; crops are seeded."""
    photo = Image.open(photos["coffee"]).convert("RGB").resize((160, 120))
    pixels = np.asarray(photo).reshape(-1, 3)
    shuffled = Image.fromarray(pixels[np.random.default_rng(0).permutation(len(pixels))].reshape(120, 160, 3))
    lite0.image_size = 96  # small and fast: the crops are resized to the judge's input size
    try:
        p = held_out_probability(lite0, photo, 967, crops=4)
        assert p > 0.3 and held_out_probability(lite0, shuffled, 967, crops=4) < 0.05
        assert held_out_probability(lite0, photo, 967, crops=4) == p
        assert held_out_probability(lite0, photo, 967, crops=4, seed=1) != p
    finally:
        lite0.image_size = 224


@pytest.mark.parametrize("param", ["pixel", "fourier", "lucent"])
def test_classvis_raises_the_class_probability_and_hands_out_frames(lite0, param):
    config = ClassVisConfig(
        target=130,
        iterations=16,
        size=64,
        param=param,
        save_every=4,
        max_jitter=4,
        blur_every=4,
        lr=None if param == "pixel" else 0.1,
    )
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
    for bad in (
        dict(param="cppn"),
        dict(iterations=0),
        dict(lr=-1.0),
        dict(size=16),
        dict(max_jitter=300),
    ):
        with pytest.raises(A3Error):
            ClassVisConfig("1", **bad)


def tiny_backbone(height: int = 5, width: int = 7) -> Backbone:
    """A 1×1 convolution (3 -> 4 channels) then a ReLU: every activation's gradient can be written out."""
    conv = torch.nn.Conv2d(3, 4, 1).double()
    with torch.no_grad():
        conv.weight.copy_(torch.arange(12, dtype=torch.float64).view(4, 3, 1, 1) / 6 - 1)
        conv.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
    conv.requires_grad_(False)
    return Backbone(
        name="tiny",
        model=conv,
        stages=[("conv", conv), ("relu", torch.relu)],
        head=lambda maps: maps.mean(dim=(2, 3)),
        pool=lambda maps: maps.mean(dim=(2, 3)),
        feature_dim=4,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        source="test",
        classes=["a", "b", "c", "d"],
    )


def test_channel_objective_is_each_pictures_own_channel_mean_with_its_hand_gradient():
    backbone, (h, w) = tiny_backbone(), (5, 7)
    weight, bias = backbone.model.weight[:, :, 0, 0], backbone.model.bias
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x.requires_grad_(True)
    for layer in ("conv", "relu"):
        objective = ChannelObjective(layer, (1, 3))  # picture 0 draws channel 1, picture 1 channel 3
        scores = objective(backbone, x)
        (grad,) = torch.autograd.grad(scores.sum(), x)
        pre = torch.einsum("kc,nchw->nkhw", weight, x.detach()) + bias.view(1, 4, 1, 1)
        act = pre if layer == "conv" else pre.clamp(min=0)
        assert torch.allclose(scores, torch.stack([act[0, 1].mean(), act[1, 3].mean()]))
        for picture, channel in enumerate((1, 3)):
            # d mean_hw(act_c) / d x_k,h,w = W[c, k] / (H·W), times the ReLU's gate 1[pre > 0]
            gate = torch.ones(h, w, dtype=torch.float64) if layer == "conv" else (pre[picture, channel] > 0).double()
            expected = weight[channel].view(3, 1, 1) * gate / (h * w)
            assert torch.allclose(grad[picture], expected)
    assert objective.activations(backbone, x).shape == (2, 2) and objective.batch == 2


def test_neuron_objective_is_one_place_of_the_map_column_x_row_y():
    backbone = tiny_backbone()
    weight = backbone.model.weight[:, :, 0, 0]
    x = torch.randn(1, 3, 5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64, requires_grad=True)
    objective = ChannelObjective("conv", (2,), position=(6, 1))  # x = 6 (of 7 columns), y = 1
    (score,) = objective(backbone, x)
    (grad,) = torch.autograd.grad(score, x)
    assert torch.allclose(score, weight[2] @ x[0, :, 1, 6].detach() + backbone.model.bias[2])
    expected = torch.zeros_like(x)
    expected[0, :, 1, 6] = weight[2]
    assert torch.equal(grad, expected)
    assert objective.record() == {"kind": "neuron", "layer": "conv", "channels": [2], "x": 6, "y": 1}


def test_objectives_parse_and_check_their_layer_channels_and_place():
    assert parse_objective("block4:3") == ChannelObjective("block4", (3,))
    assert parse_objective("block4:0-15").channels == tuple(range(16))
    assert parse_objective("head:2@3,4") == ChannelObjective("head", (2,), (3, 4))
    for bad in ("block4", "block4:", "block4:a", "block4:3@1", "block4:3-1", ":3", "block4:3@1,2,3"):
        with pytest.raises(A3Error):
            parse_objective(bad)
    backbone = tiny_backbone()
    ChannelObjective("relu", (0, 3), (31, 31)).check(backbone, 32)
    for bad_objective in (
        ChannelObjective("fc", (0,)),
        ChannelObjective("conv", (4,)),
        ChannelObjective("conv", (0,), (32, 0)),
    ):
        with pytest.raises(A3Error):
            bad_objective.check(backbone, 32)
    with pytest.raises(A3Error):
        ClassVisConfig(target="1", objective=ChannelObjective("conv", (0,)))
    with pytest.raises(A3Error):
        ClassVisConfig()


def test_diagonal_share_z_scores_each_channel_over_the_pictures():
    # channel 1 is loud everywhere: its own picture still wins its column, but without z-scores picture 0's
    # row would be won by channel 1.
    values = torch.tensor([[1.0, 10.0, 0.0], [0.0, 12.0, 0.0], [0.0, 10.0, 1.0]])
    assert diagonal_share(values) == {"channels": 1.0, "pictures": 1.0}
    assert diagonal_share(values.flip(0))["channels"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_a_sheet_of_channels_is_one_batched_optimisation(lite0, param):
    objective = ChannelObjective("block4", (0, 1, 2, 3))
    config = ClassVisConfig(objective=objective, param=param, iterations=12, size=64, max_jitter=4)
    drawing = ClassVisualization(lite0, config, seed=0)
    start = drawing.current_images()
    sheet = drawing.run()
    pictures = drawing.current_images()
    assert pictures.shape == (4, 3, 64, 64)  # one picture per channel, in one batch
    assert sheet.shape == (3, 2 * 64 + 3 * 2, 2 * 64 + 3 * 2)  # saved as a 2×2 grid
    before, after = sheet_activations(lite0, start, objective), sheet_activations(lite0, pictures, objective)
    assert bool((after.diagonal() > before.diagonal()).all())  # each picture raised its own channel
    assert diagonal_share(after)["channels"] >= 0.75


def test_untargeted_fooling_stops_at_the_first_change_of_the_saved_image(lite0, photos, tmp_path):
    from a3cli.engine.images import save_image

    for epsilon in (None, 1.0):
        config = FoolConfig(untargeted=True, epsilon=epsilon, max_iter=50)
        result = fool(lite0, Image.open(photos["coffee"]), config)
        assert result.success and result.final_class != result.original_class and result.iterations >= 1
        path = save_image(result.fooled, tmp_path / "untargeted.png")
        with torch.no_grad():
            top1 = int(lite0.logits(lite0.preprocess(Image.open(path))).argmax())
        assert top1 == result.final_class != result.original_class  # judged on the file itself
        numbers = result.numbers(lite0.classes)
        assert numbers["untargeted"] and numbers["new_class"]["index"] == top1 and numbers["target"] is None
        # One step fewer and the saved image still shows the original class: it stopped at the first change.
        fewer = fool(lite0, Image.open(photos["coffee"]), replace(config, max_iter=result.iterations - 1))
        assert not fewer.success and fewer.final_class == fewer.original_class
        if epsilon is not None:
            assert result.linf <= epsilon
    with pytest.raises(A3Error):
        FoolConfig(untargeted=True, confidence=0.5)
