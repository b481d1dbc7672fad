"""Saliency maps: which pixels the class score is most sensitive to.

Three methods, all on the unnormalised class score s_y (the logit, as in the
assignment, so that other classes cannot raise it by losing score themselves):

- vanilla (Simonyan et al. 2014, the assignment's): |∂s_y/∂x|, maximum over the
  colour channels;
- SmoothGrad (Smilkov et al. 2017): the vanilla map averaged over copies of the
  image with Gaussian noise added, which removes much of its speckle;
- Integrated Gradients (Sundararajan et al. 2017): (x − x₀)·∫ ∂s_y/∂x along the
  straight path from a baseline x₀; its attributions add up to s_y(x) − s_y(x₀)
  ("completeness"). The map is the absolute attribution summed over channels. The
  integral is a quadrature: Gauss–Legendre nodes (captum's default), the same with
  their points crowded near the baseline (α = u²; the default), or the midpoint rule.
  How far the sum misses s_y(x) − s_y(x₀) (captum's "convergence delta") is reported,
  since a ReLU network's path integrand has kinks and spikes (from a black baseline,
  mostly within the first 6% of the path) and too few points can miss it badly.

All work on batches of images and are taken in the backbone's normalised input space. Grad-CAM and
guided Grad-CAM, which read a stage of the network rather than the pixels, are in gradcam.py; how
faithful any map is to the model (deletion and insertion) in faithfulness.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Optional, cast

import numpy as np
import torch
from PIL import Image

from a3cli.engine.backbones.registry import Backbone, Prediction
from a3cli.engine.catalogue import SALIENCY_DEFAULTS
from a3cli.engine.device import seeded_generator
from a3cli.engine.progress import Progress, report
from a3cli.engine.visualize.faithfulness import Curves, concatenated, deletion_insertion
from a3cli.engine.visualize.gradcam import gradcam_method, gradcam_stage, guided_gradcam_method
from a3cli.engine.visualize.gradients import MethodFunction, Numbers, Tick, input_gradients
from a3cli.engine.visualize.saliency_config import SaliencyConfig

D = SALIENCY_DEFAULTS


@dataclass
class SaliencyResult:
    images: torch.Tensor  # (N, 3, H, W) in [0, 1]: what the network saw (resized, centre-cropped)
    maps: torch.Tensor  # (N, H, W), non-negative
    targets: list[int]  # the class each map explains
    probabilities: list[float]  # the model's probability of that class, per image
    top: list[list[Prediction]]  # top-5 (index, name, probability) per image
    numbers: list[dict[str, float]]  # the method's numbers (and the curves' areas), per image
    config: SaliencyConfig  # the settings used, with Grad-CAM's stage named
    curves: Optional[Curves] = None  # deletion and insertion, when config.faithfulness


def vanilla_saliency(backbone: Backbone, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The assignment's map: |∂s_y/∂x|, maximum over channels -> (N, H, W)."""
    return input_gradients(backbone, x, targets).abs().amax(dim=1)


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield start, min(size, total - start)


