"""The assignment's CaptioningRNN as an nn.Module, and its decoders.

The parameters are exactly the assignment's (names, shapes, initialisation), and
the loss is built from the engine's cores with their hand-derived backward
passes: word_embedding_forward, rnn_forward / lstm_forward,
temporal_affine_forward and temporal_softmax_loss. So with the assignment's
fixed test parameters it gives the assignment's reference losses.

cell_type "attention" (beyond the assignment, as EECS 498's A4): the features are a
grid of L cells, each projected by W_proj to H; h0 = c0 = their mean, and every
step attends over the cells (layers/attention.py), with one more matrix Wattn.
With cell_positions, each cell's projection also gets a learned vector of its
place, W_pos (L, H): a cell's features alone do not say whether it is left or
right of another, and the captions name shapes in order of place.

Decoding: `sample` is the assignment's greedy decoder; `beam_search` keeps the
K best partial captions (with length normalisation); `sample_random` draws
words with a temperature and optional top-k. With `max_word_run` set (a loaded
checkpoint sets it to the longest run of one word in its training captions), no
decoder repeats a word more times in a row: greedy and drawn captions end there
(<END>), beam search drops such continuations. Far from its training pictures a
captioner otherwise tends to say one word over and over to the last step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from a3cli.engine.captioning.checkpoint import CaptionCheckpoint
from a3cli.engine.captioning.vocab import END, NULL, START, UNK
from a3cli.engine.catalogue import CAPTION_SAMPLE_DEFAULTS
from a3cli.engine.errors import A3Error
from a3cli.engine.layers.attention import attention_lstm_forward, attention_lstm_step_forward
from a3cli.engine.layers.embedding import temporal_affine_forward, word_embedding_forward
from a3cli.engine.layers.losses import temporal_softmax_loss
from a3cli.engine.layers.rnn import lstm_forward, lstm_step_forward, rnn_forward, rnn_step_forward

PARAM_NAMES = ("W_embed", "W_proj", "b_proj", "Wx", "Wh", "b", "W_vocab", "b_vocab")
MAX_LENGTH = CAPTION_SAMPLE_DEFAULTS["max_length"]  # the assignment's longest sampled caption
GATES = {"rnn": 1, "lstm": 4, "attention": 4}  # per cell type: the blocks of H columns of Wx, Wh and b
State = tuple  # (h, c, A) while decoding: c is None for rnn, A (the projected grid) None but for attention


class CaptioningRNN(nn.Module):
    """Image features (N, D) -> captions, with a vanilla RNN, an LSTM, or an attention LSTM.

    h0 = features·W_proj + b_proj; each step reads the previous word's vector
    (W_embed) and scores the next word with W_vocab, b_vocab. For attention, D is a
    grid of `grid_cells` cells flattened channel-major, (C, L) -> C·L, as features.py
    pools it, and W_proj maps each cell's C channels to H.
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
    ):
        super().__init__()
        if cell_positions and cell_type != "attention":
            raise A3Error("cell positions are for the attention captioner (--cell-type attention)")
        if cell_type == "attention" and (grid_cells < 2 or input_dim % grid_cells):
            raise A3Error(
                f"an attention captioner needs features on a grid of at least 2 cells "
                f"(got {input_dim}-d features on {grid_cells} cell(s))"
            )
        self.cell_type, self.input_dim = cell_type, input_dim
        self.grid_cells = grid_cells if cell_type == "attention" else 1
        self.cell_positions = cell_positions
        self.max_word_run: int | None = None  # decoding repeats no word more times in a row (None: no limit)
        V, D, W, H = len(word_to_idx), input_dim // self.grid_cells, wordvec_dim, hidden_dim
        self.word_to_idx = dict(word_to_idx)
        words = {i: w for w, i in word_to_idx.items()}
        self.idx_to_word = [words.get(i, UNK) for i in range(V)]  # the word of each id the model can emit
        self._null = word_to_idx[NULL]
        self._start = word_to_idx.get(START)
        self._end = word_to_idx.get(END)
        k = GATES[cell_type]  # (the cell type was checked when its config was made: config.TrainConfig)

        def randn(*shape: int, scale: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, dtype=dtype) * scale)

        # Initialisation as in the assignment.
        self.W_embed = randn(V, W, scale=1 / 100)
        self.W_proj = randn(D, H, scale=1 / math.sqrt(D))
        self.b_proj = nn.Parameter(torch.zeros(H, dtype=dtype))
        self.Wx = randn(W, k * H, scale=1 / math.sqrt(W))
        self.Wh = randn(H, k * H, scale=1 / math.sqrt(H))
        self.b = nn.Parameter(torch.zeros(k * H, dtype=dtype))
        self.W_vocab = randn(H, V, scale=1 / math.sqrt(H))
        self.b_vocab = nn.Parameter(torch.zeros(V, dtype=dtype))
        if cell_type == "attention":
            self.Wattn = randn(H, k * H, scale=1 / math.sqrt(H))
            if cell_positions:
                self.W_pos = randn(self.grid_cells, H, scale=1 / math.sqrt(H))

    @property
    def params(self) -> dict[str, nn.Parameter]:
        """The parameters by the assignment's names (and Wattn, W_pos for attention)."""
        names = (
            PARAM_NAMES
            + (("Wattn",) if self.cell_type == "attention" else ())
            + (("W_pos",) if self.cell_positions else ())
        )
        return {name: getattr(self, name) for name in names}

    def project_grid(self, features: Tensor) -> Tensor:
        """Flat grid features (N, C·L) -> each cell projected to H: A (N, L, H)."""
        N, L = features.shape[0], self.grid_cells
        cells = features.to(self.W_proj.dtype).view(N, -1, L).transpose(1, 2)
        A = cells @ self.W_proj + self.b_proj
        return A + self.W_pos if self.cell_positions else A

    def loss(self, features: Tensor, captions: Tensor) -> Tensor:
        """The assignment's teacher-forced loss: summed over time, averaged over the batch."""
        captions = captions.long()
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        x = word_embedding_forward(captions_in, self.W_embed)
        if self.cell_type == "attention":
            h, _ = attention_lstm_forward(x, self.project_grid(features), self.Wx, self.Wh, self.Wattn, self.b)
        else:
            h0 = features.to(self.W_proj.dtype) @ self.W_proj + self.b_proj
            core = rnn_forward if self.cell_type == "rnn" else lstm_forward
            h = core(x, h0, self.Wx, self.Wh, self.b)
        scores = temporal_affine_forward(h, self.W_vocab, self.b_vocab)
        return temporal_softmax_loss(scores, captions_out, mask)

    forward = loss

    @torch.no_grad()
    def attention_weights(self, features: Tensor, captions: Tensor) -> Tensor:
        """Where an attention captioner looks while reading `captions` (N, T) from <START>: (N, T, L).

        Row t holds the cell weights of the step that predicts word t + 1, so feeding a
        generated caption gives where the model looked for each of its words.
        """
        x = word_embedding_forward(captions.long(), self.W_embed)
        return attention_lstm_forward(x, self.project_grid(features), self.Wx, self.Wh, self.Wattn, self.b)[1]

    # ---- decoding --------------------------------------------------------------------------

    def _need_start(self) -> tuple[int, int]:
        """The ids of <START> and <END>, which generating a caption needs."""
        if self._start is None or self._end is None:
            raise A3Error("this vocabulary has no <START>/<END> tokens, so captions cannot be generated")
        return self._start, self._end

    def _step(self, words: Tensor, state: State) -> tuple[Tensor, State]:
        """One decoding step: previous words (N,) -> next-word scores (N, V) and the new state."""
        h, c, A = state
        x = self.W_embed[words]
        if self.cell_type == "rnn":
            h = rnn_step_forward(x, h, self.Wx, self.Wh, self.b)
        elif self.cell_type == "lstm":
            h, c = lstm_step_forward(x, h, c, self.Wx, self.Wh, self.b)
        else:
            h, c, _ = attention_lstm_step_forward(x, h, c, A, self.Wx, self.Wh, self.Wattn, self.b)
        return h @ self.W_vocab + self.b_vocab, (h, c, A)

    def _init_state(self, features: Tensor) -> State:
        if self.cell_type == "attention":
            A = self.project_grid(features)
            h = A.mean(dim=1)
            return h, h, A
        h = features.to(self.W_proj.dtype) @ self.W_proj + self.b_proj
        return h, (torch.zeros_like(h) if self.cell_type == "lstm" else None), None

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
            picked = pick(scores)
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
            total = (logp[:, None] + self._without_long_runs(scores.log_softmax(dim=1), beams)).flatten()
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
            state = tuple(s[rows] if s is not None else None for s in state)
        if not finished:  # nothing ended within max_length: take the best unfinished one
            finished = [(float(logp[0]) / max(len(beams[0]), 1) ** alpha, beams[0])]
        return max(finished, key=lambda item: item[0])[1][:max_length]

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
        "hidden_dim": model.W_proj.shape[1],
        "cell_type": model.cell_type,
        "grid_cells": model.grid_cells,
        "cell_positions": model.cell_positions,
    }


def model_from_checkpoint(ckpt: CaptionCheckpoint, device: torch.device | str = "cpu") -> CaptioningRNN:
    """The model a captioner checkpoint describes, with its weights, in eval mode."""
    try:
        model = CaptioningRNN(ckpt.word_to_idx, **ckpt.model_config)
        model.load_state_dict(ckpt.weights)
    except (KeyError, TypeError, RuntimeError) as error:
        raise A3Error(f"captioner checkpoint is incomplete or damaged: {str(error).splitlines()[0]}") from None
    return model.to(device).eval()
