"""The generative parts of the engine import downwards only: gan/ and diffusion/ share generative/ and never
import each other; generative/ imports neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "a3cli" / "engine"
# Each part, and the parts it must not import.
FORBIDDEN = {"gan": ("diffusion",), "diffusion": ("gan",), "generative": ("gan", "diffusion")}


def imported(source: str, package: str) -> set[str]:
    """Every absolute module name the source imports, anywhere in it (functions and TYPE_CHECKING blocks
    included); `from a import b` gives a and a.b, since b may be a module. `package`: the source's own
    package, for relative imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_every_form_of_import_is_seen():
    source = (
        "import a3cli.engine.gan.networks\n"
        "from a3cli.engine import diffusion\n"
        "def f():\n"
        "    from ..gan.judge import Judge\n"
        "    import a3cli.engine.diffusion.unet as unet\n"
        "    from . import data\n"
    )
    names = imported(source, "a3cli.engine.generative")
    assert {
        "a3cli.engine.gan.networks",
        "a3cli.engine.diffusion",
        "a3cli.engine.gan.judge",
        "a3cli.engine.diffusion.unet",
        "a3cli.engine.generative.data",
    } <= names
    assert not within("a3cli.engine.generative.data", "a3cli.engine.gan")


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_imports_none_of_the_parts_beside_it(part):
    modules = sorted((ENGINE / part).rglob("*.py"))
    if part != "diffusion":  # being written: it may not be in every checkout yet
        assert modules, f"no modules in {ENGINE / part}"
    wrong = []
    for path in modules:
        package = ".".join(path.relative_to(ENGINE.parent.parent).parent.parts)
        for name in sorted(imported(path.read_text(encoding="utf-8"), package)):
            if any(within(name, f"a3cli.engine.{other}") for other in FORBIDDEN[part]):
                wrong.append(f"{path.relative_to(ENGINE)} imports {name}")
    assert wrong == []
