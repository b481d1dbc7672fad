"""A battery of bad inputs and faults against every command, tallied by outcome.

Each case runs `a3 ...` in this process (after the fixtures are made once) and is put
in one of these classes:

  refused      exit 2 and exactly one `error:` line on stderr (what every mistake should give)
  noisy        exit 2, but with more on stderr than the one line
  traceback    an exception escaped (a bug)
  exit0        exit 0 where the input was bad (garbage or nothing written)
  ok           a valid but odd input that worked, as it should
  failed-ok    a valid input that was refused
  late         refused, but only after the work (a progress bar was drawn first)

Write faults (a file-size limit, as `ulimit -f` sets) run as subprocesses and also check that
no data was lost: the previous checkpoint byte-identical, no temporary file left.

Malicious pickles are given to every option that reads a checkpoint or weights: if one
ran its code, a marker file appears and the run says so. Signals (Ctrl-C, SIGTERM,
kill -9, a rank of a torchrun job killed) are checked in tests/test_faults.py and
tests/test_distributed_faults.py, not here.

    .venv/bin/python benchmarks/fault_battery.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from a3cli.cli import main  # noqa: E402

EXAMPLE = ROOT / "examples" / "coffee.jpg"


class Evil:
    """A pickle that, if unpickled without weights_only, writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def fixtures(tmp: Path) -> dict[str, Path]:
    """Bad and odd files, once."""
    f = {"tmp": tmp, "photo": EXAMPLE, "marker": tmp / "PWNED"}
    (tmp / "empty.jpg").write_bytes(b"")
    f["empty"] = tmp / "empty.jpg"
    (tmp / "text.jpg").write_text("not an image")
    f["text"] = tmp / "text.jpg"
    raw = EXAMPLE.read_bytes()
    (tmp / "truncated.jpg").write_bytes(raw[: len(raw) // 3])
    f["truncated"] = tmp / "truncated.jpg"
    Image.new("RGB", (1, 1), "red").save(tmp / "one.png")
    f["one"] = tmp / "one.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 65535).astype(np.uint16)).save(tmp / "sixteen.png")
    f["sixteen"] = tmp / "sixteen.png"
    Image.open(EXAMPLE).convert("CMYK").save(tmp / "cmyk.jpg")
    f["cmyk"] = tmp / "cmyk.jpg"
    palette = Image.open(EXAMPLE).convert("P")
    palette.info["transparency"] = 0
    palette.save(tmp / "palette.png")
    f["palette"] = tmp / "palette.png"
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "green", "blue")]
    frames[0].save(tmp / "anim.gif", save_all=True, append_images=frames[1:])
    f["anim"] = tmp / "anim.gif"
    Image.open(EXAMPLE).save(tmp / "café ☕.jpg")
    f["unicode"] = tmp / "café ☕.jpg"
    Image.new("RGB", (4000, 3), "white").save(tmp / "strip.png")
    f["strip"] = tmp / "strip.png"
    with open(tmp / "bomb.png", "wb") as out:  # 20000 x 20000 declared, a few bytes of data
        Image.new("1", (20000, 20000)).save(out, format="PNG")
    f["bomb"] = tmp / "bomb.png"
    torch.save(Evil(f["marker"]), tmp / "evil.pt")
    f["evil"] = tmp / "evil.pt"
    (tmp / "empty.pt").write_bytes(b"")
    f["empty_pt"] = tmp / "empty.pt"
    torch.save({"kind": "gan"}, tmp / "gan_nokeys.pt")
    f["gan_nokeys"] = tmp / "gan_nokeys.pt"
    torch.save(
        {"kind": "gan", "run": {"variant": "vae", "noise_dim": 96}, "generator": {}, "step": 1}, tmp / "gan_variant.pt"
    )
    f["gan_variant"] = tmp / "gan_variant.pt"
    torch.save(
        {
            "kind": "gan",
            "run": {"variant": "gan", "noise_dim": 96},
            "generator": {"0.weight": torch.zeros(3, 3)},
            "step": 1,
        },
        tmp / "gan_shapes.pt",
    )
    f["gan_shapes"] = tmp / "gan_shapes.pt"
    torch.save({"kind": "captioner"}, tmp / "cap_nokeys.pt")
    f["cap_nokeys"] = tmp / "cap_nokeys.pt"
    ckpt = torch.load(ROOT / "weights" / "caption_shapes.pt", weights_only=True)
    torch.save({k: v for k, v in ckpt.items() if k != "feature_spec"}, tmp / "cap_nospec.pt")
    f["cap_nospec"] = tmp / "cap_nospec.pt"
    torch.save({**ckpt, "model": {k: v[:1] for k, v in ckpt["model"].items()}}, tmp / "cap_shapes.pt")
    f["cap_shapes"] = tmp / "cap_shapes.pt"
    torch.save({"kind": "mnist-classifier", "state_dict": {}}, tmp / "classifier_bad.pt")
    f["classifier_bad"] = tmp / "classifier_bad.pt"
    (tmp / "imgs").mkdir()
    Image.open(EXAMPLE).save(tmp / "imgs" / "a.jpg")
    Image.open(EXAMPLE).save(tmp / "imgs" / "b.jpg")
    for name, images in (
        ("ann_listid", [{"id": [1], "file_name": "a.jpg"}]),
        ("ann_escape", [{"id": 1, "file_name": "../text.jpg"}, {"id": 2, "file_name": "b.jpg"}]),
        ("ann_missing", [{"id": 1, "file_name": "nope.jpg"}, {"id": 2, "file_name": "b.jpg"}]),
    ):
        (tmp / f"{name}.json").write_text(
            json.dumps(
                {
                    "images": images,
                    "annotations": [{"image_id": 1, "caption": "a cup"}, {"image_id": 2, "caption": "a mug"}],
                }
            )
        )
        f[name] = tmp / f"{name}.json"
    (tmp / "bad.json").write_text("{")
    f["bad_json"] = tmp / "bad.json"
    (tmp / "readonly").mkdir()
    f["readonly"] = tmp / "readonly"
    (tmp / "truncated_folder").mkdir()
    for i in range(40):
        (tmp / "truncated_folder" / f"{i:03d}.jpg").write_bytes(raw[: len(raw) // 2])
    f["truncated_folder"] = tmp / "truncated_folder"
    (tmp / "garbage_folder").mkdir()
    for i in range(3):
        (tmp / "garbage_folder" / f"{i}.jpg").write_text("not a picture")
    f["garbage_folder"] = tmp / "garbage_folder"
    os.mkfifo(tmp / "fifo.pt")
    f["fifo"] = tmp / "fifo.pt"
    (tmp / "zero.pt").symlink_to("/dev/zero")
    f["zero"] = tmp / "zero.pt"
    Image.new("RGB", (40000, 1), "white").save(tmp / "line.png")
    f["line"] = tmp / "line.png"
    hostile_caption_files(tmp, f)
    return f


def hostile_caption_files(tmp: Path, f: dict[str, Path]) -> None:
    """Caption files that are hostile rather than wrong: nested 200,000 deep, a NUL in a file name, images
    that are link loops (to itself, two links, a looping folder), a training split whose images are all gone."""
    deep = "[" * 200_000 + "]" * 200_000
    for name in ("karpathy_deep", "ann_deep"):
        (tmp / f"{name}.json").write_text(deep)
        f[name] = tmp / f"{name}.json"
    (tmp / "imgs" / "self.jpg").symlink_to("self.jpg")
    (tmp / "imgs" / "one.jpg").symlink_to("two.jpg")
    (tmp / "imgs" / "two.jpg").symlink_to("one.jpg")
    (tmp / "imgs" / "loop").symlink_to(".")

    def karpathy(name: str, train: list[str]) -> None:
        entries = [{"filename": file, "split": "train", "sentences": [{"tokens": ["a", "cup"]}]} for file in train]
        entries.append({"filename": "b.jpg", "split": "val", "sentences": [{"tokens": ["a", "mug"]}]})
        (tmp / f"{name}.json").write_text(json.dumps({"images": entries}))
        f[name] = tmp / f"{name}.json"

    karpathy("karpathy_nul", ["a.jpg", "x\x00y.jpg"])
    karpathy("karpathy_loops", ["a.jpg", "self.jpg", "one.jpg", "loop/loop/loop/a.jpg/.."])
    karpathy("karpathy_gone", ["self.jpg", "one.jpg", "nope.jpg"])
    annotations = [{"image_id": 1, "caption": "a cup"}, {"image_id": 2, "caption": "a mug"}]
    images = [{"id": 1, "file_name": "a\x00.jpg"}, {"id": 2, "file_name": "b.jpg"}]
    (tmp / "ann_nul.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    f["ann_nul"] = tmp / "ann_nul.json"
    (tmp / "dangling").mkdir()
    (tmp / "dangling" / "coffee.jpg").symlink_to(tmp / "outside.jpg")
    f["dangling"] = tmp / "dangling"


BAD_IMAGES = ["empty", "text", "truncated", "bomb", "missing", "folder"]
ODD_IMAGES = ["one", "sixteen", "cmyk", "palette", "anim", "unicode"]
QUICK = {
    "classify": [],
    "saliency": ["--out", "{tmp}/s.png"],
    "fool": ["-t", "1", "--max-iter", "1", "--out", "{tmp}/f.png"],
    "stylize": ["{photo}", "-n", "1", "--image-size", "32", "--out", "{tmp}/st.png"],
    "caption-sample": [],
}


def cases() -> list[tuple[str, list[str], str]]:
    """(category, argv, expected: refuse | ok)."""
    out = []
    image_files = {"missing": "{tmp}/missing.jpg", "folder": "{tmp}/imgs"}
    for command, extra in QUICK.items():
        for bad in BAD_IMAGES:
            out.append(("bad image file", [command, image_files.get(bad, "{" + bad + "}"), *extra], "refuse"))
        for odd in ODD_IMAGES:
            out.append(("odd valid image", [command, "{" + odd + "}", *extra], "ok"))
    out += [("elongated image", ["stylize", "{photo}", "{strip}", "--out", "{tmp}/x.png"], "refuse")]
    # Malicious or foreign weights and checkpoints, through every option that reads one.
    for argv in (
        ["classify", "{photo}", "--weights", "{evil}"],
        ["caption-sample", "{photo}", "--checkpoint", "{evil}"],
        ["gan-sample", "--checkpoint", "{evil}"],
        ["gan-train", "--classifier", "{evil}", "--iterations", "1", "--out", "{tmp}/g_evil", "--no-download"],
        ["classify", "{photo}", "--weights", "{empty_pt}"],
        ["classify", "{photo}", "--weights", "{tmp}"],
        ["gan-sample", "--checkpoint", "{gan_nokeys}"],
        ["gan-sample", "--checkpoint", "{gan_variant}"],
        ["gan-sample", "--checkpoint", "{gan_shapes}"],
        ["gan-sample", "--checkpoint", "{photo}"],
        ["caption-sample", "{photo}", "--checkpoint", "{cap_nokeys}"],
        ["caption-sample", "{photo}", "--checkpoint", "{cap_nospec}"],
        ["caption-sample", "{photo}", "--checkpoint", "{cap_shapes}"],
        ["caption-sample", "{photo}", "--checkpoint", "{gan_nokeys}"],
        ["gan-train", "--classifier", "{classifier_bad}", "--iterations", "1", "--out", "{tmp}/g_cls", "--no-download"],
    ):
        out.append(("bad checkpoint or weights", argv, "refuse"))
    # Options that cannot be right.
    for argv in (
        ["classify", "{photo}", "--top", "0"],
        ["info", "--seed", str(2**70)],
        ["info", "--device", "tpu"],
        ["saliency", "{photo}", "--noise", "inf"],
        ["saliency", "{photo}", "--method", "guided"],
        ["fool", "{photo}", "-t", "1", "--lr", "inf"],
        ["fool", "{photo}", "-t", "nosuchclass"],
        ["fool", "{photo}", "-t", "1", "--confidence", "2"],
        ["classvis", "-c", "1", "--lr", "nan"],
        ["classvis", "-c", "1", "--param", "cppn"],
        ["classvis", "-c", "1", "--size", "10"],
        ["stylize", "{photo}", "{photo}", "--lr", "nan"],
        ["stylize", "{photo}", "{photo}", "--optimizer", "adam", "--lr", "-1"],
        ["stylize", "{photo}", "{photo}", "--image-size", "100000"],
        ["stylize", "{photo}", "{photo}", "--style-weights", "1,inf"],
        ["stylize", "{photo}"],
        ["stylize", "{photo}", "{photo}", "--preset", "nope"],
        ["caption-train", "--lr", "inf"],
        ["caption-train", "--cell-type", "gru", "--out", "{tmp}/c_gru"],
        ["caption-train", "--data", "{tmp}/nowhere"],
        ["caption-train", "--images", "{tmp}/imgs"],
        ["caption-train", "--images", "{tmp}/imgs", "--annotations", "{bad_json}", "--out", "{tmp}/c1"],
        ["caption-train", "--images", "{tmp}/imgs", "--annotations", "{ann_listid}", "--out", "{tmp}/c2"],
        ["caption-train", "--images", "{tmp}/imgs", "--annotations", "{ann_escape}", "--out", "{tmp}/c3"],
        ["caption-train", "--images", "{tmp}/imgs", "--annotations", "{ann_missing}", "--out", "{tmp}/c4"],
        ["caption-train", "--resume", "--out", "{tmp}/c_none"],
        ["caption-sample", "--temperature", "0"],
        ["caption-sample", "{photo}", "--beam-size", "2", "--temperature", "1"],
        ["gan-train", "--variant", "vae"],
        ["gan-train", "--lr", "-1", "--no-download", "--out", "{tmp}/g1"],
        ["gan-train", "--resume", "--out", "{tmp}/g_none"],
        ["gan-train", "--dataset", "{tmp}/nowhere"],
        ["gan-sample", "--checkpoint", "{tmp}/none.pt"],
        ["gan-classifier", "--epochs", "0"],
    ):
        out.append(("bad option", argv, "refuse"))
    # Outputs that cannot be written: refused before the work.
    for argv in (
        ["classify", "{photo}", "--out", "{tmp}/x.txt"],
        ["classify", "{photo}", "--json", "{tmp}/imgs"],
        ["saliency", "{photo}", "--out", "{tmp}/imgs"],
        ["saliency", "{photo}", "--json", "{photo}/x.json"],
        ["fool", "{photo}", "-t", "1", "--out", "{tmp}/f.jpg"],
        ["fool", "{photo}", "-t", "1", "--json", "{tmp}/imgs"],
        ["classvis", "-c", "1", "--out", "{tmp}/imgs"],
        ["classvis", "-c", "1", "--json", "{tmp}/imgs"],
        ["stylize", "{photo}", "{photo}", "--out", "{tmp}/x.txt"],
        ["stylize", "{photo}", "{photo}", "--compare", "{tmp}/imgs"],
        ["stylize", "{photo}", "{photo}", "--json", "{photo}/x.json"],
        ["caption-train", "--out", "{photo}"],
        ["caption-train", "--export", "{tmp}/imgs", "--out", "{tmp}/c5"],
        ["caption-sample", "--dataset", "shapes", "--out", "{tmp}/c.txt"],
        ["gan-train", "--out", "{photo}"],
        ["gan-sample", "--checkpoint", "{gan_nokeys}", "--out", "{tmp}/g.txt"],
        ["gan-classifier", "--out", "{tmp}/imgs"],
    ):
        out.append(("output that cannot be written", argv, "refuse"))
    # Outputs on a file system that takes no files (/proc, even for root), and one that is a device.
    for argv in (
        ["classify", "{photo}", "--out", "/proc/x.png"],
        ["classify", "{photo}", "--json", "/proc/x.json"],
        ["saliency", "{photo}", "--out", "/proc/x.png"],
        ["saliency", "{photo}", "--json", "/proc/x.json", "--out", "{tmp}/s.png"],
        ["fool", "{photo}", "-t", "1", "--out", "/proc/x.png"],
        ["fool", "{photo}", "-t", "1", "--json", "/proc/x.json", "--out", "{tmp}/f.png"],
        ["classvis", "-c", "1", "--out", "/proc/x.png"],
        ["classvis", "-c", "1", "--json", "/proc/x.json", "--out", "{tmp}/cv.png"],
        ["stylize", "{photo}", "{photo}", "--out", "/proc/x.png"],
        ["stylize", "{photo}", "{photo}", "--json", "/proc/x.json", "--out", "{tmp}/st.png"],
        ["stylize", "{photo}", "{photo}", "--compare", "/proc/x.png", "--out", "{tmp}/st.png"],
        ["caption-train", "--out", "/proc/run"],
        ["caption-train", "--export", "/proc/x.pt", "--out", "{tmp}/c_proc"],
        ["caption-sample", "--dataset", "shapes", "--out", "/proc/x.png"],
        ["caption-sample", "--dataset", "shapes", "--save-images", "/proc/imgs"],
        ["caption-sample", "{photo}", "--attention-maps", "/proc/x.png"],
        ["gan-train", "--out", "/proc/run", "--no-download"],
        ["gan-sample", "--checkpoint", "{gan_nokeys}", "--out", "/proc/x.png"],
        ["gan-classifier", "--out", "/proc/x.pt"],
        ["classify", "{photo}", "--json", "/dev/null"],
    ):
        out.append(("output on a special file system", argv, "refuse"))
    # Sizes that cannot fit.
    for argv in (
        ["saliency", "{photo}", "--method", "ig", "--steps", "100000000"],
        ["saliency", "{photo}", "--method", "smoothgrad", "--samples", "100000000"],
        ["saliency", "{photo}", "--batch-size", "100000000"],
        ["saliency", "{line}", "--out", "{tmp}/s_line.png"],
        ["fool", "{photo}", "-t", "1", "--max-iter", "100000000"],
        ["classvis", "-c", "1", "--iterations", "100000000"],
        ["stylize", "{photo}", "{photo}", "--iterations", "100000000"],
        ["gan-train", "--eval-samples", "100000000"],
        ["gan-train", "--fid-samples", "100000000"],
        ["gan-train", "--batch-size", "100000000"],
        ["gan-train", "--iterations", "10000000000"],
        ["gan-train", "--noise-dim", "100000000"],
        ["gan-sample", "-n", "100000000"],
        ["gan-classifier", "--epochs", "100000000"],
        ["caption-train", "--batch-size", "100000000"],
        ["caption-train", "--hidden-dim", "100000000"],
        ["caption-train", "--train-images", "100000000"],
        ["caption-sample", "--dataset", "shapes", "--num", "100000000"],
        ["caption-sample", "{photo}", "--beam-size", "100000000"],
    ):
        out.append(("size that cannot fit", argv, "refuse"))
    # Folders of pictures that do not decode, special files to read, finite numbers before ranges.
    for argv in (
        ["gan-train", "--variant", "dcgan", "--image-size", "64", "--dataset", "{truncated_folder}"],
        ["gan-train", "--variant", "dcgan", "--image-size", "64", "--dataset", "{garbage_folder}"],
        ["gan-train", "--dataset", "{truncated_folder}", "--out", "{tmp}/g_trunc28"],
        ["gan-sample", "--checkpoint", "{zero}"],
        ["gan-sample", "--checkpoint", "{fifo}"],
        ["classify", "{photo}", "--weights", "{zero}"],
        ["classify", "{fifo}"],
        ["caption-sample", "{photo}", "--checkpoint", "{fifo}"],
        ["gan-train", "--classifier", "{zero}", "--out", "{tmp}/g_zero", "--no-download"],
        ["gan-train", "--ema", "nan"],
        ["caption-train", "--lr", "nan"],
    ):
        out.append(("bad folder, special file, nan", argv, "refuse"))
    return out + hostile_cases()


def hostile_cases() -> list[tuple[str, list[str], str]]:
    """Hostile caption data, ranges that overflow, channels that cannot be drawn, thread counts, links."""
    out = []
    karpathy = ["caption-train", "--images", "{tmp}/imgs", "--karpathy"]
    for check in ([], ["--check"]):
        for argv in (
            [*karpathy, "{karpathy_deep}"],
            [*karpathy, "{karpathy_nul}"],
            [*karpathy, "{karpathy_gone}"],
            ["caption-train", "--images", "{tmp}/imgs", "--annotations", "{ann_deep}"],
            ["caption-train", "--images", "{tmp}/imgs", "--annotations", "{ann_nul}"],
        ):
            out.append(("hostile caption data", [*argv, *check, "--out", "{tmp}/c_hostile"], "refuse"))
    out.append(("hostile caption data", [*karpathy, "{karpathy_loops}", "--check"], "ok"))
    for argv in (
        ["classvis", "--objective", "block10:0-99999999999999999999999"],
        ["classvis", "--objective", "block10:3@99999999999999999999,1"],
        ["classvis", "--objective", "head:1279", "--iterations", "2", "--out", "{tmp}/cv_dead.png"],
        ["classvis", "--objective", "head:5", "--iterations", "2", "--out", "{tmp}/cv_dead.png"],
        ["saliency", "{photo}", "--method", "gradcam", "--layer", ""],
        ["classify", "{photo}", "--threads", "1000"],
        ["gan-train", "--threads", "1000", "--no-download", "--out", "{tmp}/g_threads"],
        ["examples", ""],
        ["stylize", "{photo}", "{photo}", "--out", "{tmp}/st.gif"],
    ):
        out.append(("objectives, threads, names", argv, "refuse"))
    out.append(("objectives, threads, names", ["examples", "{dangling}"], "ok"))
    return out


WRITE_FAULTS = {
    "gan-train": ["gan-train", "--no-download", "--no-fid", "--batch-size", "16", "--eval-every", "0"],
    "caption-train": ["caption-train", "--dataset", "shapes", "--train-images", "40"],
}


def write_fault_cases(tmp: Path) -> list[tuple[str, str, bool]]:
    """Both trainers, resumed under a file-size limit of half their checkpoint (subprocesses):
    (outcome class, command line, whether data was lost)."""
    import resource
    import subprocess

    results = []
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT), "A3_CACHE": str(tmp / "cache")}
    for name, argv in WRITE_FAULTS.items():
        run = tmp / f"fsize_{name}"
        argv = [*argv, "--device", "cpu", "--out", str(run), "--data-root" if name == "gan-train" else "--seed"]
        argv.append(str(tmp / "data") if name == "gan-train" else "0")
        first = [*argv, "--iterations", "3"] if name == "gan-train" else [*argv, "--epochs", "1"]
        again = [*argv, "--resume", *(["--iterations", "6", "--checkpoint-every", "1"] if name == "gan-train" else [])]
        again += [] if name == "gan-train" else ["--epochs", "2"]
        done = subprocess.run([sys.executable, "-m", "a3cli", *first], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            results.append(("failed-ok", " ".join(first), False))
            continue
        before = (run / "checkpoint.pt").read_bytes()
        limit = len(before) // 2

        def set_limit(limit: int = limit) -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        faulted = subprocess.run(
            [sys.executable, "-m", "a3cli", *again], env=env, preexec_fn=set_limit, capture_output=True, text=True
        )
        lines = [line for line in faulted.stderr.splitlines() if line.strip() and "━" not in line]
        lines = [line for line in lines if not line.startswith("note:")]
        if "Traceback" in faulted.stderr:
            outcome = "traceback"
        elif faulted.returncode == 2 and len(lines) == 1 and "is kept" in lines[0]:
            outcome = "refused"
        else:
            outcome = "noisy"
        lost = (run / "checkpoint.pt").read_bytes() != before or bool(list(run.glob(".*.tmp")))
        results.append((outcome, f"ulimit -f {limit // 1024}k; a3 " + " ".join(again), lost))
    # First writes with no room at all (a 0-byte limit): the run folder's lock, the example photos.
    for argv in (
        ["caption-train", "--dataset", "shapes", "--train-images", "20", "--out", str(tmp / "fsize_first")],
        ["examples", str(tmp / "fsize_examples")],
    ):
        faulted = subprocess.run(
            [sys.executable, "-m", "a3cli", *argv],
            env=env,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)),
            capture_output=True,
            text=True,
        )
        lines = [line for line in faulted.stderr.splitlines() if line.strip() and not line.startswith("note:")]
        one = faulted.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:")
        outcome = "traceback" if "Traceback" in faulted.stderr else ("refused" if one else "noisy")
        results.append((outcome, "ulimit -f 0; a3 " + " ".join(argv), False))
    return results


