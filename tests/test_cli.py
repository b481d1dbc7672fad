"""The `a3` command end to end: help without torch, classify and info on real photos, and user mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import EXAMPLES
from tests.helpers import run_cli as run
from tests.helpers import torch_free_help


@pytest.mark.parametrize("argv", [[], ["classify"], ["info"]])
def test_help_does_not_import_torch(argv):
    torch_free_help(argv)


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "a3cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "classify" in result.stdout and "info" in result.stdout


def test_bare_a3_prints_its_help_once():
    result = subprocess.run([sys.executable, "-m", "a3cli"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.count("Usage: a3") == 1 and "diffusion-train" in result.stdout


def test_help_lists_the_commands_in_the_order_of_the_assignment():
    text = torch_free_help([])
    order = [
        "info",
        "examples",
        "classify",
        "caption-train",
        "caption-sample",
        "saliency",
        "fool",
        "classvis",
        "stylize",
    ]
    order += ["gan-train", "gan-sample", "gan-classifier", "diffusion-train", "diffusion-sample"]
    names = [line.split()[1] for line in text.splitlines() if line.startswith("│ ") and line[2] != " "]  # not wrapped
    listed = [name for name in names if name in order]
    assert listed == order


def test_classify_names_the_espresso(photos, tmp_path, capsys):
    out_png, out_json = tmp_path / "pred.png", tmp_path / "pred.json"
    code, out, err = run(
        [
            "classify",
            str(photos["coffee"]),
            str(photos["chelsea"]),
            "--top",
            "3",
            "--device",
            "cpu",
            "--out",
            str(out_png),
            "--json",
            str(out_json),
        ],
        capsys,
    )
    assert code == 0, err
    assert "espresso" in out
    results = json.loads(out_json.read_text())
    assert [r["top"][0]["class"] for r in results][0] == "espresso"
    assert len(results) == 2 and all(len(r["top"]) == 3 for r in results)
    from PIL import Image

    with Image.open(out_png) as picture:
        assert picture.format == "PNG" and picture.width > 300 and picture.height > 300


def test_json_dash_prints_the_json_alone_on_stdout(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["classify", str(photos["coffee"]), "--top", "2", "--device", "cpu", "--out", "pred.png", "--json", "-"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    (result,) = json.loads(out)  # nothing else on stdout
    assert result["top"][0]["class"] == "espresso" and "espresso" in err and "wrote pred.png" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.png"]  # no file named "-"
    code, out, err = run(["classify", str(photos["coffee"]), "--device", "cpu"], capsys)
    assert code == 0 and "espresso" in out  # the next command's lines are on stdout again


def test_examples_writes_the_bundled_photos_and_keeps_what_is_there(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "coffee.jpg").write_bytes(b"mine")
    code, out, err = run(["examples", str(folder)], capsys)
    assert code == 0, err
    assert (folder / "coffee.jpg").read_bytes() == b"mine" and "kept 1 files" in out
    assert (folder / "chelsea.jpg").read_bytes() == (EXAMPLES / "chelsea.jpg").read_bytes()
    assert {p.name for p in folder.iterdir()} == {p.name for p in EXAMPLES.iterdir()}
    assert run(["examples", str(folder / "coffee.jpg")], capsys)[0] == 2  # a file, not a folder


def test_examples_replaces_links_and_never_writes_through_them(tmp_path, capsys):
    folder, outside = tmp_path / "photos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "mine.jpg").write_bytes(b"mine")
    (folder / "coffee.jpg").symlink_to(outside / "gone.jpg")  # dangling
    (folder / "chelsea.jpg").symlink_to(outside / "mine.jpg")
    code, out, err = run(["examples", str(folder), "--threads", "1"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in outside.iterdir()) == ["mine.jpg"] and (outside / "mine.jpg").read_bytes() == b"mine"
    for name in ("coffee.jpg", "chelsea.jpg"):
        assert not (folder / name).is_symlink() and (folder / name).read_bytes() == (EXAMPLES / name).read_bytes()
    code, out, err = run(["examples", ""], capsys)
    assert code == 2 and err.startswith("error: the folder name is empty")


def test_examples_on_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import os

    real_open = os.open

    def full(path, flags, *args):
        if str(path).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", full)
    code, out, err = run(["examples", str(tmp_path / "photos")], capsys)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err, err
    assert not list(tmp_path.glob("photos/*.jpg"))


def test_info_lists_backbones(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    code, out, err = run(["info", "--device", "cpu"], capsys)
    assert code == 0, err
    assert torch.__version__ in out
    line = next(line for line in out.splitlines() if "efficientnet_lite0" in line)
    assert "yes" in line
    assert "squeezenet1_1" in out and "not cached" in out


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_idle_threads_sleep_unless_the_user_says_otherwise(given, expected):
    """OMP_WAIT_POLICY is set before torch loads (OpenMP reads it then), and a user's own value is kept."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    probe = "import os, sys; import a3cli.cli; print('torch' in sys.modules, os.environ['OMP_WAIT_POLICY'])"
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", expected]


