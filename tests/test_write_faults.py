"""Faults met after the options are good: places that take no files, full disks, absurd sizes, folders of
bad pictures, a cache that cannot be written, Ctrl-C in fool. Each ends in one line, before the work where
it can be known before, and loses nothing."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from a3cli.engine.checkpoints import load_checkpoint
from a3cli.engine.errors import A3Error, A3Note, WriteError
from a3cli.engine.files import atomic_write
from a3cli.engine.runs import CHECKPOINT_NAME
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
GAN = ["gan-train", "--no-download", "--no-fid", "--device", "cpu", "--batch-size", "16", "--eval-every", "0"]


def one_error_line(err: str) -> str:
    """The stderr of a refusal: one `error:` line (notes and a progress bar drawn before it aside)."""
    lines = [line for line in err.strip().splitlines() if line.strip() and "━" not in line and "note:" not in line]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


# Every output option of every command that writes, at a place where no file can be made (/proc takes
# none, even from root, whose permission bits allow everything).
PROC_OUTPUTS = [
    ["classify", "{coffee}", "--out", "/proc/a3.png"],
    ["classify", "{coffee}", "--json", "/proc/a3.json"],
    ["saliency", "{coffee}", "--out", "/proc/a3.png"],
    ["saliency", "{coffee}", "--json", "/proc/a3.json", "--out", "{tmp}/s.png"],
    ["fool", "{coffee}", "-t", "1", "--out", "/proc/a3.png"],
    ["fool", "{coffee}", "-t", "1", "--json", "/proc/a3.json", "--out", "{tmp}/f.png"],
    ["classvis", "-c", "1", "--out", "/proc/a3.png"],
    ["classvis", "-c", "1", "--json", "/proc/a3.json", "--out", "{tmp}/c.png"],
    ["classvis", "-c", "1", "--save-every", "1", "--out", "/proc/a3/c.png"],
    ["stylize", "{coffee}", "{coffee}", "--out", "/proc/a3.png"],
    ["stylize", "{coffee}", "{coffee}", "--json", "/proc/a3.json", "--out", "{tmp}/s.png"],
    ["stylize", "{coffee}", "{coffee}", "--compare", "/proc/a3.png", "--out", "{tmp}/s.png"],
    ["caption-train", "--dataset", "shapes", "--out", "/proc/a3run"],
    ["caption-train", "--dataset", "shapes", "--export", "/proc/a3.pt", "--out", "{tmp}/cap"],
    ["caption-sample", "--dataset", "shapes", "--out", "/proc/a3.png"],
    ["caption-sample", "--dataset", "shapes", "--save-images", "/proc/a3"],
    ["caption-sample", "{coffee}", "--attention-maps", "/proc/a3.png"],
    ["gan-train", "--out", "/proc/a3run", "--no-download"],
    ["gan-sample", "--checkpoint", "{coffee}", "--out", "/proc/a3.png"],
    ["gan-classifier", "--out", "/proc/a3.pt"],
]


@pytest.mark.parametrize("argv", PROC_OUTPUTS, ids=lambda argv: " ".join(a for a in argv if "{" not in a))
def test_an_output_where_no_file_can_be_made_is_refused_before_the_work(argv, tmp_path, photos, capsys):
    argv = [a.format(tmp=tmp_path, coffee=photos["coffee"]) for a in argv]
    code, out, err = run_cli([*argv, "--device", "cpu"], capsys)
    assert code == 2 and "/proc/a3" in one_error_line(err) and "cannot write" in err, err
    assert not list(tmp_path.iterdir())  # nothing was made


def test_an_output_that_is_not_a_regular_file_is_refused(photos, capsys):
    code, out, err = run_cli(["classify", str(photos["coffee"]), "--json", "/dev/null", "--device", "cpu"], capsys)
    assert code == 2 and "it exists and is not a regular file" in one_error_line(err)


def a3_limited(argv: list[str], cwd: Path, file_size: int | None = None) -> subprocess.CompletedProcess:
    """`a3 ARGV` in a subprocess, with files limited to `file_size` bytes (ulimit -f) if given."""

    def limit() -> None:
        if file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "A3_CACHE": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "a3cli", *argv], cwd=cwd, env=env, preexec_fn=limit, capture_output=True, text=True
    )


def assert_kept(run: Path, before: bytes, err: str, step: int) -> None:
    line = one_error_line(err)
    assert f"cannot write '{run / CHECKPOINT_NAME}': File too large" in line, err
    assert line.endswith(f"the last good checkpoint (iteration {step}) is kept"), err
    assert (run / CHECKPOINT_NAME).read_bytes() == before  # the previous checkpoint, byte for byte
    assert not list(run.glob(".*.tmp"))  # no half-written file left


def test_gan_train_under_a_file_size_limit_keeps_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    first = a3_limited([*GAN, "--iterations", "3", "--out", str(run), "--data-root", str(tmp_path)], tmp_path)
    assert first.returncode == 0, first.stderr
    before = (run / CHECKPOINT_NAME).read_bytes()
    resumed = a3_limited(
        [
            *GAN,
            "--resume",
            "--iterations",
            "6",
            "--checkpoint-every",
            "1",
            "--out",
            str(run),
            "--data-root",
            str(tmp_path),
        ],
        tmp_path,
        file_size=len(before) // 2,
    )
    assert resumed.returncode == 2
    assert_kept(run, before, resumed.stderr, 3)


def test_caption_train_under_a_file_size_limit_keeps_the_last_checkpoint(tmp_path):
    run = tmp_path / "cap"
    argv = ["caption-train", "--dataset", "shapes", "--train-images", "40", "--device", "cpu", "--out", str(run)]
    first = a3_limited([*argv, "--epochs", "1"], tmp_path)
    assert first.returncode == 0, first.stderr
    before = (run / CHECKPOINT_NAME).read_bytes()
    step = len(load_checkpoint(run / CHECKPOINT_NAME, kind="captioner")["train_loss"])  # one loss an iteration
    resumed = a3_limited([*argv, "--resume", "--epochs", "2"], tmp_path, file_size=len(before) // 2)
    assert resumed.returncode == 2
    assert_kept(run, before, resumed.stderr, step)


def test_torch_save_failures_become_write_errors(tmp_path, monkeypatch):
    """torch.save reports a failed write as RuntimeError, with the OSError only as its context."""

    def full_disk(f):
        try:
            raise OSError(28, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos") from None

    target = tmp_path / "x.pt"
    with pytest.raises(WriteError, match=r"cannot write '.*x.pt': No space left on device$"):
        atomic_write(target, full_disk)
    assert not list(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="a bug"):  # a RuntimeError without an OSError stays what it is

        def bug(f):
            raise RuntimeError("a bug")

        atomic_write(target, bug)


@pytest.mark.parametrize(
    "argv, option",
    [
        (["saliency", "{coffee}", "--method", "ig", "--steps", "100000000"], "--steps"),
        (["saliency", "{coffee}", "--method", "smoothgrad", "--samples", "100000000"], "--samples"),
        (["saliency", "{coffee}", "--batch-size", "100000000"], "--batch-size"),
        (["fool", "{coffee}", "-t", "1", "--max-iter", "100000000"], "--max-iter"),
        (["classvis", "-c", "1", "--iterations", "100000000"], "--iterations"),
        (["classvis", "-c", "1", "--size", "100000"], "--size"),
        (["stylize", "{coffee}", "{coffee}", "--iterations", "100000000"], "--iterations"),
        (["stylize", "{coffee}", "{coffee}", "--image-size", "100000000"], "--image-size"),
        (["gan-train", "--eval-samples", "100000000"], "--eval-samples"),
        (["gan-train", "--fid-samples", "100000000"], "--fid-samples"),
        (["gan-train", "--batch-size", "100000000"], "--batch-size"),
        (["gan-train", "--iterations", "10000000000"], "--iterations"),
        (["gan-train", "--noise-dim", "100000000"], "--noise-dim"),
        (["gan-train", "--n-critic", "100000000"], "--n-critic"),
        (["gan-sample", "-n", "100000000"], "--num"),
        (["gan-classifier", "--epochs", "100000000"], "--epochs"),
        (["caption-train", "--batch-size", "100000000"], "--batch-size"),
        (["caption-train", "--hidden-dim", "100000000"], "--hidden-dim"),
        (["caption-train", "--wordvec-dim", "100000000"], "--wordvec-dim"),
        (["caption-train", "--train-images", "100000000"], "--train-images"),
        (["caption-train", "--epochs", "100000000"], "--epochs"),
        (["caption-sample", "--dataset", "shapes", "--num", "100000000"], "--num"),
        (["caption-sample", "{coffee}", "--beam-size", "100000000"], "--beam-size"),
    ],
)
def test_every_size_option_has_an_upper_bound(argv, option, photos, tmp_path, capsys):
    argv = [a.format(coffee=photos["coffee"]) for a in argv] + ["--device", "cpu"]
    code, out, err = run_cli(argv, capsys)
    line = one_error_line(err)
    assert code == 2 and option in line and ("less than or equal to" in line or "between" in line), err


def test_an_image_too_elongated_for_saliency_is_refused_before_the_work(tmp_path, capsys):
    Image.new("RGB", (40000, 1), "white").save(tmp_path / "strip.png")
    code, out, err = run_cli(["saliency", str(tmp_path / "strip.png"), "--out", str(tmp_path / "s.png")], capsys)
    assert code == 2 and "less elongated" in one_error_line(err) and "saliency" not in err.split("error:")[0]


def test_nan_is_called_not_finite_before_any_range_check(capsys):
    for argv in (["gan-train", "--ema", "nan"], ["caption-train", "--lr", "nan"]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and "nan is not a finite number" in one_error_line(err), err


def test_a_checkpoint_that_is_not_a_regular_file_is_called_that(tmp_path, capsys):
    (tmp_path / "zero.pt").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.pt")
    for path in ("zero.pt", "fifo.pt"):
        code, out, err = run_cli(["gan-sample", "--checkpoint", str(tmp_path / path)], capsys)
        assert code == 2 and "is not a regular file" in one_error_line(err), err


def truncated_jpegs(folder: Path, photo: Path, n: int) -> None:
    """Files with a good JPEG header (Pillow's verify() passes them) and half their data."""
    folder.mkdir()
    raw = photo.read_bytes()
    for i in range(n):
        (folder / f"{i:03d}.jpg").write_bytes(raw[: len(raw) // 2])


def test_a_folder_of_truncated_jpegs_is_refused_as_a_folder_of_garbage_is(tmp_path, photos, capsys):
    truncated_jpegs(tmp_path / "truncated", photos["coffee"], 40)
    (tmp_path / "garbage").mkdir()
    for i in range(3):
        (tmp_path / "garbage" / f"{i}.jpg").write_text("not a picture")
    for name, count in (("truncated", 40), ("garbage", 3)):
        argv = [*GAN, "--variant", "dcgan", "--image-size", "64", "--dataset", str(tmp_path / name)]
        code, out, err = run_cli([*argv, "--out", str(tmp_path / f"run_{name}")], capsys)
        assert code == 2 and "no readable images" in one_error_line(err) and f"({count} unreadable)" in err, err


def test_a_file_that_fails_in_a_dataloader_worker_is_skipped_counted_and_all_failing_is_one_line(tmp_path):
    from a3cli.engine.distributed import World
    from a3cli.engine.generative.data import FolderBatches, ImageFolder

    (tmp_path / "pics").mkdir()
    for i in range(8):
        Image.new("RGB", (70, 70), (30 * i, 0, 0)).save(tmp_path / "pics" / f"{i}.png")
    folder = ImageFolder(tmp_path / "pics", 64, 3)
    raw = (tmp_path / "pics" / "0.png").read_bytes()
    (tmp_path / "pics" / "3.png").write_bytes(raw[: len(raw) // 2])  # damaged after the check
    batches = FolderBatches(folder, 4, 0, World(), workers=2)
    assert batches[0].shape == (4, 3, 64, 64) and batches[1].shape == (4, 3, 64, 64)
    assert folder.undecodable.value >= 1
    for i in range(8):
        (tmp_path / "pics" / f"{i}.png").write_bytes(raw[: len(raw) // 2])
    batches = FolderBatches(folder, 4, 0, World(), workers=2)
    with pytest.raises(A3Error) as error:
        batches[0]
    assert str(error.value) == f"no image in '{tmp_path / 'pics'}' could be decoded"


@pytest.mark.parametrize("cache", ["a file", "/proc"])
def test_a_feature_cache_that_cannot_be_written_is_a_note_before_the_work(cache, tmp_path, monkeypatch):
    from a3cli.engine.captioning.features import cached_features

    if cache == "a file":
        (tmp_path / "file").write_text("a file where the cache folder should be")
        monkeypatch.setenv("A3_CACHE", str(tmp_path / "file"))
    else:
        monkeypatch.setenv("A3_CACHE", "/proc/a3-cache")
    made = []

    def make():
        made.append(1)
        return torch.ones(2, 3)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        features = cached_features({"what": cache}, make)
    assert torch.equal(features, torch.ones(2, 3)) and made == [1]
    notes = [w for w in caught if issubclass(w.category, A3Note)]
    assert len(notes) == 1 and "cannot be written" in str(notes[0].message) and "not kept" in str(notes[0].message)


def test_caption_train_with_a_cache_that_cannot_be_written_trains(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("A3_CACHE", str(tmp_path / "file"))
    argv = ["caption-train", "--dataset", "shapes", "--train-images", "20", "--epochs", "1"]
    code, out, err = run_cli([*argv, "--out", str(tmp_path / "cap"), "--device", "cpu"], capsys)
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert code == 0 and len(notes) == 1 and "cannot be written" in notes[0], err
    assert (tmp_path / "cap" / CHECKPOINT_NAME).is_file()


def test_ctrl_c_in_fool_writes_the_image_so_far(tmp_path, photos, capsys, monkeypatch):
    from a3cli.engine.visualize import fooling

    def interrupt_at_three(progress, step, numbers):
        if step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(fooling, "report", interrupt_at_three)
    out, report = tmp_path / "fooled.png", tmp_path / "fooled.json"
    argv = ["fool", str(photos["coffee"]), "-t", "tarantula", "--max-iter", "50", "--out", str(out), "--device", "cpu"]
    code, _, err = run_cli([*argv, "--json", str(report)], capsys)
    assert code == 130 and f"wrote {out} (the picture so far)" in err and "interrupted" in err, err
    with Image.open(out) as picture:
        assert picture.size == (224, 224)
    numbers = json.loads(report.read_text())  # the JSON promised, of the image so far
    assert numbers["interrupted"] is True and numbers["success"] is False and numbers["iterations"] == 3
    assert numbers["target"]["class"] == "tarantula" and numbers["out"] == str(out)


def test_a_run_folder_whose_lock_cannot_be_written_is_one_line(tmp_path):
    """Files limited to 0 bytes: the output checks pass (they make empty files), the lock's few bytes fail."""
    argv = ["caption-train", "--dataset", "shapes", "--train-images", "20", "--epochs", "1", "--device", "cpu"]
    done = a3_limited([*argv, "--out", str(tmp_path / "run")], tmp_path, file_size=0)
    assert done.returncode == 2, done.stderr
    assert one_error_line(done.stderr) == f"error: cannot write '{tmp_path / 'run' / '.a3-run.lock'}': File too large"
