"""More than one process: gan-train and caption-train under torchrun (2 CPU ranks, gloo) train what
one process trains.

The GAN runs are compared in float64: in float32, Adam's first steps (about lr·sign(g)) turn the
rounding difference of summing in another order into differences of 1e-3 within a few iterations,
as running one process on 2 threads instead of 1 does (benchmarks/bench_distributed.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

COMMON = ["gan-train", "--batch-size", "16", "--no-fid", "--sample-every", "2", "--device", "cpu", "--eval-every", "0"]


FLOAT64 = """
import torch
torch.set_default_dtype(torch.float64)
"""

MODELS_AT_EXIT = """
import gc, sys
from torch.nn.parallel import DistributedDataParallel
from a3cli.engine import distributed
leave = distributed.stop
def stop():
    gc.collect()
    alive = sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())
    print(f"left the process group with {alive} models alive", file=sys.stderr)
    leave()
distributed.stop = stop
"""


def a3(args: list[str], ranks: int = 1, prelude: str = "", **env: str) -> subprocess.CompletedProcess:
    """Run `a3 ARGS` in 1 process or under torchrun; `prelude` is Python that each process runs first."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks), "--no-python"]
        if ranks > 1
        else []
    )  # --standalone: a free port of its own, per launch
    program = (
        [sys.executable, "-c", prelude + "from a3cli.cli import main\nmain(__import__('sys').argv[1:])"]
        if prelude
        else [sys.executable, "-m", "a3cli"]
    )
    result = subprocess.run(launcher + program + args, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)


def assert_same_training(one: Path, two: Path) -> None:
    """In float64 the rounding differences of summing in another order stay at ~1e-15; a bug (a rank with
    other noise, other images, or BatchNorm statistics of its half batch only) shows at ~1e-2."""
    a, b = checkpoint(one), checkpoint(two)
    assert a["history"]["d_loss"] == pytest.approx(b["history"]["d_loss"], abs=1e-10)
    assert a["history"]["g_loss"] == pytest.approx(b["history"]["g_loss"], abs=1e-10)
    for key in ("generator", "discriminator", "ema_generator"):
        for name, value in a[key].items():
            assert value.dtype != torch.float32, "the float64 run was float32"
            assert torch.allclose(value, b[key][name], rtol=0, atol=1e-10), f"{key}.{name}"


