"""A torchrun job (2 CPU ranks, gloo) that loses a rank, or that Ctrl-C stops: the survivors stop without
a traceback or an abort, one rank says what happened, and the run resumes from its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
GAN = ["gan-train", "--batch-size", "16", "--no-fid", "--no-download", "--device", "cpu", "--eval-every", "0"]


def torchrun(args: list[str], tmp_path: Path, logs: Path | None = None) -> subprocess.Popen:
    """`torchrun --standalone --nproc-per-node 2 a3 ARGS` in its own process group; with `logs`, each rank's
    stderr goes to its own file there."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "A3_DATA": str(tmp_path / "data")}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    launcher += ["--log-dir", str(logs), "--redirects", "2"] if logs else []
    return subprocess.Popen(
        [*launcher, "--no-python", sys.executable, "-m", "a3cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_checkpoint(run: Path, process: subprocess.Popen) -> None:
    while not (run / "checkpoint.pt").exists() and process.poll() is None:
        time.sleep(0.2)
    time.sleep(2)  # some iterations and another checkpoint or two


def rank_pids(launcher: subprocess.Popen) -> dict[int, int]:
    """The a3 processes of the job, by rank (from their environment)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher.pid:  # torchrun's workers
            ranks = [v[5:] for v in environ if v.startswith(b"RANK=")]
            if ranks:
                found[int(ranks[0])] = int(entry.name)
    return found


def rank_stderr(logs: Path) -> dict[int, str]:
    return {int(path.parent.name): path.read_text() for path in logs.rglob("stderr.log")}


def step_of(run: Path) -> int:
    return int(torch.load(run / "checkpoint.pt", weights_only=True)["step"])


@pytest.mark.parametrize("killed", [1, 0])
def test_a_killed_rank_stops_the_job_in_one_line_and_it_resumes(killed, tmp_path):
    run, logs = tmp_path / "run", tmp_path / "logs"
    argv = [*GAN, "--iterations", "100000", "--checkpoint-every", "5", "--out", str(run)]
    job = torchrun(argv, tmp_path, logs)
    wait_for_checkpoint(run, job)
    os.kill(rank_pids(job)[killed], signal.SIGKILL)
    job.communicate(timeout=120)
    survivor = rank_stderr(logs)[1 - killed]
    assert "Traceback" not in survivor and "Fatal Python error" not in survivor, survivor
    errors = [line for line in survivor.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, survivor
    step = step_of(run)
    assert "lost contact with another rank" in errors[0]
    assert f"the last good checkpoint (iteration {step}) is kept" in errors[0]
    resume = errors[0].split("resume it with: ")[1]
    assert resume.startswith("torchrun --nproc-per-node 2 -m a3cli gan-train") and resume.endswith("--resume")
    resumed = torchrun([*argv[:-4], "--iterations", str(step + 2), "--out", str(run), "--resume"], tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert step_of(run) == step + 2


def test_ctrl_c_to_the_process_group_stops_every_rank_cleanly(tmp_path):
    """The terminal sends SIGINT to every process of the group, and torchrun passes it on once more."""
    for attempt in range(3):
        run, logs = tmp_path / f"run{attempt}", tmp_path / f"logs{attempt}"
        job = torchrun([*GAN, "--iterations", "100000", "--out", str(run)], tmp_path, logs)
        wait_for_checkpoint(run, job)
        time.sleep(0.3 * attempt)
        os.killpg(job.pid, signal.SIGINT)
        job.communicate(timeout=120)
        stderr = rank_stderr(logs)
        for text in stderr.values():
            assert "Traceback" not in text and "terminate called" not in text and "Fatal Python" not in text, text
        assert [line for line in stderr[0].splitlines() if line.strip() == "interrupted"] == ["interrupted"]
        assert "interrupted" not in stderr[1]
        assert step_of(run) >= 1
