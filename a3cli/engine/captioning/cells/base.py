"""What a caption cell is: the part of a captioner that reads the caption word by word.

The captioner (captioning/model.py) keeps what every cell shares: it embeds the words (W_embed),
turns the image into memory (N, L, M) with W_proj, b_proj (one token for a flat feature, one per
grid cell for a grid), and scores the next word from the cell's output with W_vocab, b_vocab. A
cell owns the rest: its parameters, its state, one step (decoding) and the whole sequence
(training); a cell whose record `attends` also says where it looked. Its facts (name, defaults,
whether it needs a grid) are its record in engine/catalogue.py CAPTION_CELLS.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from a3cli.engine.layers.losses import temporal_softmax_loss

StateT = TypeVar("StateT", bound="State")


@dataclasses.dataclass
class State:
    """A cell's state while decoding: tensors whose first dimension is the caption."""

    def select(self: StateT, rows: Tensor) -> StateT:
        """The state of the captions `rows` (beam search keeps some and repeats others)."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)})


class Cell(nn.Module):
    """The base of every cell; `memory_dim` is the width the image is projected to, `output_dim` the width the
    vocabulary layer reads."""

    init_std: float | None = None  # set: the captioner's own weights are drawn from N(0, init_std) too

    @staticmethod
    def widths(wordvec_dim: int, hidden_dim: int) -> tuple[int, int]:
        """(memory_dim, output_dim) of a cell of these sizes: the assignment's cells work at hidden_dim."""
        return hidden_dim, hidden_dim

    def sequence(self, x: Tensor, memory: Tensor) -> Tensor:
        """Word vectors (N, T, W) read from the start, with the image's memory (N, L, M) -> outputs (N, T, H)."""
        raise NotImplementedError

    def start(self, memory: Tensor) -> State:
        """The state before the first word."""
        raise NotImplementedError

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One word vector per caption (N, W) -> the output (N, H) and the next state."""
        raise NotImplementedError

    def attention(self, x: Tensor, memory: Tensor) -> Tensor:
        """Where the cell looked in the memory at each step: (N, T, L) (cells whose record attends)."""
        raise NotImplementedError

    def late_parameters(self, dtype: torch.dtype) -> None:
        """Parameters drawn after the captioner's vocabulary layer: the attention LSTM's Wattn, so that a seed
        gives the same attention captioner as it does in `make weights` (weights/README.md)."""

    def config(self) -> dict[str, Any]:
        """The cell's own settings that building it again needs (stored in checkpoints)."""
        return {}

    # The assignment's RNN loss: summed over time, averaged over the captions.
    loss = staticmethod(temporal_softmax_loss)


class AssignmentCell(Cell):
    """A cell with the assignment's Wx (W, gates·H), Wh (H, gates·H) and b (gates·H): names, shapes and
    initialisation."""

    gates = 1
    Wx: nn.Parameter
    Wh: nn.Parameter
    b: nn.Parameter

    def __init__(self, wordvec_dim: int, hidden_dim: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        W, H, k = wordvec_dim, hidden_dim, self.gates
        self.Wx = nn.Parameter(torch.randn(W, k * H, dtype=dtype) * (1 / math.sqrt(W)))
        self.Wh = nn.Parameter(torch.randn(H, k * H, dtype=dtype) * (1 / math.sqrt(H)))
        self.b = nn.Parameter(torch.zeros(k * H, dtype=dtype))
