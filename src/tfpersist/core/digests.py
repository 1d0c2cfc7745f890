"""What identifies an artifact: the sha256 of its bytes (a directory's: names and bytes).

No TensorFlow, no DVC: every module that names an artifact by content imports it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def digest(path: str | Path) -> tuple[str, int]:
    """sha256 and size of a file, or of a directory's files (names and bytes)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    size = 0
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        size += _update(h, f)
    return h.hexdigest(), size


def _update(h, path: Path) -> int:
    """Feed a file to ``h`` in blocks (a 2 GB split is not read into memory); its size."""
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return size


def files_digest(paths: list[str | Path]) -> str:
    """sha256 over the given files' bytes, in order: identifies the data a model saw."""
    h = hashlib.sha256()
    for path in paths:
        _update(h, Path(path))
        h.update(b"\0")
    return h.hexdigest()
