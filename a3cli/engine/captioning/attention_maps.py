"""Where an attention captioner looked for each word of a caption, drawn over the picture.

The picture of Show, Attend and Tell: the image, then one panel per word with the
step's weights over the feature grid laid over it as a heat map. The weights come
from reading the caption again with teacher forcing, so the caption may have been
found by any decoding (greedy, beam, drawn).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image

from a3cli.engine.captioning.model import CaptioningRNN
from a3cli.engine.captioning.vocab import encode
from a3cli.engine.images import overlay, to_tensor
from a3cli.engine.figures import pyplot, save_figure


def caption_attention(model: CaptioningRNN, features: torch.Tensor, caption: str) -> torch.Tensor:
    """The weights (words, grid, grid) over the picture's cells while each word of `caption` was chosen.

    `features` is the picture's row (D,) as picture_features made it to caption it (not extracted again).
    """
    words = caption.split()
    ids = encode(words, model.word_to_idx, len(words))[:-1]  # <START> and the words: no <END>, no padding
    weights = model.attention_weights(features[None], torch.tensor([ids], device=features.device))[0]
    grid = math.isqrt(model.grid_cells)
    return weights[: len(ids) - 1].reshape(-1, grid, grid).cpu()  # row t chose word t + 1


def attention_figure(picture: Image.Image, words: list[str], maps: torch.Tensor, path: str | Path,
                     columns: int = 6) -> Path:
    """The picture, then each word over its attention map (bilinear, min-max scaled per word)."""
    plt = pyplot()
    image = to_tensor(picture.convert("RGB"))
    panels = [(image, "")] + [(overlay(image, m, alpha=0.6), w) for w, m in zip(words, maps)]
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.45 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (panel, word) in zip(axes.flat, panels):
        ax.imshow(panel.permute(1, 2, 0).numpy())
        ax.set_title(word, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
