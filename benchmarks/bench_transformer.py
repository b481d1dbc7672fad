"""The Transformer captioner's speed: decoding with kept keys and values against recomputing the prefix, and a
training step of its decoder against PyTorch's own, in one process on the CPU.

  python benchmarks/bench_transformer.py            # both
  python benchmarks/bench_transformer.py decode     # greedy captions of 30 words for 100 images
  python benchmarks/bench_transformer.py train      # forward + backward of the decoder layers

decode: a3's greedy decoding (each layer keeps the keys and values of the words so far, so a new
word costs its own row) against the same model recomputing the whole prefix at every word (what
the assignment's `sample` does); the captions must be the same. Target: at least 3x faster.
train: forward and backward of the word vectors with positions through 2 post-norm decoder layers
(width 256, 4 heads, feed-forward 2048, dropout 0.1), batch 50 of 16 words over one memory token,
against torch.nn.TransformerDecoder of the same sizes. Target: at most 1.2x its time.
Timings are medians of interleaved rounds.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn

from a3cli.engine import CaptioningRNN
from a3cli.engine.captioning.cells.base import State
from a3cli.engine.layers.transformer import causal_mask

WORDS = {"<NULL>": 0, "<START>": 1, "<END>": 2, **{f"w{i}": i + 3 for i in range(1001)}}
N, T, D, E, HEADS, LAYERS, FFN = 50, 16, 512, 256, 4, 2, 2048


def captioner() -> CaptioningRNN:
    torch.manual_seed(0)
    model = CaptioningRNN(WORDS, D, E, cell_type="transformer", num_heads=HEADS, num_layers=LAYERS, ffn_dim=FFN)
    return model


class Prefix(State):
    """The words read so far: decoding that recomputes them all at every step."""

    def __init__(self, x: torch.Tensor, memory: torch.Tensor) -> None:
        self.x, self.memory = x, memory


def recomputing_greedy(model: CaptioningRNN, features: torch.Tensor, length: int) -> torch.Tensor:
    cell = model.cell
    start, step = cell.start, cell.step

    def prefix_start(memory: torch.Tensor) -> Prefix:
        return Prefix(memory.new_zeros(memory.shape[0], 0, memory.shape[2]), memory)

    def prefix_step(x: torch.Tensor, state: Prefix) -> tuple[torch.Tensor, Prefix]:
        words = torch.cat([state.x, x[:, None]], dim=1)
        return cell.sequence(words, state.memory)[:, -1], Prefix(words, state.memory)

    cell.start, cell.step = prefix_start, prefix_step  # type: ignore[method-assign]
    try:
        return model.sample(features, max_length=length)
    finally:
        cell.start, cell.step = start, step  # type: ignore[method-assign]


def timed(work, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def bench_decode(rounds: int = 3) -> None:
    model = captioner().eval()
    features = torch.randn(100, D, generator=torch.Generator().manual_seed(1))
    kept, recomputed = model.sample(features, max_length=30), recomputing_greedy(model, features, 30)
    assert torch.equal(kept, recomputed), "decoding with kept keys and values changed the captions"
    ours, again = [], []
    for _ in range(rounds):  # interleaved
        ours.append(timed(lambda: model.sample(features, max_length=30), 1))
        again.append(timed(lambda: recomputing_greedy(model, features, 30), 1))
    a, b = statistics.median(ours), statistics.median(again)
    words = int((kept != 0).sum())
    print(f"decode: 100 captions, {words} words: kept keys and values {a:.3f} s, recomputing the prefix {b:.3f} s")
    print(f"ratio recomputing / kept = {b / a:.2f}   (target >= 3)")


def torch_decoder() -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(E, HEADS, FFN, dropout=0.1, batch_first=True)
    return nn.TransformerDecoder(layer, num_layers=LAYERS)


def bench_train(rounds: int = 7, steps: int = 5) -> None:
    cell = captioner().cell.train()
    theirs = torch_decoder().train()
    x, memory = torch.randn(N, T, E), torch.randn(N, 1, E)
    blocked = ~causal_mask(T)  # PyTorch's mask: True = may not attend

    def ours_step() -> None:
        for _ in range(steps):
            cell.zero_grad(set_to_none=True)
            cell.sequence(x, memory).square().mean().backward()

    def theirs_step() -> None:
        for _ in range(steps):
            theirs.zero_grad(set_to_none=True)
            theirs(cell.positions(x), memory, tgt_mask=blocked).square().mean().backward()

    ours_step(), theirs_step()  # warm-up
    ours, pytorch = [], []
    for _ in range(rounds):
        ours.append(timed(ours_step, 1) / steps)
        pytorch.append(timed(theirs_step, 1) / steps)
    a, b = statistics.median(ours), statistics.median(pytorch)
    print(f"train: forward + backward, batch {N} x {T} words: a3 {1000 * a:.1f} ms, ", end="")
    print(f"torch.nn.TransformerDecoder {1000 * b:.1f} ms")
    print(f"ratio a3 / torch = {a / b:.2f}   (target <= 1.2)")


def main() -> None:
    parts = sys.argv[1:] or ["decode", "train"]
    if "decode" in parts:
        bench_decode()
    if "train" in parts:
        bench_train()


if __name__ == "__main__":
    main()
