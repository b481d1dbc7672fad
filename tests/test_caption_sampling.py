"""Captioning with a trained captioner: the decoding settings, pictures to captions and attention maps, no runs of
one word, the note."""

from __future__ import annotations

import itertools

import pytest
import torch

from a3cli.engine.captioning import sampling
from a3cli.engine.captioning.checkpoint import CaptionCheckpoint
from a3cli.engine.captioning.data import CaptionData, Split, longest_word_run
from a3cli.engine.captioning.decoding import Decoding, generate_captions
from a3cli.engine.captioning.features import FeatureSpec, features_of
from a3cli.engine.captioning.model import CaptioningRNN
from a3cli.engine.captioning.repeats import LONGEST_NGRAM, RepeatLimits, repeat_limits_of, repeated_too_often
from a3cli.engine.captioning.sampling import (
    SHAPES_FAR,
    SHAPES_NEAR,
    UNRECORDED_WORD_RUN,
    far_from_training,
    repeat_limits,
    shown_caption,
    training_note,
    word_run_limit,
)
from a3cli.engine.captioning.shapes import draw_scene, shapes_split, shapes_vocab
from a3cli.engine.captioning.training import CaptionTraining, TrainConfig
from a3cli.engine.captioning.vocab import encode
from a3cli.engine.distributed import World
from a3cli.engine.errors import A3Error
from a3cli.engine.files import SHIPPED_CAPTIONER
from a3cli.engine.images import load_image

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_decoding_is_checked_when_it_is_made():
    with pytest.raises(A3Error, match="at least 1"):
        Decoding(beam_size=0)
    with pytest.raises(A3Error, match="not both"):
        Decoding(beam_size=2, temperature=1.0)
    assert Decoding(beam_size=3).max_length == Decoding().max_length


def test_pictures_become_features_once_for_their_captions_and_the_attention_maps(photos, lite0, monkeypatch):
    from a3cli.engine.captioning.sampling import caption_attention

    pictures = [load_image(photos[name]) for name in ("coffee", "chelsea", "rocket")]
    spec = FeatureSpec(layer="block4", image_size=64, grid=2)
    features = features_of(lite0, pictures, spec)
    torch.manual_seed(0)
    model = CaptioningRNN(shapes_vocab()[0], input_dim=features.shape[1], cell_type="attention", grid_cells=4).eval()
    ckpt = CaptionCheckpoint(feature_spec=spec.as_dict(), feature_norm=None, source="coco_json")
    made = []
    monkeypatch.setattr(sampling, "features_of", lambda *args: made.append(len(args[1])) or features_of(*args))
    captioned = sampling.caption_pictures(model, ckpt, pictures, Decoding(), attention=True)
    assert made == [3]  # one pass over the three pictures serves the captions and the maps
    assert captioned.captions == generate_captions(model, features, Decoding())
    maps = caption_attention(model, features[0], captioned.captions[0])
    assert captioned.attention is not None and captioned.attention.shape == (len(captioned.captions[0].split()), 2, 2)
    torch.testing.assert_close(captioned.attention, maps)
    assert sampling.caption_pictures(model, ckpt, pictures, Decoding()).attention is None


def repeating_model(cell_type: str) -> tuple[CaptioningRNN, torch.Tensor]:
    """A captioner whose every step prefers "green", then "red", and <END> least: it says "green" to the last step."""
    word_to_idx = shapes_vocab()[0]
    grid = 4 if cell_type == "attention" else 1
    torch.manual_seed(0)
    model = CaptioningRNN(word_to_idx, input_dim=2 * grid, hidden_dim=8, cell_type=cell_type, grid_cells=grid)
    with torch.no_grad():
        model.W_vocab.zero_()
        model.b_vocab.fill_(-10.0)
        model.b_vocab[word_to_idx["green"]], model.b_vocab[word_to_idx["red"]] = 10.0, 5.0
        model.b_vocab[word_to_idx["<END>"]] = -30.0
    return model.eval(), torch.randn(3, 2 * grid)


def longest_run(caption: str) -> int:
    """The most times one word of `caption` comes in a row."""
    words = caption.split()
    return max((sum(1 for _ in group) for _, group in itertools.groupby(words)), default=0)


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention", "transformer"])
def test_no_decoder_repeats_a_word_more_often_than_the_training_captions(cell_type):
    model, features = repeating_model(cell_type)
    greedy, beam, drawn = Decoding(max_length=12), Decoding(beam_size=3, max_length=12), Decoding(temperature=1e-3)
    assert generate_captions(model, features, greedy) == ["green " * 11 + "green"] * 3  # no limit: on and on
    assert longest_run(generate_captions(model, features[:1], beam)[0]) == 12
    model.max_word_run = 2
    assert generate_captions(model, features, greedy) == ["green green"] * 3  # one more would be too many: <END>
    assert generate_captions(model, features, drawn, torch.Generator().manual_seed(0)) == ["green green"] * 3
    by_beam = generate_captions(model, features, beam)[0].split()  # the likeliest 12 words with no 3 alike
    assert len(by_beam) == 12 and longest_run(" ".join(by_beam)) == 2 and by_beam.count("red") == 4
    model.max_word_run = 1
    assert generate_captions(model, features, greedy) == ["green"] * 3
    assert max(longest_run(c) for c in generate_captions(model, features, beam)) == 1


