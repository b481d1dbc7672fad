"""Fooling images: a barely changed photo that the classifier calls something else.

The assignment's method: gradient ascent on the target class score s_t with the
normalised step x ← x + lr·g/‖g‖₂ (g = ∂s_t/∂x, in the network's normalised input
space) until the network predicts the target. A fooling image is only useful as a
file, and rounding to 8 bits can undo a change this small, so success is judged
on the image exactly as it is saved (clamped to the valid range and rounded to
0..255); while the rounded image does not fool the network, the steps go on.

With a budget `epsilon` (in 0..255 pixel units) the steps are projected gradient
ascent (PGD, Madry et al. 2018) on the same score instead: x ← Π(x + lr·sign(g)),
the step lr in pixel units and Π the projection onto the pixels within ±epsilon of
the photo (and the valid range). With whole-number steps and budget the image stays
on the 8-bit grid, so what fools the network is exactly what is saved, and no pixel
of the file moves by more than epsilon. (PGD's usual targeted loss, the target's
log-probability, fooled fewer of the bundled photos within 2/255 at --confidence 0.9:
21 of 24 pairs against 23 of 24 for the score.)

Without a target (untargeted, torchattacks' default), the same steps ascend the cross-entropy loss of
the original class, −log p_original, until the saved image's top-1 class is any other class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from a3cli.engine.backbones.imagenet_names import resolve_class
from a3cli.engine.backbones.registry import Backbone
from a3cli.engine.images import quantize
from a3cli.engine.progress import Progress, report
from a3cli.engine.visualize.fooling_config import FoolConfig


@dataclass
class FoolResult:
    original: torch.Tensor  # (3, H, W) in [0, 1], the 8-bit input as the network saw it
    fooled: torch.Tensor  # (3, H, W) in [0, 1], multiples of 1/255: exactly what is saved
    success: bool
    iterations: int  # gradient steps taken
    target: int | None  # None: untargeted
    original_class: int
    original_prob: float  # of original_class, on the original
    final_class: int  # on the saved (8-bit) fooling image
    final_prob: float
    target_prob: float  # of the target (untargeted: of the original class), on the saved fooling image
    l2: float  # ‖fooled − original‖₂ in 0..255 pixel units
    linf: float  # max |fooled − original| in 0..255 pixel units
    epsilon: float | None = None  # the budget on linf, if any

    def numbers(self, classes: list[str]) -> dict:
        """The JSON-ready summary; untargeted, `new_class` is the saved image's class if it fooled the model."""
        if self.target is None:
            new = {"index": self.final_class, "class": classes[self.final_class], "probability": self.final_prob}
            head: dict = {"untargeted": True, "new_class": new if self.success else None, "target": None}
            head["original_probability_after"] = self.target_prob
        else:
            head = {"target": {"index": self.target, "class": classes[self.target], "probability": self.target_prob}}
        return {
            "success": self.success,
            "iterations": self.iterations,
            **head,
            "original": {
                "index": self.original_class,
                "class": classes[self.original_class],
                "probability": self.original_prob,
            },
            "final": {"index": self.final_class, "class": classes[self.final_class], "probability": self.final_prob},
            "l2": self.l2,
            "linf": self.linf,
            "epsilon": self.epsilon,
        }


def as_saved(backbone: Backbone, x: torch.Tensor) -> torch.Tensor:
    """The normalised image as an 8-bit file stores it: clamp to [0, 1], round to 1/255 steps."""
    return backbone.normalize(quantize(backbone.deprocess(x)))


