"""More than one process: PyTorch's own engine (torchrun + DistributedDataParallel), and what a run needs of it.

Launched by `torchrun`, every process finds RANK, LOCAL_RANK and WORLD_SIZE in its
environment; `start` joins the process group (NCCL on CUDA, gloo on the CPU) and
picks the process's device (cuda:LOCAL_RANK under `--device auto`). Outside torchrun
nothing changes: one process, rank 0 of 1.

A run's global batch is split across ranks, and its data order and noise depend only
on the run's seed and the iteration, so N ranks train the model one process would
(up to float rounding). Rank 0 alone writes files.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from a3cli.engine.errors import A3Error, first_line


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # this rank's (the collectives' tensors live there)

    @property
    def main(self) -> bool:
        """The process that writes: rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, batch: Tensor) -> Tensor:
        """This rank's share of a global batch: consecutive rows, equal shares where the size allows
        (torch.tensor_split: the first n % W ranks take one row more)."""
        if not self.distributed:
            return batch
        return torch.tensor_split(batch, self.world_size)[self.rank]

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the others (it fills a cache the others then read)."""
        if self.distributed and not self.main:
            dist.barrier()
        yield
        if self.distributed and self.main:
            dist.barrier()

    def average(self, values: list[float]) -> list[float]:
        """The mean over ranks of each value (every rank gets it): a loss of the global batch from its shares."""
        if not self.distributed:
            return values
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return (total / self.world_size).tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any: a stop request (Ctrl-C, SIGTERM) stops them all together."""
        if not self.distributed:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def restarted() -> bool:
    """Whether torchrun restarted this job after a failure (--max-restarts): it then resumes by itself."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def start(device: torch.device) -> World:
    """Join torchrun's process group if there is one: this process's place and the device it uses.

    `device` is what --device resolved to; on CUDA each rank takes its own GPU. The group is
    left at exit (`stop`), once the command's models are gone.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return World(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise A3Error(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise A3Error(f"--device {device.type}: more than one process needs CUDA (NCCL) or the CPU (gloo)")
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None
        )
        atexit.register(stop)
    return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), device)


def stop() -> None:
    """Leave the process group, at exit rather than at the end of a command: the command's
    DistributedDataParallel models hold the group, and one freed only while Python shuts down takes the
    group's gloo threads down with it then (SIGABRT, 'terminate called without an active exception').

    A signal now (torchrun passes Ctrl-C on, and SIGTERM after it) would break off the leaving half-way,
    with the same abort: the process is ending anyway, so signals are ignored from here on."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signum, signal.SIG_IGN)
    gc.collect()  # models kept alive by reference cycles
    if dist.is_initialized() and not _group_broken:
        dist.destroy_process_group()


# Messages of a collective whose peer is gone (gloo: the socket; NCCL: the communicator; either: a timeout).
LOST_PEER = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL", "Timed out", "timed out")
_group_broken = False  # a peer died: the group cannot be left cleanly


def lost_contact(error: BaseException, world: World) -> str | None:
    """How `error`, raised in a distributed step, says that another rank died or cannot be reached, if it does."""
    if not world.distributed or not isinstance(error, RuntimeError):
        return None
    found = next((text for text in LOST_PEER if text in str(error)), None)
    return found or (first_line(error) if isinstance(error, dist.DistError) else None)


def leave_broken_group() -> None:
    """A peer died: ignore the signals torchrun sends the survivors (the job is stopping already) and do not
    try to leave the group at exit; the CLI ends the process at once after its line."""
    global _group_broken
    _group_broken = True
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):
            signal.signal(signum, signal.SIG_IGN)


def first_to_report() -> bool:
    """Whether this rank is the first survivor to stop, so that one rank alone says why: a counter in
    torchrun's store, which outlives any rank. Without an answer within seconds, this rank reports."""
    try:
        store = dist.distributed_c10d._get_default_store()
        store.set_timeout(timedelta(seconds=5))
        return store.add("a3/stop-reported", 1) == 1
    except Exception:  # the store is gone too: better two lines than none
        return True


def parallel(model: nn.Module, world: World) -> nn.Module:
    """`model` for training steps: wrapped in DistributedDataParallel under torchrun (gradients averaged over
    ranks), else itself. Checkpoints, samples and measurements use the bare model."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)  # BatchNorm is synchronised


class SyncedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose batch statistics are those of the global batch, on any device.

    torch.nn.SyncBatchNorm runs on GPUs only; this computes the same statistics with
    PyTorch's differentiable all_reduce, so that gloo ranks on CPUs train a model with
    BatchNorm as one process would. Outside training (or in one process) it is BatchNorm.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device)
        with warnings.catch_warnings():  # torch 2.x calls it deprecated, and has no other differentiable one
            warnings.simplefilter("ignore", FutureWarning)
            from torch.distributed.nn.functional import all_reduce

            stats = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count.view(1)]))
        n = stats[-1]
        mean = stats[: x.shape[1]] / n
        var = stats[x.shape[1] : 2 * x.shape[1]] / n - mean * mean  # biased, as BatchNorm normalises with
        if self.track_running_stats:
            # BatchNorm registers these three buffers whenever it tracks running statistics.
            assert self.num_batches_tracked is not None and self.running_mean is not None
            assert self.running_var is not None
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def sync_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of `model` synchronised across ranks: torch's SyncBatchNorm on CUDA, ours elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            synced = SyncedBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            ).to(next(child.parameters(), child.running_mean))
            synced.load_state_dict(child.state_dict())
            setattr(model, name, synced)
        else:
            sync_batch_norm(child, device)
    return model