def test_the_repeat_limit_comes_from_the_training_captions():
    null = 0
    captions = torch.tensor([[1, 5, 5, 6, 2, 0, 0, 0], [1, 7, 8, 8, 8, 2, 0, 0], [1, 2, 0, 0, 0, 0, 0, 0]])
    assert longest_word_run(captions, null) == 3  # the padding's run of <NULL> counts for nothing
    assert longest_word_run(captions[[0, 2]], null) == 2 and longest_word_run(captions[2:], null) == 1
    word_to_idx = shapes_vocab()[0]
    assert word_run_limit(CaptionCheckpoint(max_word_run=3, source="shapes", word_to_idx=word_to_idx)) == 3
    shapes = CaptionCheckpoint(source="shapes", word_to_idx=word_to_idx)
    assert word_run_limit(shapes) == 1  # shapes captions repeat no word
    coco = CaptionCheckpoint(source="coco_json", word_to_idx=word_to_idx)
    assert word_run_limit(coco) == UNRECORDED_WORD_RUN == 2


def ngram_counts(words: list) -> dict[tuple, int]:
    """Every n-gram (n up to LONGEST_NGRAM) of `words` and how often it comes: counted the plain way."""
    counts: dict[tuple, int] = {}
    for n in range(1, LONGEST_NGRAM + 1):
        for i in range(len(words) - n + 1):
            counts[tuple(words[i : i + n])] = counts.get(tuple(words[i : i + n]), 0) + 1
    return counts


def test_repeats_are_counted_within_each_training_caption():
    word_to_idx = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "b": 4, "c": 5}
    captions = torch.tensor([[1, 3, 4, 3, 4, 2, 0], [1, 5, 5, 5, 2, 0, 0], [1, 3, 4, 5, 3, 2, 0]])
    limits = repeat_limits_of(captions, word_to_idx)
    # a b a b: a, b and "a b" twice; c c c: c three times and "c c" twice; no 3- or 4-gram comes twice
    assert limits == RepeatLimits({3: 2, 4: 2, 5: 3}, [2, 1, 1])
    assert limits.allowed((5,)) == 3 and limits.allowed((2,)) == 1 and limits.allowed((3, 3)) == 2
    assert RepeatLimits.of(limits.as_dict()) == limits


def test_the_words_that_would_repeat_too_often_match_a_plain_count():
    generator = torch.Generator().manual_seed(0)
    vocabulary = 5
    words = torch.randint(0, vocabulary, (40, 9), generator=generator)
    limits = RepeatLimits({1: 3, 2: 2}, [2, 1, 2])
    for t in range(words.shape[1] + 1):
        blocked = repeated_too_often(words[:, :t], limits, vocabulary)
        for row, so_far in enumerate(words[:, :t].tolist()):
            for word in range(vocabulary):
                counts = ngram_counts(so_far + [word])
                ending = [tuple((so_far + [word])[-n:]) for n in range(1, min(LONGEST_NGRAM, t + 1) + 1)]
                too_often = any(counts[gram] > limits.allowed(gram) for gram in ending)
                assert bool(blocked[row, word]) == too_often, (so_far, word)


@pytest.mark.parametrize("cell_type", ["lstm", "transformer"])
def test_no_decoder_repeats_a_word_or_an_ngram_more_often_than_the_training_captions(cell_type):
    model, features = repeating_model(cell_type)
    word_to_idx = model.word_to_idx
    green, red = word_to_idx["green"], word_to_idx["red"]
    model.repeat_limits = RepeatLimits({green: 3, red: 2}, [1, 1, 1])
    decodings = [Decoding(max_length=12), Decoding(beam_size=3, max_length=12), Decoding(temperature=1e-3)]
    for decoding in decodings:
        for caption in generate_captions(model, features, decoding, torch.Generator().manual_seed(0)):
            ids = [word_to_idx[word] for word in caption.split()]
            assert caption.startswith("green"), caption
            assert ids.count(green) == 3 and ids.count(red) == 2, caption
            assert all(times <= model.repeat_limits.allowed(gram) for gram, times in ngram_counts(ids).items())


