"""Device choice and seeding, shared by every command.

The seeding rule: every random draw starts from `--seed`, never from what ran before
it (building a backbone, say, or making a feature cache draws numbers too).

- A command first seeds Python's, NumPy's and torch's global generators
  (`seed_everything`); data loading draws from them.
- A training run seeds them again from its seed just before it builds its networks,
  and its checkpoint saves and restores them (`rng_state`), so `--resume` continues
  the same run.
- Every other random process (a picture's starting noise, SmoothGrad's noise, a data
  set's order, a caption drawn at a temperature) takes a `seed` and draws from its
  own `seeded_generator(seed)`.
"""

from __future__ import annotations

import os
import random
import re
from typing import cast

import numpy as np
import torch

from a3cli.engine.errors import A3Error

DEVICE_CHOICES = "auto|cpu|cuda|cuda:N|mps"
TORCH_THREADS = torch.get_num_threads()  # torch's own choice, read before anything changes it


def auto_device() -> torch.device:
    """CUDA when available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bfloat16(device: torch.device) -> bool:
    """Whether the device computes bfloat16 in hardware (a GPU that has it; a CPU with AVX512-BF16 or AMX): there
    autocast to bfloat16 nearly halves a convolution network's time; elsewhere it is emulated, and slower."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Matrix products and convolutions in bfloat16 when `precision` says so (the rest stays float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn a `--device` value into a usable torch.device, or say why it can't be used."""
    spec = spec.strip().lower()
    if spec == "auto":
        return auto_device()
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not torch.backends.mps.is_available():
            raise A3Error("--device mps: Apple MPS is not available on this machine (try --device auto)")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if match:
        if not torch.cuda.is_available():
            raise A3Error(f"--device {spec}: CUDA is not available on this machine (try --device auto or cpu)")
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise A3Error(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device("cuda", index)
    raise A3Error(f"--device {spec!r} is not one of {DEVICE_CHOICES}")


THREADS_PER_CORE = 4  # --threads beyond this many per core only wait on each other, and each reserves memory


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, which containers and `taskset` narrow."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads() -> int:
    """The available cores, at most torch's own choice of one thread per physical core; under torchrun,
    OMP_NUM_THREADS where it is set."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    return max(1, min(available_cores(), TORCH_THREADS))


def use_threads(threads: int | None = None) -> int:
    """torch's intra-op threads: `threads` (--threads), else `default_threads()`. The CLI also makes idle
    OpenMP threads sleep rather than spin (OMP_WAIT_POLICY=PASSIVE, a3cli/cli.py), so that a busy machine's
    other programs and a3 do not fight over the cores. Far more threads than cores are refused: starting
    them can exhaust the memory a process may map, and everything after would fail for that reason."""
    cores = available_cores()
    if threads is not None and threads > THREADS_PER_CORE * cores:
        raise A3Error(
            f"--threads {threads}: this process may run on {cores} core(s); more than {THREADS_PER_CORE * cores} "
            "threads only wait on each other, and each reserves memory"
        )
    count = threads or default_threads()
    torch.set_num_threads(count)
    return count


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A private torch generator on `device`, seeded: its numbers depend on nothing else."""
    return torch.Generator(device=device).manual_seed(seed)


def rng_state() -> dict:
    """Every generator's state, for a checkpoint: a resumed run draws the same numbers.

    Only tensors, numbers and tuples, so that a `weights_only=True` load accepts it.
    """
    # NumPy's global generator is a Mersenne Twister: its legacy state is this tuple, never the dict form.
    name, keys, pos, has_gauss, gauss = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved (CUDA states only where CUDA is present)."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