def test_every_option_has_a_help_line_and_one_way_to_write_defaults(capsys):
    """Walks the Typer app: each option of each command says what it is for; flags show no value placeholder;
    defaults are written [default: X] only."""
    import typer
    from typer.core import TyperOption as Option

    from a3cli.app import app
    from a3cli.cli import every_command

    commands = list(every_command(typer.main.get_command(app)))
    assert len(commands) == 15  # the app and its 14 commands
    for command in commands:
        for param in command.params:
            if isinstance(param, Option):
                assert (param.help or "").strip(), f"{command.name} {param.opts[0]} has no help"
                assert "(default" not in param.help, f"{command.name} {param.opts[0]}"
        if command.name in (None, "a3") or getattr(command, "commands", None):
            continue
        code, out, err = run([command.name, "--help"], capsys)
        assert code == 0, err
        assert "<bool>" not in out and "(default" not in out, command.name


def test_at_80_columns_help_cuts_no_option_name_default_or_description(capsys, monkeypatch):
    from a3cli.app import app as typer_app
    from a3cli.cli import COMMANDS  # noqa: F401  (every command registered)

    monkeypatch.setenv("COLUMNS", "80")
    names = [command.name for command in typer_app.registered_commands]
    assert len(names) >= 14
    for name in ["", *names]:
        code, out, err = run([name, "--help"] if name else ["--help"], capsys)
        assert code == 0, err
        assert max(len(line) for line in out.splitlines()) <= 80, name
        assert "…" not in out, f"{name}: {[line for line in out.splitlines() if '…' in line]}"
    assert "[default: /" not in run(["diffusion-sample", "--help"], capsys)[1]  # the shipped model, by name


