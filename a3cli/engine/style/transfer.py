"""Neural style transfer (Gatys et al.), as in part 4 of the assignment, as a reusable engine.

The picture being made is the only thing optimised. Its loss is the assignment's
content_loss + style_loss + tv_loss on the feature maps of a frozen backbone. What
makes this fast is what is computed once: the content features and the (blended)
Gram matrices of the style images are taken before the loop, and each step forwards
the picture only up to the deepest layer whose weight is not zero.

The picture lives in the backbone's normalised input space (as in the assignment, so
its TV weights mean the same thing); images come in and go out in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from a3cli.engine.backbones.registry import Backbone
from a3cli.engine.catalogue import IMAGENET_MEAN, IMAGENET_STD
from a3cli.engine.device import seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.images import load_image, resize_shorter_side, shorter_side_size, to_tensor
from a3cli.engine.layers.losses import content_loss, gram_matrix, style_loss, tv_loss
from a3cli.engine.progress import Progress, report
from a3cli.engine.style.colors import keep_colors, luminance_only
from a3cli.engine.style.config import StyleConfig

LINE_SEARCH = "strong_wolfe"
# The settings a run cannot do without (style_size, decay_lr and style_blend_weights may stay None).
REQUIRED = (
    "content_layer",
    "content_weight",
    "style_layers",
    "style_weights",
    "tv_weight",
    "image_size",
    "init",
    "optimizer",
    "iterations",
    "lr",
    "decay_at",
)
Snapshot = Callable[[int, Tensor], None]  # (step, image (3, H, W) in [0, 1])


def check_fit(config: StyleConfig, backbone: Backbone, n_styles: int) -> None:
    """What the config cannot check alone: its layers are the backbone's, one blend weight per style image."""
    missing = [name for name in REQUIRED if getattr(config, name) is None]
    if missing:
        raise A3Error(f"no {', '.join(missing)} in the style settings: fill them in with resolve_settings")
    names = backbone.layer_names
    for layer in [config.content_layer, *config.style_layers]:
        if layer not in names:
            raise A3Error(f"{backbone.name} has no layer {layer!r}; its layers are: {', '.join(names)}")
    if config.style_blend_weights is not None and len(config.style_blend_weights) != n_styles:
        raise A3Error(f"{n_styles} style image(s) but {len(config.style_blend_weights)} blend weights")


@dataclass
class StyleResult:
    image: Tensor  # (3, H, W) in [0, 1], on the CPU
    start: dict[str, float]  # the loss terms of the starting picture ...
    end: dict[str, float]  # ... and of the result
    history: list[dict[str, float]] = field(default_factory=list)  # every evaluation, in order


# ---------------------------------------------------------------------------------------------
# The optimisation


def blend(weights: Optional[Sequence[float]], n: int) -> list[float]:
    weights = list(weights) if weights is not None else [1.0] * n
    total = sum(weights)
    return [w / total for w in weights]


