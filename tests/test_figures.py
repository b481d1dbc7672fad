"""What the figures say beside their pictures: right and wrong captions, and the Fréchet figure's sample counts."""

from __future__ import annotations

from PIL import Image

from a3cli.engine.figures import RIGHT, WRONG, captions_figure, sample_counts
from tests.helpers import capture_figures


def test_captions_figure_marks_the_wrong_captions_and_counts_the_right(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    pictures = [Image.new("RGB", (32, 32), colour) for colour in ("red", "green", "blue")]
    captions = ["a red circle", "a green square", "a blue  triangle"]
    truths = ["a red circle", "a green circle", "a blue triangle"]  # the spaces differ, not the words
    path = captions_figure(pictures, captions, tmp_path / "c.png", truths)
    assert Image.open(path).format == "PNG"
    (figure,) = figures
    assert figure["title"].startswith("2 of 3 captions exactly right")
    assert figure["axes"][:3] == [("a red circle", RIGHT), ("a green square", WRONG), ("a blue  triangle", RIGHT)]
    assert figure["texts"] == ["true: a green circle"]  # the truth, under the wrong caption only


def test_captions_without_truths_are_plain(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    captions_figure([Image.new("RGB", (8, 8))], ["a caption"], tmp_path / "c.png")
    (figure,) = figures
    assert figure["title"] == "" and figure["axes"][0] == ("a caption", "black") and figure["texts"] == []


def test_captions_figure_has_a_column_per_picture_and_their_notes_under_them(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    pictures = [Image.new("RGB", (40, 40)), Image.new("RGB", (40, 40))]
    path = captions_figure(pictures, ["a caption", "another"], tmp_path / "c.png", notes=[None, "far away"])
    (figure,) = figures
    assert len(figure["axes"]) == 2 and figure["texts"] == ["far away"]  # two pictures, two columns
    assert Image.open(path).width < Image.open(captions_figure(pictures * 2, ["a"] * 4, tmp_path / "d.png")).width


def test_frechet_sample_counts_name_both_counts_only_when_they_differ():
    assert sample_counts(1000, 5000) == "each point: 1,000 generated images; the final report measures 5,000"
    assert sample_counts(500, 500) == "each point and the final report: 500 generated images"
