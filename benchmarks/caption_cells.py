"""Every caption cell on the built-in shapes data with caption-train's defaults, one after the other in one
sitting: exact match, BLEU-4 and CIDEr-D of the 500 test captions, parameters, seconds per epoch.

  python benchmarks/caption_cells.py [--out out/cells] [--threads N] [CELL ...]

Each run is `a3 caption-train --cell-type CELL --out OUT/CELL`; a finished run folder is read, not trained
again. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from a3cli.engine.catalogue import CAPTION_CELLS


def train(cell: str, out: Path, threads: int | None) -> dict:
    run = out / cell
    if not (run / "metrics.json").is_file():
        command = [sys.executable, "-m", "a3cli", "caption-train", "--cell-type", cell, "--out", str(run)]
        command += ["--device", "cpu"] + (["--threads", str(threads)] if threads else [])
        subprocess.run(command, check=True)
    metrics = json.loads((run / "metrics.json").read_text())
    weights = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    metrics["parameters"] = sum(t.numel() for t in weights.values())
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cells", nargs="*", default=list(CAPTION_CELLS))
    parser.add_argument("--out", type=Path, default=Path("out/cells"))
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    rows = {cell: train(cell, args.out, args.threads) for cell in args.cells}
    print("| cell | exact, test | 1 / 2 / 3 shapes | BLEU-4 | CIDEr-D | parameters | s per epoch |")
    print("|---|---|---|---|---|---|---|")
    for cell, m in rows.items():
        exact = m["exact_match"]["test"]
        shapes = ", ".join(f"{v['correct']}/{v['total']}" for v in exact["by_objects"].values())
        print(
            f"| {cell} | {exact['correct']}/{exact['total']} ({100 * exact['rate']:.1f} %) | {shapes} | "
            f"{m['bleu']['test']['bleu4']:.3f} | {m['cider']['test']:.3f} | {m['parameters']:,} | "
            f"{m['train_seconds'] / m['epochs']:.1f} |"
        )


if __name__ == "__main__":
    main()
