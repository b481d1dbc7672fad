"""One builder per architecture: the network and its named stages, head and pooled feature.

A builder takes the backbone's catalogue record and returns `Parts`; it builds the
network with random weights (the registry loads the pretrained ones). Stages are the
trunk in order, named as the literature names its layers, so that style transfer and
captioning can pick feature layers by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from a3cli.engine.catalogue import BackboneRecord

# A stage of the trunk: a module, or a method of the network that runs several of its modules.
Stage = Callable[[torch.Tensor], torch.Tensor]
ModelT = TypeVar("ModelT", bound=nn.Module)


@dataclass
class Parts:
    model: nn.Module
    stages: list[tuple[str, Stage]]
    head: Callable[[torch.Tensor], torch.Tensor]  # last stage output -> logits
    pool: Callable[[torch.Tensor], torch.Tensor]  # last stage output -> (N, feature_dim)


def global_average(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


def no_inplace(model: ModelT) -> ModelT:
    """In-place ReLUs would overwrite feature maps that callers keep; turn them off."""
    for module in model.modules():
        if hasattr(module, "inplace"):
            # A plain flag: torch types a Module's attribute assignments as tensors and modules only.
            cast(Any, module).inplace = False
    return model


def efficientnet_lite(record: BackboneRecord) -> Parts:
    """EfficientNet-Lite0/1/2, scaled by the record's name (efficientnet_lite.LITE_SCALING)."""
    from a3cli.engine.backbones.efficientnet_lite import LITE_SCALING, EfficientNetLite

    model = EfficientNetLite(*LITE_SCALING[record.name])
    stages: list[tuple[str, Stage]] = [("stem", model.stem)]
    stages += [(f"block{i}", block) for i, block in enumerate(model._blocks)]
    stages.append(("head", model.head))
    return Parts(model, stages, model.classify, global_average)


def squeezenet(record: BackboneRecord) -> Parts:
    from torchvision.models import squeezenet1_1

    model = no_inplace(squeezenet1_1())
    # Named by index into model.features, as the assignment counts them (content layer 3, style 1,4,6,7).
    stages = [(str(i), layer) for i, layer in enumerate(model.features)]
    return Parts(model, stages, lambda x: torch.flatten(model.classifier(x), 1), global_average)


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


def vgg(record: BackboneRecord) -> Parts:
    import torchvision.models as models

    model = no_inplace(getattr(models, record.name)())
    stages = list(zip(vgg_stage_names(model.features), model.features))
    head = lambda x: model.classifier(torch.flatten(model.avgpool(x), 1))  # noqa: E731
    # fc7 after its ReLU: the 4096-d feature the assignment's captioning data uses.
    pool = lambda x: model.classifier[:5](torch.flatten(model.avgpool(x), 1))  # noqa: E731
    return Parts(model, stages, head, pool)


def resnet(record: BackboneRecord) -> Parts:
    import torchvision.models as models

    model = no_inplace(getattr(models, record.name)())
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    stages = [("stem", stem)] + [(f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5)]
    pool = lambda x: torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # noqa: E731
    return Parts(model, stages, lambda x: model.fc(pool(x)), pool)


# The builder of each architecture a BackboneRecord names.
BUILDERS: dict[str, Callable[[BackboneRecord], Parts]] = {
    "efficientnet_lite": efficientnet_lite,
    "squeezenet": squeezenet,
    "vgg": vgg,
    "resnet": resnet,
}
