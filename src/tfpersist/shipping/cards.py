"""The card of an export directory (layout.EXPORT_CARD), and what an export into a directory
that already holds one keeps.

Imports: the core and graph.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError


def export_card(
    graph_def, sig, written: dict, left_out: dict, extra: dict, frozen_sha256: str
) -> dict:
    """The card of an export directory (layout.EXPORT_CARD): the frozen graph every format
    was made from (its sha256), the signature they share (the frozen graph's node names;
    ``extra`` adds the feature columns, so ``predict`` takes the same CSV from every format),
    each format's file, size and sha256 — those an earlier export of the same graph left
    there too (``earlier``) — and the formats left out with why."""
    from tfpersist.graph import signature

    described = signature.describe_graph_def(graph_def, sig.output_nodes)
    inputs = {t["name"]: t for t in described["inputs"]}
    described["inputs"] = [inputs[n] for n in sig.input_nodes if n in inputs]
    described.update(extra)
    card = {
        "format": "tfpersist.export",
        "frozen_sha256": frozen_sha256,
        "signature": described,
        "formats": {fmt: written[fmt] for fmt in sorted(written)},
    }
    if left_out:
        card["left_out"] = dict(sorted(left_out.items()))
    return card


def read_export_card(export_dir: str | Path) -> dict:
    """The export directory's card, or one line saying it is missing or unreadable."""
    import json

    path = Path(export_dir) / layout.EXPORT_CARD
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise TfpersistError(f"{path}: no readable export card ({e}); run the export") from None
    if not isinstance(card, dict) or not isinstance(card.get("formats"), dict):
        raise TfpersistError(f"{path}: not an export card (no 'formats'); run the export again")
    return card


def earlier(
    out_dir: Path, frozen_sha256: str, asked: list[str], written: list[str]
) -> tuple[dict, list[str]]:
    """What an export into ``out_dir`` keeps of the one before it: ({format: its card entry}
    for each format of the same frozen graph that this export was not asked for and whose
    file is still there), and the formats it removes — those of another frozen graph (a
    retrained model's TFLite beside this one's ONNX would pass for it), and those asked for
    now but not written (left out now: the earlier file would pass for this export's)."""
    try:
        card = read_export_card(out_dir)
    except TfpersistError:
        return {}, []
    same = card.get("frozen_sha256") == frozen_sha256
    kept, stale = {}, []
    for fmt, info in card["formats"].items():
        if fmt in written or fmt not in layout.EXPORT_FORMATS:
            continue
        if same and fmt not in asked and layout.exported(out_dir, fmt).exists():
            kept[fmt] = info
        elif layout.exported(out_dir, fmt).exists():
            stale.append(fmt)
    return kept, stale


def remove(out_dir: Path, formats: list[str]) -> None:
    """Delete the files of ``formats`` from an export directory."""
    for fmt in formats:
        path = layout.exported(out_dir, fmt)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
