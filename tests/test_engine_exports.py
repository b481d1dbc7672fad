"""The engine's public names import from `a3cli.engine`, and light modules stay torch-free."""

import subprocess
import sys

import a3cli.engine as engine


def test_every_exported_name_resolves():
    for name in engine.__all__:
        assert getattr(engine, name) is not None
    from a3cli.engine import lstm_forward, temporal_softmax_loss  # noqa: F401


def test_errors_module_does_not_import_torch():
    code = "import sys, a3cli.engine.errors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
