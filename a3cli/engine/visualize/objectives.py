"""What a feature visualization maximises: a class score, a channel or one neuron (lucent's `objectives`).

An objective scores a batch of pictures, one number per picture; each picture of the batch has its own
target, so a sheet of channels is one batched optimisation (picture i for the i-th channel). Pictures in
a batch never mix (the backbones are frozen, BatchNorm in eval mode), so the gradient of the summed
scores is each picture's own gradient.

  class     s_y(x), the unnormalised class score (the assignment's class visualization)
  channel   the mean over positions of one channel of a stage's output (lucent's `channel`)
  neuron    that channel's activation at one position (X, Y) of the stage's map (lucent's `neuron`)

On the command line: `LAYER:CHANNEL`, `LAYER:FIRST-LAST` (a sheet) and either with `@X,Y` (neurons).
No torch import here: `a3 --help` reads the parser; the scores import it when they run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

from a3cli.engine.errors import A3Error

if TYPE_CHECKING:
    import torch

    from a3cli.engine.backbones.registry import Backbone

SPEC = re.compile(r"^(?P<layer>[^:@\s]+):(?P<first>\d+)(?:-(?P<last>\d+))?(?:@(?P<x>\d+),(?P<y>\d+))?$")
SYNTAX = "LAYER:CHANNEL, LAYER:FIRST-LAST or either with @X,Y"


@dataclass(frozen=True)
class ClassObjective:
    """The unnormalised score of one class."""

    target: int

    @property
    def batch(self) -> int:
        return 1

    def __call__(self, backbone: Backbone, x: torch.Tensor) -> torch.Tensor:
        return backbone.logits(x)[:, self.target]

    def check(self, backbone: Backbone, size: int) -> None:
        if not 0 <= self.target < len(backbone.classes):
            raise A3Error(f"class {self.target} is out of range (0-{len(backbone.classes) - 1})")

    def record(self) -> dict:
        return {"kind": "class", "index": self.target}

    def label(self, classes: Sequence[str]) -> str:
        """The class's name, for a progress bar."""
        return classes[self.target]


@dataclass(frozen=True)
class ChannelObjective:
    """The mean activation of channel `channels[i]` of stage `layer`, for picture i; with `position`
    (x, y), the activation at that place of the stage's map instead (one neuron)."""

    layer: str
    channels: tuple[int, ...]
    position: Optional[tuple[int, int]] = None

    @property
    def batch(self) -> int:
        return len(self.channels)

    @property
    def kind(self) -> str:
        return "channel" if self.position is None else "neuron"

    def activations(self, backbone: Backbone, x: torch.Tensor) -> torch.Tensor:
        """(N, len(channels)): every picture's value of every channel (or neuron) of the sheet."""
        (maps,) = backbone.features(x, [self.layer])
        maps = maps[:, list(self.channels)]
        if self.position is None:
            return maps.mean(dim=(2, 3))
        column, row = self.position
        return maps[:, :, row, column]

    def __call__(self, backbone: Backbone, x: torch.Tensor) -> torch.Tensor:
        import torch

        own = torch.arange(x.shape[0], device=x.device)
        return self.activations(backbone, x)[own, own]

    def check(self, backbone: Backbone, size: int) -> None:
        """The layer exists, the channels and the position lie inside its map (for --size pixel pictures)."""
        if self.layer not in backbone.layer_names:
            raise A3Error(
                f"{backbone.name} has no layer {self.layer!r} for --objective; "
                f"its layers are: {', '.join(backbone.layer_names)}"
            )
        import torch

        dtype = next(backbone.model.parameters()).dtype
        with torch.no_grad():
            (maps,) = backbone.features(
                torch.zeros(1, 3, size, size, device=backbone.device, dtype=dtype), [self.layer]
            )
        _, count, height, width = maps.shape
        if max(self.channels) >= count:
            raise A3Error(f"--objective: {self.layer} has channels 0-{count - 1}, not {max(self.channels)}")
        if self.position is not None and not (self.position[0] < width and self.position[1] < height):
            raise A3Error(
                f"--objective: {self.layer}'s map is {width}×{height} at --size {size}; "
                f"@X,Y must be below that, not {self.position[0]},{self.position[1]}"
            )

    def record(self) -> dict:
        record: dict = {"kind": self.kind, "layer": self.layer, "channels": list(self.channels)}
        if self.position is not None:
            record["x"], record["y"] = self.position
        return record

    def label(self, classes: Sequence[str]) -> str:
        """`LAYER:FIRST-LAST@X,Y` as the command line writes it, for a progress bar."""
        last = f"-{self.channels[-1]}" if len(self.channels) > 1 else ""
        at = "" if self.position is None else f"@{self.position[0]},{self.position[1]}"
        return f"{self.layer}:{self.channels[0]}{last}{at}"

    def names(self) -> list[str]:
        """`layer:channel` (and `@x,y`) of each picture."""
        at = "" if self.position is None else f"@{self.position[0]},{self.position[1]}"
        return [f"{self.layer}:{c}{at}" for c in self.channels]


Objective = Union[ClassObjective, ChannelObjective]


LARGEST_INDEX = 100_000  # beyond any layer's channels or positions
LARGEST_SHEET = 256  # channels drawn at once: a 16 x 16 sheet


def parse_objective(spec: str) -> ChannelObjective:
    """`LAYER:CHANNEL`, `LAYER:FIRST-LAST` or either with `@X,Y` -> the objective (its layer unchecked)."""
    match = SPEC.match(spec.strip())
    if match is None:
        raise A3Error(f"--objective {spec!r}: expected {SYNTAX} (e.g. block4:3, block4:0-15, block4:3@7,7)")
    numbers = [int(match[key]) for key in ("first", "last", "x", "y") if match[key] is not None]
    if max(numbers) > LARGEST_INDEX:  # no layer is that wide or that large: refused before any range is made
        raise A3Error(f"--objective {spec!r}: channels and positions go up to {LARGEST_INDEX:,}")
    first = int(match["first"])
    last = first if match["last"] is None else int(match["last"])
    if last < first:
        raise A3Error(f"--objective {spec!r}: the channel range {first}-{last} is empty")
    if last - first + 1 > LARGEST_SHEET:
        raise A3Error(f"--objective {spec!r}: a sheet draws at most {LARGEST_SHEET} channels, not {last - first + 1}")
    position = None if match["x"] is None else (int(match["x"]), int(match["y"]))
    return ChannelObjective(match["layer"], tuple(range(first, last + 1)), position)


def diagonal_share(activations: torch.Tensor) -> dict[str, float]:
    """How well a sheet's pictures keep to their own channels, from `activations` (picture i, channel j).

    Each channel's activations are z-scored over the sheet's pictures. `channels`: the share of channels
    that their own picture excites most of all the pictures; `pictures`: the share of pictures whose own
    channel has the highest z of all the sheet's channels.
    """
    import torch

    a = activations.double()
    z = (a - a.mean(dim=0)) / a.std(dim=0).clamp(min=1e-12)
    own = torch.arange(a.shape[0])
    return {
        "channels": float((z.argmax(dim=0) == own).double().mean()),
        "pictures": float((z.argmax(dim=1) == own).double().mean()),
    }
