"""CIDEr-D: hand-computed cases, and coco-caption's own numbers (pycocoevalcap's Cider) on fixed captions."""

from __future__ import annotations

import math

import pytest

from a3cli.engine.captioning.evaluation import cider_d

# Fixed captions, and what pycocoevalcap 1.2's `Cider().compute_score` gives for them (computed once, in a
# separate venv, on these same space-separated strings, without its Java tokenizer).
REFERENCES = [
    [
        "a man riding a horse on a beach",
        "a person rides a brown horse along the sea",
        "man on horseback near the water",
    ],
    ["a cat sitting on a sofa", "an orange cat lies on the couch", "a cat on a red sofa looking at the camera"],
    ["two dogs playing in the snow", "a pair of dogs run through snow", "dogs play together outside in winter"],
    ["a plate of food with broccoli and rice", "rice and vegetables on a white plate"],
    [
        "a red double decker bus on a city street",
        "a bus driving down the road",
        "a red bus parked by the curb near a building",
    ],
]
HYPOTHESES = [
    "a man riding a horse on the beach",
    "a cat on a couch",
    "a dog running in the snow with another dog",
    "a plate of rice",
    "a red bus on a street in a city",
]
ODD_HYPOTHESES = ["horse", "", "dogs dogs dogs dogs dogs in snow", "a plate of food with broccoli and rice", "bus"]
PYCOCOEVALCAP = {"all five": 1.8553909471541872, "first three": 1.8881141600619664, "odd": 1.4084097909929656}
PYCOCOEVALCAP_PER_IMAGE = [
    2.9208433326053447,
    1.9114576731730837,
    0.8059727843307714,
    1.9785161883985194,
    1.6601647572632148,
]


def words(captions):
    return [caption.split() for caption in captions]


def test_cider_d_matches_coco_caption():
    refs = [words(image) for image in REFERENCES]
    assert cider_d(refs, words(HYPOTHESES)) == pytest.approx(PYCOCOEVALCAP["all five"], abs=1e-6)
    assert cider_d(refs[:3], words(HYPOTHESES[:3])) == pytest.approx(PYCOCOEVALCAP["first three"], abs=1e-6)
    assert cider_d(refs, words(ODD_HYPOTHESES)) == pytest.approx(PYCOCOEVALCAP["odd"], abs=1e-6)
    assert sum(PYCOCOEVALCAP_PER_IMAGE) / 5 == pytest.approx(PYCOCOEVALCAP["all five"], abs=1e-12)


def test_cider_d_of_identical_captions_is_ten_and_of_no_shared_ngram_zero():
    refs = [[["a", "red", "circle", "left", "of", "a", "square"]], [["two", "dogs", "run", "on", "grass"]]]
    assert cider_d(refs, [refs[0][0], refs[1][0]]) == pytest.approx(10.0)
    assert cider_d(refs, [["one", "blue", "kite"], ["sky", "over", "hills"]]) == 0.0
    assert cider_d(refs, []) == 0.0


def test_cider_d_by_hand_clipping_and_length_penalty():
    # Two images, every n-gram in one image's references only: each weight is tf * ln 2.
    refs = [[["a", "b"]], [["c", "d"]]]
    # Image 1: unigrams and bigrams equal (cosine 1 each), no 3- or 4-grams: 10 * (1 + 1) / 4 = 5.
    # Image 2: "c" against "c d": unigram cosine 1/sqrt(2), no bigram; lengths (bigram counts) 0 and 1.
    second = 10 * (1 / math.sqrt(2)) * math.exp(-1 / 72) / 4
    assert cider_d(refs, [["a", "b"], ["c"]]) == pytest.approx((5 + second) / 2)
    # Clipping: saying "a" three times earns no more than the reference's one "a".
    once, thrice = cider_d(refs, [["a"], ["c"]]), cider_d(refs, [["a", "a", "a"], ["c"]])
    assert thrice < once
    # An n-gram in every image's references says nothing (idf 0).
    shared = [[["the", "x"]], [["the", "y"]]]
    assert cider_d(shared, [["the"], ["the"]]) == 0.0
