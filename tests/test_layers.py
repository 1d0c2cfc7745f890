"""The library's layers (docs/architecture.md): no import cycle between modules, and no
package imports one above it. The order is the one each package's docstring states."""

from __future__ import annotations

import re

from imports import PACKAGE, ROOT, library

# Lowest first.
LAYERS = [
    "core",
    "tfapi",
    "numerics",
    "tables",
    "safety",
    "graph",
    "formats",
    "freezing",
    "running",
    "shipping",
    "versions",
    "serving",
    "views",
    "pipeline",
    "cli",
]


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "core"  # the package itself imports nothing


def test_every_package_is_a_layer_with_a_docstring():
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert sorted(packages) == sorted(LAYERS)
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"every module belongs to a package that names its role: {loose}"
    for name in packages:
        doc = (PACKAGE / name / "__init__.py").read_text().lstrip()
        assert doc.startswith('"""') and "Imports:" in doc, f"{name}: say what it may import"


def test_no_package_imports_a_higher_one():
    upward = []
    for module, imported in library().items():
        rank = LAYERS.index(package(module))
        for other in imported:
            if LAYERS.index(package(other)) > rank:
                upward.append(f"{module} → {other}")
    assert not upward, upward


def test_no_import_cycles():
    graph = library()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" → ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, cycles


def test_no_module_is_over_600_lines():
    """Data (the allowlists) lives in data files beside the code that reads it."""
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, long


def imports_by_package() -> dict[str, set[str]]:
    found = {}
    for module, imported in library().items():
        found.setdefault(package(module), set()).update(package(o) for o in imported)
    return found


def test_each_package_names_the_packages_it_imports():
    """A package's docstring says what it may import: exactly what its modules import."""
    stale = {}
    for name, imported in imports_by_package().items():
        if name == "cli":
            continue  # "anything"
        doc = (PACKAGE / name / "__init__.py").read_text().split('"""')[1]
        said = set(re.findall(r"\w+", doc.split("Imports:")[1].split(".")[0]))
        if said & set(LAYERS) != imported - {name}:
            stale[name] = sorted(imported - {name}, key=LAYERS.index)
    assert not stale, f"docstrings' Imports: lines to write: {stale}"


def test_the_architecture_page_names_every_package_and_module():
    page = (ROOT / "docs" / "architecture.md").read_text()
    rows = {r.split("|")[2].strip(" `/"): r for r in page.splitlines() if r.startswith("| ")}
    for rank, name in enumerate(LAYERS, start=1):
        assert name in rows, f"docs/architecture.md lacks the {name}/ row"
        assert rows[name].split("|")[1].strip() == str(rank), f"{name}: layer {rank}"
        for module in (PACKAGE / name).glob("*.py"):
            if module.stem != "__init__":
                assert f"`{module.stem}`" in rows[name], f"architecture.md: {name}/{module.name}"
