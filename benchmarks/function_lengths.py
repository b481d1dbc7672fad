"""List the functions longer than a limit (default 80 lines, decorators included); exit 1 if there are any.

python benchmarks/function_lengths.py a3cli 80
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def long_functions(root: Path, limit: int) -> list[tuple[str, int]]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - start + 1
                if length > limit:
                    found.append((f"{path}:{start} {node.name}", length))
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "a3cli")
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 80
    found = long_functions(root, limit)
    for where, length in found:
        print(f"{where}: {length} lines (limit {limit})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