def smoothgrad(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    samples: int = D["samples"],
    noise: float = D["noise"],
    batch_size: int = D["batch_size"],
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> torch.Tensor:
    """Vanilla maps averaged over `samples` noisy copies, noise std = `noise`·(max − min) of each image."""
    n = x.shape[0]
    sigma = noise * (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(n, 1, 1, 1, 1)
    total = torch.zeros(n, *x.shape[2:], device=x.device, dtype=x.dtype)
    per_pass = max(1, batch_size // n)
    for _, k in _chunks(samples, per_pass):
        eps = torch.randn((n, k, *x.shape[1:]), device=x.device, dtype=x.dtype, generator=generator)
        noisy = (x.unsqueeze(1) + sigma * eps).flatten(0, 1)
        maps = vanilla_saliency(backbone, noisy, targets.repeat_interleave(k))
        total += maps.view(n, k, *maps.shape[1:]).sum(dim=1)
        if tick:
            tick(k)
    return total / samples


def baseline_image(backbone: Backbone, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The Integrated Gradients start point, in the normalised space."""
    if kind == "blur":  # keeps the colours, removes the detail (Sturmfels et al. 2020)
        from torchvision.transforms.functional import gaussian_blur

        sigma = x.shape[-1] / 16
        size = 2 * int(3 * sigma) + 1
        return gaussian_blur(x, [size, size], [sigma, sigma])
    value = {"black": 0.0, "grey": 0.5, "white": 1.0}[kind]
    return backbone.normalize(torch.full_like(x, value))


def path_rule(rule: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(points α in (0, 1), weights summing to 1) of a `steps`-point quadrature of ∫₀¹ f(α) dα.

    Gauss–Legendre is exact for polynomials of degree 2·steps − 1 and puts more points
    near the ends of the path; the midpoint rule spaces them evenly. The squared rule
    substitutes α = u² (∫ f(α) dα = ∫ f(u²)·2u du) and takes Gauss–Legendre in u: exact
    for polynomials in α of degree steps − 1, with its points crowded near the baseline.
    """
    if rule in ("gauss-legendre", "gauss-legendre-squared"):
        nodes, weights = np.polynomial.legendre.leggauss(steps)  # on [−1, 1]
        u, w = torch.from_numpy((nodes + 1) / 2), torch.from_numpy(weights / 2)
        return (u, w) if rule == "gauss-legendre" else (u**2, w * 2 * u)
    if rule == "midpoint":
        alphas = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
        return alphas, torch.full_like(alphas, 1.0 / steps)
    raise ValueError(f"unknown rule {rule!r}")


def integrated_gradients(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    steps: int = D["steps"],
    baseline: str | torch.Tensor = D["baseline"],
    batch_size: int = D["batch_size"],
    tick: Tick = None,
    rule: str = D["rule"],
) -> torch.Tensor:
    """Attributions (x − x₀)·∫₀¹ ∂s_y/∂x (x₀ + α(x − x₀)) dα, the integral by `rule` with `steps` points.

    Returns (N, 3, H, W); summed over everything they approximate s_y(x) − s_y(x₀).
    """
    x0 = baseline_image(backbone, x, baseline) if isinstance(baseline, str) else baseline.expand_as(x)
    n = x.shape[0]
    alphas, weights = (t.to(x.device, x.dtype) for t in path_rule(rule, steps))
    total = torch.zeros_like(x)
    per_pass = max(1, batch_size // n)
    for start, k in _chunks(steps, per_pass):
        a = alphas[start : start + k].view(1, k, 1, 1, 1)
        path = (x0.unsqueeze(1) + a * (x - x0).unsqueeze(1)).flatten(0, 1)
        grads = input_gradients(backbone, path, targets.repeat_interleave(k)).view(n, k, *x.shape[1:])
        total += (grads * weights[start : start + k].view(1, k, 1, 1, 1)).sum(dim=1)
        if tick:
            tick(k)
    return (x - x0) * total


def completeness(
    backbone: Backbone, x: torch.Tensor, x0: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor
) -> Numbers:
    """How far the attributions miss adding up to s_y(x) − s_y(x₀): absolutely, and relative to that gap."""
    with torch.no_grad():
        scores = backbone.logits(torch.cat([x, x0.expand_as(x)])).gather(1, targets.repeat(2).view(-1, 1))[:, 0]
    gap = scores[: x.shape[0]] - scores[x.shape[0] :]
    total = attributions.flatten(1).sum(dim=1)
    error = (total - gap).abs()
    return {
        "attribution_sum": total,
        "score_gap": gap,
        "completeness_error": error,
        "relative_completeness_error": error / gap.abs().clamp(min=1e-12),
    }


# The methods as `a3 saliency --method` runs them, one signature each (gradients.py MethodFunction; their
# records are in the catalogue).


def vanilla_method(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    config: SaliencyConfig,
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> tuple[torch.Tensor, Numbers]:
    maps = vanilla_saliency(backbone, x, targets)
    if tick:
        tick(1)
    return maps, {}


def smoothgrad_method(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    config: SaliencyConfig,
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> tuple[torch.Tensor, Numbers]:
    return smoothgrad(backbone, x, targets, config.samples, config.noise, config.batch_size, generator, tick), {}


def integrated_gradients_method(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    config: SaliencyConfig,
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> tuple[torch.Tensor, Numbers]:
    """The map is the absolute attribution summed over channels; the numbers say how complete it is."""
    x0 = baseline_image(backbone, x, config.baseline)
    attributions = integrated_gradients(backbone, x, targets, config.steps, x0, config.batch_size, tick, config.rule)
    return attributions.abs().sum(dim=1), completeness(backbone, x, x0, targets, attributions)


# Each catalogue method's function, by its name.
METHODS: dict[str, MethodFunction] = {
    "vanilla": vanilla_method,
    "smoothgrad": smoothgrad_method,
    "integrated-gradients": integrated_gradients_method,
    "gradcam": gradcam_method,
    "guided-gradcam": guided_gradcam_method,
}


def for_backbone(config: SaliencyConfig, backbone: Backbone) -> SaliencyConfig:
    """The config with Grad-CAM's stage named for this backbone: a wrong --layer fails here, before any work."""
    return replace(config, layer=gradcam_stage(backbone, config.layer))


def method_maps(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    config: SaliencyConfig,
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> tuple[torch.Tensor, Numbers]:
    """(N, H, W) maps for a normalised batch by `config.method`, and the method's numbers per image."""
    if config.record.weighs_stage:
        config = for_backbone(config, backbone)
    return METHODS[config.method](backbone, x, targets, config, generator, tick)


def saliency_maps(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    config: SaliencyConfig,
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> torch.Tensor:
    """(N, H, W) maps for a normalised batch, by `config.method`."""
    return method_maps(backbone, x, targets, config, generator, tick)[0]


def saliency(
    backbone: Backbone,
    images: list[Image.Image],
    target: int | None = None,
    config: SaliencyConfig | None = None,
    progress: Progress | None = None,
    top: int = 5,
    seed: int = 0,
) -> SaliencyResult:
    """Maps for PIL images, in batches: for class `target`, or each image's predicted class when None.

    SmoothGrad's noise comes from a generator seeded with `seed`. With `config.faithfulness` each map's
    deletion and insertion curves too, and their areas among its numbers.
    """
    config = for_backbone(config or SaliencyConfig(), backbone)
    return saliency_for_backbone(backbone, images, target, config, progress, top, seed)


def saliency_for_backbone(
    backbone: Backbone,
    images: list[Image.Image],
    target: int | None,
    config: SaliencyConfig,
    progress: Progress | None = None,
    top: int = 5,
    seed: int = 0,
) -> SaliencyResult:
    """`saliency` with a config that `for_backbone` has made for this backbone."""
    method = METHODS[config.method]
    generator = seeded_generator(seed, backbone.device)
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        report(progress, done, {})

    maps, pictures, targets, probabilities, tops, numbers, curves = [], [], [], [], [], [], []
    for start in range(0, len(images), config.batch_size):
        x = backbone.preprocess(images[start : start + config.batch_size])
        with torch.no_grad():
            probs = backbone.logits(x).softmax(dim=1)
        wanted = probs.argmax(dim=1) if target is None else torch.full_like(probs[:, 0], target, dtype=torch.long)
        batch_tick = lambda k, n=x.shape[0]: tick(k * n)  # noqa: E731  (count image-passes)
        batch_maps, batch_numbers = method(backbone, x, wanted, config, generator, batch_tick)
        if config.faithfulness:
            curves.append(
                deletion_insertion(backbone, x, wanted, batch_maps, config.faithfulness_steps, config.batch_size, tick)
            )
            batch_numbers = {**batch_numbers, **curves[-1].areas()}
        maps.append(batch_maps.cpu())
        pictures.append(backbone.deprocess(x).clamp(0, 1).cpu())
        targets += [int(t) for t in wanted]
        probabilities += probs.gather(1, wanted.view(-1, 1))[:, 0].tolist()
        tops += backbone.top_classes(probs, top)
        numbers += [{name: float(values[i]) for name, values in batch_numbers.items()} for i in range(x.shape[0])]
    joined = concatenated(curves) if curves else None
    return SaliencyResult(torch.cat(pictures), torch.cat(maps), targets, probabilities, tops, numbers, config, joined)


def total_passes(config: SaliencyConfig, images: int) -> int:
    """How many image-passes `saliency` reports, for a progress bar's total (the faithfulness curves'
    forward passes count one each)."""
    passes = config.record.passes
    faithfulness = 2 * (config.faithfulness_steps + 1) if config.faithfulness else 0
    return images * ((getattr(config, passes) if passes else 1) + faithfulness)


def randomize_weights(backbone: Backbone, scope: str = "all", seed: int = 0) -> Backbone:
    """Re-initialise `backbone`'s weights in place: the model-randomisation sanity check.

    Adebayo et al. (2018): a saliency method that explains the model must give a
    different map when the weights are random. `scope` "head" re-initialises only
    the final linear layer, "all" every layer (BatchNorm back to identity). Load a
    fresh backbone for this: the weights are gone afterwards.
    """
    if scope not in ("all", "head"):
        raise ValueError("scope must be 'all' or 'head'")
    modules: Sequence[torch.nn.Module] = [m for m in backbone.model.modules() if hasattr(m, "reset_parameters")]
    if scope == "head":
        modules = [m for m in modules if isinstance(m, torch.nn.Linear)][-1:]
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            # Methods (found by hasattr): torch types a Module's unknown attributes as Tensor | Module.
            cast(Callable[[], None], module.reset_parameters)()
            if hasattr(module, "reset_running_stats"):
                cast(Callable[[], None], module.reset_running_stats)()
    torch.random.set_rng_state(generator_state)
    backbone.model.eval().requires_grad_(False)
    return backbone
