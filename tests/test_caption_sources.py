"""Captions from people's own files: Karpathy's split files, COCO's folder layout, and --check before extracting."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from a3cli.engine.captioning.coco import coco_layout, listed_coco_layout
from a3cli.engine.captioning.features import FeatureSpec
from a3cli.engine.captioning.karpathy import listed_karpathy, train_splits
from a3cli.engine.captioning.listed import check_listed, drop_absent, load_listed
from a3cli.engine.errors import A3Error
from tests.helpers import run_cli as run

pytestmark = pytest.mark.usefixtures("one_thread")

# What each bundled photo shows, in a few words: the captions' templates.
SUBJECTS = {
    "coffee": ("a cup of coffee", "on a saucer"),
    "chelsea": ("an orange cat", "looking to the side"),
    "rocket": ("a rocket", "on the launch pad"),
    "astronaut": ("an astronaut", "in front of a flag"),
    "china": ("a temple", "among trees"),
    "flower": ("a pink flower", "in the garden"),
}
SPLITS = ["train", "train", "restval", "val", "test"]  # of each photo's five variants


def variants(photo: Path, count: int, seed: int) -> list[Image.Image]:
    """Crops of a photo (every other one flipped), at 48 × 48: different pictures of one subject."""
    rng = random.Random(seed)
    with Image.open(photo) as image:
        image = image.convert("RGB")
        out = []
        for k in range(count):
            side = rng.randint(min(image.size) // 2, min(image.size))
            x, y = rng.randint(0, image.width - side), rng.randint(0, image.height - side)
            crop = image.crop((x, y, x + side, y + side)).resize((48, 48))
            out.append(ImageOps.mirror(crop) if k % 2 else crop)
        return out


def captions_of(name: str, k: int) -> list[str]:
    subject, where = SUBJECTS[name]
    return [f"{subject} {where}", f"a photo of {subject}", f"{subject} seen from {'the left' if k % 2 else 'above'}"]


def write_karpathy(folder: Path, photos: dict[str, Path]) -> Path:
    """Karpathy's layout: one JSON of images (filepath, filename, split, sentences' tokens) beside the images."""
    images = []
    for i, name in enumerate(SUBJECTS):
        for k, picture in enumerate(variants(photos[name], len(SPLITS), seed=i)):
            filepath = "train2014" if SPLITS[k] in ("train", "restval") else "val2014"
            (folder / filepath).mkdir(parents=True, exist_ok=True)
            picture.save(folder / filepath / f"{name}_{k}.jpg")
            sentences = [{"tokens": text.split(), "raw": text} for text in captions_of(name, k)]
            images.append(
                {"filepath": filepath, "filename": f"{name}_{k}.jpg", "split": SPLITS[k], "sentences": sentences}
            )
    path = folder / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path


def write_coco(folder: Path, photos: dict[str, Path], year: str = "2017") -> Path:
    """COCO's layout: train{year}/ and val{year}/ of images, annotations/captions_{split}{year}.json."""
    (folder / "annotations").mkdir(parents=True)
    for split, count in (("train", 4), ("val", 1)):
        (folder / f"{split}{year}").mkdir()
        images, annotations = [], []
        for i, name in enumerate(SUBJECTS):
            for k, picture in enumerate(variants(photos[name], count, seed=10 * i + count)):
                image_id = 1000 * i + k
                file_name = f"{image_id:012d}.jpg"
                picture.save(folder / f"{split}{year}" / file_name)
                images.append({"id": image_id, "file_name": file_name, "width": 48, "height": 48})
                annotations += [
                    {"id": len(annotations), "image_id": image_id, "caption": text.capitalize() + "."}
                    for text in captions_of(name, k)
                ]
        captions = {"info": {"year": year}, "images": images, "annotations": annotations}
        (folder / "annotations" / f"captions_{split}{year}.json").write_text(json.dumps(captions))
    return folder


