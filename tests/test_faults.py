"""Nothing lost, nothing crashes: run-folder locks, SIGTERM, stale files, damaged checkpoints, bad options."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from a3cli.engine.checkpoints import load_checkpoint, load_state, save_checkpoint
from a3cli.engine.errors import A3Error
from a3cli.engine.runs import CHECKPOINT_NAME, open_run
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
GAN = ["gan-train", "--no-download", "--no-fid", "--device", "cpu", "--batch-size", "16"]


def a3_process(argv: list[str], cwd: Path) -> subprocess.Popen:
    """`a3 ARGV` as its own process (one torch thread, so two of them share the machine fairly)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "a3cli", *argv],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_run_folder_is_locked_while_its_process_lives(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from a3cli.engine.runs import open_run; "
            f"open_run({str(tmp_path / 'run')!r}, 'gan', False); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(A3Error, match=rf"in use by another a3 run \(process {holder.pid}\)"):
            open_run(tmp_path / "run", "gan", resume=False)
    finally:
        holder.kill()
        holder.wait()
    assert open_run(tmp_path / "run", "gan", resume=False) is None  # the dead process's lock is gone


def test_two_runs_started_together_in_one_folder(tmp_path):
    argv = [*GAN, "--iterations", "20", "--out", str(tmp_path / "race"), "--data-root", str(tmp_path)]
    first, second = a3_process(argv, tmp_path), a3_process(argv, tmp_path)
    results = [(p.wait(timeout=600), p.stderr.read()) for p in (first, second)]
    assert sorted(code for code, _ in results) == [0, 2], results
    refusal = next(err for code, err in results if code == 2).strip().splitlines()
    assert len(refusal) == 1 and ("in use by another a3 run" in refusal[0] or "already holds a run" in refusal[0])
    assert load_checkpoint(tmp_path / "race" / CHECKPOINT_NAME, kind="gan")["step"] == 20


def test_sigterm_leaves_a_checkpoint_at_the_interrupted_iteration(tmp_path):
    out = tmp_path / "run"
    argv = [*GAN, "--iterations", "100000", "--sample-every", "100000", "--out", str(out), "--data-root", str(tmp_path)]
    process = a3_process(argv, tmp_path)
    while not (out / "samples" / "iter_000000.png").exists() and process.poll() is None:
        time.sleep(0.2)
    time.sleep(2)  # some iterations
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=120)
    err = process.stderr.read()
    assert code == 130 and err.strip().endswith("interrupted"), err
    saved = load_checkpoint(out / CHECKPOINT_NAME, kind="gan")
    step = saved["step"]
    assert step >= 1 and len(saved["history"]["g_loss"]) == step
    # It says where it stopped and how to go on, and metrics.json holds the run so far.
    assert f"note: stopped at iteration {step} of 100000: checkpoint.pt and metrics.json" in err, err
    assert f"resume with: a3 {shlex.join(argv)} --resume" in err, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["iterations"] == step and metrics["total_iterations"] == 100000
    assert len(metrics["settings"]) > 5 and metrics["files"]["checkpoint"] == str(out / CHECKPOINT_NAME)
    with Image.open(out / "samples.png") as grid:  # the pictures of where it stopped
        assert grid.size[0] > 100
    resumed = a3_process(
        [*GAN, "--resume", "--iterations", str(step + 2), "--out", str(out), "--data-root", str(tmp_path)], tmp_path
    )
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert load_checkpoint(out / CHECKPOINT_NAME, kind="gan")["step"] == step + 2


def test_a_new_run_removes_half_written_checkpoints(tmp_path):
    stale = tmp_path / f".{CHECKPOINT_NAME}.0123abcd.tmp"
    stale.write_bytes(b"half a checkpoint")
    open_run(tmp_path, "gan", resume=False)
    assert not stale.exists()


