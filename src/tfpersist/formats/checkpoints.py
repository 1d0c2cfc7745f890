"""TF1 checkpoints on disk: find the complete ones, resolve a directory or prefix, check files.

A checkpoint ``PREFIX`` is complete when ``PREFIX.index``, its ``PREFIX.data-*`` shards and
``PREFIX.meta`` all exist (or, for the V1 format, ``Saver(write_version=V1)``: the single
file ``PREFIX`` or its shards ``PREFIX-00000-of-0000N``, and ``PREFIX.meta``). ``Saver.save``
writes the ``checkpoint`` state file *before* the ``.meta``, so a crash can leave the state
file naming an incomplete prefix: readers here skip it in favour of the newest complete one.
No TensorFlow import: the state file is plain text.
"""

from __future__ import annotations

import re
from pathlib import Path

from tfpersist.core import faults, layout
from tfpersist.core.errors import TfpersistError, first_line

_STATE_LINE = re.compile(r'^(model_checkpoint_path|all_model_checkpoint_paths):\s*"(.*)"\s*$')


def state_paths(directory: str | Path) -> list[Path]:
    """Prefixes listed in ``directory/checkpoint``, oldest first, latest last (may be [])."""
    directory = Path(directory)
    state = directory / layout.CHECKPOINT_STATE
    if not state.is_file():
        return []
    latest, listed = None, []
    for line in state.read_text(errors="replace").splitlines():
        match = _STATE_LINE.match(line.strip())
        if match:
            key, value = match.groups()
            path = Path(value.encode().decode("unicode_escape"))
            # TF writes absolute paths by default; a directory that was copied or moved
            # (DVC checkout, another clone) still names the old place. The files beside
            # the state file are the ones meant.
            if not path.is_absolute() or _any_file(directory / path.name):
                path = directory / path.name if path.is_absolute() else directory / path
            if key == "model_checkpoint_path":
                latest = path
            else:
                listed.append(path)
    if latest is not None and latest not in listed:
        listed.append(latest)
    return listed


def _any_file(prefix: Path) -> bool:
    return any(prefix.parent.glob(f"{glob_escape(prefix.name)}.*"))


def is_v1_prefix(path: str | Path) -> bool:
    """True for a V1-format checkpoint: ``PREFIX`` (or its V1 shards) beside ``PREFIX.meta``."""
    path = Path(path)
    return _exists(path, ".meta") and (path.is_file() or bool(_v1_shards(path)))


def _v1_shards(prefix: Path) -> list[Path]:
    return list(prefix.parent.glob(f"{glob_escape(prefix.name)}-?????-of-?????"))


def prefix_exists(path: str | Path) -> bool:
    """Whether any file starts with ``path`` (a checkpoint prefix such as model.ckpt-1200)."""
    path = Path(path)
    return bool(list(path.parent.glob(f"{glob_escape(path.name)}*")))


def missing_files(prefix: str | Path) -> list[str]:
    """Which of a checkpoint's files are absent (empty list: complete)."""
    prefix = Path(prefix)
    if is_v1_prefix(prefix):
        return []
    missing = [f"{prefix.name}{ext}" for ext in (".index", ".meta") if not _exists(prefix, ext)]
    if not list(prefix.parent.glob(f"{glob_escape(prefix.name)}.data-*-of-*")):
        missing.insert(1, f"{prefix.name}.data-00000-of-00001")
    return missing


def _exists(prefix: Path, ext: str) -> bool:
    return prefix.with_name(prefix.name + ext).is_file()


