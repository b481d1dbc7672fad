"""Find an ImageNet class by index or by any of its names.

torchvision gives each class one short name ("tabby", "espresso"), but people ask
for "tabby cat", "Egyptian cat" or "tarantula": the WordNet lemmas hold every
synonym. A name matches case-insensitively and ignoring extra spaces, "_" and
"-"; an unknown name fails with the closest names, so a typo costs one retry.
No torch import here: the lookup is plain text work.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from functools import lru_cache

from a3cli.engine.errors import A3Error


def normalize_name(name: str) -> str:
    """Lower case, '_' and '-' as spaces, runs of spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]", " ", name)).strip().lower()


@lru_cache(maxsize=1)
def imagenet_synonyms() -> list[list[str]]:
    """For each of the 1000 classes (torchvision's order), its WordNet lemmas."""
    from a3cli.engine.backbones.imagenet_lemmas import LEMMAS

    return [[name.strip() for name in line.split("\t", 1)[1].split(",")] for line in LEMMAS.splitlines()]


def class_names(classes: Sequence[str]) -> list[list[str]]:
    """Every name of every class: the backbone's own name first, then the lemmas (ImageNet-1k only)."""
    lemmas = imagenet_synonyms() if len(classes) == 1000 else [[] for _ in classes]
    result = []
    for name, synonyms in zip(classes, lemmas):
        names = [name] + [s for s in synonyms if normalize_name(s) != normalize_name(name)]
        result.append(names)
    return result


def class_label(index: int, classes: Sequence[str]) -> str:
    """'281 tabby (tabby, tabby cat)': an index with the names that find it."""
    names = class_names(classes)[index]
    return f"{index} {names[0]}" + (f" ({', '.join(names)})" if len(names) > 1 else "")


def resolve_class(spec: str | int, classes: Sequence[str]) -> int:
    """Class index for an index ("281") or a name matching any synonym ("Egyptian cat").

    The backbone's own names are tried first (so "crane" is the machine, 517, and
    "crane bird" the bird); a name shared by several classes is refused with the
    candidates rather than guessed.
    """
    text = str(spec).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        index = int(text)
        if not 0 <= index < len(classes):
            raise A3Error(f"class index {index} is out of range: use 0 to {len(classes) - 1} or a class name")
        return index
    wanted = normalize_name(text)
    if not wanted:
        raise A3Error("empty class name: give an ImageNet class name or index")
    names = class_names(classes)
    for candidates in (
        [i for i, n in enumerate(names) if normalize_name(n[0]) == wanted],
        [i for i, n in enumerate(names) if any(normalize_name(s) == wanted for s in n)],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            listed = "; ".join(class_label(i, classes) for i in candidates)
            raise A3Error(f"class name {text!r} is ambiguous: {listed}; give the index or a longer name")
    raise A3Error(f"unknown class {text!r}; closest: {', '.join(suggestions(text, classes))}")


def suggestions(text: str, classes: Sequence[str], count: int = 5) -> list[str]:
    """The closest class names to `text`, as 'name (index)': names containing it as a word, then near spellings."""
    wanted = normalize_name(text)
    by_name: dict[str, tuple[str, int]] = {}  # normalised name -> (name as written, index)
    for index, names in enumerate(class_names(classes)):
        for name in names:
            by_name.setdefault(normalize_name(name), (name, index))
    close = difflib.get_close_matches(wanted, list(by_name), n=count, cutoff=0.6)
    containing = [n for n in by_name if wanted in n.split() or (len(wanted) >= 4 and wanted in n)]
    picked = list(dict.fromkeys(sorted(containing, key=len) + close))[:count]
    if not picked:  # nothing near: fall back to the loosest spelling matches
        picked = difflib.get_close_matches(wanted, list(by_name), n=count, cutoff=0.0)
    return ["{} ({})".format(*by_name[name]) for name in picked]
