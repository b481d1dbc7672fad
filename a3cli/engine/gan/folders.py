"""Your own pictures for a GAN: a folder read lazily, in batches that do not depend on how many processes read it.

A folder of 200,000 photos need not fit in memory: `ImageFolder` finds the files
(sub-folders included; unreadable ones are skipped and counted) and decodes each when
it is asked for, centre-cropped to a square and resized, in [-1, 1]. `FolderBatches`
gives batch b of the run as a DataLoader with workers would: epoch b // per_epoch of a
permutation seeded by (seed, epoch), this rank's share of the global batch only. So
one process and N ranks see the same global batches, and a resumed run continues
with the very batch it stopped at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from a3cli.engine.distributed import World
from a3cli.engine.errors import A3Error
from a3cli.engine.gan.data import IMAGE_SUFFIXES, BatchOrder, image_files
from a3cli.engine.images import centre_square, load_image, to_tensor



def readable(path: Path) -> bool:
    """Whether Pillow recognises the file (its header only: fast enough for many thousands of files)."""
    try:
        with Image.open(path) as picture:
            picture.verify()
        return True
    except Exception:  # Pillow signals bad files with many exception types
        return False


class ImageFolder(Dataset):
    """Every picture under a folder, decoded on demand: (channels, size, size) in [-1, 1]."""

    def __init__(self, folder: str | Path, size: int, channels: int) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise A3Error(f"--dataset '{folder}' is not a folder")
        found = image_files(folder)
        self.paths = [p for p in found if readable(p)]
        self.skipped = len(found) - len(self.paths)
        if not self.paths:
            raise A3Error(f"no readable images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder '{folder}'"
                          + (f" ({self.skipped} unreadable)" if self.skipped else ""))
        self.size, self.channels, self.folder = size, channels, folder
        skipped = f" ({self.skipped} unreadable files skipped)" if self.skipped else ""
        self.source = (f"{len(self.paths)} images from folder {folder}, centre-cropped to {size}×{size} "
                       f"{'RGB' if channels == 3 else 'grayscale'}{skipped}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        for offset in range(len(self.paths)):  # a file that fails to decode gives way to the next one
            try:
                picture = load_image(self.paths[(index + offset) % len(self.paths)])
                break
            except A3Error:
                continue
        else:
            raise A3Error(f"no image in '{self.folder}' could be decoded")
        picture = centre_square(picture, self.size, Image.Resampling.BICUBIC)
        x = to_tensor(picture.convert("L") if self.channels == 1 else picture)  # (3, size, size)
        x = x[:1] if self.channels == 1 else x  # gray: the three channels are equal
        return x.mul(2).sub(1)


class ShardedBatchSampler(Sampler[list[int]]):
    """The index lists of this rank's share of global batches `start`, `start` + 1, ... (full batches only)."""

    def __init__(self, size: int, batch_size: int, seed: int, world: World, start: int = 0) -> None:
        self.order, self.start = BatchOrder(size, batch_size, seed, world), start

    def __iter__(self) -> Iterator[list[int]]:
        b = self.start
        while True:
            yield self.order(b).tolist()
            b += 1


class FolderBatches:
    """Batch b of the run from a folder, read by DataLoader workers in order; b must only grow."""

    def __init__(self, dataset: ImageFolder, batch_size: int, seed: int, device: torch.device, world: World,
                 workers: int = 2) -> None:
        if len(dataset) < batch_size:
            raise A3Error(f"the folder has {len(dataset)} readable images, fewer than --batch-size {batch_size}")
        self.dataset, self.batch_size, self.seed, self.device, self.world = dataset, batch_size, seed, device, world
        self.workers = workers
        self.per_epoch = len(dataset) // batch_size
        self.next_batch, self.loader = None, None

    def __getitem__(self, b: int) -> Tensor:
        if self.loader is None or b != self.next_batch:
            sampler = ShardedBatchSampler(len(self.dataset), self.batch_size, self.seed, self.world, start=b)
            self.loader = iter(DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.workers,
                                          persistent_workers=False, pin_memory=self.device.type == "cuda"))
        self.next_batch = b + 1
        return next(self.loader).to(self.device, non_blocking=True)
