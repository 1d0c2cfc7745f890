"""``bench/ledger.csv``: one row per machine the project met — its CPU, caches, the date —
and the sha256 of the wide probe's training checkpoint and frozen graph (pipeline/probe.py),
and of the pipeline's wide experiment where it was run. Rows from CPUs with other L1D sizes
and equal hashes are the evidence that bits do not follow the caches; ``check-repro
--probe`` compares this machine with the hashes every row agrees on. No TensorFlow.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tfpersist.core import atomic
from tfpersist.core.errors import TfpersistError

PATH = Path("bench", "ledger.csv")
PROBE = [
    "mlp_train_sha256",
    "mlp_frozen_sha256",
    "cnn_train_sha256",
    "cnn_frozen_sha256",
]
WIDE = ["wide_train_sha256", "wide_frozen_sha256"]  # the pipeline's mlp [1024, 1024]
COLUMNS = [
    "date",
    "cpu",
    "l1d_kib",
    "l2_kib",
    "simulated_l1d_kib",  # empty: the CPU's own caches; else Eigen told this L1D (cpucache)
    "tensorflow",
    "pin",
    *PROBE,
    *WIDE,
]


def read(path: str | Path = PATH) -> list[dict[str, str]]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and list(rows[0]) != COLUMNS:
        raise TfpersistError(f"{path}: columns {list(rows[0])} are not {COLUMNS}")
    return rows


def append(row: dict[str, str], path: str | Path = PATH) -> bool:
    """Add ``row`` (written through a temp file and a rename) — unless a row already says
    the same of the same machine (all but the date equal): a rerun adds nothing. Whether it
    was added."""
    path = Path(path)
    new = {c: str(row.get(c, "")) for c in COLUMNS}
    rows = read(path)
    same = [c for c in COLUMNS if c != "date"]
    if any(all(r[c] == new[c] for c in same) for r in rows):
        return False
    rows.append(new)
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, out.getvalue())
    return True


def agreed(rows: list[dict[str, str]], columns: list[str] = PROBE) -> dict[str, str]:
    """The hash each of ``columns`` has in every row that has one; a disagreement is an
    error naming the rows (a CPU whose bits differ: the finding the ledger exists for)."""
    out = {}
    for column in columns:
        values = {r[column]: r for r in rows if r.get(column)}
        if len(values) > 1:
            which = "; ".join(
                f"{r['cpu']} (L1D {r['l1d_kib']} KiB, {r['date']}): {v[:12]}"
                for v, r in values.items()
            )
            raise TfpersistError(f"{PATH}: the rows disagree on {column}: {which}")
        if values:
            out[column] = next(iter(values))
    return out
