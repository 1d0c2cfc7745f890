"""Atomic writes: an artifact appears at its final path complete, or not at all."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tfpersist.core import faults


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, then rename."""
    with open_for_write(path) as f:
        f.write(data)


@contextlib.contextmanager
def open_for_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temp file renamed into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        faults.point(f"rename-{path.name}", 0)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _remove_stale_temps(path: Path) -> None:
    """Temp files or dirs a killed writer of ``path`` left behind (the final path is intact)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text with ``\\n`` line endings, atomically."""
    write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: object) -> str:
    """JSON as every artifact here writes it: sorted keys, two-space indent, final newline."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: object) -> None:
    write_text(path, dumps_json(obj))


@contextlib.contextmanager
def replace_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp directory beside ``path``; on success it replaces ``path``.

    If the body raises (or the process dies), ``path`` keeps its previous content and the
    temp directory is removed (or left as a dot-directory that the next run removes).
    """
    path = Path(path)
    with scratch_beside(path) as tmp:
        yield tmp
        os.chmod(tmp, 0o755)
        faults.point(f"rename-{path.name}", 0)
        if path.exists():
            old = path.with_name(f".{path.name}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)


@contextlib.contextmanager
def scratch_beside(path: str | os.PathLike) -> Iterator[Path]:
    """An empty temp directory beside ``path`` (same filesystem: its contents can be renamed
    into place), removed afterwards; one a killed process left is removed the next time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
