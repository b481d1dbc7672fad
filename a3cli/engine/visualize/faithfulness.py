"""Does a saliency map point at what the model uses? Deletion and insertion (Petsiuk et al. 2018, RISE).

Deletion: the pixels are taken away in the map's order, most salient first, each replaced by the
same pixel of a blurred copy of the image, and the target's probability is read after each of K
steps. A faithful map makes it fall fast: a small area under the curve. Insertion: the pixels are
put back into the blurred image in the same order; a faithful map makes the probability rise fast,
a large area. Both curves run over the fraction of pixels changed, 0 to 1, and their areas are
trapezoids over it. The blurred copy (RISE's 11-px Gaussian of σ 5) keeps the colours and removes
the detail, so changing a pixel does not add the sharp edges that a black one would.

Every step of every image is one picture; they go through the network in batches, without gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

BLUR_KERNEL, BLUR_SIGMA = 11, 5.0  # RISE's gkern(11, 5)


@dataclass
class Curves:
    fractions: torch.Tensor  # (K + 1,): the fraction of pixels changed at each step, 0 to 1
    deletion: torch.Tensor  # (N, K + 1): the target's probability as the salient pixels are blurred away
    insertion: torch.Tensor  # (N, K + 1): ... as they are put back into the blurred image

    @property
    def steps(self) -> int:
        """K: the steps from none to all of the pixels."""
        return len(self.fractions) - 1

    def areas(self) -> dict[str, torch.Tensor]:
        """The areas under both curves, (N,) each: lower deletion and higher insertion are better."""
        return {
            "deletion_auc": torch.trapezoid(self.deletion, self.fractions, dim=1),
            "insertion_auc": torch.trapezoid(self.insertion, self.fractions, dim=1),
        }


def concatenated(parts: list[Curves]) -> Curves:
    """The curves of several batches of images as one."""
    deletion, insertion = torch.cat([p.deletion for p in parts]), torch.cat([p.insertion for p in parts])
    return Curves(parts[0].fractions, deletion, insertion)


def blurred(x: torch.Tensor) -> torch.Tensor:
    """The image with its detail removed: what a deleted pixel becomes."""
    from torchvision.transforms.functional import gaussian_blur

    return gaussian_blur(x, [BLUR_KERNEL, BLUR_KERNEL], [BLUR_SIGMA, BLUR_SIGMA])


def salient_masks(maps: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(masks (N, K + 1, 1, H, W), fractions (K + 1,)): step k marks the k·HW // K most salient pixels.

    Equal values keep their raster order, so the masks grow by exactly one pixel set at each step.
    """
    n, h, w = maps.shape
    order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=maps.device).expand(n, -1))
    counts = torch.arange(steps + 1, device=maps.device) * (h * w) // steps
    masks = rank.unsqueeze(1) < counts.view(1, -1, 1)
    return masks.view(n, steps + 1, 1, h, w), counts.double().cpu() / (h * w)


def target_probabilities(
    backbone, images: torch.Tensor, target: int, batch_size: int, tick: Callable[[int], None] | None
) -> torch.Tensor:
    """The probability of class `target` for each image, `batch_size` images per pass."""
    probs = []
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size]
            probs.append(backbone.logits(chunk).softmax(dim=1)[:, target].double().cpu())
            if tick:
                tick(chunk.shape[0])
    return torch.cat(probs)


def deletion_insertion(
    backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    maps: torch.Tensor,
    steps: int,
    batch_size: int,
    tick: Callable[[int], None] | None = None,
) -> Curves:
    """Both curves of each image of a normalised batch x (N, 3, H, W) for its map (N, H, W).

    `backbone` needs only `logits`. `tick` is told how many pictures each pass took.
    """
    masks, fractions = salient_masks(maps.to(x.device), steps)
    base = blurred(x)
    deletion, insertion = [], []
    for i in range(x.shape[0]):
        deleted = torch.where(masks[i], base[i], x[i])
        inserted = torch.where(masks[i], x[i], base[i])
        probs = target_probabilities(backbone, torch.cat([deleted, inserted]), int(targets[i]), batch_size, tick)
        deletion.append(probs[: steps + 1])
        insertion.append(probs[steps + 1 :])
    return Curves(fractions, torch.stack(deletion), torch.stack(insertion))