def two_ranks_and_one(tmp_path: Path, args: list[str]) -> None:
    a3(args + ["--out", str(tmp_path / "one")], prelude=FLOAT64)
    a3(args + ["--out", str(tmp_path / "two")], ranks=2, prelude=FLOAT64)
    assert_same_training(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_two_ranks_train_the_one_process_model_and_resume_with_one(tmp_path):
    # dcgan: BatchNorm in the generator, synchronised across the ranks
    common = COMMON + ["--variant", "dcgan"]
    two_ranks_and_one(tmp_path, common + ["--iterations", "2"])
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["batch_size_per_rank"]) == (2, 8)
    events = "events.out.tfevents"  # TensorBoard's file names hold the time, the host and the process

    def files(run: str) -> list[str]:
        return sorted(events if p.name.startswith(events) else p.name for p in (tmp_path / run).rglob("*"))

    assert files("one") == files("two") and files("two").count(events) == 1  # rank 1 wrote nothing of its own

    # the 2-rank run continued by one process follows the 1-process run to 3 iterations
    a3(common + ["--resume", "--iterations", "3", "--out", str(tmp_path / "two")], prelude=FLOAT64)
    a3(common + ["--resume", "--iterations", "3", "--out", str(tmp_path / "one")], prelude=FLOAT64)
    assert checkpoint(tmp_path / "two")["step"] == 3
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["world_size"] == 1
    assert_same_training(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_two_ranks_train_wgan_gp_as_one_process(tmp_path):
    # the gradient penalty (its random mixing weights, its double backward through DDP), 5 critic steps
    two_ranks_and_one(tmp_path, COMMON + ["--variant", "wgan-gp", "--iterations", "1"])


@pytest.mark.slow
def test_diffusion_train_on_two_ranks_is_the_one_process_run(tmp_path):
    # each rank takes its half of the batch, of its timesteps and noise, and of the hidden labels
    args = ["diffusion-train", "--width", "8", "--timesteps", "50", "--batch-size", "16", "--classes"]
    args += ["--precision", "float32", "--iterations", "2", "--no-fid", "--no-download", "--device", "cpu"]
    a3(args + ["--out", str(tmp_path / "one")], prelude=FLOAT64)
    a3(args + ["--out", str(tmp_path / "two")], ranks=2, prelude=FLOAT64)
    a, b = checkpoint(tmp_path / "one"), checkpoint(tmp_path / "two")
    assert a["history"]["loss"] == pytest.approx(b["history"]["loss"], abs=1e-10)
    for key in ("model", "ema_model"):
        for name, value in a[key].items():
            assert value.dtype == torch.float64, "the float64 run was not float64"
            assert torch.allclose(value, b[key][name], rtol=0, atol=1e-10), f"{key}.{name}"


@pytest.mark.slow
def test_caption_train_on_two_ranks_with_uneven_shares_then_one(tmp_path):
    from tests.helpers import write_coco_h5

    data = write_coco_h5(tmp_path / "coco")  # 80 training captions: batches of 25, 25, 25 and 5
    common = [
        "caption-train",
        "--data",
        str(data),
        "--cell-type",
        "lstm",
        "--hidden-dim",
        "16",
        "--wordvec-dim",
        "8",
        "--batch-size",
        "25",
        "--device",
        "cpu",
    ]
    a3(common + ["--epochs", "2", "--out", str(tmp_path / "one")])
    launched = a3(common + ["--epochs", "2", "--out", str(tmp_path / "two")], ranks=2, prelude=MODELS_AT_EXIT)
    # a model still holding the group when it is left may be freed only while Python shuts down, with the
    # group's gloo threads: an abort now and then ('terminate called without an active exception')
    assert launched.stderr.count("left the process group with 0 models alive") == 2, launched.stderr[-3000:]
    one, two = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("one", "two"))
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4) and len(one["train_loss"]) == 8
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)
    for name, value in one["model"].items():
        assert torch.allclose(two["model"][name], value, atol=1e-4), name
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["batch_size_per_rank"]) == (2, 13) and "val" in metrics["bleu"]

    a3(common + ["--epochs", "3", "--resume", "--out", str(tmp_path / "two")])
    assert len(torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["train_loss"]) == 12


def test_a_job_restarted_by_torchrun_resumes_by_itself(tmp_path):
    out = str(tmp_path / "run")
    a3(COMMON + ["--variant", "gan", "--iterations", "2", "--out", out])
    # what torchrun --max-restarts sets in a restarted job: no --resume needed (a fresh run would be refused)
    a3(COMMON + ["--variant", "gan", "--iterations", "3", "--out", out], TORCHELASTIC_RESTART_COUNT="1")
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 3 and len(saved["history"]["d_loss"]) == 3


def test_batch_must_split_evenly_across_ranks(tmp_path):
    from a3cli.engine.distributed import World
    from a3cli.engine.errors import A3Error
    from a3cli.engine.gan.training import GanConfig, prepare_gan

    with pytest.raises(A3Error, match="multiple of the number of processes"):
        prepare_gan(GanConfig(out=tmp_path / "run", batch_size=33, fid=False), World(rank=0, world_size=2))


def test_world_shares_are_the_global_batch_in_order():
    from a3cli.engine.distributed import World

    batch = torch.arange(12)
    shares = [World(rank=r, world_size=3).shard(batch) for r in range(3)]
    assert torch.equal(torch.cat(shares), batch)
    assert World().shard(batch) is batch
