"""The caption cells, one module each, and the class of each cell the catalogue's records name."""

from a3cli.engine.captioning.cells.attention import AttentionCell
from a3cli.engine.captioning.cells.base import Cell, State
from a3cli.engine.captioning.cells.lstm import LSTMCell
from a3cli.engine.captioning.cells.rnn import RNNCell
from a3cli.engine.captioning.cells.transformer import TransformerCell

CELLS: dict[str, type[Cell]] = {
    "rnn": RNNCell,
    "lstm": LSTMCell,
    "attention": AttentionCell,
    "transformer": TransformerCell,
}

__all__ = ["CELLS", "Cell", "State"]
