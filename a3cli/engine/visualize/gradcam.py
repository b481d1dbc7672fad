"""Grad-CAM and guided backpropagation: where in the picture a stage's channels find the class.

- Grad-CAM (Selvaraju et al. 2017): the activation A of one stage (the last convolutional one by
  default) weighted channel by channel by the spatial mean of ∂s_y/∂A, summed over the channels and
  passed through a ReLU (only what raises the score), then upsampled bilinearly to the picture. It
  is as coarse as the stage (7×7 at EfficientNet's head) but it is class-specific and, unlike
  gradients at the pixels, hardly noisy.
- Guided backpropagation (Springenberg et al. 2015): the input gradient with every ReLU's backward
  pass also dropping negative incoming gradients. Sharp, but barely class-specific on its own.
- Guided Grad-CAM: the two multiplied, the fine detail inside the coarse map.

The backbones call their ReLUs as functions (EfficientNet's F.relu6) as well as modules, so guided
backpropagation swaps them with a torch function mode for the length of one pass, rather than with
module hooks (which see only nn.ReLU modules).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from a3cli.engine.backbones.registry import Backbone
from a3cli.engine.catalogue import BACKBONES
from a3cli.engine.errors import A3Error
from a3cli.engine.visualize.gradients import Numbers, Tick, input_gradients
from a3cli.engine.visualize.saliency_config import SaliencyConfig


def gradcam_stage(backbone: Backbone, layer: str | None) -> str:
    """The stage Grad-CAM weighs: `layer`, or the backbone's catalogue default (else its last stage)."""
    record = BACKBONES.get(backbone.name)
    stage = layer or (record.gradcam_layer if record else None) or backbone.layer_names[-1]
    if stage not in backbone.layer_names:
        raise A3Error(f"{backbone.name} has no --layer {stage!r}; its stages are: {', '.join(backbone.layer_names)}")
    return stage


def stage_activation(backbone: Backbone, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(the output of stage `layer`, as a leaf that collects gradients, and the logits computed from it)."""
    activation = None
    for name, stage in backbone.stages:
        x = stage(x)
        if name == layer:
            activation = x = x.detach().requires_grad_(True)
    if activation is None:
        raise ValueError(f"{backbone.name} has no stage {layer!r}")
    return activation, backbone.head(x)


def gradcam(backbone: Backbone, x: torch.Tensor, targets: torch.Tensor, layer: str) -> torch.Tensor:
    """ReLU(Σ_k α_k A_k) with α_k the spatial mean of ∂s_y/∂A_k, upsampled to x's size -> (N, H, W)."""
    activation, logits = stage_activation(backbone, x, layer)
    (grads,) = torch.autograd.grad(logits.gather(1, targets.view(-1, 1)).sum(), activation)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()


class GuidedReLU(torch.autograd.Function):
    """A ReLU (clamped at `upper` when given: ReLU6) whose gradient passes only where both the input and
    the incoming gradient are positive (and the input is below `upper`)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, upper: Optional[float]) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(min=0, max=upper)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        passes = (x > 0) & (grad > 0)
        if ctx.upper is not None:
            passes &= x < ctx.upper
        return grad * passes, None


class GuidedBackprop(TorchFunctionMode):
    """Inside `with GuidedBackprop():` every ReLU and ReLU6 is a GuidedReLU."""

    RELUS: dict[Any, Optional[float]] = {F.relu: None, torch.relu: None, torch.Tensor.relu: None, F.relu6: 6.0}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.RELUS:
            return GuidedReLU.apply(args[0], self.RELUS[func])
        return func(*args, **(kwargs or {}))


def guided_backprop(backbone: Backbone, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """∂s_y/∂x through guided ReLUs, (N, 3, H, W)."""
    with GuidedBackprop():
        return input_gradients(backbone, x, targets)


# The methods as `a3 saliency --method` runs them (their records are in the catalogue, their names in
# saliency.py METHODS), on a config whose stage `for_backbone` has named.


def named_stage(config: SaliencyConfig) -> str:
    """The stage `for_backbone` named in the config."""
    if config.layer is None:
        raise ValueError("no Grad-CAM stage named: make the config with saliency.for_backbone")
    return config.layer


def gradcam_method(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    config: SaliencyConfig,
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> tuple[torch.Tensor, Numbers]:
    maps = gradcam(backbone, x, targets, named_stage(config))
    if tick:
        tick(1)
    return maps, {}


def guided_gradcam_method(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    config: SaliencyConfig,
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> tuple[torch.Tensor, Numbers]:
    """The Grad-CAM map times guided backpropagation's |gradient|, maximum over channels."""
    cam = gradcam(backbone, x, targets, named_stage(config))
    maps = cam * guided_backprop(backbone, x, targets).abs().amax(dim=1)
    if tick:
        tick(1)
    return maps, {}