def glob_escape(name: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", name)


def complete_checkpoints(directory: str | Path) -> list[Path]:
    """The complete checkpoints the state file lists, oldest first."""
    return [p for p in state_paths(directory) if not missing_files(p)]


OBJECT_GRAPH_KEY = b"_CHECKPOINTABLE_OBJECT_GRAPH"  # TF2's object graph, a key in the .index


def object_based(prefix: str | Path) -> bool:
    """A TF2 object-based checkpoint (``tf.train.Checkpoint``, ``CheckpointManager``, Keras
    training loops): its ``.index`` holds the object graph's key and no ``.meta`` is beside
    it — it has variables but no graph. The key is stored whole in the index (an SSTable's
    first key after the header that starts with ``_``), so reading its bytes tells."""
    index = Path(f"{prefix}.index")
    if not index.is_file() or Path(f"{prefix}.meta").exists():
        return False
    return OBJECT_GRAPH_KEY in index.read_bytes()


def prefix_of(path: str | Path) -> Path | None:
    """The checkpoint prefix ``path`` names: a directory's latest (its state file), a file's
    (``.index``, ``.meta``, ``.data-*``), or ``path`` itself; None for a directory without
    a state file or one naming no checkpoint."""
    path = Path(path)
    if path.is_dir():
        listed = state_paths(path) if (path / layout.CHECKPOINT_STATE).is_file() else []
        return listed[-1] if listed else None
    for ext in (".index", ".meta"):
        if path.name.endswith(ext):
            return path.with_name(path.name[: -len(ext)])
    data = re.match(r"(.*)\.data-\d+-of-\d+$", path.name)
    return path.with_name(data.group(1)) if data else path


def is_checkpoint_file(path: str | Path) -> bool:
    """True for ``PREFIX.index``, ``PREFIX.meta`` or ``PREFIX.data-*-of-*``."""
    name = Path(path).name
    return name.endswith((".index", ".meta")) or bool(re.search(r"\.data-\d+-of-\d+$", name))


def step_of(prefix: str | Path) -> int | None:
    """The global step in ``model.ckpt-1200`` (None for a prefix without one)."""
    match = re.search(r"-(\d+)$", str(prefix))
    return int(match.group(1)) if match else None


def resolve(path: str | Path) -> Path:
    """A checkpoint directory (newest complete checkpoint) or prefix → a complete prefix."""
    path = Path(path)
    if path.is_dir():
        if not (path / layout.CHECKPOINT_STATE).is_file():
            raise TfpersistError(
                f"{path}: no '{layout.CHECKPOINT_STATE}' state file in this directory; pass a "
                "checkpoint prefix such as DIR/model.ckpt-1200 instead"
            )
        listed = state_paths(path)
        if not listed:
            raise TfpersistError(f"{path / layout.CHECKPOINT_STATE}: names no checkpoint")
        complete = [p for p in listed if not missing_files(p)]
        if not complete:
            latest = listed[-1]
            raise TfpersistError(
                f"{path / layout.CHECKPOINT_STATE}: points at {latest.name}, which is incomplete "
                f"(missing {', '.join(missing_files(latest))}); no complete checkpoint in {path}"
            )
        return complete[-1]
    path = prefix_of(path)
    missing = missing_files(path)
    if len(missing) == 3:
        raise TfpersistError(
            f"{path}: not a checkpoint directory or prefix (no {path.name}.index, "
            f".data or .meta files)"
        )
    if missing:
        raise TfpersistError(f"{path}: checkpoint is incomplete: missing {', '.join(missing)}")
    return path


def write_state(directory: str | Path, prefixes: list[Path]) -> None:
    """Write the ``checkpoint`` state file (TF's text format) with paths relative to it."""
    from tfpersist.core import atomic

    names = [Path(p).name for p in prefixes]
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    atomic.write_text(Path(directory) / layout.CHECKPOINT_STATE, "\n".join(lines) + "\n")


def delete(prefix: Path) -> None:
    """Remove every file of checkpoint ``prefix`` (index, data shards, meta)."""
    for path in prefix.parent.glob(f"{glob_escape(prefix.name)}.*"):
        if path.is_file():
            path.unlink()


def save(sess, saver, prefix: Path, step: int | None = None, kind: str = "", meta=None) -> Path:
    """Write a complete checkpoint: .index/.data, then .meta (devices cleared) — of the
    session's graph, or of ``meta`` = (graph, saver) when given (a graph with the same
    variables: the training graph as one worker builds it, whatever this worker's).

    Unlike ``Saver.save`` this does not touch the state file: callers list the checkpoint
    in it (``write_state``) only once all its files exist, so the state file never names an
    incomplete checkpoint. With a ``step``, the crash point ``{kind}before-meta`` lies
    between the writes (faults.py; ``kind`` is "best-" for the best-so-far checkpoint).
    """
    path = Path(
        saver.save(sess, str(prefix), global_step=step, write_meta_graph=False, write_state=False)
    )
    if step is not None:
        faults.point(f"{kind}before-meta", step)
    graph, meta_saver = meta if meta is not None else (sess.graph, saver)
    with graph.as_default():
        meta_saver.export_meta_graph(f"{path}.meta", clear_devices=True, strip_default_attrs=True)
    return path


def unreadable(prefix, error: BaseException) -> TfpersistError:
    """The error for a checkpoint whose variables cannot be restored."""
    return TfpersistError(
        f"{prefix}: cannot restore the checkpoint ({first_line(error)}); "
        ".index/.data are truncated, corrupted or from another graph"
    )
