"""What a3 shows people: matplotlib figures (Agg, no window) saved as PNG atomically.

Figures: predictions, loss curves, captioned images, where an attention captioner looked for each word,
a GAN run's Fréchet distance, the deletion and insertion curves of saliency maps, and the panels of
saliency maps and fooling images (titled with the image, the model and the classes, with a colour scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from a3cli.engine.files import atomic_write
from a3cli.engine.images import overlay, to_tensor


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


def predictions_figure(
    images: Sequence[Image.Image],
    titles: Sequence[str],
    predictions: Sequence[Sequence[tuple[int, str, float]]],
    path: str | Path,
) -> Path:
    """One row per image: the photo beside a bar chart of its top-k classes."""
    plt = pyplot()

    rows = len(images)
    fig, axes = plt.subplots(rows, 2, figsize=(9, 3.2 * rows), squeeze=False, gridspec_kw={"width_ratios": [1, 1.4]})
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


def loss_curves_figure(
    curves: dict[str, Sequence[float]],
    path: str | Path,
    xlabel: str = "iteration",
    title: str = "",
    measured: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> Path:
    """Training curves, one line per named series (raw, with a moving average when long), and losses measured
    now and then (`measured`: name -> iterations, values), as points."""
    plt = pyplot()
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        series = np.asarray(values, dtype=float)
        (line,) = ax.plot(
            np.arange(1, len(series) + 1),
            series,
            alpha=0.35 if len(series) > 50 else 1.0,
            label=None if len(series) > 50 else name,
        )
        if len(series) > 50:
            width = max(len(series) // 50, 2)
            smooth = np.convolve(series, np.ones(width) / width, mode="valid")
            ax.plot(
                np.arange(width, len(series) + 1), smooth, color=line.get_color(), label=f"{name} (mean of {width})"
            )
    for name, (at, values) in (measured or {}).items():
        if len(values):
            ax.plot(at, values, "o-", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def captions_figure(
    images: Sequence[Image.Image],
    captions: Sequence[str],
    path: str | Path,
    truths: Sequence[str] | None = None,
    columns: int = 3,
    notes: Sequence[str | None] | None = None,
) -> Path:
    """Images in a grid, each titled with its generated caption.

    Given the truths, a right caption is drawn in green and a wrong one in red with the truth under the
    picture, and the title counts the right ones: a mistake shows at a glance. A picture's note (how far it
    lies from the captioner's data) goes under it, in red.
    """
    plt = pyplot()

    columns = max(1, min(columns, len(images)))  # no empty columns beside two pictures
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 4.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, image, caption) in enumerate(zip(axes.flat, images, captions)):
        ax.imshow(image)
        if truths is None:
            ax.set_title(_wrapped(caption), fontsize=8.5)
        else:
            _mark_caption(ax, caption, truths[k])
        if notes is not None and (note := notes[k]) is not None:
            ax.text(
                0.5, -0.03, _wrapped(note), transform=ax.transAxes, ha="center", va="top", fontsize=8.5, color=WRONG
            )
    if truths is not None:
        right = sum(is_right(caption, truth) for caption, truth in zip(captions, truths))
        fig.suptitle(f"{right} of {len(captions)} captions exactly right: green right, red wrong (truth below)")
    fig.tight_layout()
    return save_figure(fig, path)


RIGHT, WRONG = "green", "red"  # the colours of right and wrong captions


def is_right(caption: str, truth: str) -> bool:
    """Exactly the truth, word for word (what `a3 caption-sample` counts as exact)."""
    return caption.split() == truth.split()


def _wrapped(text: str) -> str:
    import textwrap

    return textwrap.fill(text, 34)


def _mark_caption(ax, caption: str, truth: str) -> None:
    """The caption above the picture in green if right; in red if wrong, with the truth under the picture."""
    right = is_right(caption, truth)
    ax.set_title(_wrapped(caption), fontsize=8.5, color=RIGHT if right else WRONG)
    if not right:
        ax.text(0.5, -0.03, _wrapped(f"true: {truth}"), transform=ax.transAxes, ha="center", va="top", fontsize=8.5)


def class_label(name: str, probability: float) -> str:
    """'tabby (p 0.62)': a class and its probability as every figure and message of a3 names them."""
    return f"{name} (p {probability:.2f})"


def _pixels(image: torch.Tensor):
    """(3, H, W) in [0, 1] -> (H, W, 3) numpy, for imshow."""
    return image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()


PANEL_SIZE = (9.6, 3.8)  # inches at 100 dpi: a row of three 224-px pictures a little larger than life


def _colour_bar_axes(ax):
    """A slim strip right of `ax` for its colour bar, which leaves the picture as large as its neighbours."""
    return ax.inset_axes((1.03, 0.0, 0.05, 1.0))


def saliency_figure(
    image: torch.Tensor, values: torch.Tensor, title: str, scale: str, path: str | Path, clip: float = 0.995
) -> Path:
    """The image, its heat map with a colour scale (`scale` says what it measures) and the overlay, in one row.

    For display only, the map is clipped at its `clip` quantile (the colour bar's arrow): a few extreme
    gradients would otherwise leave the rest of the map black.
    """
    plt = pyplot()
    v = values.detach().float().cpu()
    clipped = 0 < clip < 1
    if clipped:
        v = v.clamp(max=float(torch.quantile(v.flatten(), clip)))
    fig, axes = plt.subplots(1, 3, figsize=PANEL_SIZE, layout="constrained")
    axes[0].imshow(_pixels(image))
    heat = axes[1].imshow(v.numpy(), cmap="inferno")
    axes[2].imshow(_pixels(overlay(image, v, alpha=0.6)))
    for ax, name in zip(axes, ("input", "map", "overlay")):
        ax.set_title(name)
        ax.axis("off")
    fig.colorbar(heat, cax=_colour_bar_axes(axes[1]), label=scale, extend="max" if clipped else "neither")
    fig.suptitle(title)
    return save_figure(fig, path)


def difference_image(original: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
    """The change, magnified so the largest one reaches full contrast: grey is no change."""
    diff = changed - original
    scale = 0.5 / max(float(diff.abs().max()), 1e-12)
    return (0.5 + scale * diff).clamp(0, 1)


def fool_figure(
    original: torch.Tensor, fooled: torch.Tensor, labels: tuple[str, str], title: str, path: str | Path
) -> Path:
    """Original | fooling image | magnified difference with its colour scale in 0-255 levels, in one row;
    `labels` name each image's class (with `class_label`)."""
    plt = pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    largest = max(float((fooled - original).abs().max()) * 255, 1.0)
    fig, axes = plt.subplots(1, 3, figsize=PANEL_SIZE, layout="constrained")
    panels = (original, fooled, difference_image(original, fooled))
    names = (f"original\n{labels[0]}", f"fooling image\n{labels[1]}", "difference, magnified\n(grey: none)")
    for ax, panel, name in zip(axes, panels, names):
        ax.imshow(_pixels(panel))
        ax.set_title(name, fontsize=9.5)
        ax.axis("off")
    levels = ScalarMappable(Normalize(-largest, largest), cmap="gray")
    fig.colorbar(levels, cax=_colour_bar_axes(axes[2]), label="change per colour channel (0-255 levels)")
    fig.suptitle(title)
    return save_figure(fig, path)


# What a Fréchet history row may measure, and how the figure names it.
FRECHET_SOURCES = {"generator": "generator", "ema": "averaged (EMA)", "model": "model"}


def frechet_figure(rows: list[dict[str, Any]], path: Path, title: str, samples: tuple[int, int]) -> Path:
    """The tracked Fréchet distance (log scale) of each model measured (a GAN's live and averaged generator; a
    diffusion run's averaged model), their precision and recall, and their KL to uniform (digits are counted on
    MNIST only).

    `samples`: (generated images per tracked point, generated images of the final report). The final
    report measures again on more images, so its numbers differ from the points: the figure says both counts.
    """
    plt = pyplot()
    generators = [(key, label) for key, label in FRECHET_SOURCES.items() if key in rows[0]]
    first = rows[0][generators[0][0]]
    quality, coverage = "recall" in first, "kl_to_uniform" in first
    ratios = (2.0,) + (1.0,) * (quality + coverage)
    fig, axes = plt.subplots(
        len(ratios), 1, figsize=(7, 3.7 + 1.8 * (len(ratios) - 1)), sharex=True, squeeze=False, height_ratios=ratios
    )
    top, *rest = axes[:, 0]
    iterations = [row["iteration"] for row in rows]
    for (key, label), color in zip(generators, ("C0", "C1")):
        top.plot(iterations, [row[key]["frechet_distance"] for row in rows], "o-", color=color, label=label)
        panels = iter(rest)
        if quality:
            ax = next(panels)
            ax.plot(iterations, [row[key]["precision"] for row in rows], "o-", color=color, label=f"{label}: precision")
            ax.plot(iterations, [row[key]["recall"] for row in rows], "s--", color=color, label=f"{label}: recall")
        if coverage:
            next(panels).plot(iterations, [row[key]["kl_to_uniform"] for row in rows], "o-", color=color, label=label)
    best = min((row[key]["frechet_distance"], row["iteration"]) for row in rows for key, _ in generators if key in row)
    top.plot([best[1]], [best[0]], "*", color="black", markersize=14, label=f"best tracked: {best[0]:.1f} (best.pt)")
    log_axis(top)
    top.set_ylabel("Fréchet distance")
    top.set_title(f"{title}\n{sample_counts(*samples)}", fontsize=10)
    top.legend()
    panels = iter(rest)
    if quality:
        ax = next(panels)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("precision, recall\n(k = 3)")
        ax.legend(fontsize=7, ncol=2)
    if coverage:
        ax = next(panels)
        ax.axhline(math.log(10), color="grey", linestyle="--", linewidth=1)
        ax.set_ylim(0, 2.5)
        ax.set_ylabel("KL to uniform\n(ln 10: one digit)")
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3, which="both")
    axes[-1, 0].set_xlabel("iteration")
    fig.tight_layout()
    return save_figure(fig, path)


