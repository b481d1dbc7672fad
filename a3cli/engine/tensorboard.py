"""TensorBoard event files in a run folder, so that a run can be watched as PyTorch users watch theirs.

Written by rank 0 when the optional `tensorboard` package is installed (`pip install 'a3cli[tensorboard]'`)
and not turned off (--no-tensorboard); otherwise every call does nothing. `tensorboard --logdir runs/`
shows every run under runs/. A resumed run drops what was logged after its checkpoint (purge_step), so
the curves have no doubled stretch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from torch import Tensor


def tensorboard_installed() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class RunLog:
    """Scalars and pictures of one run, by iteration."""

    def __init__(self, out: Path, wanted: bool, main: bool, step: int = 0) -> None:
        self.writer: Optional[Any] = None
        if wanted and main and tensorboard_installed():
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out), purge_step=step or None)

    def scalars(self, step: int, values: Mapping[str, Optional[float]], group: str = "") -> None:
        """Each value under `group/name` (values that are None are left out)."""
        if self.writer is None:
            return
        for name, value in values.items():
            if value is not None:
                self.writer.add_scalar(f"{group}/{name}" if group else name, value, step)

    def picture(self, step: int, tag: str, image: Tensor) -> None:
        """A picture (3, H, W) in [0, 1]."""
        if self.writer is not None:
            self.writer.add_image(tag, image.clamp(0, 1), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
