"""The assignment's CaptioningRNN as an nn.Module, with any caption cell, and its decoders.

The captioner holds the assignment's W_embed, W_proj, b_proj, W_vocab and b_vocab and hands
every step to its cell (captioning/cells: the assignment's RNN and LSTM with their
parameters Wx, Wh, b and hand-derived backward passes, the attention LSTM). The loss is
built from the engine's cores: word_embedding_forward, the cell's sequence,
temporal_affine_forward and the cell's loss, so with the assignment's fixed test
parameters it gives the assignment's reference losses.

A cell that reads tokens sees the image as a grid of L cells, each projected by W_proj;
with cell_positions, each cell's projection also gets a learned vector of its place,
W_pos (L, M): a cell's features alone do not say whether it is left or right of another,
and the captions name shapes in order of place.

Decoding works on any cell: `sample` is the assignment's greedy decoder; `beam_search`
keeps the K best partial captions (with length normalisation); `sample_random` draws
words with a temperature and optional top-k. With `max_word_run` set (a loaded
checkpoint sets it to the longest run of one word in its training captions), no
decoder repeats a word more times in a row: greedy and drawn captions end there
(<END>), beam search drops such continuations. With `repeat_limits` set (captioning/repeats.py),
no decoder repeats a word or an n-gram more often than the training captions do: such a word is masked.
Far from its training pictures a captioner otherwise tends to loop to the last step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from a3cli.engine.captioning.cells import CELLS, Cell, State
from a3cli.engine.captioning.checkpoint import CaptionCheckpoint
from a3cli.engine.captioning.repeats import RepeatLimits, repeated_too_often
from a3cli.engine.captioning.vocab import END, NULL, START, UNK
from a3cli.engine.catalogue import CAPTION_CELLS, CAPTION_SAMPLE_DEFAULTS
from a3cli.engine.errors import A3Error
from a3cli.engine.layers.embedding import temporal_affine_forward, word_embedding_forward

MAX_LENGTH = CAPTION_SAMPLE_DEFAULTS["max_length"]  # the assignment's longest sampled caption


class CaptioningRNN(nn.Module):
    """Image features (N, D) -> captions, with any caption cell (captioning/cells): a vanilla RNN, an LSTM, an
    attention LSTM.

    The captioner keeps the word vectors (W_embed), the image's projection to the cell's memory (W_proj,
    b_proj) and the vocabulary layer (W_vocab, b_vocab); each step goes to the cell. A flat feature is one
    memory token, features.to(dtype)·W_proj + b_proj: the assignment's h0. For a cell that reads tokens, D
    is a grid of `grid_cells` cells flattened channel-major, (C, L) -> C·L, as features.py pools it, and
    W_proj maps each cell's C channels.
    """

    def __init__(
        self,
        word_to_idx: dict[str, int],
        input_dim: int = 512,
        wordvec_dim: int = 128,
        hidden_dim: int = 128,
        cell_type: str = "rnn",
        dtype: torch.dtype = torch.float32,
        grid_cells: int = 1,
        cell_positions: bool = False,
        **cell_options: Any,
    ):
        super().__init__()
        record = CAPTION_CELLS[cell_type]  # (checked when its config was made: config.TrainConfig)
        if cell_positions and not record.tokens:
            raise A3Error(f"cell positions are for the attention captioner, one that reads the grid (not {cell_type})")
        if record.grid and (grid_cells < 2 or input_dim % grid_cells):
            raise A3Error(
                f"an attention captioner needs features on a grid of at least 2 cells "
                f"(got {input_dim}-d features on {grid_cells} cell(s))"
            )
        self.record, self.cell_type, self.input_dim, self.hidden_dim = record, cell_type, input_dim, hidden_dim
        self.grid_cells = grid_cells if record.tokens else 1
        self.cell_positions = cell_positions and self.grid_cells > 1  # one token has no place to learn
        self.max_word_run: int | None = None  # decoding repeats no word more times in a row (None: no limit)
        self.repeat_limits: RepeatLimits | None = None  # nor an n-gram more often than they allow (None: no limit)
        self.word_to_idx = dict(word_to_idx)
        words = {i: w for w, i in word_to_idx.items()}
        self.idx_to_word = [words.get(i, UNK) for i in range(len(word_to_idx))]  # the word of each id it emits
        self._null = word_to_idx[NULL]
        self._start = word_to_idx.get(START)
        self._end = word_to_idx.get(END)
        self.build(CELLS[cell_type], wordvec_dim, hidden_dim, dtype, cell_options)

    def build(self, cell: type[Cell], W: int, H: int, dtype: torch.dtype, options: dict[str, Any]) -> None:
        """The parameters, drawn as the assignment draws them (or from N(0, std) where the cell says)."""
        V, D = len(self.word_to_idx), self.input_dim // self.grid_cells
        M, out = cell.widths(W, H)

        def randn(*shape: int, scale: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, dtype=dtype) * (cell.init_std or scale))

        self.W_embed = randn(V, W, scale=1 / 100)
        self.W_proj = randn(D, M, scale=1 / math.sqrt(D))
        self.b_proj = nn.Parameter(torch.zeros(M, dtype=dtype))
        self.cell = cell(W, H, dtype=dtype, **options)
        self.W_vocab = randn(out, V, scale=1 / math.sqrt(out))
        self.b_vocab = nn.Parameter(torch.zeros(V, dtype=dtype))
        self.cell.late_parameters(dtype)
        if self.cell_positions:
            self.W_pos = randn(self.grid_cells, M, scale=1 / math.sqrt(M))

    @property
    def params(self) -> dict[str, nn.Parameter]:
        """The parameters by the assignment's names: the captioner's, and its cell's (Wx, Wh, b; Wattn...)."""
        own = {name: p for name, p in self.named_parameters(recurse=False)}
        shared = {name: own.pop(name) for name in ("W_embed", "W_proj", "b_proj")}
        return {**shared, **dict(self.cell.named_parameters()), **own}

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        """A state_dict, also one whose cell parameters are named without the "cell." prefix (the captioner's
        parameters then all sat side by side)."""
        own = self.state_dict()
        renamed = {
            key if key in own or f"cell.{key}" not in own else f"cell.{key}": value for key, value in weights.items()
        }
        self.load_state_dict(renamed)

    def memory(self, features: Tensor) -> Tensor:
        """What the cell reads of the image: (N, L, M), one token per grid cell, or one for a flat feature."""
        if self.grid_cells == 1:
            return (features.to(self.W_proj.dtype) @ self.W_proj + self.b_proj).unsqueeze(1)
        N, L = features.shape[0], self.grid_cells
        cells = features.to(self.W_proj.dtype).view(N, -1, L).transpose(1, 2)
        A = cells @ self.W_proj + self.b_proj
        return A + self.W_pos if self.cell_positions else A

    def loss(self, features: Tensor, captions: Tensor) -> Tensor:
        """The teacher-forced loss, as the assignment computes it for the cell (captioning/cells/base.py)."""
        captions = captions.long()
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        x = word_embedding_forward(captions_in, self.W_embed)
        h = self.cell.sequence(x, self.memory(features))
        scores = temporal_affine_forward(h, self.W_vocab, self.b_vocab)
        return self.cell.loss(scores, captions_out, mask)

    forward = loss

    @torch.no_grad()
    def attention_weights(self, features: Tensor, captions: Tensor) -> Tensor:
        """Where a captioner that attends looks while reading `captions` (N, T) from <START>: (N, T, L).

        Row t holds the cell weights of the step that predicts word t + 1, so feeding a
        generated caption gives where the model looked for each of its words.
        """
        x = word_embedding_forward(captions.long(), self.W_embed)
        return self.cell.attention(x, self.memory(features))

    # ---- decoding --------------------------------------------------------------------------

    def _need_start(self) -> tuple[int, int]:
        """The ids of <START> and <END>, which generating a caption needs."""
        if self._start is None or self._end is None:
            raise A3Error("this vocabulary has no <START>/<END> tokens, so captions cannot be generated")
        return self._start, self._end

    def _step(self, words: Tensor, state: State) -> tuple[Tensor, State]:
        """One decoding step: previous words (N,) -> next-word scores (N, V) and the new state."""
        h, state = self.cell.step(self.W_embed[words], state)
        return h @ self.W_vocab + self.b_vocab, state

    def _init_state(self, features: Tensor) -> State:
        return self.cell.start(self.memory(features))

    @torch.no_grad()
    def sample(self, features: Tensor, max_length: int = MAX_LENGTH) -> Tensor:
        """Greedy decoding as in the assignment: (N, max_length) word indices.

        Starts from <START> and feeds back the most likely word; after a caption
        emits <END> the rest of it is <NULL>.
        """
        return self._decode(features, max_length, lambda scores: scores.argmax(dim=1))

    @torch.no_grad()
    def sample_random(
        self,
        features: Tensor,
        max_length: int = MAX_LENGTH,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw each word from softmax(scores / temperature), among the top_k words if given."""
        if temperature <= 0:
            raise A3Error("--temperature must be positive")

        def pick(scores: Tensor) -> Tensor:
            scores = scores / temperature
            if top_k is not None and top_k < scores.shape[1]:
                kth = scores.topk(top_k, dim=1).values[:, -1:]
                scores = scores.masked_fill(scores < kth, float("-inf"))
            return torch.multinomial(scores.softmax(dim=1), 1, generator=generator).squeeze(1)

        return self._decode(features, max_length, pick)

    def _too_long(self, run: Tensor) -> Tensor:
        """Where a word said `run` times in a row says it more often than the training captions ever do."""
        return run > self.max_word_run if self.max_word_run is not None else torch.zeros_like(run, dtype=torch.bool)

    def _decode(self, features: Tensor, max_length: int, pick) -> Tensor:
        start, end = self._need_start()
        N = features.shape[0]
        state = self._init_state(features)
        captions = torch.full((N, max_length), self._null, dtype=torch.long, device=features.device)
        words = torch.full((N,), start, dtype=torch.long, device=features.device)
        run = torch.zeros(N, dtype=torch.long, device=features.device)  # times the last word came in a row
        done = torch.zeros(N, dtype=torch.bool, device=features.device)
        for t in range(max_length):
            scores, state = self._step(words, state)
            picked = pick(self._without_repeats(scores, captions[:, :t]))
            run = torch.where(picked == words, run + 1, 1)
            words = torch.where(self._too_long(run), end, picked)  # one repeat too many ends the caption
            captions[:, t] = torch.where(done, torch.full_like(words, self._null), words)
            done |= words == end
            if bool(done.all()):
                break
        return captions

    @torch.no_grad()
    def beam_search(
        self,
        features: Tensor,
        beam_size: int = 3,
        max_length: int = MAX_LENGTH,
        length_penalty: float = CAPTION_SAMPLE_DEFAULTS["length_penalty"],
    ) -> Tensor:
        """The best caption per image by beam search: (N, max_length) word indices.

        Finished captions are ranked by log-probability / length**length_penalty,
        so longer captions are not punished merely for having more words.
        """
        self._need_start()
        out = torch.full((features.shape[0], max_length), self._null, dtype=torch.long, device=features.device)
        for n in range(features.shape[0]):
            words = self._beam_one(features[n : n + 1], beam_size, max_length, length_penalty)
            out[n, : len(words)] = torch.tensor(words, dtype=torch.long)
        return out

    def _beam_one(self, feature: Tensor, K: int, max_length: int, alpha: float) -> list[int]:
        start, end = self._need_start()
        state = self._init_state(feature)
        beams: list[list[int]] = [[]]  # word lists
        logp = feature.new_zeros(1)  # their log-probabilities
        finished: list[tuple[float, list[int]]] = []
        words = torch.full((1,), start, dtype=torch.long, device=feature.device)
        for _ in range(max_length):
            scores, state = self._step(words, state)
            so_far = torch.tensor(beams, dtype=torch.long, device=feature.device)  # (beams, words so far)
            allowed = self._without_repeats(self._without_long_runs(scores.log_softmax(dim=1), beams), so_far)
            total = (logp[:, None] + allowed).flatten()
            best, flat = total.topk(min(K, total.numel()))
            V = scores.shape[1]
            keep_rows, keep_words, keep_logp = [], [], []
            for value, index in zip(best.tolist(), flat.tolist()):
                if value == float("-inf"):  # only words that repeat too often are left
                    break
                row, word = divmod(index, V)
                if word == end:
                    length = len(beams[row]) + 1
                    finished.append((value / length**alpha, beams[row] + [word]))
                else:
                    keep_rows.append(row)
                    keep_words.append(word)
                    keep_logp.append(value)
            if len(finished) >= K or not keep_rows:
                break
            rows = torch.tensor(keep_rows, device=feature.device)
            beams = [beams[r] + [w] for r, w in zip(keep_rows, keep_words)]
            logp = feature.new_tensor(keep_logp)
            words = torch.tensor(keep_words, dtype=torch.long, device=feature.device)
            state = state.select(rows)
        if not finished:  # nothing ended within max_length: take the best unfinished one
            finished = [(float(logp[0]) / max(len(beams[0]), 1) ** alpha, beams[0])]
        return max(finished, key=lambda item: item[0])[1][:max_length]

    def _without_repeats(self, scores: Tensor, so_far: Tensor) -> Tensor:
        """Next-word scores (N, V) with -inf for the words that would repeat an n-gram of the captions so far
        (N, t) more often than the training captions do, and for <NULL> and <START>, which no caption holds
        (a masked word's score must not fall to them); <END> always stays."""
        if self.repeat_limits is None:
            return scores
        blocked = repeated_too_often(so_far, self.repeat_limits, scores.shape[1])
        blocked[:, [self._null, self._start]] = True
        blocked[:, self._end] = False
        return scores.masked_fill(blocked, float("-inf"))

    def _without_long_runs(self, logp: Tensor, beams: list[list[int]]) -> Tensor:
        """Next-word log-probabilities (beams, V) with -inf where a beam would repeat its last word too often."""
        runs = torch.tensor([trailing_run(words) for words in beams], device=logp.device)
        blocked = self._too_long(runs + 1).nonzero().flatten().tolist()
        if not blocked:
            return logp
        logp = logp.clone()
        logp[blocked, [beams[row][-1] for row in blocked]] = float("-inf")
        return logp


def trailing_run(words: list[int]) -> int:
    """How many times the last word of `words` comes in a row at its end (0 for no words)."""
    run = 0
    while run < len(words) and words[-1 - run] == words[-1]:
        run += 1
    return run


def model_config(model: CaptioningRNN) -> dict:
    """What it takes to build the same model again (stored in checkpoints)."""
    return {
        "input_dim": model.input_dim,
        "wordvec_dim": model.W_embed.shape[1],
        "hidden_dim": model.hidden_dim,
        "cell_type": model.cell_type,
        "grid_cells": model.grid_cells,
        "cell_positions": model.cell_positions,
        **model.cell.config(),
    }


def model_from_checkpoint(ckpt: CaptionCheckpoint, device: torch.device | str = "cpu") -> CaptioningRNN:
    """The model a captioner checkpoint describes, with its weights, in eval mode."""
    try:
        model = CaptioningRNN(ckpt.word_to_idx, **ckpt.model_config)
        model.load_weights(ckpt.weights)
    except (KeyError, TypeError, RuntimeError) as error:
        raise A3Error(f"captioner checkpoint is incomplete or damaged: {str(error).splitlines()[0]}") from None
    return model.to(device).eval()
