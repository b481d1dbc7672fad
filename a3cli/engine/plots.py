"""Figures drawn with matplotlib (Agg, no window) and saved as PNG, atomically."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from PIL import Image

from a3cli.engine.files import atomic_write


def pyplot():
    """matplotlib's pyplot on the Agg backend (no window), imported on first use: it is slow to import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"))
    finally:
        pyplot().close(fig)


def predictions_figure(images: Sequence[Image.Image], titles: Sequence[str],
                       predictions: Sequence[Sequence[tuple[int, str, float]]], path: str | Path) -> Path:
    """One row per image: the photo beside a bar chart of its top-k classes."""
    plt = pyplot()

    rows = len(images)
    fig, axes = plt.subplots(rows, 2, figsize=(9, 3.2 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.4]})
    for (ax_img, ax_bar), image, title, top in zip(axes, images, titles, predictions):
        ax_img.imshow(image)
        ax_img.set_title(title, fontsize=9)
        ax_img.axis("off")
        names = [name for _, name, _ in top][::-1]
        probs = [p for _, _, p in top][::-1]
        ax_bar.barh(names, probs, color="#4c72b0")
        ax_bar.set_xlim(0, 1)
        ax_bar.set_xlabel("probability")
        for y, p in enumerate(probs):
            ax_bar.text(min(p + 0.02, 0.85), y, f"{p:.2f}", va="center", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def loss_curves_figure(curves: dict[str, Sequence[float]], path: str | Path, xlabel: str = "iteration",
                       title: str = "") -> Path:
    """Training curves, one line per named series (raw, with a moving average when long)."""
    plt = pyplot()
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        values = np.asarray(values, dtype=float)
        line, = ax.plot(np.arange(1, len(values) + 1), values, alpha=0.35 if len(values) > 50 else 1.0,
                        label=None if len(values) > 50 else name)
        if len(values) > 50:
            width = max(len(values) // 50, 2)
            smooth = np.convolve(values, np.ones(width) / width, mode="valid")
            ax.plot(np.arange(width, len(values) + 1), smooth, color=line.get_color(), label=f"{name} (mean of {width})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def captions_figure(images: Sequence[Image.Image], captions: Sequence[str], path: str | Path,
                    truths: Sequence[str] | None = None, columns: int = 3) -> Path:
    """Images in a grid, each titled with its generated caption (and the true one when given)."""
    import textwrap

    plt = pyplot()

    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 4.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, image, caption) in enumerate(zip(axes.flat, images, captions)):
        ax.imshow(image)
        title = textwrap.fill(caption, 34)
        if truths is not None:
            title += "\n" + textwrap.fill(f"(true: {truths[k]})", 34)
        ax.set_title(title, fontsize=8.5)
    fig.tight_layout()
    return save_figure(fig, path)