def test_training_records_the_repeat_limit(tmp_path):
    word_to_idx, idx_to_word = shapes_vocab()
    captions = torch.tensor([encode(words.split(), word_to_idx, 6) for words in ("a red red red circle", "a square")])
    split = Split(captions, torch.tensor([0, 1]), torch.randn(2, 4), ["0", "1"])
    data = CaptionData(word_to_idx, idx_to_word, {"train": split}, {}, "shapes")
    config = TrainConfig(cell_type="rnn", hidden_dim=8, wordvec_dim=4, epochs=1, batch_size=2)
    training = CaptionTraining(data, config, tmp_path / "run", World(device=torch.device("cpu")))
    assert training.model.max_word_run == 3 and training.checkpoint().max_word_run == 3
    assert training.model.repeat_limits == RepeatLimits({word_to_idx["red"]: 3}, [2, 1, 1])
    assert training.checkpoint().repeat_limits == training.model.repeat_limits.as_dict()
    shapes = repeat_limits(CaptionCheckpoint(source="shapes", word_to_idx=word_to_idx))  # counted when unrecorded
    assert shapes is not None and shapes.words[word_to_idx["above"]] == 2 and shapes.words[word_to_idx["a"]] == 3
    assert repeat_limits(CaptionCheckpoint(source="coco_json", word_to_idx=word_to_idx)) is None


def test_a_caption_cut_at_the_cap_and_a_far_picture_say_so_beside_the_caption():
    assert shown_caption("a red circle", 4) == "a red circle"
    assert shown_caption("a red circle above", 4) == "a red circle above … (cut at the 4-word cap, --max-length)"
    shapes = CaptionCheckpoint(source="shapes")
    assert far_from_training(shapes, [0.9, 2.057]) == [
        None,
        "far from the shapes pictures: distance 2.06 (they lie ≤ 1.23)",
    ]
    assert far_from_training(CaptionCheckpoint(source="coco_json"), [9.0]) == [None]
    assert far_from_training(shapes, None) == []


def test_the_shapes_note_is_for_pictures_far_from_the_shapes_features():
    ckpt = CaptionCheckpoint(source="shapes")
    assert training_note(ckpt, ["a.png", "b.png"], [0.9, SHAPES_NEAR]) is None
    note = training_note(ckpt, ["a.png", "b.jpg"], [0.9, 2.057])
    assert note is not None and note.startswith(
        f"note: b.jpg (distance 2.06) is far from what this captioner was trained on (shapes pictures ≤ "
        f"{SHAPES_NEAR:.2f}): it was trained only on a3's synthetic shapes"
    )
    assert "a.png" not in note and "a3 caption-train --coco DIR, --karpathy FILE --images DIR" in note
    assert "--images DIR --annotations captions.json" in note
    both = training_note(ckpt, ["a.jpg", "b.jpg", "c.jpg"], [6.0, 5.0, 9.0])
    assert both is not None and both.startswith("note: a.jpg (distance 6.00), b.jpg (distance 5.00) and c.jpg")
    assert training_note(CaptionCheckpoint(source="coco_json"), ["b.jpg"], [9.0]) is None  # photos are what it knows
    assert training_note(ckpt, ["b.jpg"], None) is None  # features not standardised: no distance to say


def test_shapes_pictures_lie_near_the_shipped_captioners_training_features_and_photos_far(photos):
    if not SHIPPED_CAPTIONER.is_file():
        pytest.skip("weights/caption_shapes.pt not built (make weights)")
    model, ckpt = sampling.load_captioner(SHIPPED_CAPTIONER)
    scenes = [draw_scene(s) for s in shapes_split("val", 20)]
    shots = [load_image(path) for path in photos.values()]
    near = sampling.caption_pictures(model, ckpt, scenes + [p.resize((300, 300)) for p in scenes[:3]], Decoding())
    far = sampling.caption_pictures(model, ckpt, shots, Decoding())
    assert near.distances is not None and far.distances is not None
    assert max(near.distances) <= SHAPES_NEAR < SHAPES_FAR < min(far.distances)


def test_a_captioner_of_other_words_is_refused_on_the_shapes_split():
    from a3cli.engine.captioning.sampling import shapes_examples

    shapes_words = shapes_vocab()[0]
    pictures, truths = shapes_examples("test", 2, CaptionCheckpoint(source="shapes", word_to_idx=shapes_words))
    assert len(pictures) == len(truths) == 2
    photos = CaptionCheckpoint(source="karpathy", word_to_idx={"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "dog": 4})
    with pytest.raises(A3Error, match="trained on karpathy, whose words are not the shapes'"):
        shapes_examples("test", 2, photos)
