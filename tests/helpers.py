"""Small helpers for the tests (no fixtures)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path


def tree_digest(root: Path) -> dict[str, str]:
    """relative path → sha256 of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_in_both_modes(script: Path, *args: str, env: dict | None = None) -> None:
    """Run a model-writing script once per TF behaviour (``tf1``, ``tf2``: process-wide, so
    one process each), side by side; fail with its output if either fails."""
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), *map(str, args), mode],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("tf1", "tf2")
    ]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, f"{' '.join(writer.args)}\n{out}\n{err[-4000:]}"
