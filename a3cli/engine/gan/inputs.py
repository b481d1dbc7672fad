"""What a GAN run learns from and is judged against, at its size.

28 px: MNIST, Fashion-MNIST or a folder, in memory as the assignment's flattened
grayscale digits, judged (MNIST) by the project's digit classifier. 64 px: a folder
of your own pictures read lazily by DataLoader workers, judged by EfficientNet-Lite0
features. Either way batch b is this rank's share of the run's global batch b.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from a3cli.engine.distributed import World
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.data import Batches, ImageSet, load_dataset, to_model_range
from a3cli.engine.gan.evaluation import Judge, digit_judge, judge_classifier
from a3cli.engine.gan.folders import FolderBatches, ImageFolder
from a3cli.engine.gan.settings import GanConfig, GanSettings


@dataclass
class RunInputs:
    data: ImageSet | ImageFolder  # its `source` says where the images came from
    batches: Batches | FolderBatches
    judge: Optional[Judge]  # None: no Fréchet distance
    judge_facts: dict[str, Any]  # for metrics.json


def open_inputs(settings: GanSettings, config: GanConfig, device: torch.device, world: World) -> RunInputs:
    """The data, its batches and the judge (rank 0 only: it alone measures). User mistakes end here."""
    judged = config.fid and world.main
    if settings.image_size == 64:
        folder = ImageFolder(settings.dataset, 64, settings.channels)
        batches = FolderBatches(folder, settings.batch_size, settings.seed, device, world)
        if not judged:
            return RunInputs(folder, batches, None, {})
        from a3cli.engine.gan.photo_judge import FEATURES, photo_judge

        judge = photo_judge(folder, settings.noise_dim, settings.seed, config.fid_samples, device)
        return RunInputs(folder, batches, judge, {"frechet_features": FEATURES})
    classifier, facts = judge_classifier(settings.dataset, config.classifier, device) if judged else (None, {})
    data = load_dataset(settings.dataset, config.data_root, config.download)
    if len(data) < settings.batch_size:
        raise A3Error(f"the data set has {len(data)} images, fewer than --batch-size {settings.batch_size}")
    batches = Batches(to_model_range(data.images), settings.batch_size, settings.seed, device, world)
    judge = None if classifier is None else digit_judge(classifier, data.images, settings.noise_dim,
                                                        settings.seed, config.fid_samples, device)
    return RunInputs(data, batches, judge, facts)
