"""The assignment's LSTM cell: gates i, f, o, g in the four H-column blocks of Wx, Wh and b; h_0 the projected
image, c_0 zero."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from a3cli.engine.captioning.cells.base import AssignmentCell, State
from a3cli.engine.layers.rnn import lstm_forward, lstm_step_forward


@dataclasses.dataclass
class LSTMState(State):
    h: Tensor
    c: Tensor


class LSTMCell(AssignmentCell):
    gates = 4

    def sequence(self, x: Tensor, memory: Tensor) -> Tensor:
        return lstm_forward(x, memory[:, 0], self.Wx, self.Wh, self.b)

    def start(self, memory: Tensor) -> LSTMState:
        h = memory[:, 0]
        return LSTMState(h, torch.zeros_like(h))

    def step(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:  # type: ignore[override]
        h, c = lstm_step_forward(x, state.h, state.c, self.Wx, self.Wh, self.b)
        return h, LSTMState(h, c)
