"""Untrusted models: the ops that make running a graph touch files or run Python.

A frozen .pb is a program. A graph holding any op below can read, write, list or delete the
user's files, or run arbitrary Python, when it runs. ``predict``, ``evaluate`` and
``compare`` refuse to run such a graph (``--allow-unsafe-ops`` overrides); ``inspect``
lists them. This is the one deny list; add an op here and every command honours it.
No TensorFlow here.
"""

from __future__ import annotations

from tfpersist.errors import TfpersistError

UNSAFE_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "DeleteFile",
        "RenameFile",
        "CopyFile",
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
        "PrintV2",
        "Save",
        "SaveV2",
        "SaveSlices",
        "Restore",
        "RestoreV2",
        "RestoreSlice",
        "MergeV2Checkpoints",
        "WriteSummary",
        "WriteScalarSummary",
        "WriteAudioSummary",
        "WriteImageSummary",
        "WriteHistogramSummary",
        "WriteRawProtoSummary",
        "WriteGraphSummary",
        "CreateSummaryFileWriter",
        "CreateSummaryDbWriter",
        "ImportEvent",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "WholeFileReader",
        "WholeFileReaderV2",
        "IdentityReader",
        "IdentityReaderV2",
        "ReaderReadV2",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "TextLineDataset",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "SaveDataset",
        "SaveDatasetV2",
        "LoadDataset",
        "DebugIdentity",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "DebugNanCount",
        "DebugNumericSummary",
        "Print",
        "ShardedFilename",
        "ShardedFilespec",
        "ExperimentalLMDBDataset",
        "LMDBDataset",
        "LMDBReader",
        "GcsConfigure",
        "FileSystemSetConfiguration",
    }
)


def ops_in(graph_def, outputs: list[str] | None = None) -> set[str]:
    """Op types that run to compute ``outputs`` (all nodes when None), in the functions
    they call too (through their op or function attributes, recursively)."""
    nodes = {n.name: n for n in graph_def.node}
    if outputs is None:
        reached = set(nodes)
    else:
        reached, stack = set(), [o.split(":")[0].lstrip("^") for o in outputs]
        while stack:
            name = stack.pop()
            if name in reached or name not in nodes:
                continue
            reached.add(name)
            stack.extend(i.split(":")[0].lstrip("^") for i in nodes[name].input)
    library = {f.signature.name: f for f in graph_def.library.function}
    ops = {nodes[n].op for n in reached}
    for name in reachable_functions([nodes[n] for n in reached], library):
        ops.update(n.op for n in library[name].node_def)
    return ops


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


# A checkpoint's own saver reads and writes its files by design: allowed on its restore path.
SAVER_OPS = frozenset(
    {
        "SaveV2",
        "RestoreV2",
        "MergeV2Checkpoints",
        "ShardedFilename",
        "Save",
        "Restore",
        "RestoreSlice",
        "SaveSlices",
    }
)


def check(
    graph_def, outputs: list[str] | None, source: str, allowed: frozenset = frozenset()
) -> None:
    """Refuse (one line) when computing ``outputs`` would run an unsafe op not ``allowed``."""
    bad = sorted(ops_in(graph_def, outputs) & (UNSAFE_OPS - allowed))
    if bad:
        raise TfpersistError(
            f"{source}: refusing to run a graph with ops that touch files or run Python "
            f"({', '.join(bad)}); check it with 'tfpersist inspect' and pass "
            "--allow-unsafe-ops only if you trust its author"
        )