def test_time_left_is_measured_after_the_warm_up_and_announced_once(monkeypatch):
    from a3cli import app

    clock = iter([0.0, 30.0] + [30.0 + 0.5 * i for i in range(1, 400)])  # 30 s of warm-up, then 2 steps/s
    monkeypatch.setattr(app.time, "monotonic", lambda: next(clock))
    estimate = app.Estimate(total=1000)
    assert estimate.update(0) == ("estimating", None)
    said = [estimate.update(step) for step in range(app.WARM_UP_STEPS, 2 * app.WARM_UP_STEPS)]
    assert all(line is None for _, line in said[: app.WARM_UP_STEPS // 2])
    lines = [line for _, line in said if line]
    assert len(lines) == 1 and "measured 2.0 steps/s" in lines[0] and "about 8 min to go of 1,000 steps" in lines[0]
    assert said[-1][0] == "8 min left"  # (1000 - 19) steps at 2 per second, not the warm-up's pace
    resumed = app.Estimate(total=1000)  # a resumed run with 3 steps left ends without an estimate
    assert [resumed.update(step)[0] for step in (998, 999, 1000)] == ["estimating", "estimating", ""]
    assert app.duration(45) == "45 s" and app.duration(4000) == "67 min" and app.duration(7500) == "2 h 5 min"


def test_time_left_counts_the_measuring_to_come_and_leaves_out_the_measuring_done(monkeypatch):
    from a3cli import app

    # 2 steps/s, but 100 s of measuring at step 15 and another 300 s of it still to come.
    times = {step: 0.5 * step + (100.0 if step >= 15 else 0.0) for step in range(0, 40)}
    now = {"t": 0.0}
    monkeypatch.setattr(app.time, "monotonic", lambda: now["t"])
    estimate = app.Estimate(total=1000)
    for step in range(0, 40):
        now["t"] = times[step]
        spent = 100.0 if step >= 15 else 0.0
        left, line = estimate.update(step, spent, 300.0)
    assert left == "13 min left"  # (1000 - 39) / 2 s of steps + 300 s of measuring, not the 100 s pause's pace
    assert estimate.update(1000, 100.0, 42.0)[0] == "measuring, 42 s left"  # the steps are done, the end is not
    assert estimate.update(1000, 100.0, 0.0)[0] == ""


def test_measuring_to_come_is_the_evaluations_left_and_the_final_measurement():
    from a3cli.engine.generative.estimates import best_measured_again, measuring_times
    from a3cli.engine.progress import MEASURING_LEFT, MEASURING_SPENT

    assert measuring_times(500, 6000, 1000, 1000, 5000, 0.0, 0) == {MEASURING_SPENT: 0.0}  # no cost known yet
    # 2 evaluations took 60 s: 30 s each; to come at 2000..6000 (5), and the final on 5 times the images
    assert measuring_times(1500, 6000, 1000, 1000, 5000, 60.0, 2)[MEASURING_LEFT] == 5 * 30 + 5 * 30
    # best.pt from an earlier evaluation of two models is measured once more: half an evaluation's models
    assert measuring_times(1500, 6000, 1000, 1000, 5000, 60.0, 2, 0.5)[MEASURING_LEFT] == 5 * 30 + 1.5 * 5 * 30
    # a length that is no multiple of eval_every is measured at its end too; eval_every 0: only there
    assert measuring_times(1500, 5500, 1000, 1000, 1000, 60.0, 2)[MEASURING_LEFT] == 5 * 30 + 30
    assert measuring_times(10, 300, 0, 500, 500, 20.0, 1)[MEASURING_LEFT] == 20 + 20
    assert measuring_times(300, 300, 100, 500, 500, 60.0, 3)[MEASURING_LEFT] == 20  # the final alone
    # diffusion's final measurement takes the last evaluation's 1,000 pictures again: 4,000 left to draw
    assert measuring_times(6000, 6000, 1000, 1000, 5000, 300.0, 6, 0.0, 1000)[MEASURING_LEFT] == 4 * 50

    # two models measured (GAN): best.pt from the latest evaluation costs nothing more, an earlier one half
    history = [{"iteration": 100, "generator": {}, "ema": {}}, {"iteration": 200, "generator": {}, "ema": {}}]
    assert best_measured_again(history, {"iteration": 200}) == 0.0
    assert best_measured_again(history, {"iteration": 100}) == 0.5
    assert best_measured_again([{"iteration": 100, "ema": {}}], {"iteration": 50}) == 1.0  # one model (diffusion)
    assert best_measured_again([], None) == 0.0


def test_threads_reach_torch(capsys):
    before = torch.get_num_threads()
    try:
        code, out, err = run(["info", "--device", "cpu", "--threads", "1"], capsys)
        assert code == 0, err
        assert torch.get_num_threads() == 1
        assert "CPU threads" in out and "1 (OpenMP wait policy PASSIVE)" in out
        assert run(["info", "--threads", "0"], capsys)[0] == 2
    finally:
        torch.set_num_threads(before)


def test_far_more_threads_than_cores_are_refused_and_memory_failures_named(capsys, monkeypatch):
    from a3cli import cli
    from a3cli.engine import device

    monkeypatch.setattr(device, "available_cores", lambda: 2)
    code, out, err = run(["info", "--device", "cpu", "--threads", "1000"], capsys)
    assert code == 2 and err.startswith("error: --threads 1000: this process may run on 2 core(s); more than 8")
    # Under an address-space limit a library that cannot be mapped is memory, not a broken install.
    unmapped = ImportError("numpy/random/_generator.so: failed to map segment from shared object")
    assert cli.out_of_memory(unmapped) and not cli.out_of_memory(ImportError("No module named 'nope'"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["classify", "missing.jpg"], "no such file"),
        (["classify", "{text}"], "not an image"),
        (["classify", "{coffee}", "--top", "0"], "--top"),
        (["classify", "{coffee}", "--device", "tpu"], "--device 'tpu'"),
        (["classify", "{coffee}", "--device", "cuda:7"], "--device cuda:7"),
        (["classify", "{coffee}", "--model", "alexnet"], "unknown model 'alexnet'"),
        (["classify", "{coffee}", "--model", "squeezenet1_1"], "not available offline"),
        (["classify", "{coffee}", "--weights", "{text}"], "cannot load weights"),
        (["classify", "{coffee}", "--json", "{text}/x.json"], "cannot write"),
        (["classify"], "Missing argument"),
        (["nonsense"], "No such command"),
    ],
)
def test_user_mistakes_end_with_one_line_and_status_2(argv, message, photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("A3_OFFLINE", "1")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    argv = [a.format(text=text, coffee=photos["coffee"]) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in err + out


def test_version(capsys):
    from importlib.metadata import version

    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"a3 {version('a3cli')}"
