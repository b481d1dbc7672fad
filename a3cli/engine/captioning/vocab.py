"""The captioning vocabulary in the assignment's form: special tokens first, captions as index rows."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIAL_TOKENS = (NULL, START, END, UNK)


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers; punctuation goes (as in the assignment's preprocessing)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def build_vocab(token_lists: Iterable[Sequence[str]], min_count: int = 1) -> tuple[dict[str, int], list[str]]:
    """Special tokens first, then words seen at least `min_count` times, most frequent first."""
    counts = Counter(word for tokens in token_lists for word in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    idx_to_word = list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS]
    return {w: i for i, w in enumerate(idx_to_word)}, idx_to_word


def encode(tokens: Sequence[str], word_to_idx: dict[str, int], max_length: int) -> list[int]:
    """`<START>` words `<END>`, padded with `<NULL>` to max_length + 2; unknown words become `<UNK>`."""
    unk = word_to_idx[UNK]
    ids = [word_to_idx.get(w, unk) for w in tokens[:max_length]]
    ids = [word_to_idx[START]] + ids + [word_to_idx[END]]
    return ids + [word_to_idx[NULL]] * (max_length + 2 - len(ids))


def decode(ids: Iterable[int], idx_to_word: Sequence[str]) -> list[str]:
    """Words up to the first `<END>`, without `<NULL>` and `<START>`."""
    words = []
    for i in ids:
        word = idx_to_word[int(i)]
        if word == END:
            break
        if word not in (NULL, START):
            words.append(word)
    return words
