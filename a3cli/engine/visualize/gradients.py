"""What every saliency method shares: the input gradient ∂s_y/∂x, and the one signature that
`a3 saliency --method` runs them by (saliency.py for the pixel methods, gradcam.py for the stage ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch

from a3cli.engine.backbones.registry import Backbone
from a3cli.engine.visualize.saliency_config import SaliencyConfig

Tick = Optional[Callable[[int], None]]  # told how many passes each chunk of work took
Numbers = dict[str, torch.Tensor]  # a method's numbers: name -> one value per image (N,)
# (backbone, x, targets, config, generator, tick) -> (maps (N, H, W), numbers ({} when none))
MethodFunction = Callable[
    [Backbone, torch.Tensor, torch.Tensor, SaliencyConfig, Optional[torch.Generator], Tick],
    tuple[torch.Tensor, Numbers],
]


def input_gradients(backbone: Backbone, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """∂s_y/∂x for each image of the batch, (N, 3, H, W).

    The scores of different images do not interact (the network is in eval mode), so
    the gradient of their sum is each image's own gradient.
    """
    x = x.detach().requires_grad_(True)
    scores = backbone.logits(x).gather(1, targets.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(scores, x)
    return grad
