"""How good a generator of your own pictures is: a Fréchet distance on EfficientNet-Lite0 features.

For 64-px runs on a folder there are no digits to count, only the distance, and the
MNIST classifier cannot see photos. The features are Lite0's pooled 1280-d vector
(the offline backbone, ImageNet-trained) of the images resized to its 224-px input,
through torchmetrics' Fréchet distance as for MNIST. It ranks generators of the same
pictures; it is not comparable with the Inception-FID numbers of papers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3cli.engine.gan.evaluation import Judge, real_sample
from a3cli.engine.gan.folders import ImageFolder

CHUNK = 100  # images per forward pass of Lite0
FEATURES = "EfficientNet-Lite0 pooled features (1280-d, images resized to 224 px): not comparable with Inception FID"


class LiteFeatures(nn.Module):
    """What torchmetrics calls: images (N, 1 or 3, H, W) in [0, 1] → (N, 1280) Lite0 features."""

    num_features = 1280

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        from a3cli.engine.backbones.registry import load_backbone

        self.backbone = load_backbone("efficientnet_lite0", device)
        self.backbone.model.eval()

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        x = x.float().expand(-1, 3, -1, -1)  # gray pictures as RGB
        size = self.backbone.image_size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.backbone.pooled(self.backbone.normalize(x))


def photo_judge(folder: ImageFolder, noise_dim: int, seed: int, real_samples: int,
                device: torch.device | str = "cpu") -> Judge:
    """The Judge of generators of the folder's pictures, on Lite0 features (read lazily, in chunks)."""
    order = real_sample(len(folder), real_samples, seed).tolist()
    real01 = (torch.stack([folder[i] for i in order[start:start + CHUNK]]).add(1).div(2)
              for start in range(0, len(order), CHUNK))
    return Judge(LiteFeatures(torch.device(device)), real01, noise_dim, seed, device, CHUNK)