class StyleTransfer:
    """One style-transfer run: targets computed once (per scale), then the optimisation.

    `current_image()` is valid at any time, so a caller that catches Ctrl-C can keep
    what was made so far.
    """

    def __init__(
        self,
        backbone: Backbone,
        content: Image.Image,
        styles: Sequence[Image.Image],
        config: StyleConfig,
        seed: int = 0,
    ):
        if not styles:
            raise A3Error("give at least one style image")
        check_fit(config, backbone, len(styles))
        self.backbone, self.config = backbone, config
        self.history: list[dict[str, float]] = []  # every evaluation's loss terms so far
        self.content = content.convert("RGB")
        self.styles = [s.convert("RGB") for s in styles]
        if config.original_colors:
            self.styles = [luminance_only(s, self.content) for s in self.styles]
        shorter_side_size(self.content, config.image_size)  # refuse a huge picture now, not after the model
        for style in self.styles:
            shorter_side_size(style, config.style_size or config.image_size)
        self.blend = blend(config.style_blend_weights, len(styles))
        self.generator = seeded_generator(seed)  # for a random start
        # Only layers whose weight is not zero are computed (feature inversion needs no style layers, ...).
        self.style_layers = [(layer, w) for layer, w in zip(config.style_layers, config.style_weights) if w > 0]
        self.use_content = config.content_weight > 0
        self.low, self.high = backbone.pixel_range()
        self.image: Optional[Tensor] = None  # the picture being optimised, normalised (1, 3, H, W)

    # -- sizes and targets --

    def scales(self) -> list[int]:
        """Image sizes to work at: just image_size, or halving down to min_scale_size with --multiscale."""
        sizes = [self.config.image_size]
        if self.config.multiscale:
            while sizes[0] // 2 >= self.config.min_scale_size:
                sizes.insert(0, sizes[0] // 2)
        return sizes

    def prepare(self, size: int) -> tuple[Tensor, Optional[Tensor], list[Tensor]]:
        """Content at `size` (normalised), its content-layer features, the blended style Grams."""
        backbone, config = self.backbone, self.config
        content = backbone.preprocess(self.content, size=size, crop=False)
        style_size = round((config.style_size or config.image_size) * size / config.image_size)
        with torch.no_grad():
            target = backbone.features(content, [config.content_layer])[0] if self.use_content else None
            layers = [layer for layer, _ in self.style_layers]
            grams: list = [0.0] * len(layers)
            if layers:
                for style, weight in zip(self.styles, self.blend):
                    feats = backbone.features(backbone.preprocess(style, size=style_size, crop=False), layers)
                    grams = [g + weight * gram_matrix(f) for g, f in zip(grams, feats)]
        return content, target, grams

    def initial_image(self, content: Tensor) -> Tensor:
        init = self.config.init
        if init == "content":
            return content.clone()
        if init == "random":
            # The assignment's start, uniform in [0, 1] in SqueezeNet's normalised space, i.e. in pixels
            # mean + std·U(0, 1) with ImageNet's mean and std: the same faint noise whatever the backbone.
            noise = torch.rand(content.shape, generator=self.generator, dtype=content.dtype).to(content.device)
            mean = torch.tensor(IMAGENET_MEAN, device=content.device, dtype=content.dtype).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=content.device, dtype=content.dtype).view(1, 3, 1, 1)
            return self.backbone.normalize(mean + std * noise)
        picture = load_image(Path(init)).resize((content.shape[3], content.shape[2]), Image.Resampling.BICUBIC)
        return self.backbone.normalize(to_tensor(picture)[None].to(content.device))

    # -- the loss --

    def losses(self, image: Tensor, target: Optional[Tensor], grams: list[Tensor]) -> dict[str, Tensor]:
        config = self.config
        layers = ([config.content_layer] if self.use_content else []) + [layer for layer, _ in self.style_layers]
        feats = self.backbone.features(image, layers) if layers else []
        zero = image.new_zeros(())
        content = zero
        if self.use_content:
            assert target is not None  # `prepare` gives the content features whenever the content term counts
            content = content_loss(config.content_weight, feats[0], target)
        offset = 1 if self.use_content else 0
        style = zero
        if self.style_layers:
            style = style_loss(feats, list(range(offset, len(feats))), grams, [w for _, w in self.style_layers])
        tv = tv_loss(image, config.tv_weight)
        return {"content": content, "style": style, "tv": tv}

    # -- running --

    def current_image(self) -> Tensor:
        """The picture so far, (3, H, W) in [0, 1] on the CPU, with the content's colours if asked."""
        if self.image is None:
            return to_tensor(resize_shorter_side(self.content, self.scales()[0]))
        image = self.backbone.deprocess(self.image.detach())[0].clamp(0, 1).cpu()
        return keep_colors(image, self.content) if self.config.original_colors else image

    def so_far(self) -> StyleResult:
        """A run stopped early: the picture so far, and the loss terms of its first and its last evaluation."""
        history = self.history
        first, last = (history[0], history[-1]) if history else ({}, {})
        return StyleResult(image=self.current_image(), start=first, end=last, history=list(history))

    def run(
        self, progress: Optional[Progress] = None, snapshot: Optional[Snapshot] = None, save_every: int = 0
    ) -> StyleResult:
        config = self.config
        sizes = self.scales()
        # Iterations split over the scales; the finest one takes what does not divide evenly.
        counts = [config.iterations // len(sizes)] * len(sizes)
        counts[-1] += config.iterations - sum(counts)
        history = self.history = []
        done = 0
        for size, count in zip(sizes, counts):
            content, target, grams = self.prepare(size)
            if self.image is None:
                start = self.initial_image(content)
            else:  # coarse to fine: the previous scale's result, enlarged
                start = F.interpolate(self.image.detach(), size=content.shape[2:], mode="bicubic", align_corners=False)
            image = self.image = start.contiguous().requires_grad_(True)
            if count == 0:
                continue
            step = {"n": done}

            def evaluate() -> Tensor:
                terms = self.losses(image, target, grams)
                total = terms["content"] + terms["style"] + terms["tv"]
                step["n"] += 1
                values = {name: float(t.detach()) for name, t in terms.items()}
                values["total"] = float(total.detach())
                history.append(values)
                # A last line search may run past the budget: the bar stops at this scale's share.
                within = step["n"] <= done + count
                report(
                    progress,
                    min(step["n"], done + count),
                    {"content": values["content"], "style": values["style"], "tv": values["tv"]},
                )
                if snapshot is not None and save_every > 0 and within and step["n"] % save_every == 0:
                    snapshot(step["n"], self.current_image())
                return total

            if config.optimizer == "adam":
                self.run_adam(evaluate, count, done)
            else:
                self.run_lbfgs(evaluate, count)
            done += count
        if not history:
            raise A3Error("nothing to optimise: --iterations is too small for --multiscale")
        with torch.no_grad():  # the last evaluation may be a line-search trial: measure the result itself
            terms = self.losses(image, target, grams)
        end = {name: float(t) for name, t in terms.items()}
        end["total"] = sum(end.values())
        return StyleResult(image=self.current_image(), start=history[0], end=end, history=history)

    def run_adam(self, evaluate: Callable[[], Tensor], count: int, done: int) -> None:
        """Adam with the assignment's optional schedule; the picture is kept inside the valid pixel range."""
        config = self.config
        assert self.image is not None  # `run` sets the picture before it optimises
        optimizer = torch.optim.Adam([self.image], lr=config.lr)
        decay_step = round(config.decay_at * config.iterations)
        for i in range(count):
            if config.decay_lr is not None and done + i >= decay_step:
                for group in optimizer.param_groups:
                    group["lr"] = config.decay_lr
            optimizer.zero_grad(set_to_none=True)
            evaluate().backward()
            optimizer.step()
            with torch.no_grad():
                self.image.copy_(torch.max(torch.min(self.image, self.high), self.low))

    def run_lbfgs(self, evaluate: Callable[[], Tensor], count: int) -> None:
        """torch.optim.LBFGS with a strong-Wolfe line search, so the loss never goes up.

        `count` bounds the loss evaluations (each a forward and backward pass), which is
        what costs time; after the first few iterations a line search needs one evaluation.
        """
        assert self.image is not None  # `run` sets the picture before it optimises
        optimizer = torch.optim.LBFGS(
            [self.image],
            lr=self.config.lr,
            max_iter=count,
            max_eval=count,
            tolerance_grad=-1,
            tolerance_change=-1,
            history_size=50,
            line_search_fn=LINE_SEARCH,
        )

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss = evaluate()
            loss.backward()
            return loss

        optimizer.step(closure)


def stylize(
    backbone: Backbone,
    content: Image.Image,
    styles: Sequence[Image.Image],
    config: StyleConfig,
    progress: Optional[Progress] = None,
    snapshot: Optional[Snapshot] = None,
    save_every: int = 0,
    seed: int = 0,
) -> StyleResult:
    """Make one stylised picture: the function form of StyleTransfer(...).run(...)."""
    return StyleTransfer(backbone, content, styles, config, seed).run(progress, snapshot, save_every)
