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
        data = f.read_bytes()
        size += len(data)
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        h.update(data)
    return h.hexdigest(), size


def files_digest(paths: list[str | Path]) -> str:
    """sha256 over the given files' bytes, in order: identifies the data a model saw."""
    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).read_bytes())
        h.update(b"\0")
    return h.hexdigest()