TINY = FeatureSpec(backbone="efficientnet_lite0", layer="block2", image_size=64, grid=2)


def test_karpathy_trains_on_train_and_restval_by_default(tmp_path, photos):
    file = write_karpathy(tmp_path / "k", photos)
    listed = listed_karpathy(file, tmp_path / "k")
    assert {name: len(images) for name, images in listed.splits.items()} == {"train": 18, "val": 6, "test": 6}
    first = listed.splits["train"][0]
    assert first.path == tmp_path / "k" / "train2014" / "coffee_0.jpg"
    assert first.captions[0] == ["a", "cup", "of", "coffee", "on", "a", "saucer"]
    only_train = listed_karpathy(file, tmp_path / "k", train_splits("train"))
    assert len(only_train.splits["train"]) == 12 and "restval" not in only_train.splits
    assert train_splits(None) == ("train", "restval") and train_splits(" restval ,train") == ("restval", "train")
    for wrong in ("val", "train,test", ""):
        with pytest.raises(A3Error, match="--train-splits"):
            train_splits(wrong)


def test_karpathy_file_mistakes_are_one_clear_error(tmp_path, photos):
    file = write_karpathy(tmp_path / "k", photos)
    data = json.loads(file.read_text())
    cases = [
        ({"images": [{**data["images"][0], "split": "dev"}]}, "needs a 'filename' and a 'split'"),
        ({"images": [{**data["images"][0], "sentences": [{"text": "a"}]}]}, "needs 'sentences'"),
        ({"images": [{**data["images"][0], "filename": "../../x.jpg"}]}, "points outside"),
        ({"images": data["images"][:2]}, "needs training and val images"),
        ({"sentences": []}, "needs an 'images' list"),
    ]
    for content, message in cases:
        file.write_text(json.dumps(content))
        with pytest.raises(A3Error, match=message):
            listed_karpathy(file, tmp_path / "k")
    file.write_text("{nope")
    with pytest.raises(A3Error, match="not valid JSON"):
        listed_karpathy(file, tmp_path / "k")
    with pytest.raises(A3Error, match="no such file"):
        listed_karpathy(tmp_path / "none.json", tmp_path / "k")


def test_hostile_caption_files_are_one_clear_error_or_missing_images(tmp_path, photos, capsys):
    from a3cli.engine.captioning.coco import read_coco_captions
    from a3cli.engine.captioning.listed import drop_absent

    file = write_karpathy(tmp_path / "k", photos)
    data = json.loads(file.read_text())
    deep = "[" * 200_000 + "]" * 200_000
    for reader in (lambda f: listed_karpathy(f, tmp_path / "k"), lambda f: read_coco_captions(tmp_path / "k", f)):
        (tmp_path / "deep.json").write_text(deep)
        with pytest.raises(A3Error, match="is nested too deeply to read"):
            reader(tmp_path / "deep.json")
    for name in ("x\x00y.jpg", ""):  # no file system takes a NUL byte; an empty name is no file
        file.write_text(json.dumps({"images": [{**data["images"][0], "filepath": "", "filename": name}]}))
        with pytest.raises(A3Error, match="is not a file name"):
            listed_karpathy(file, tmp_path / "k")
    # Links that loop (to itself, between two links, a folder inside itself) are missing images.
    train = tmp_path / "k" / "train2014"
    (train / "self.jpg").symlink_to("self.jpg")
    (train / "one.jpg").symlink_to("two.jpg")
    (train / "two.jpg").symlink_to("one.jpg")
    (train / "loop").symlink_to(".")
    loops = ["self.jpg", "one.jpg", "two.jpg", "loop/" * 50 + "coffee_0.jpg"]
    looped = [{**data["images"][0], "filename": name} for name in loops]
    file.write_text(json.dumps({"images": [*data["images"], *looped]}))
    present = drop_absent(listed_karpathy(file, tmp_path / "k"))
    assert sorted(path.name for path in present.missing) == ["coffee_0.jpg", "one.jpg", "self.jpg", "two.jpg"]
    # A training split with no image left is refused before any feature is extracted, by --check too.
    alone = [image for image in data["images"] if image["split"] not in ("train", "restval")]
    file.write_text(json.dumps({"images": [*alone, *looped]}))
    argv = ["caption-train", "--karpathy", str(file), "--images", str(tmp_path / "k"), "--device", "cpu"]
    for check in (["--check"], []):
        code, _, err = run([*argv, *check, "--out", str(tmp_path / "run")], capsys)
        assert code == 2 and err.startswith("error: the training split has no images: all 4 listed"), err
    assert not list(tmp_path.glob("run/*.pt"))


