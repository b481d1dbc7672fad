"""The assignment's vanilla RNN cell: h_t = tanh(x_t·Wx + h_{t-1}·Wh + b), h_0 the projected image."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from a3cli.engine.captioning.cells.base import AssignmentCell, State
from a3cli.engine.layers.rnn import rnn_forward, rnn_step_forward


@dataclasses.dataclass
class RNNState(State):
    h: Tensor


class RNNCell(AssignmentCell):
    gates = 1

    def sequence(self, x: Tensor, memory: Tensor) -> Tensor:
        return rnn_forward(x, memory[:, 0], self.Wx, self.Wh, self.b)

    def start(self, memory: Tensor) -> RNNState:
        return RNNState(memory[:, 0])

    def step(self, x: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:  # type: ignore[override]
        h = rnn_step_forward(x, state.h, self.Wx, self.Wh, self.b)
        return h, RNNState(h)
