"""Which tfpersist modules a file imports, read from its source (at any depth: a lazy import
inside a function counts). Shared by the layering and the dvc.yaml deps tests."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tfpersist"


def module_file(name: str) -> Path | None:
    """The file of module ``tfpersist.a.b`` (a package's ``__init__.py``), or None."""
    if name == "_stage":
        return ROOT / "stages" / "_stage.py"
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def module_name(path: Path) -> str:
    """``src/tfpersist/graph/surgery.py`` → ``tfpersist.graph.surgery``."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """The tfpersist modules (and the stages' ``_stage``) that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "_stage":
                found.add("_stage")
            elif node.module == "tfpersist" or node.module.startswith("tfpersist."):
                for alias in node.names:  # a submodule, or a name in the module
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if module_file(sub) else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tfpersist")}
    return {m for m in found if m == "_stage" or module_file(m)}


def library() -> dict[str, set[str]]:
    """Every library module → the library modules it imports (itself excluded)."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        graph[name] = imported_modules(path) - {name, "tfpersist"}
    return graph