def run_case(argv: list[str]) -> tuple[str, int | None, str]:
    """(outcome class, exit code, stderr) of `a3 ARGV` in this process."""
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0
    except BaseException:  # noqa: BLE001 - a bug: count it
        return "traceback", None, traceback.format_exc()
    err = stderr.getvalue().strip()
    if code == 2:
        lines = err.splitlines()
        if len(lines) > 1 and lines[-1].startswith("error:") and "━" in "".join(lines[:-1]):
            return "late", code, err  # a progress bar drew first: the work was done before the refusal
        return ("refused" if len(lines) == 1 and lines[0].startswith("error:") else "noisy"), code, err
    return ("exit0" if code == 0 else f"exit{code}"), code, err


def main_battery() -> None:
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        f = fixtures(tmp)
        os.environ["A3_OFFLINE"] = "1"
        os.environ["A3_DATA"] = str(tmp / "data")
        totals: Counter = Counter()
        by_category: dict[str, Counter] = {}
        problems = []
        for category, argv, expected in cases():
            argv = [a.format(**f) for a in argv] + ["--device", "cpu"] * (argv[0] not in ("info",))
            outcome, code, err = run_case(argv)
            if expected == "ok":
                outcome = "ok" if outcome == "exit0" else ("failed-ok" if outcome != "traceback" else outcome)
            by_category.setdefault(category, Counter())[outcome] += 1
            totals[outcome] += 1
            if outcome not in ("refused", "ok"):
                problems.append((outcome, " ".join(argv).replace(str(tmp), "TMP"), err.splitlines()[-1:] or [""]))
        print(f"{sum(totals.values())} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
        for category, counts in by_category.items():
            print(f"  {category:32s} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        print(f"malicious pickles ran code: {'YES' if f['marker'].exists() else 'no'}")
        print(f"a write followed a link out of its folder: {'YES' if (tmp / 'outside.jpg').exists() else 'no'}")
        lost = []
        for outcome, argv, data_lost in write_fault_cases(tmp):
            totals[outcome] += 1
            by_category.setdefault("write fault (file-size limit)", Counter())[outcome] += 1
            if data_lost:
                lost.append(argv)
            if outcome != "refused":
                problems.append((outcome, argv.replace(str(tmp), "TMP"), [""]))
        counts = by_category["write fault (file-size limit)"]
        print("  write fault (file-size limit)    " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        print(
            f"tally: clean refusals {totals['refused']}, valid inputs that work {totals['ok']}, "
            f"tracebacks {totals['traceback']}, refusals after the work {totals['late']}, "
            f"data lost: {'; '.join(lost) if lost else 'none'}"
        )
        for outcome, argv, last in problems:
            print(f"  [{outcome}] a3 {argv}\n      {last[0][:200]}")


if __name__ == "__main__":
    main_battery()