def bounds(backbone: Backbone, x0: torch.Tensor, epsilon: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest and highest value each pixel may take (normalised): the valid range, within ±epsilon of x0.

    The budget is rounded down to whole 8-bit steps, so that the saved file keeps to it too.
    """
    lo, hi = backbone.pixel_range()
    if epsilon is None:
        return lo, hi
    pixels, budget = backbone.deprocess(x0), math.floor(epsilon) / 255
    return backbone.normalize((pixels - budget).clamp(min=0)), backbone.normalize((pixels + budget).clamp(max=1))


def assignment_step(backbone: Backbone, grad: torch.Tensor, lr: float) -> torch.Tensor:
    """The assignment's step lr·g/‖g‖₂, in the normalised space."""
    return lr * grad / grad.norm().clamp(min=1e-12)


def pgd_step(backbone: Backbone, grad: torch.Tensor, lr: float) -> torch.Tensor:
    """The L∞ steepest-ascent step: lr pixel units (of 255) in the direction sign(g), normalised."""
    std = torch.tensor(backbone.std, device=grad.device, dtype=grad.dtype).view(1, 3, 1, 1)
    return lr / 255 / std * grad.sign()


class FoolingImage:
    """One fooling image being made: the picture so far is `current_image()` at any time, so a caller that
    catches Ctrl-C can keep it."""

    def __init__(self, backbone: Backbone, image: Image.Image | torch.Tensor, config: FoolConfig) -> None:
        self.backbone, self.config = backbone, config
        self.target = None if config.target is None else resolve_class(config.target, backbone.classes)
        x0 = backbone.preprocess(image) if isinstance(image, Image.Image) else image.to(backbone.device)
        self.x0 = as_saved(backbone, x0)  # start from exactly what an 8-bit file holds
        self.x = self.x0.clone()
        self.iterations = 0  # gradient steps taken so far

    def current_image(self) -> torch.Tensor:
        """The image so far as its 8-bit file holds it: (3, H, W) in [0, 1]."""
        return quantize(self.backbone.deprocess(as_saved(self.backbone, self.x.detach()))[0]).cpu()

    def probabilities(self) -> torch.Tensor:
        """The class probabilities (classes,) of the image so far, as its 8-bit file holds it."""
        with torch.no_grad():
            return self.backbone.logits(as_saved(self.backbone, self.x.detach())).softmax(dim=1)[0]

    def fools(self) -> bool:
        """Whether the image so far already meets the goal: before any step, there is then nothing to do."""
        with torch.no_grad():
            original = int(self.backbone.logits(self.x0).argmax())
        return _goal(self.config, self.target, original)(self.probabilities())

    def run(self, progress: Progress | None = None) -> FoolResult:
        backbone, config, x0 = self.backbone, self.config, self.x0
        lo, hi = bounds(backbone, x0, config.epsilon)
        step = assignment_step if config.epsilon is None else pgd_step
        with torch.no_grad():
            first = backbone.logits(x0).softmax(dim=1)[0]
        original = int(first.argmax())
        target = self.target
        watched = original if target is None else target  # the class whose probability is reported
        label = "target p" if target is not None else "original p"
        goal = _goal(config, target, original)
        x = self.x
        iterations, success = 0, False
        while True:
            x.requires_grad_(True)
            scores = backbone.logits(x)
            # The assignment's test on the running image first; the saved image is checked only then.
            if goal(scores.detach().softmax(dim=1)[0]):
                with torch.no_grad():
                    if goal(backbone.logits(as_saved(backbone, x)).softmax(dim=1)[0]):
                        success = True
                        break
            if iterations == config.max_iter:
                break
            (grad,) = torch.autograd.grad(_objective(scores, target, original), x)
            with torch.no_grad():
                x = self.x = torch.maximum(torch.minimum(x + step(backbone, grad, config.lr), hi), lo)
            iterations = self.iterations = iterations + 1
            report(progress, iterations, {label: float(scores.detach().softmax(dim=1)[0, watched])})
        return self.result(x, first, iterations, success, watched)

    def so_far(self) -> FoolResult:
        """A run stopped early: the image so far, judged as the end of a run is (not a success)."""
        with torch.no_grad():
            first = self.backbone.logits(self.x0).softmax(dim=1)[0]
        watched = int(first.argmax()) if self.target is None else self.target
        return self.result(self.x, first, self.iterations, False, watched)

    def result(self, x: torch.Tensor, first: torch.Tensor, iterations: int, success: bool, watched: int) -> FoolResult:
        backbone, config, x0 = self.backbone, self.config, self.x0
        saved = as_saved(backbone, x.detach())  # within the bounds too: they lie on the 8-bit grid
        with torch.no_grad():
            probs = backbone.logits(saved).softmax(dim=1)[0]
        original = quantize(backbone.deprocess(x0)[0]).cpu()
        fooled = quantize(backbone.deprocess(saved)[0]).cpu()
        diff = ((fooled - original) * 255).round()  # whole 8-bit steps
        return FoolResult(
            original=original,
            fooled=fooled,
            success=success,
            iterations=iterations,
            target=self.target,
            original_class=int(first.argmax()),
            original_prob=float(first.max()),
            final_class=int(probs.argmax()),
            final_prob=float(probs.max()),
            target_prob=float(probs[watched]),
            l2=float(diff.norm()),
            linf=float(diff.abs().max()),
            epsilon=config.epsilon,
        )


def fool(
    backbone: Backbone, image: Image.Image | torch.Tensor, config: FoolConfig, progress: Progress | None = None
) -> FoolResult:
    """Make a fooling image of `image` (PIL, or a normalised (1, 3, H, W) batch) for `config.target`."""
    return FoolingImage(backbone, image, config).run(progress)


def _goal(config: FoolConfig, target: int | None, original: int):
    """Whether probabilities (classes,) fool the network: the target on top (with --confidence), or,
    untargeted, any class but the original."""
    if target is None:
        return lambda probs: int(probs.argmax()) != original

    def goal(probs: torch.Tensor) -> bool:
        hit = int(probs.argmax()) == target
        return hit and (config.confidence is None or float(probs[target]) >= config.confidence)

    return goal


def _objective(scores: torch.Tensor, target: int | None, original: int) -> torch.Tensor:
    """What the steps ascend: the target's score, or untargeted the original class's cross-entropy loss."""
    if target is not None:
        return scores[0, target]
    return F.cross_entropy(scores, torch.tensor([original], device=scores.device))
