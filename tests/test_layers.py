"""The library's layers (docs/architecture.md): no import cycle between modules, and no
package imports one above it. The order is the one each package's docstring states."""

from __future__ import annotations

from imports import PACKAGE, library

# Lowest first. "core" is the top-level modules (errors, atomic, layout, data, ...).
LAYERS = [
    "core",
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
    return parts[1] if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else "core"


def test_every_package_is_a_layer_with_a_docstring():
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert sorted(packages) == sorted(LAYERS[1:])
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


def test_no_module_is_over_600_lines_but_the_allowlists():
    data = {"allowlist.py", "keras_allowlist.py"}  # lists of names, one per line
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600 and p.name not in data
    }
    assert not long, long