def log_axis(ax) -> None:
    """A log scale with ticks at 1, 2 and 5 per decade, written as plain numbers."""
    from matplotlib.ticker import LogLocator, ScalarFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter() if ax.get_ylim()[1] < 3 * ax.get_ylim()[0] else "")


def sample_counts(tracked: int, final: int) -> str:
    """Which sample counts a Fréchet figure's points use, and the final report's when it differs."""
    if tracked == final:
        return f"each point and the final report: {tracked:,} generated images"
    return f"each point: {tracked:,} generated images; the final report measures {final:,}"


def attention_figure(
    picture: Image.Image, words: list[str], maps: torch.Tensor, path: str | Path, columns: int = 6
) -> Path:
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


def faithfulness_figure(
    fractions: torch.Tensor, deletion: torch.Tensor, insertion: torch.Tensor, labels: Sequence[str], path: str | Path
) -> Path:
    """Deletion and insertion curves side by side, one line per image, its area under the curve in the legend."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, curves, title in (
        (axes[0], deletion, "deletion (lower: better)"),
        (axes[1], insertion, "insertion (higher: better)"),
    ):
        for curve, label in zip(curves, labels):
            area = float(torch.trapezoid(curve, fractions))
            ax.plot(fractions.numpy(), curve.numpy(), label=f"{label}: AUC {area:.3f}")
        ax.set_title(title)
        ax.set_xlabel("fraction of pixels, most salient first")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("probability of the class")
    axes[0].set_ylim(0, 1.02)
    fig.tight_layout()
    return save_figure(fig, path)
