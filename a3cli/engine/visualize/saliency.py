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
from dataclasses import dataclass, field, replace
from typing import Optional, cast

import numpy as np
import torch
from PIL import Image

from a3cli.engine.backbones.registry import Backbone, Prediction
from a3cli.engine.catalogue import (
    BACKBONES,
    IG_RULES,
    SALIENCY_ALIASES,
    SALIENCY_BASELINES,
    SALIENCY_DEFAULTS,
    SALIENCY_METHODS,
    load,
)
from a3cli.engine.device import seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.progress import Progress, report
from a3cli.engine.visualize.faithfulness import Curves, concatenated, deletion_insertion

Tick = Optional[Callable[[int], None]]  # told how many passes each chunk of work took
Numbers = dict[str, torch.Tensor]  # a method's numbers: name -> one value per image (N,)
D = SALIENCY_DEFAULTS


@dataclass
class SaliencyConfig:
    method: str = D["method"]  # a name or an alias (`ig`) of SALIENCY_METHODS
    samples: int = D["samples"]  # SmoothGrad: noisy copies averaged
    noise: float = D["noise"]  # SmoothGrad: noise std as a fraction of the image's value range
    steps: int = D["steps"]  # Integrated Gradients: points on the path
    baseline: str = D["baseline"]  # Integrated Gradients: the image the path starts from
    batch_size: int = D["batch_size"]  # images (or noisy/path copies) per forward-backward pass
    rule: str = D["rule"]  # Integrated Gradients: the quadrature along the path (IG_RULES)
    layer: Optional[str] = D["layer"]  # Grad-CAM: the stage it weighs (None: the backbone's gradcam_layer)
    faithfulness: bool = D["faithfulness"]  # also the deletion and insertion curves of each map
    faithfulness_steps: int = D["faithfulness_steps"]  # their steps from none to all of the pixels

    def __post_init__(self) -> None:
        self.method = SALIENCY_ALIASES.get(self.method, self.method)

    def check(self) -> None:
        if self.method not in SALIENCY_METHODS:
            names = [*SALIENCY_METHODS, *SALIENCY_ALIASES]
            raise A3Error(f"unknown saliency method {self.method!r}; choose one of: {', '.join(names)}")
        if self.baseline not in SALIENCY_BASELINES:
            raise A3Error(f"unknown baseline {self.baseline!r}; choose one of: {', '.join(SALIENCY_BASELINES)}")
        if self.rule not in IG_RULES:
            raise A3Error(f"unknown --rule {self.rule!r}; choose one of: {', '.join(IG_RULES)}")
        if self.samples < 1 or self.steps < 1 or self.batch_size < 1:
            raise A3Error("--samples, --steps and --batch-size must be at least 1")
        if self.faithfulness_steps < 1:
            raise A3Error(f"--faithfulness-steps must be at least 1, not {self.faithfulness_steps}")
        if self.noise < 0:
            raise A3Error("--noise must be 0 or more")


@dataclass
class SaliencyResult:
    images: torch.Tensor  # (N, 3, H, W) in [0, 1]: what the network saw (resized, centre-cropped)
    maps: torch.Tensor  # (N, H, W), non-negative
    targets: list[int]  # the class each map explains
    probabilities: list[float]  # the model's probability of that class, per image
    top: list[list[Prediction]]  # top-5 (index, name, probability) per image
    numbers: list[dict[str, float]] = field(default_factory=list)  # the method's numbers, per image
    config: Optional[SaliencyConfig] = None  # the settings used, with the defaults filled in
    curves: Optional[Curves] = None  # deletion and insertion, when config.faithfulness


def gradcam_stage(backbone: Backbone, layer: str | None) -> str:
    """The stage Grad-CAM weighs: `layer`, or the backbone's catalogue default (else its last stage)."""
    record = BACKBONES.get(backbone.name)
    stage = layer or (record.gradcam_layer if record else None) or backbone.layer_names[-1]
    if stage not in backbone.layer_names:
        raise A3Error(f"{backbone.name} has no --layer {stage!r}; its stages are: {', '.join(backbone.layer_names)}")
    return stage


def input_gradients(backbone: Backbone, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """∂s_y/∂x for each image of the batch, (N, 3, H, W).

    The scores of different images do not interact (the network is in eval mode), so
    the gradient of their sum is each image's own gradient.
    """
    x = x.detach().requires_grad_(True)
    scores = backbone.logits(x).gather(1, targets.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(scores, x)
    return grad


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


# The methods as `a3 saliency --method` runs them, one signature each (their records are in the catalogue).


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


def method_maps(
    backbone: Backbone,
    x: torch.Tensor,
    targets: torch.Tensor,
    config: SaliencyConfig,
    generator: torch.Generator | None = None,
    tick: Tick = None,
) -> tuple[torch.Tensor, Numbers]:
    """(N, H, W) maps for a normalised batch by `config.method`, and the method's numbers per image."""
    config.check()
    method = load(SALIENCY_METHODS[config.method].function)
    return method(backbone, x, targets, config, generator, tick)


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
    config = config or SaliencyConfig()
    config.check()
    config = replace(config, layer=gradcam_stage(backbone, config.layer))
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
        batch_maps, batch_numbers = method_maps(backbone, x, wanted, config, generator, batch_tick)
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
    passes = SALIENCY_METHODS[config.method].passes
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
