"""How often a caption may repeat itself: as often as the training captions do, and no more.

Far from its training pictures a captioner tends to loop ("... above a large blue diamond above a large
blue diamond above ..."). The training captions say how much repetition is real:

- a word may come as often as one training caption holds it (once, if no caption repeats it);
- an n-gram of 2 to LONGEST_NGRAM words as often as one training caption holds any n-gram that long.

Words are counted one by one because each is seen often enough; longer n-grams by their length because
most are seen too rarely to say (a correct caption may repeat one no training caption repeats). Decoders
mask a word that would go past either limit, so the next best word (often <END>) comes instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from a3cli.engine.captioning.vocab import END, NULL, START

LONGEST_NGRAM = 4  # the n-grams BLEU-4 counts; a loop of any period repeats its 4-grams too


@dataclass
class RepeatLimits:
    words: dict[int, int]  # each word that some training caption repeats: the most times one caption holds it
    ngrams: list[int]  # for n = 2..LONGEST_NGRAM: the most times one caption holds one n-gram

    def allowed(self, gram: tuple[int, ...]) -> int:
        """How many times a caption may hold `gram`."""
        return self.words.get(gram[0], 1) if len(gram) == 1 else self.ngrams[len(gram) - 2]

    def as_dict(self) -> dict[str, Any]:
        """As a checkpoint stores it (plain lists, which weights_only loading reads)."""
        return {"words": [[word, times] for word, times in sorted(self.words.items())], "ngrams": self.ngrams}

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> RepeatLimits:
        return cls({int(word): int(times) for word, times in stored["words"]}, [int(n) for n in stored["ngrams"]])


def repeat_limits_of(captions: Tensor, word_to_idx: Mapping[str, int]) -> RepeatLimits:
    """The limits that the encoded training captions (M, T) set. N-grams holding <START>, <END> or <NULL>
    are not counted."""
    special = torch.tensor([word_to_idx[token] for token in (NULL, START, END) if token in word_to_idx])
    is_special = torch.isin(captions, special.to(captions.dtype))
    rows = torch.arange(len(captions))[:, None]
    words: dict[int, int] = {}
    ngrams = []
    for n in range(1, LONGEST_NGRAM + 1):
        if n > captions.shape[1] or len(captions) == 0:
            ngrams.append(1)
            continue
        windows = captions.unfold(1, n, 1)  # (M, T - n + 1, n)
        plain = ~is_special.unfold(1, n, 1).any(dim=2)
        keyed = torch.cat([rows.expand(-1, windows.shape[1])[..., None], windows], dim=2)[plain]
        in_caption, times = torch.unique(keyed, dim=0, return_counts=True)  # (caption, n-gram) and its count
        ngrams.append(int(times.max()) if len(times) else 1)
        if n == 1:
            for word, count in zip(in_caption[times > 1, 1].tolist(), times[times > 1].tolist()):
                words[word] = max(count, words.get(word, 1))
    return RepeatLimits(words, ngrams[1:])


def repeated_too_often(words: Tensor, limits: RepeatLimits, vocabulary: int) -> Tensor:
    """(N, V) True where appending the word to the words so far (N, t) would make an n-gram ending in it come
    more often than `limits` allows."""
    N, t = words.shape
    blocked = torch.zeros(N, vocabulary, dtype=torch.bool, device=words.device)
    for n in range(1, min(LONGEST_NGRAM, t) + 1):
        windows = words.unfold(1, n, 1)  # (N, t - n + 1, n): every n-gram so far
        context = words[:, t - n + 1 :]  # the last n - 1 words, which the next word continues
        follows = (windows[:, :, :-1] == context[:, None, :]).all(dim=2)  # the n-grams with that context
        counts = torch.zeros(N, vocabulary, dtype=torch.long, device=words.device)
        counts.scatter_add_(1, windows[:, :, -1].clamp(0, vocabulary - 1), follows.long())
        if n == 1:
            allowed = torch.ones(vocabulary, dtype=torch.long, device=words.device)
            for word, times in limits.words.items():
                if word < vocabulary:
                    allowed[word] = times
            blocked |= counts >= allowed
        else:
            blocked |= counts >= limits.ngrams[n - 2]
    return blocked