def test_damaged_checkpoints_are_one_error_line(tmp_path):
    save_checkpoint({"kind": "captioner", "model": {}}, tmp_path / "partial.pt")
    with pytest.raises(A3Error, match="incomplete captioner checkpoint: it lacks model_config"):
        load_checkpoint(tmp_path / "partial.pt", kind="captioner", required=("model", "model_config"))
    with pytest.raises(A3Error, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path, kind="gan")
    layer = torch.nn.Linear(3, 2)
    with pytest.raises(A3Error, match="generator weights does not fit: size mismatch for weight"):
        load_state(layer, {"weight": torch.zeros(5, 5), "bias": torch.zeros(2)}, "generator weights")
    with pytest.raises(A3Error, match="Missing key"):
        load_state(layer, {"weight": torch.zeros(2, 3)}, "generator weights")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "--seed", str(2**70)], "'--seed'"),
        (["classify", "{coffee}", "--out", "{tmp}/p.txt"], "--out must name a .png file"),
        (["classify", "{coffee}", "--weights", "{empty}"], "cannot load weights"),
        (["classify", "{coffee}", "--weights", "{pickle}"], "cannot load weights"),
        (["classify", "{coffee}", "--weights", "{tmp}"], "is a folder, not a weights file"),
        (["saliency", "{coffee}", "--noise", "inf", "--out", "{tmp}/s.png"], "'--noise': inf is not a finite number"),
        (["saliency", "{coffee}", "--json", "{tmp}", "--out", "{tmp}/s.png"], "it is a folder"),
        (["fool", "{coffee}", "-t", "1", "--lr", "nan", "--out", "{tmp}/f.png"], "'--lr': nan is not a finite number"),
        (["fool", "{coffee}", "-t", "1", "--json", "{coffee}/x.json", "--out", "{tmp}/f.png"], "is not a folder"),
        (["classvis", "-c", "1", "--lr", "inf"], "'--lr': inf is not a finite number"),
        (
            ["stylize", "{coffee}", "{coffee}", "--optimizer", "adam", "--lr", "-1", "--out", "{tmp}/s.png"],
            "--lr and --decay-lr must be positive",
        ),
        (
            ["stylize", "{coffee}", "{coffee}", "--image-size", "100000", "--out", "{tmp}/s.png"],
            "--image-size and --style-size must be between",
        ),
        (["stylize", "{coffee}", "{strip}", "--out", "{tmp}/s.png"], "crop it to a less elongated shape"),
        (["stylize", "{coffee}", "{coffee}", "--compare", "{tmp}", "--out", "{tmp}/s.png"], "it is a folder"),
        (["caption-train", "--out", "{coffee}", "--dataset", "shapes"], "it is a file, not a folder"),
        (["caption-train", "--export", "{tmp}", "--dataset", "shapes", "--out", "{tmp}/c"], "it is a folder"),
        (["gan-sample", "--checkpoint", "{tmp}"], "is a folder"),
    ],
)
def test_bad_options_and_files_end_in_one_line(argv, message, tmp_path, photos, capsys):
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save(torch.nn.Linear(1, 1), tmp_path / "pickle.pt")  # a whole pickled module: refused unread
    Image.new("RGB", (4000, 3), "white").save(tmp_path / "long.png")
    values = dict(
        tmp=tmp_path,
        coffee=photos["coffee"],
        empty=tmp_path / "empty.pt",
        pickle=tmp_path / "pickle.pt",
        strip=tmp_path / "long.png",
    )
    code, out, err = run_cli([a.format(**values) for a in argv] + ["--device", "cpu"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert not list(tmp_path.glob("s*.png")) and not list(tmp_path.glob("f*.png"))  # refused before any work


def test_coco_annotations_are_checked(tmp_path, photos):
    import json

    from a3cli.engine.captioning.coco import load_coco_json
    from a3cli.engine.captioning.features import FeatureSpec

    (tmp_path / "imgs").mkdir()
    for images, message in (
        ([{"id": [1], "file_name": "a.jpg"}], "needs 'id' and 'file_name'"),
        ([{"id": 1, "file_name": "../a.jpg"}], "points outside --images"),
        ([{"id": 1, "file_name": str(photos["coffee"])}], "points outside --images"),
    ):
        path = tmp_path / "captions.json"
        path.write_text(json.dumps({"images": images, "annotations": [{"image_id": 1, "caption": "a cup"}]}))
        with pytest.raises(A3Error, match=message):
            load_coco_json(tmp_path / "imgs", path, FeatureSpec(), lambda name: None)


def test_caption_train_checkpoints_every_n_iterations(tmp_path):
    """A crash mid-epoch (kill -9, power cut) loses at most --checkpoint-every iterations."""
    from a3cli.engine.captioning.training import CaptionTraining, TrainConfig
    from a3cli.engine.distributed import World
    from tests.helpers import toy_data

    training = CaptionTraining(
        toy_data(n_images=40),
        TrainConfig(hidden_dim=8, wordvec_dim=4, batch_size=8, epochs=2),
        tmp_path,
        World(device=torch.device("cpu")),
    )
    step = training.train_step

    def crash_at_four():
        if training.step == 3:
            raise RuntimeError("power cut")
        return step()

    training.train_step = crash_at_four
    with pytest.raises(RuntimeError, match="power cut"):
        training.train(checkpoint_every=2)
    saved = load_checkpoint(tmp_path / CHECKPOINT_NAME, kind="captioner")
    assert (saved["epoch"], saved["position"], len(saved["train_loss"])) == (0, 2, 2)
