"""How good a generator of your own pictures is: a Fréchet distance on EfficientNet-Lite0 features.

For 64-px runs on a folder there are no digits to count, only the distance, and the
MNIST classifier cannot see photos. The features are Lite0's pooled 1280-d vector
(the offline backbone, ImageNet-trained) of the images resized to its 224-px input,
through torchmetrics' Fréchet distance as for MNIST. It ranks generators of the same
pictures; it is not comparable with the Inception-FID numbers of papers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3cli.engine.device import seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.evaluation import judge_noise
from a3cli.engine.gan.folders import ImageFolder
from a3cli.engine.gan.pictures import generate_images

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


class PhotoJudge:
    """The Fréchet distance of generators, against fixed pictures of the folder and fixed noise."""

    def __init__(self, folder: ImageFolder, noise_dim: int, seed: int, real_samples: int,
                 device: torch.device | str = "cpu") -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.noise_dim, self.seed, self.device = noise_dim, seed, torch.device(device)
        self.n_real = min(real_samples, len(folder))
        order = torch.randperm(len(folder), generator=seeded_generator(seed + 1))[:self.n_real].tolist()
        self.metric = FrechetInceptionDistance(feature=LiteFeatures(self.device), normalize=True,
                                               reset_real_features=False).to(self.device)
        for start in range(0, self.n_real, CHUNK):
            real01 = torch.stack([folder[i] for i in order[start:start + CHUNK]]).add(1).div(2)
            self.metric.update(real01.to(self.device), real=True)

    @torch.no_grad()
    def __call__(self, G: nn.Module, samples: int) -> dict[str, Any]:
        """{"frechet_distance"} of `samples` images of G (the first `samples` of one fixed noise sequence)."""
        if samples < 2:
            raise A3Error("the Fréchet distance needs at least 2 generated images")
        self.metric.reset()  # keeps the real features
        for chunk in judge_noise(samples, self.noise_dim, self.seed).split(CHUNK):
            self.metric.update(generate_images(G, chunk).to(self.device), real=False)
        distance = float(self.metric.compute())
        return {"frechet_distance": round(distance, 3) if math.isfinite(distance) else distance}
