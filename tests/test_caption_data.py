"""Captioning data: vocabulary, the coco_captioning HDF5 layout, COCO-format JSON with cached features, shapes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from a3cli.engine.captioning.coco import load_coco_h5, load_coco_json
from a3cli.engine.captioning.features import FeatureSpec
from a3cli.engine.captioning.shapes import draw_scene, load_shapes, shapes_split, shapes_vocab
from a3cli.engine.captioning.vocab import END, NULL, START, UNK, build_vocab, decode, encode, tokenize
from a3cli.engine.errors import A3Error
from tests.helpers import write_coco_h5, write_coco_json

pytestmark = pytest.mark.usefixtures("one_thread")


TINY_SPEC = FeatureSpec(backbone="efficientnet_lite0", layer="block4", image_size=64, grid=2)


def test_tokenize_vocab_encode_decode():
    assert tokenize("A man, riding a HORSE!") == ["a", "man", "riding", "a", "horse"]
    w2i, i2w = build_vocab([["a", "cat"], ["a", "dog"], ["a", "cat", "sat"]], min_count=2)
    assert i2w == [NULL, START, END, UNK, "a", "cat"]  # specials first, then by count; "dog", "sat" too rare
    assert all(w2i[w] == i for i, w in enumerate(i2w))
    ids = encode(["a", "dog", "cat", "a"], w2i, max_length=3)
    assert ids == [1, 4, 3, 5, 2] and len(ids) == 5  # truncated to 3 words, <UNK> for dog
    assert encode(["a"], w2i, 3) == [1, 4, 2, 0, 0]
    assert decode([1, 4, 3, 5, 2, 4, 0], i2w) == ["a", UNK, "cat"]


def test_coco_h5_layout(tmp_path):
    folder = write_coco_h5(tmp_path / "coco")
    data = load_coco_h5(folder, pca=True)
    assert data.input_dim == 8 and load_coco_h5(folder, pca=False).input_dim == 16
    train = data.splits["train"]
    assert train.captions.shape == (80, 17) and train.captions.dtype == torch.int64
    assert train.features.shape == (40, 8) and train.images[3].endswith("train2014/3.jpg")
    with h5py.File(folder / "coco2014_captions.h5") as f:
        assert np.array_equal(train.captions.numpy(), f["train_captions"][()])
    refs = data.references("val")
    assert len(refs) == 12 and all(len(r) == 2 for r in refs)
    np.random.seed(231)
    small = load_coco_h5(folder, max_train=10)
    assert len(small.splits["train"]) == 10 and len(small.splits["val"]) == 24


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "coco2014_captions.h5").unlink(), "missing file"),
        (lambda d: (d / "val2014_vgg16_fc7_pca.h5").write_bytes(b"not hdf5 at all"), "cannot read HDF5"),
        (lambda d: (d / "coco2014_vocab.json").write_text("{nope"), "not valid JSON"),
        (lambda d: (d / "coco2014_vocab.json").write_text('{"idx_to_word": []}'), "must hold"),
        (lambda d: _rewrite(d, "train_image_idxs", np.full(80, 99, dtype=np.int32)), "point past"),
        (lambda d: _rewrite(d, "val_captions", np.full((24, 17), 500, dtype=np.int32)), "outside the vocabulary"),
        (lambda d: _drop(d, "val_captions"), "has no dataset 'val_captions'"),
    ],
)
def test_coco_h5_damage_is_one_clear_error(tmp_path, damage, message):
    folder = write_coco_h5(tmp_path / "coco")
    damage(folder)
    with pytest.raises(A3Error, match=message):
        load_coco_h5(folder)


def _rewrite(folder, key, value):
    with h5py.File(folder / "coco2014_captions.h5", "a") as f:
        del f[key]
        f[key] = value


def _drop(folder, key):
    with h5py.File(folder / "coco2014_captions.h5", "a") as f:
        del f[key]


def test_coco_json_extracts_once_then_reads_the_cache(tmp_path, photos, monkeypatch, lite0):
    monkeypatch.setenv("A3_CACHE", str(tmp_path / "cache"))
    ann = write_coco_json(tmp_path / "imgs", photos)
    loads = []

    def loader(name):
        loads.append(name)
        return lite0

    data = load_coco_json(tmp_path / "imgs", ann, TINY_SPEC, loader, max_length=5, val_fraction=0.25)
    assert loads == ["efficientnet_lite0"]
    assert len(data.splits["val"].features) == 1 and len(data.splits["train"].features) == 3
    assert data.input_dim == 40 * 2 * 2
    again = load_coco_json(tmp_path / "imgs", ann, TINY_SPEC, loader, max_length=5, val_fraction=0.25)
    assert loads == ["efficientnet_lite0"]  # cached: no backbone needed
    assert torch.equal(again.splits["train"].features, data.splits["train"].features)
    # The cached features are those of the images, in the split's order.
    from a3cli.engine.captioning.features import features_of
    from a3cli.engine.images import load_image

    first = load_image(data.splits["train"].images[0])
    norm = data.feature_norm
    raw = data.splits["train"].features[0] * norm["std"] + norm["mean"]
    torch.testing.assert_close(features_of(lite0, [first], TINY_SPEC)[0], raw, rtol=1e-4, atol=1e-4)
    assert data.splits["train"].features.mean(0).abs().max() < 1e-4  # standardised with the training statistics
    caps = data.splits["train"].captions
    assert caps.shape[1] == 7 and (caps[:, 0] == 1).all()  # <START> + 5 words + <END>
    # Another image file (or other settings) makes a new cache entry.
    (tmp_path / "imgs" / "coffee.jpg").write_bytes((tmp_path / "imgs" / "rocket.jpg").read_bytes())
    load_coco_json(tmp_path / "imgs", ann, TINY_SPEC, loader, max_length=5, val_fraction=0.25)
    assert len(loads) == 2


@pytest.mark.parametrize(
    "content, message",
    [
        ("{oops", "not valid JSON"),
        ('{"images": []}', "not a COCO captions file"),
        ('{"images": [{"id": 1}], "annotations": []}', "needs 'id' and 'file_name'"),
        (
            '{"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": [{"image_id": 2, "caption": "a"}]}',
            "not listed",
        ),
        (
            '{"images": [{"id": 1, "file_name": "x.jpg"}, {"id": 2, "file_name": "y.jpg"}], '
            '"annotations": [{"image_id": 1, "caption": "a"}, {"image_id": 2, "caption": "b"}]}',
            "does not exist",
        ),
    ],
)
def test_coco_json_mistakes(tmp_path, content, message):
    ann = tmp_path / "c.json"
    ann.write_text(content)
    with pytest.raises(A3Error, match=message):
        load_coco_json(tmp_path, ann, TINY_SPEC, lambda name: None)


def test_shapes_are_deterministic_and_captions_match_the_layout():
    a, b = shapes_split("test", 60), shapes_split("test", 60)
    assert [s.caption() for s in a] == [s.caption() for s in b]
    assert np.array_equal(np.asarray(draw_scene(a[7])), np.asarray(draw_scene(b[7])))
    assert [s.caption() for s in shapes_split("train", 20)] != [s.caption() for s in a[:20]]
    w2i, _ = shapes_vocab()
    counts = set()
    for scene in a:
        words = tokenize(scene.caption())
        assert all(w in w2i for w in words)
        counts.add(len(scene.objects))
        xs = [x for *_, x, _ in scene.objects]
        ys = [y for *_, y in scene.objects]
        if scene.relation == "left of":
            assert xs == sorted(xs) and words.count("left") == len(xs) - 1
        elif scene.relation == "above":
            assert ys == sorted(ys) and words.count("above") == len(ys) - 1
    assert counts == {1, 2, 3}
    # The drawn colour is the named one, at the named place.
    scene = next(s for s in a if len(s.objects) == 1)
    size, color, kind, x, y = scene.objects[0]
    from a3cli.engine.captioning.shapes import SHAPE_COLORS

    pixel = np.asarray(draw_scene(scene, 128))[round(y * 128), round(x * 128)]
    assert tuple(pixel) == SHAPE_COLORS[color]


def test_load_shapes_small(tmp_path, monkeypatch, lite0):
    monkeypatch.setenv("A3_CACHE", str(tmp_path))
    data = load_shapes(lambda name: lite0, TINY_SPEC, sizes={"train": 12, "val": 4, "test": 4}, max_train=10)
    assert set(data.splits) == {"train", "val", "test"} and data.source == "shapes"
    assert len(data.splits["train"]) == 10 and data.splits["test"].features.shape == (4, 160)
    assert data.references("test")[0] == [tokenize(shapes_split("test", 1)[0].caption())]


def test_shapes_tokens_cover_the_grammar():
    w2i, _ = shapes_vocab()
    assert all(w in w2i for s in shapes_split("val") for w in tokenize(s.caption()))
