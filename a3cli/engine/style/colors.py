"""Colour in style transfer: transfer the luminance only and keep the content's colours.

Gatys et al., "Preserving colour in neural artistic style transfer" (2016).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch import Tensor

from a3cli.engine.images import to_pil, to_tensor


def luminance_only(style: Image.Image, content: Image.Image) -> Image.Image:
    """The style's luminance (as grey RGB), its mean and spread matched to the content's.

    Gatys et al., "Preserving colour in neural artistic style transfer" (2016): the
    style is then transferred in luminance only and the content's colours are put back.
    """
    y_style = np.asarray(style.convert("YCbCr"), dtype=np.float64)[..., 0]
    y_content = np.asarray(content.convert("YCbCr"), dtype=np.float64)[..., 0]
    matched = (y_style - y_style.mean()) / (y_style.std() + 1e-8) * y_content.std() + y_content.mean()
    grey = Image.fromarray(np.clip(np.round(matched), 0, 255).astype(np.uint8), mode="L")
    return grey.convert("RGB")


def keep_colors(image: Tensor, content: Image.Image) -> Tensor:
    """The luminance (Y of YCbCr, Pillow's ITU-R 601 conversion) of `image`, the colours (Cb, Cr) of `content`."""
    picture = to_pil(image)
    y, _, _ = picture.convert("YCbCr").split()
    _, cb, cr = content.resize(picture.size, Image.Resampling.BICUBIC).convert("YCbCr").split()
    return to_tensor(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))
