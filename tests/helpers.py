"""Helpers that the CLI tests share."""

from __future__ import annotations

import subprocess
import sys

import pytest

from a3cli.cli import main


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run `a3 ARGV` in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def torch_free_help(argv: list[str]) -> str:
    """Run `a3 ARGV --help` in a fresh interpreter, check it imported no torch, and return the help text."""
    code = (
        "import sys\n"
        "from a3cli.cli import main\n"
        "try:\n"
        f"    main({[*argv, '--help']!r})\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage" in result.stdout
    assert result.stdout.strip().endswith("NO-TORCH"), "the help imported torch"
    return result.stdout
