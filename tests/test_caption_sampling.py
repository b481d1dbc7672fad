"""Captioning with a trained captioner: the decoding settings, pictures to captions and attention maps, the note."""

from __future__ import annotations

import pytest
import torch

from a3cli.engine.captioning import sampling
from a3cli.engine.captioning.decoding import Decoding, generate_captions
from a3cli.engine.captioning.features import FeatureSpec, features_of
from a3cli.engine.captioning.model import CaptioningRNN
from a3cli.engine.captioning.sampling import looks_like_shapes, training_note
from a3cli.engine.captioning.shapes import draw_scene, shapes_split, shapes_vocab
from a3cli.engine.errors import A3Error
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
    ckpt = {"feature_spec": spec.as_dict(), "feature_norm": None, "source": "coco_json"}
    made = []
    monkeypatch.setattr(sampling, "features_of", lambda *args: made.append(len(args[1])) or features_of(*args))
    captioned = sampling.caption_pictures(model, ckpt, pictures, Decoding(), attention=True)
    assert made == [3]  # one pass over the three pictures serves the captions and the maps
    assert captioned.captions == generate_captions(model, features, Decoding())
    maps = caption_attention(model, features[0], captioned.captions[0])
    assert captioned.attention is not None and captioned.attention.shape == (len(captioned.captions[0].split()), 2, 2)
    torch.testing.assert_close(captioned.attention, maps)
    assert sampling.caption_pictures(model, ckpt, pictures, Decoding()).attention is None


def test_only_photos_get_the_note_about_what_the_shapes_captioner_knows(photos):
    scenes = [draw_scene(s) for s in shapes_split("val", 20)]
    assert all(looks_like_shapes(p) for p in scenes)
    assert all(looks_like_shapes(p.resize((300, 300))) for p in scenes[:5])  # resampled edges still pass
    shots = [load_image(photos[name]) for name in ("coffee", "chelsea", "rocket", "astronaut", "china", "flower")]
    assert not any(looks_like_shapes(p) for p in shots)
    assert training_note({"source": "shapes"}, scenes) is None
    note = training_note({"source": "shapes"}, scenes[:1] + shots[:1])
    assert "synthetic shapes" in note and "a3 caption-train --coco DIR, --karpathy FILE --images DIR" in note
    assert "--images DIR --annotations captions.json" in note
    assert training_note({"source": "coco_json"}, shots) is None
