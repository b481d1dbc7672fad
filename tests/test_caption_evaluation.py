"""How good a captioner is: corpus BLEU against every reference, exact matches counted by number of shapes."""

from __future__ import annotations

import pytest

from a3cli.engine.captioning.evaluation import bleu, exact_match, format_exact, shapes_exact_match
from a3cli.engine.captioning.shapes import count_objects, shapes_split


def test_bleu_uses_all_references():
    refs = [
        [["a", "red", "circle", "left", "of", "a", "square"]],
        [["one", "big", "brown", "dog", "runs"], ["a", "big", "dog", "is", "running"]],
    ]
    assert bleu(refs, [refs[0][0], refs[1][1]]) == pytest.approx({f"bleu{n}": 1.0 for n in range(1, 5)})
    scores = bleu([[["a", "b", "c", "d"]]], [["a", "b", "x", "y"]])
    assert scores["bleu1"] == pytest.approx(0.5) and scores["bleu2"] == pytest.approx((0.5 * 1 / 3) ** 0.5)


def test_exact_match_counts_whole_captions_by_number_of_objects():
    refs = [
        [["a", "red", "circle"]],
        [["a", "red", "circle", "left", "of", "a", "blue", "square"]],
        [["a", "dog"], ["one", "dog"]],
        [["a", "small", "red", "circle"]],
    ]
    hyps = [
        ["a", "red", "circle"],
        ["a", "blue", "square", "left", "of", "a", "red", "circle"],
        ["one", "dog"],
        ["a", "small", "red"],
    ]
    result = exact_match(refs, hyps, [1, 2, 1, 1])
    assert (result["correct"], result["total"], result["rate"]) == (2, 4, 0.5)
    assert result["by_objects"] == {
        "1": {"correct": 2, "total": 3, "rate": 2 / 3},
        "2": {"correct": 0, "total": 1, "rate": 0.0},
    }
    assert format_exact(result) == "2/4 (50.0 %); 1 shape 2/3, 2 shapes 0/1"
    assert "by_objects" not in exact_match(refs, hyps)
    assert [count_objects(s.caption().split()) for s in shapes_split("test", 50)] == [
        len(s.objects) for s in shapes_split("test", 50)
    ]


def test_shapes_captions_are_judged_against_their_one_truth_by_number_of_shapes():
    truths = [s.caption() for s in shapes_split("test", 3)]
    captions = [truths[0], truths[1] + " of", truths[2]]
    result = shapes_exact_match(truths, captions)
    assert (result["correct"], result["total"]) == (2, 3)
    assert sum(v["total"] for v in result["by_objects"].values()) == 3
    assert result == exact_match(
        [[t.split()] for t in truths], [c.split() for c in captions], [len(s.objects) for s in shapes_split("test", 3)]
    )
