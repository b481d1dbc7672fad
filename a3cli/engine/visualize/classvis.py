"""Class visualization: an image the classifier is sure shows a class, made from noise.

The assignment's method (Simonyan et al. 2014, with Yosinski et al.'s 2015
regularisers): start from random noise and repeat

  roll the image by a random (dx, dy) of up to `max_jitter` pixels;
  x ← x + lr·g/‖g‖₂, g = ∂/∂x [s_y(x) − λ‖x‖²]   (the unnormalised class score);
  roll back; clamp to the valid pixel range; every `blur_every` steps blur a little.

Optionally (`param="fourier"` or `"lucent"`) the image is instead described as in
feature visualization work (Olah et al. 2017, "Feature Visualization"; lucent): a
Fourier spectrum scaled by 1/frequency^decay, mapped through a decorrelated colour
basis and a sigmoid, and optimised with Adam under random padding, jitter, scaling and
rotation. Large-scale structure is then cheaper to change than fine detail, and the
network must see the class under every transform.

What is maximised is an objective (engine/visualize/objectives.py): a class score, or a channel or
neuron of one of the backbone's stages; a sheet of channels is one batch, one picture per channel.

Everything happens in the backbone's normalised input space; images come out in [0, 1].
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from a3cli.engine.backbones.registry import Backbone, Prediction
from a3cli.engine.device import seeded_generator
from a3cli.engine.errors import A3Error
from a3cli.engine.images import make_grid, quantize, tile_numbers, to_tensor
from a3cli.engine.progress import Progress, report
from a3cli.engine.visualize.classvis_config import ClassVisConfig
from a3cli.engine.visualize.objectives import ChannelObjective, Objective, diagonal_share


@dataclass(frozen=True)
class Spectrum:
    """How a Fourier image is drawn: its spectrum ∝ 1/f^decay on a grid of `resolution` pixels (None: --size)
    upsampled to --size, and the per-step transforms: pad (--max-jitter), jitter, scale, rotate, jitter."""

    decay: float
    resolution: Optional[int]
    scale: tuple[float, float]
    rotate: float  # degrees, ±


FOURIER_SPECTRA = {
    # Our default: a steeper fall-off than Lucid's 1/f and stronger transforms give fewer, larger structures
    # and far less high-frequency noise on efficientnet_lite0; held-out Lite1/Lite2 judge it at least as
    # well as the lucent-like one (docs/visualization.md).
    "fourier": Spectrum(decay=1.75, resolution=None, scale=(0.6, 1.2), rotate=15.0),
    # lucent's image (1/f on a 128-px grid) and its standard transforms: busier pictures with small whole
    # objects in them.
    "lucent": Spectrum(decay=1.0, resolution=128, scale=(0.9, 1.1), rotate=10.0),
}
FOURIER_SECOND_JITTER = 4

# Square root of ImageNet's colour covariance (from Lucid): its columns decorrelate RGB.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def jitter(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Circular shift by dx pixels to the right and dy down (the assignment's `jitter`)."""
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with a kernel of ±3σ (σ = 0.5 as in the assignment's `blur_image`)."""
    if sigma <= 0:
        return x
    size = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur(x, [size, size], [sigma, sigma])


class FourierImage:
    """`batch` images, each described by a 1/f-scaled spectrum in a decorrelated colour space (Lucid's
    `fft_image`), on a grid of at most `resolution` pixels a side, upsampled to `size`."""

    def __init__(
        self,
        size: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        sd: float = 0.01,
        decay: float = 1.0,
        resolution: int | None = None,
        batch: int = 1,
    ):
        self.size, self.grid = size, min(size, resolution or size)
        fy = torch.fft.fftfreq(self.grid, device=device)[:, None]
        fx = torch.fft.rfftfreq(self.grid, device=device)[None, :]
        freqs = (fx**2 + fy**2).sqrt()
        # Normalised so the lowest frequency has the same weight whatever the decay (and size):
        # the learning rate then means the same thing for every --size.
        self.scale = 1.0 / freqs.clamp(min=1.0 / self.grid) ** decay / self.grid ** (decay - 1.0)
        noise = torch.randn((batch, 3, self.grid, self.grid // 2 + 1, 2), generator=generator, device="cpu") * sd
        self.spectrum = noise.to(device).requires_grad_(True)
        basis = COLOR_CORRELATION_SQRT.to(device)
        self.color = basis / basis.norm(dim=0).max()

    def __call__(self) -> torch.Tensor:
        """(batch, 3, size, size) in [0, 1]."""
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfft2(spectrum, s=(self.grid, self.grid), norm="ortho") / 4.0
        image = torch.sigmoid(torch.einsum("nchw,dc->ndhw", image, self.color))
        if self.grid == self.size:
            return image
        return F.interpolate(image, size=(self.size, self.size), mode="bilinear", align_corners=True)


class ClassVisualization:
    """One class visualization: the picture so far is `current_image()` at any time, so a caller that
    catches Ctrl-C can keep it."""

    def __init__(self, backbone: Backbone, config: ClassVisConfig, seed: int = 0):
        self.config = config.resolved(backbone.name)
        self.objective = self.config.goal(backbone.classes)
        self.objective.check(backbone, self.config.size)
        make = _pixel if self.config.param == "pixel" else _fourier
        self.step, self.current_images = make(
            backbone, self.config, self.objective, random.Random(seed), seeded_generator(seed)
        )
        if isinstance(self.objective, ChannelObjective):
            refuse_dead_channels(backbone, self.objective, self.current_images())

    def current_image(self) -> torch.Tensor:
        """The picture so far, (3, H, W) in [0, 1]; a sheet (several pictures) as one grid, each picture
        numbered with its channel."""
        images = self.current_images()
        if len(images) == 1:
            return images[0]
        nrow = math.ceil(math.sqrt(len(images)))
        channels = list(getattr(self.objective, "channels", range(len(images))))
        return tile_numbers(make_grid(images, nrow=nrow, padding=2), channels, nrow, images.shape[-1])

    def run(
        self, progress: Progress | None = None, on_frame: Callable[[int, torch.Tensor], None] | None = None
    ) -> torch.Tensor:
        """Optimise; return the image (3, size, size) in [0, 1] (a sheet: its grid). `on_frame(step, image)`
        gets every `save_every`-th image."""
        config = self.config
        assert config.iterations is not None  # resolved in __init__
        for t in range(config.iterations):
            score = self.step(t)
            report(progress, t + 1, {"score": score})
            if on_frame and config.save_every and (t + 1) % config.save_every == 0:
                on_frame(t + 1, self.current_image())
        return self.current_image()


def class_visualization(
    backbone: Backbone,
    config: ClassVisConfig,
    progress: Progress | None = None,
    on_frame: Callable[[int, torch.Tensor], None] | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """The function form of ClassVisualization(...).run(...)."""
    return ClassVisualization(backbone, config, seed).run(progress, on_frame)


def _pixel(
    backbone: Backbone, config: ClassVisConfig, objective: Objective, rng: random.Random, generator: torch.Generator
):
    """The assignment's method: (one step of the ascent, the current pictures (N, 3, H, W)); each picture
    takes its own normalised step."""
    lr, l2_reg, max_jitter, blur_sigma = config.lr, config.l2_reg, config.max_jitter, config.blur_sigma
    assert lr is not None and l2_reg is not None and max_jitter is not None and blur_sigma is not None  # resolved
    lo, hi = backbone.pixel_range()
    noise = torch.randn((objective.batch, 3, config.size, config.size), generator=generator) * config.init_std
    img = torch.maximum(torch.minimum(noise.to(backbone.device), hi), lo)

    def step(t: int) -> float:
        nonlocal img
        dx, dy = rng.randint(0, max_jitter), rng.randint(0, max_jitter)
        x = jitter(img, dx, dy).requires_grad_(True)
        scores = objective(backbone, x)
        (grad,) = torch.autograd.grad(scores.sum() - l2_reg * x.pow(2).sum(), x)
        with torch.no_grad():
            norm = torch.linalg.vector_norm(grad, dim=(1, 2, 3), keepdim=True)
            x = x + lr * grad / norm.clamp(min=1e-12)
            img = torch.maximum(torch.minimum(jitter(x, -dx, -dy), hi), lo)
            if config.blur_every and t % config.blur_every == 0:
                img = blur(img, blur_sigma)
        return float(scores.detach().mean())

    return step, lambda: backbone.deprocess(img).clamp(0, 1)


def refuse_dead_channels(backbone: Backbone, objective: ChannelObjective, pictures: torch.Tensor) -> None:
    """A channel (or neuron) whose value has no gradient on its starting picture is inactive there (a ReLU
    at zero, or a head unit the picture does not reach): ascent would leave the picture as it is, so it is
    refused in one line rather than drawn flat."""
    x = backbone.normalize(pictures.to(backbone.device)).requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(backbone, x).sum(), x)
    dead = [c for c, g in zip(objective.channels, grad.flatten(1).abs().amax(dim=1).tolist()) if g == 0]
    if dead:
        one = len(dead) == 1
        which = f"channel {dead[0]} of {objective.layer} is" if one else f"channels {', '.join(map(str, dead))} of "
        which += "" if one else f"{objective.layer} are"
        raise A3Error(
            f"--objective: {which} inactive on the starting picture (no gradient there), so nothing can be "
            "drawn; try other channels or another layer"
        )


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate about the centre by `degrees` (bilinear, edges reflected), same size."""
    theta = math.radians(degrees)
    matrix = torch.tensor(
        [[math.cos(theta), -math.sin(theta), 0.0], [math.sin(theta), math.cos(theta), 0.0]],
        dtype=x.dtype,
        device=x.device,
    )[None].expand(x.shape[0], 2, 3)
    grid = F.affine_grid(matrix, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _fourier(
    backbone: Backbone, config: ClassVisConfig, objective: Objective, rng: random.Random, generator: torch.Generator
):
    """The Fourier parametrisations: (one Adam step under random transforms, the current pictures);
    a batch shares each step's transforms."""
    param, lr, l2_reg, pad = config.param, config.lr, config.l2_reg, config.max_jitter
    assert param is not None and lr is not None and l2_reg is not None and pad is not None  # resolved
    spectrum = FOURIER_SPECTRA[param]
    image = FourierImage(
        config.size,
        backbone.device,
        generator,
        decay=spectrum.decay,
        resolution=spectrum.resolution,
        batch=objective.batch,
    )
    optimizer = torch.optim.Adam([image.spectrum], lr=lr)
    second = min(FOURIER_SECOND_JITTER, pad)

    def step(t: int) -> float:
        x = image()
        if pad:  # Lucid's standard transforms: pad, jitter, scale, rotate, jitter
            x = F.pad(x, (pad, pad, pad, pad), mode="constant", value=0.5)
            x = jitter(x, rng.randint(-pad, pad), rng.randint(-pad, pad))
            x = F.interpolate(x, scale_factor=rng.uniform(*spectrum.scale), mode="bilinear", align_corners=False)
            x = rotate(x, rng.uniform(-spectrum.rotate, spectrum.rotate))
            x = jitter(x, rng.randint(-second, second), rng.randint(-second, second))
            x = F.interpolate(x, size=(config.size, config.size), mode="bilinear", align_corners=False)
        x = backbone.normalize(x)
        scores = objective(backbone, x)
        loss = -scores.sum() + l2_reg * x.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(scores.detach().mean())

    return step, lambda: image().detach()


def target_probability(backbone: Backbone, image: torch.Tensor, target: int) -> tuple[float, list[Prediction]]:
    """Probability of `target` for an image (3, H, W) in [0, 1] as an 8-bit file stores it, and its top 5."""
    quantized = quantize(image)
    with torch.no_grad():
        probs = backbone.logits(backbone.normalize(quantized[None].to(backbone.device))).softmax(dim=1)
    return float(probs[0, target]), backbone.top_classes(probs, 5)[0]


def held_out_probability(
    judge: Backbone, picture: Image.Image, target: int, crops: int = 64, seed: int = 0, smallest: float = 0.6
) -> float:
    """A held-out judge's probability of `target` for a picture, averaged over random crops and rescales.

    A picture that only exploits the network it was optimised on is an adversarial pattern; another
    network (never optimised against) that sees the class in crops of it at other scales is evidence
    that the picture draws the class. Each crop keeps a random `smallest`..1 of the shorter side at a
    random place and is resized to the judge's input size. A judge tends to be sure either way about
    each crop, so few crops make a noisy mean: with 16, one picture scored 0.28 or 0.53 by the crops' seed.
    """
    image = to_tensor(picture)
    generator = seeded_generator(seed)
    side = min(image.shape[1:])
    batch = []
    for _ in range(crops):
        size = round(side * (smallest + (1 - smallest) * float(torch.rand((), generator=generator))))
        top = int(torch.randint(0, image.shape[1] - size + 1, (), generator=generator))
        left = int(torch.randint(0, image.shape[2] - size + 1, (), generator=generator))
        crop = image[None, :, top : top + size, left : left + size]
        batch.append(
            F.interpolate(crop, size=(judge.image_size,) * 2, mode="bilinear", antialias=True, align_corners=False)[0]
        )
    with torch.no_grad():
        probs = judge.logits(judge.normalize(torch.stack(batch).to(judge.device))).softmax(dim=1)
    return float(probs[:, target].mean())


def sheet_activations(backbone: Backbone, images: torch.Tensor, objective: ChannelObjective) -> torch.Tensor:
    """(picture i, channel j) values of a sheet's channels (or neurons) for its pictures (N, 3, H, W) in [0, 1],
    as an 8-bit file stores them."""
    with torch.no_grad():
        return objective.activations(backbone, backbone.normalize(quantize(images).to(backbone.device))).cpu()


@dataclass(frozen=True)
class SheetPicture:
    """One picture of a sheet, as its 8-bit file stores it."""

    name: str  # layer:channel (and @x,y)
    channel: int
    own: float  # the value of its own channel (or neuron)
    highest_other: Optional[float]  # the highest value of its channel on the sheet's other pictures (None: alone)


@dataclass(frozen=True)
class SheetScores:
    """How well the pictures of a sheet keep to their own channels."""

    pictures: list[SheetPicture]
    diagonal_share: Optional[dict[str, float]]  # `diagonal_share`, for two pictures or more


def sheet_scores(backbone: Backbone, images: torch.Tensor, objective: ChannelObjective) -> SheetScores:
    """Each picture's own value beside the highest its channel reaches on the others, and the diagonal share."""
    values = sheet_activations(backbone, images, objective)
    pictures = []
    for i, name in enumerate(objective.names()):
        others = [float(values[j, i]) for j in range(len(values)) if j != i]
        highest = max(others) if others else None
        pictures.append(SheetPicture(name, objective.channels[i], float(values[i, i]), highest))
    return SheetScores(pictures, diagonal_share(values) if len(values) > 1 else None)
