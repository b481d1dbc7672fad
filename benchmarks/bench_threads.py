"""How a3 shares the cores: four workloads, quiet and beside a competing CPU-bound process, with and without
the CLI's thread settings, in one sitting.

"before" is a3 with OpenMP's default wait policy (idle threads spin for a while before they sleep): the
command runs in a process that imports torch before a3's CLI can set OMP_WAIT_POLICY, and the variable is
removed again. "after" is `python -m a3cli` as users run it (OMP_WAIT_POLICY=PASSIVE, set before torch
loads). "loaded" starts one busy-looping Python process for the length of the command; the benchmark starts
and stops it itself. Each cell is the wall time of the whole command (start-up included), after one untimed
run that fills the caches; the conditions are interleaved per workload, so a machine whose speed drifts
affects them alike.

    python benchmarks/bench_threads.py [--rounds 1] [--only lsgan,classvis] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKLOADS = {
    "stylize 64 it": ["stylize", str(EXAMPLES / "chelsea.jpg"), str(EXAMPLES / "ihc.jpg"), "--iterations", "64"],
    "lsgan 300 it": ["gan-train", "--variant", "lsgan", "--iterations", "300", "--no-fid"],
    "classvis 50 it": ["classvis", "--class", "flamingo", "--iterations", "50"],
    "caption epoch": ["caption-train", "--epochs", "1"],
}
OUTPUTS = {"stylize": "stylized.png", "classvis": "classvis.png"}  # the others write a run folder
BEFORE = (
    "import os, sys, torch; import a3cli.cli; del os.environ['OMP_WAIT_POLICY']; "
    "sys.argv[0] = 'a3'; a3cli.cli.main(sys.argv[1:])"
)
LAUNCHERS = {"before": [sys.executable, "-c", BEFORE], "after": [sys.executable, "-m", "a3cli"]}
BUSY_LOOP = [sys.executable, "-c", "while True: pass"]


def run_once(name: str, version: str, loaded: bool, scratch: Path) -> float:
    """Seconds for one command, in a fresh output place, with the competing process running if `loaded`."""
    out = scratch / f"{name.split()[0]}-{version}-{int(loaded)}-{time.monotonic_ns()}"
    argv = LAUNCHERS[version] + WORKLOADS[name] + ["--out", str(out / OUTPUTS.get(name.split()[0], ""))]
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    busy = subprocess.Popen(BUSY_LOOP) if loaded else None
    try:
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs of each cell (the median is shown)")
    parser.add_argument("--only", default="", help="comma-separated workload names' first words")
    parser.add_argument("--json", type=Path, help="also write the times as JSON")
    args = parser.parse_args()
    names = [name for name in WORKLOADS if not args.only or name.split()[0] in args.only.split(",")]
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"cores this process may run on: {len(os.sched_getaffinity(0))}")
    cells = [(version, loaded) for loaded in (False, True) for version in ("before", "after")]
    times: dict[str, dict[str, float]] = {}
    print(
        f"{'workload':16} {'before quiet':>12} {'after quiet':>12} {'before loaded':>13} {'after loaded':>12}"
        f" {'loaded/quiet before':>19} {'loaded/quiet after':>18} {'before/after quiet':>18}"
        f" {'before/after loaded':>19}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            runs: dict[str, list[float]] = {f"{v} {'loaded' if ld else 'quiet'}": [] for v, ld in cells}
            run_once(name, "after", False, Path(scratch))  # untimed: fills the caches (captioning's features)
            for _ in range(args.rounds):
                for version, loaded in cells:
                    runs[f"{version} {'loaded' if loaded else 'quiet'}"].append(
                        run_once(name, version, loaded, Path(scratch))
                    )
            times[name] = {cell: statistics.median(values) for cell, values in runs.items()}
            show(name, times[name])
    if args.json:
        args.json.write_text(json.dumps(times, indent=2) + "\n")


def show(name: str, t: dict[str, float]) -> None:
    """One row: the four times, then loaded/quiet per version and before/after per condition."""
    print(
        f"{name:16} {t['before quiet']:11.1f}s {t['after quiet']:11.1f}s {t['before loaded']:12.1f}s"
        f" {t['after loaded']:11.1f}s {t['before loaded'] / t['before quiet']:18.2f}x"
        f" {t['after loaded'] / t['after quiet']:17.2f}x {t['before quiet'] / t['after quiet']:17.2f}x"
        f" {t['before loaded'] / t['after loaded']:18.2f}x",
        flush=True,
    )


if __name__ == "__main__":
    main()
