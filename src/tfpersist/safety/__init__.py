"""Untrusted models: only ops on the inference allowlist run, checked before anything runs.

A frozen .pb, a checkpoint's graph or a SavedModel is a program. ``check`` refuses (one line,
naming the ops and what they can do) a graph whose outputs — or the restore and init ops a
command would run — need an op outside ``allowlist.ALLOWED``, following function calls into
their bodies. ``Trust`` says what the user allowed on the command line: ``--allow-ops A,B``
for named ops, ``--allow-unsafe-ops`` for everything. ``inspect`` lists the ops outside the
allowlist with ``risk``. TensorFlow's own ``saved_model_cli scan`` deny list ({ReadFile,
WriteFile, PrintV2}) is a subset of what is refused here. No TensorFlow here.

Imports: core, tfapi.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tfpersist.core.errors import TfpersistError
from tfpersist.safety.allowlist import ALLOWED
from tfpersist.tfapi.tensornames import op_name

# What restoring a checkpoint with its saver needs beyond the allowlist: reading it, no more.
RESTORE_OPS = frozenset({"RestoreV2", "Restore", "RestoreSlice"})
# A TF1 saver's own ops, listed by nobody: tfpersist never runs a saver's save op.
SAVER_OPS = RESTORE_OPS | {
    "SaveV2",
    "Save",
    "SaveSlices",
    "MergeV2Checkpoints",
    "ShardedFilename",
    "ShardedFilespec",
}

# What the best-known ops outside the allowlist can do (inspect shows it; so does a refusal).
RISKS = {
    "ReadFile": "reads files",
    "WriteFile": "writes files",
    "MatchingFiles": "lists files",
    "ImmutableConst": "memory-maps a file",
    "InitializeTableFromTextFile": "reads files",
    "InitializeTableFromTextFileV2": "reads files",
    "LoadAndRemapMatrix": "reads files",
    "GenerateVocabRemapping": "reads files",
    "RecordInput": "reads files",
    "DecodeProtoV2": "may read a descriptor file",
    "EncodeProto": "may read a descriptor file",
    "Save": "writes files",
    "SaveV2": "writes files",
    "SaveSlices": "writes files",
    "MergeV2Checkpoints": "writes and deletes files",
    "Restore": "reads files",
    "RestoreV2": "reads files",
    "RestoreSlice": "reads files",
    "ShardedFilename": "names checkpoint files",
    "ShardedFilespec": "names checkpoint files",
    "PyFunc": "runs Python",
    "PyFuncStateless": "runs Python",
    "EagerPyFunc": "runs Python",
    "PrintV2": "writes to stderr or a file",
    "Print": "writes to stderr",
    "Timestamp": "reads the clock (not reproducible)",
    "RemoteCall": "runs a function on another task (network)",
    "Abort": "kills the process",
    "FileSystemSetConfiguration": "reconfigures file systems",
    "DatasetToTFRecord": "writes files",
    "ExperimentalDatasetToTFRecord": "writes files",
    "SaveDataset": "writes files",
    "SaveDatasetV2": "writes files",
    "SnapshotDataset": "writes files",
    "SnapshotDatasetV2": "writes files",
    "CacheDataset": "writes files",
    "CacheDatasetV2": "writes files",
    "LoadDataset": "reads files",
    "TFRecordDataset": "reads files",
    "TFRecordDatasetV2": "reads files",
    "TextLineDataset": "reads files",
    "FixedLengthRecordDataset": "reads files",
    "FixedLengthRecordDatasetV2": "reads files",
    "CSVDataset": "reads files",
    "CSVDatasetV2": "reads files",
    "ExperimentalCSVDataset": "reads files",
    "MatchingFilesDataset": "lists files",
    "ExperimentalMatchingFilesDataset": "lists files",
    "SqlDataset": "opens databases",
    "ExperimentalSqlDataset": "opens databases",
}
_RISK_PATTERNS = (
    ("Summary", "writes event files"),
    ("Reader", "reads files"),
    ("Dataset", "runs a tf.data pipeline (may read or write files)"),
    ("Collective", "talks to other processes"),
    ("Nccl", "talks to other devices"),
    ("Send", "talks to other processes"),
    ("Recv", "talks to other processes"),
    ("Rpc", "talks to the network"),
    ("Debug", "writes debug dumps (files or network)"),
    ("TPU", "drives TPU devices"),
)


def risk(op: str) -> str:
    """What ``op`` can do, in a few words."""
    if op in RISKS:
        return RISKS[op]
    return next((what for part, what in _RISK_PATTERNS if part in op), "not an inference op")


# What the stage scripts read for it (Trust.from_env); the CLI has flags of the same names.
ALLOW_UNSAFE_OPS_ENV = "TFPERSIST_ALLOW_UNSAFE_OPS"
ALLOW_OPS_ENV = "TFPERSIST_ALLOW_OPS"
KERAS_MODULES_ENV = "TFPERSIST_KERAS_MODULES"


@dataclass(frozen=True)
class Trust:
    """What the user allows beyond the allowlist: named ops, or everything; and Python
    modules of their own whose registered Keras objects a Keras file may name (imported —
    the user's code, never the file's — before Keras reads the file)."""

    everything: bool = False
    ops: frozenset[str] = frozenset()
    keras_modules: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        allow_unsafe_ops: bool = False,
        allow_ops: Iterable[str] = (),
        keras_modules: Iterable[str] = (),
    ) -> Trust:
        return cls(
            bool(allow_unsafe_ops),
            frozenset(o.strip() for o in allow_ops if o.strip()),
            tuple(dict.fromkeys(m.strip() for m in keras_modules if m.strip())),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Trust:
        """What a stage script allows, from ``environ``: TFPERSIST_ALLOW_UNSAFE_OPS=1 (every
        op), TFPERSIST_ALLOW_OPS=A,B (named ops) and TFPERSIST_KERAS_MODULES=M,N."""
        return cls.of(
            environ.get(ALLOW_UNSAFE_OPS_ENV) == "1",
            environ.get(ALLOW_OPS_ENV, "").split(","),
            environ.get(KERAS_MODULES_ENV, "").split(","),
        )


TRUST_NOTHING = Trust()


def called(node, library: dict) -> list[str]:
    """Names of the library functions ``node`` calls (as its op or through func attrs)."""
    names = [node.op] if node.op in library else []
    for attr in node.attr.values():
        if attr.HasField("func"):
            names.append(attr.func.name)
        names.extend(f.name for f in attr.list.func)
    return [n for n in names if n in library]


def reachable_functions(nodes, library: dict) -> set[str]:
    """The library functions ``nodes`` call, directly or through other functions."""
    seen: set[str] = set()
    stack = [name for node in nodes for name in called(node, library)]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(c for node in library[name].node_def for c in called(node, library))
    return seen


def ops_in(graph_def, outputs: list[str] | None = None) -> set[str]:
    """Op types that run to compute ``outputs`` (all nodes when None), in the functions they
    call too (through their op or function attributes, recursively). Calls of library
    functions are not op types: their bodies are counted instead."""
    nodes = {n.name: n for n in graph_def.node}
    if outputs is None:
        reached = set(nodes)
    else:
        reached, stack = set(), [op_name(o) for o in outputs]
        while stack:
            name = stack.pop()
            if name in reached or name not in nodes:
                continue
            reached.add(name)
            stack.extend(op_name(i) for i in nodes[name].input)
    library = {f.signature.name: f for f in graph_def.library.function}
    ops = {nodes[n].op for n in reached}
    for name in reachable_functions([nodes[n] for n in reached], library):
        ops.update(n.op for n in library[name].node_def)
    return ops - set(library)


def outside(ops: Iterable[str], also_allowed: Iterable[str] = ()) -> list[str]:
    """The ops not on the allowlist (nor in ``also_allowed``), sorted."""
    extra = set(also_allowed)
    return sorted(op for op in set(ops) if op not in ALLOWED and op not in extra)


def describe(ops: list[str]) -> str:
    return ", ".join(f"{op} ({risk(op)})" for op in ops)


def check(
    graph_def,
    outputs: list[str] | None,
    source: str,
    trust: Trust = TRUST_NOTHING,
    also_allowed: Iterable[str] = (),
) -> None:
    """Refuse (one line) when computing ``outputs`` needs an op outside the allowlist that
    ``trust`` does not cover."""
    require(ops_in(graph_def, outputs), source, trust, also_allowed)


def require(
    ops: Iterable[str], source: str, trust: Trust = TRUST_NOTHING, also_allowed: Iterable[str] = ()
) -> None:
    """Refuse (one line) when ``ops`` hold one outside the allowlist that ``trust`` does not
    cover."""
    if trust.everything:
        return
    bad = outside(ops, {*also_allowed, *trust.ops})
    if bad:
        raise TfpersistError(
            f"{source}: refusing to run a graph with ops outside the inference allowlist: "
            f"{describe(bad)}; check it with 'tfpersist inspect' and pass --allow-ops "
            f"{','.join(bad)} (or --allow-unsafe-ops) only if you trust its author"
        )
