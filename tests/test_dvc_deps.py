"""dvc.yaml lists every module a stage runs: editing one re-runs the stages that import it."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tfpersist"


def imported_modules(path: Path) -> set[str]:
    """The tfpersist modules and stage helpers ``path`` imports, at any depth in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tfpersist":
                found |= {f"tfpersist.{a.name}" for a in node.names}
            elif node.module.startswith("tfpersist.") or node.module == "_stage":
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tfpersist")}
    return found


def module_file(name: str) -> Path:
    if name == "_stage":
        return ROOT / "stages" / "_stage.py"
    candidate = PACKAGE / f"{name.split('.', 1)[1]}.py"
    return candidate if candidate.is_file() else PACKAGE / "__init__.py"


def closure(script: Path) -> set[str]:
    """Every file the script runs, found by following imports (repo-relative paths)."""
    seen, stack = set(), [script]
    while stack:
        path = stack.pop()
        rel = str(path.relative_to(ROOT))
        if rel in seen:
            continue
        seen.add(rel)
        stack.extend(module_file(m) for m in imported_modules(path))
    return seen


def test_every_stage_lists_the_modules_it_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    missing = {}
    for name, stage in stages.items():
        script = ROOT / "stages" / f"{name}.py"
        deps = set(stage.get("deps", []))
        lacking = sorted(closure(script) - deps)
        if lacking:
            missing[name] = lacking
    assert not missing, f"dvc.yaml deps lack modules the stages import: {missing}"


def test_the_walk_finds_lazy_imports(tmp_path):
    """Imports inside functions count: stages import TensorFlow-heavy modules lazily."""
    script = ROOT / "stages" / "freeze.py"
    assert "src/tfpersist/streaming.py" in closure(script)  # via freeze.py, imported in main()
    assert "stages/_stage.py" in closure(script)
