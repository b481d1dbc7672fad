"""The engine's public names import from `a3cli.engine`, and light modules stay torch-free."""

import subprocess
import sys

import pytest

import a3cli.engine as engine


def test_every_exported_name_resolves():
    for name in engine.__all__:
        exported = getattr(engine, name)
        # every export is a function or a class of the engine's own, not something re-exported from torch
        assert callable(exported) and exported.__module__.startswith("a3cli.engine."), name
    from a3cli.engine import lstm_forward, temporal_softmax_loss

    assert lstm_forward.__name__ == "lstm_forward" and temporal_softmax_loss.__name__ == "temporal_softmax_loss"
    with pytest.raises(AttributeError):
        engine.no_such_name  # noqa: B018


def test_errors_module_does_not_import_torch():
    code = "import sys, a3cli.engine.errors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