def test_coco_2017_and_2014_layouts_are_found_by_their_names(tmp_path, photos):
    folder = write_coco(tmp_path / "coco2017", photos)
    listed = listed_coco_layout(folder)
    assert {name: len(images) for name, images in listed.splits.items()} == {"train": 24, "val": 6}
    assert listed.splits["val"][0].path == folder / "val2017" / "000000000000.jpg"
    assert listed.splits["train"][0].captions[0] == ["a", "cup", "of", "coffee", "on", "a", "saucer"]
    old = write_coco(tmp_path / "coco2014", photos, year="2014")
    assert coco_layout(old)["train"] == (old / "train2014", old / "annotations" / "captions_train2014.json")


def test_coco_layout_missing_parts_are_named(tmp_path, photos):
    folder = write_coco(tmp_path / "coco", photos)
    (folder / "annotations" / "captions_val2017.json").unlink()
    with pytest.raises(A3Error, match=r"looks like COCO 2017 but lacks annotations/captions_val2017\.json \("):
        coco_layout(folder)
    with pytest.raises(
        A3Error, match="holds no COCO layout: expected train2017, annotations/captions_train2017.json, val2017"
    ):
        coco_layout(tmp_path)
    with pytest.raises(A3Error, match="is not a folder"):
        coco_layout(tmp_path / "nowhere")


def test_absent_and_broken_images_are_counted_and_skipped(tmp_path, photos, monkeypatch, lite0):
    monkeypatch.setenv("A3_CACHE", str(tmp_path / "cache"))
    file = write_karpathy(tmp_path / "k", photos)
    (tmp_path / "k" / "train2014" / "rocket_0.jpg").unlink()
    (tmp_path / "k" / "val2014" / "china_3.jpg").write_text("not a picture")
    listed = listed_karpathy(file, tmp_path / "k")
    found = check_listed(listed, TINY, lambda name: lite0, min_count=2)
    assert found.images == {"train": 17, "val": 5, "test": 6} and found.captions["train"] == 51
    assert found.missing == [str(tmp_path / "k" / "train2014" / "rocket_0.jpg")]
    assert found.unreadable == [str(tmp_path / "k" / "val2014" / "china_3.jpg")]
    assert found.feature_dim == 24 * 4 and found.seconds_per_image > 0 and not found.cached
    assert found.cache_bytes == 28 * 96 * 4
    data = load_listed(drop_absent(listed), TINY, lambda name: lite0, min_count=2, max_length=16)
    assert data.skipped == found.missing + found.unreadable
    assert len(data.splits["train"]) == 51 and data.splits["val"].features.shape == (5, 96)
    assert len(data.word_to_idx) == found.words  # --check's vocabulary is training's
    again = check_listed(listed, TINY, lambda name: lite0, min_count=2)
    assert again.cached  # the features are in the cache now: nothing to extract


