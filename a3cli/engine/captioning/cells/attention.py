"""The attention LSTM cell: the LSTM with, at every step, the previous hidden state attending over the grid's
projected cells A (N, L, H), whose attended vector enters the gates through Wattn (layers/attention.py);
h_0 = c_0 = the mean over the cells."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from a3cli.engine.captioning.cells.base import AssignmentCell, State
from a3cli.engine.layers.attention import attention_lstm_forward, attention_lstm_step_forward


@dataclasses.dataclass
class AttentionState(State):
    h: Tensor
    c: Tensor
    A: Tensor  # the grid's projected cells


class AttentionCell(AssignmentCell):
    gates = 4
    Wattn: nn.Parameter

    def late_parameters(self, dtype: torch.dtype) -> None:
        H = self.Wh.shape[0]
        self.Wattn = nn.Parameter(torch.randn(H, 4 * H, dtype=dtype) * (1 / math.sqrt(H)))

    def sequence(self, x: Tensor, memory: Tensor) -> Tensor:
        return attention_lstm_forward(x, memory, self.Wx, self.Wh, self.Wattn, self.b)[0]

    def attention(self, x: Tensor, memory: Tensor) -> Tensor:
        return attention_lstm_forward(x, memory, self.Wx, self.Wh, self.Wattn, self.b)[1]

    def start(self, memory: Tensor) -> AttentionState:
        h = memory.mean(dim=1)
        return AttentionState(h, h, memory)

    def step(self, x: Tensor, state: AttentionState) -> tuple[Tensor, AttentionState]:  # type: ignore[override]
        h, c, _ = attention_lstm_step_forward(x, state.h, state.c, state.A, self.Wx, self.Wh, self.Wattn, self.b)
        return h, AttentionState(h, c, state.A)
