"""dvc.yaml lists every module a stage runs (a file, or the package directory holding it):
editing one re-runs the stages that import it, and no other."""

from __future__ import annotations

from pathlib import Path

import yaml

from imports import ROOT, imported_modules, module_file


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
        parent = path.parent  # a package's __init__ runs before any of its modules
        if (parent / "__init__.py").is_file() and parent.name != "tfpersist":
            stack.append(parent / "__init__.py")
    return seen


def covered(path: str, deps: set[str]) -> bool:
    return any(path == d or path.startswith(f"{d}/") for d in deps)


def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_lists_the_modules_it_imports():
    missing = {}
    for name, stage in stages().items():
        deps = set(stage.get("deps", []))
        lacking = sorted(p for p in closure(ROOT / "stages" / f"{name}.py") if not covered(p, deps))
        if lacking:
            missing[name] = lacking
    assert not missing, f"dvc.yaml deps lack modules the stages import: {missing}"


def test_no_stage_depends_on_code_it_does_not_run():
    """A listed package directory holds a module the stage imports; the report (a page of
    the model) does not depend on the reproducibility check or the OpenCV rewrite."""
    for name, stage in stages().items():
        ran = closure(ROOT / "stages" / f"{name}.py")
        for dep in stage.get("deps", []):
            if dep.startswith(("src/", "stages/")):
                assert any(covered(p, {dep}) for p in ran), f"{name}: {dep} is not run"
    report = stages()["report"]["deps"]
    assert not [d for d in report if "versions" in d or "shipping" in d], report


def test_the_walk_finds_lazy_imports():
    """Imports inside functions count: stages import TensorFlow-heavy modules lazily."""
    script = ROOT / "stages" / "freeze.py"
    assert "src/tfpersist/freezing/streaming.py" in closure(script)  # imported in main()
    assert "stages/_stage.py" in closure(script)