def test_user_mistakes_are_one_line(tmp_path, photos, capsys):
    file = write_karpathy(tmp_path / "k", photos)
    coco = write_coco(tmp_path / "coco", photos)
    (coco / "annotations" / "captions_train2017.json").unlink()
    cases = [
        (["--karpathy", str(file)], "--karpathy needs --images"),
        (["--karpathy", str(file), "--images", str(tmp_path / "k"), "--train-splits", "val"], "--train-splits val"),
        (["--train-splits", "train"], "--train-splits is for --karpathy"),
        (["--coco", str(coco)], "lacks annotations/captions_train2017.json"),
        (["--coco", str(coco), "--karpathy", str(file), "--images", "x"], "choose one data source"),
        (["--dataset", "shapes", "--check"], "--check reads captions files"),
    ]
    for argv, message in cases:
        code, stdout, err = run(["caption-train", *argv, "--out", str(tmp_path / "run"), "--device", "cpu"], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_check_reports_and_extracts_nothing(tmp_path, photos, monkeypatch, capsys):
    monkeypatch.setenv("A3_CACHE", str(tmp_path / "cache"))
    coco = write_coco(tmp_path / "coco", photos)
    (coco / "train2017" / "000000001000.jpg").unlink()
    argv = ["caption-train", "--coco", str(coco), "--layer", "block2", "--grid", "2", "--image-size", "64"]
    code, stdout, err = run([*argv, "--check", "--out", str(tmp_path / "run"), "--device", "cpu"], capsys)
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0] == "train: 23 images, 69 captions" and lines[1] == "val: 6 images, 18 captions"
    assert lines[2].startswith("missing: 1 listed images (") and "training skips them" in lines[2]
    assert "vocabulary: " in lines[3] and "--min-count 1" in lines[3] and "features 96-d" in lines[3]
    assert "MiB" in lines[3] and "nothing extracted" in lines[4]
    assert not list(tmp_path.glob("run/*.pt")) and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("layout", ["karpathy", "coco"])
def test_train_attention_on_realistic_data_then_caption_a_photo(tmp_path, photos, monkeypatch, capsys, layout):
    """Photos' crops and flips with template captions, both layouts, the attention captioner on a grid."""
    monkeypatch.setenv("A3_CACHE", str(tmp_path / "cache"))
    if layout == "karpathy":
        source = ["--karpathy", str(write_karpathy(tmp_path / "k", photos)), "--images", str(tmp_path / "k")]
        (tmp_path / "k" / "val2014" / "rocket_3.jpg").unlink()  # listed, absent: skipped and said
    else:
        source = ["--coco", str(write_coco(tmp_path / "coco", photos))]
    out = tmp_path / "run"
    settings = ["--cell-type", "attention", "--layer", "block2", "--grid", "2", "--image-size", "64"]
    sizes = ["--hidden-dim", "32", "--wordvec-dim", "16", "--epochs", "30", "--batch-size", "18", "--lr", "1e-2"]
    code, stdout, err = run(["caption-train", *source, *settings, *sizes, "--out", str(out), "--device", "cpu"], capsys)
    assert code == 0, err
    assert f"{layout}: " in stdout and "CIDEr-D" in stdout
    assert ("skipped 1 listed images, missing or unreadable" in stdout) == (layout == "karpathy")
    metrics = json.loads((out / "metrics.json").read_text())
    splits = {"karpathy": {"val", "test"}, "coco": {"val"}}[layout]
    assert set(metrics["cider"]) == splits == set(metrics["bleu"])
    assert metrics["feature_spec"]["layer"] == "block2" and metrics["model"]["grid_cells"] == 4
    assert metrics["train_loss"][-1] < metrics["train_loss"][0] / 2
    assert all(0 <= metrics["cider"][split] <= 10 for split in splits)
    argv = ["caption-sample", str(photos["chelsea"]), "--checkpoint", str(out / "checkpoint.pt"), "--device", "cpu"]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    caption = stdout.strip().split(": ", 1)[1]
    said = {word for name in SUBJECTS for k in range(5) for text in captions_of(name, k) for word in text.split()}
    assert set(caption.split()) <= said | {"<UNK>"} and "cat" in caption.split()  # it learned the cat's crops
    assert "note:" not in err
