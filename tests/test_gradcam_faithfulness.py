"""Grad-CAM and guided backpropagation against a hand computation; deletion and insertion against a brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from a3cli.engine.backbones.builders import global_average
from a3cli.engine.backbones.registry import Backbone
from a3cli.engine.errors import A3Error
from a3cli.engine.visualize.faithfulness import blurred, deletion_insertion
from a3cli.engine.visualize.gradcam import gradcam, gradcam_stage, guided_backprop
from a3cli.engine.visualize.gradients import input_gradients
from a3cli.engine.visualize.saliency import method_maps
from a3cli.engine.visualize.saliency_config import SaliencyConfig

# The tiny net: a 1x1 convolution of stride 2 (3 -> 2 channels), a ReLU (or ReLU6), then logits
# s = W · (spatial mean of the 2 channels). Its input is 4x4, its stage 2x2.
CONV = torch.tensor([[1.0, -1.0, 0.5], [-0.5, 1.0, 1.0]], dtype=torch.float64)  # (channels out, in)
W = torch.tensor([[1.0, -2.0], [0.5, 0.5], [-1.0, 3.0]], dtype=torch.float64)  # (classes, channels)
# Bilinear upsampling 2 -> 4 with half-pixel centres (align_corners=False), written out.
UP = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]], dtype=torch.float64)


def tiny_net(relu) -> Backbone:
    conv = nn.Conv2d(3, 2, kernel_size=1, stride=2, bias=False).double()
    fc = nn.Linear(2, 3, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(CONV.view(2, 3, 1, 1))
        fc.weight.copy_(W)
    model = nn.Sequential(conv, fc).eval().requires_grad_(False)
    return Backbone(
        name="tiny",
        model=model,
        stages=[("conv", conv), ("relu", relu)],
        head=lambda a: fc(global_average(a)),
        pool=global_average,
        feature_dim=2,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        source="fixed weights",
        image_size=4,
        classes=["a", "b", "c"],
    )


def tiny_input(scale: float) -> torch.Tensor:
    return scale * torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def pre_activation(x: torch.Tensor) -> torch.Tensor:
    """z[n, k, i, j] = Σ_c CONV[k, c] x[n, c, 2i, 2j]: the convolution by hand."""
    return torch.einsum("kc,ncij->nkij", CONV, x[:, :, ::2, ::2])


@pytest.mark.parametrize("relu, upper, scale", [(F.relu, None, 1.0), (F.relu6, 6.0, 8.0)])
def test_gradcam_is_the_hand_computation(relu, upper, scale):
    x, targets = tiny_input(scale), torch.tensor([0, 2])
    z = pre_activation(x)
    a = z.clamp(min=0, max=upper)
    # s_y = Σ_k W[y, k] · mean_ij A[k, i, j], so ∂s_y/∂A[k, i, j] = W[y, k] / 4 and α_k = W[y, k] / 4.
    alpha = W[targets] / 4
    weighted = torch.einsum("nk,nkij->nij", alpha, a)
    assert (weighted < 0).any() and (z < 0).any()  # both ReLUs cut something
    expected = UP @ weighted.clamp(min=0) @ UP.T
    maps = gradcam(tiny_net(relu), x, targets, "relu")
    assert maps.shape == (2, 4, 4)
    assert torch.allclose(maps, expected)


@pytest.mark.parametrize("relu, upper, scale", [(F.relu, None, 1.0), (F.relu6, 6.0, 8.0)])
def test_guided_backprop_passes_gradients_only_where_input_and_gradient_are_positive(relu, upper, scale):
    x, targets = tiny_input(scale), torch.tensor([0, 2])
    z = pre_activation(x)
    grad_a = (W[targets] / 4).view(2, 2, 1, 1).expand_as(z)
    through = z > 0 if upper is None else (z > 0) & (z < upper)
    if upper is not None:
        assert (z > upper).any()  # ReLU6's upper bound matters here
    guided_z = grad_a * through * (grad_a > 0)
    plain_z = grad_a * through

    def to_input(grad_z: torch.Tensor) -> torch.Tensor:  # the 1x1 stride-2 convolution's backward
        grad_x = torch.zeros_like(x)
        grad_x[:, :, ::2, ::2] = torch.einsum("kc,nkij->ncij", CONV, grad_z)
        return grad_x

    net = tiny_net(relu)
    assert torch.allclose(guided_backprop(net, x, targets), to_input(guided_z))
    # Outside the guided pass the ReLUs are ordinary again, and the two rules differ on this net.
    assert torch.allclose(input_gradients(net, x, targets), to_input(plain_z))
    assert not torch.allclose(to_input(guided_z), to_input(plain_z))


def test_guided_gradcam_is_gradcam_times_the_guided_gradient():
    net, x, targets = tiny_net(F.relu), tiny_input(1.0), torch.tensor([1, 0])
    maps, numbers = method_maps(net, x, targets, SaliencyConfig("guided-gradcam", layer="relu"))
    expected = gradcam(net, x, targets, "relu") * guided_backprop(net, x, targets).abs().amax(dim=1)
    assert numbers == {} and torch.allclose(maps, expected)


def test_gradcam_stage_defaults_and_refusals():
    net = tiny_net(F.relu)
    assert gradcam_stage(net, None) == "relu"  # not in the catalogue: its last stage
    assert gradcam_stage(net, "conv") == "conv"
    with pytest.raises(A3Error, match="no --layer 'head'; its stages are: conv, relu"):
        gradcam_stage(net, "head")


class SoftLinear:
    """Logits W·x + b of a 12x12 picture: all that the curves need from a backbone."""

    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.weight = torch.randn(5, 3, 12, 12, generator=g, dtype=torch.float64) / 4
        self.bias = torch.randn(5, generator=g, dtype=torch.float64)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,kchw->nk", x, self.weight) + self.bias


def brute_force_curves(model, x, target, saliency_map, steps):
    """Pixel by pixel, one picture at a time: (deletion, insertion, fractions)."""
    base = blurred(x.unsqueeze(0))[0]
    order = np.argsort(-saliency_map.flatten().numpy(), kind="stable")
    side = x.shape[-1]
    deletion, insertion, fractions = [], [], []
    for k in range(steps + 1):
        count = k * side * side // steps
        deleted, inserted = x.clone(), base.clone()
        for p in order[:count]:
            r, c = divmod(int(p), side)
            deleted[:, r, c] = base[:, r, c]
            inserted[:, r, c] = x[:, r, c]
        for picture, curve in ((deleted, deletion), (inserted, insertion)):
            curve.append(float(model.logits(picture.unsqueeze(0)).softmax(dim=1)[0, target]))
        fractions.append(count / side**2)
    return deletion, insertion, fractions


def trapezoid(ys, xs):
    return sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))


def test_deletion_and_insertion_curves_match_a_brute_force_loop():
    model = SoftLinear()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 12, 12, generator=g, dtype=torch.float64)
    maps = torch.randint(0, 6, (2, 12, 12), generator=g).double()  # many ties: raster order breaks them
    targets = torch.tensor([3, 1])
    curves = deletion_insertion(model, x, targets, maps, steps=5, batch_size=4)  # 12 pictures in 3 passes
    areas = curves.areas()
    for i in range(2):
        deletion, insertion, fractions = brute_force_curves(model, x[i], int(targets[i]), maps[i], 5)
        assert curves.fractions.tolist() == pytest.approx(fractions)
        assert curves.deletion[i].tolist() == pytest.approx(deletion, rel=1e-9)
        assert curves.insertion[i].tolist() == pytest.approx(insertion, rel=1e-9)
        assert float(areas["deletion_auc"][i]) == pytest.approx(trapezoid(deletion, fractions), rel=1e-9)
        assert float(areas["insertion_auc"][i]) == pytest.approx(trapezoid(insertion, fractions), rel=1e-9)
        # Both curves run between the photo and its blurred copy.
        assert deletion[0] == pytest.approx(insertion[-1]) and deletion[-1] == pytest.approx(insertion[0])


def test_faithfulness_steps_must_be_positive():
    with pytest.raises(A3Error, match="--faithfulness-steps must be at least 1"):
        SaliencyConfig(faithfulness=True, faithfulness_steps=0)
