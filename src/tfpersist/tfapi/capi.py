"""TensorFlow's C library without its Python layer: the op registry, and a graph imported
for the dtypes and shapes of its tensors.

``import tensorflow`` costs ~2.4 s (thousands of Python modules); the C library it wraps,
``libtensorflow_cc.so.2``, loads in ~0.3 s through ctypes. Its stable C API
(tensorflow/c/c_api.h) answers what freezing and model cards ask of TensorFlow without
running anything: ``TF_GetAllOpList`` (the same registry ``op_def_registry`` reads) and
``TF_GraphImportGraphDef`` with TensorFlow's own shape inference (what ``import_graph_def``
runs). The answers are TensorFlow's, not a copy of them.

Loading the library is itself most of a small freeze (~0.3 s, a 788 MB file): the op
registry it answers is kept on disk (``$TFPERSIST_CACHE``, else ``~/.cache/tfpersist``; ``off``
turns that off), one file per build of the library (its path, size and time), so that the
next process reads op definitions without loading it. Only a registry read from the library
alone is kept — TensorFlow's Python layer registers more ops — and an op missing from a kept
registry is still looked up in the library.

The library is loaded RTLD_LOCAL: RTLD_GLOBAL makes a later ``import tensorflow`` in the
same process crash. TensorFlow's Python layer, imported later, uses the same loaded library
(tests/test_capi.py). Set the CPU pin (runtime.pin) before the first call here.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import os
import sys
import threading
from pathlib import Path

from google.protobuf.message import DecodeError

from tfpersist.core import atomic
from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.tfapi import protos

_lock = threading.Lock()
_lib = None
_registry: dict[str, object] | None = None
_scratch = None  # an empty TF_Graph: single ops are looked up through it


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("length", ctypes.c_size_t),
        ("dealloc", ctypes.c_void_p),
    ]


class _Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


LIBRARY = {"darwin": "libtensorflow_cc.2.dylib", "win32": "tensorflow_cc.dll"}
FRAMEWORK = {"darwin": "libtensorflow_framework.2.dylib"}  # the ops' other half (Linux: .so.2)


def library_path() -> Path:
    """Where the installed TensorFlow's C library is (nothing of TensorFlow is imported)."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.origin:
        raise TfpersistError("TensorFlow is not installed (pip install tensorflow-cpu)")
    return Path(spec.origin).parent / LIBRARY.get(sys.platform, "libtensorflow_cc.so.2")


def loaded() -> bool:
    """Whether TensorFlow's C library is loaded in this process (by this module)."""
    return _lib is not None


def _load():
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        path = library_path()
        try:
            lib = ctypes.CDLL(str(path))  # RTLD_LOCAL (the default)
        except OSError as e:
            raise TfpersistError(f"cannot load TensorFlow's C library {path}: {e}") from None
        p, buf = ctypes.c_void_p, ctypes.POINTER(_Buffer)
        for name, restype, argtypes in (
            ("TF_GetAllOpList", buf, []),
            ("TF_DeleteBuffer", None, [buf]),
            ("TF_NewBufferFromString", buf, [ctypes.c_char_p, ctypes.c_size_t]),
            ("TF_NewStatus", p, []),
            ("TF_DeleteStatus", None, [p]),
            ("TF_GetCode", ctypes.c_int, [p]),
            ("TF_Message", ctypes.c_char_p, [p]),
            ("TF_NewGraph", p, []),
            ("TF_DeleteGraph", None, [p]),
            ("TF_NewImportGraphDefOptions", p, []),
            ("TF_DeleteImportGraphDefOptions", None, [p]),
            ("TF_GraphImportGraphDef", None, [p, buf, p, p]),
            ("TF_GraphOperationByName", p, [p, ctypes.c_char_p]),
            ("TF_NewBuffer", buf, []),
            ("TF_GraphGetOpDef", None, [p, ctypes.c_char_p, buf, p]),
            ("TF_OperationNumOutputs", ctypes.c_int, [p]),
            ("TF_OperationOutputType", ctypes.c_int, [_Output]),
            ("TF_GraphGetTensorNumDims", ctypes.c_int, [p, _Output, p]),
            (
                "TF_GraphGetTensorShape",
                None,
                [p, _Output, ctypes.POINTER(ctypes.c_int64), ctypes.c_int, p],
            ),
        ):
            try:
                function = getattr(lib, name)
            except AttributeError:
                raise TfpersistError(f"{path}: TensorFlow's C library lacks {name}") from None
            function.restype, function.argtypes = restype, argtypes
        _lib = lib
        return lib


CACHE_VARIABLE = "TFPERSIST_CACHE"
FRAMEWORK_SO = "libtensorflow_framework.so.2"


def registry_cache() -> Path | None:
    """The file that keeps the registry of the installed library (None: caching is off)."""
    setting = os.environ.get(CACHE_VARIABLE, "")
    if setting == "off":
        return None
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    root = Path(setting) if setting else Path(home) / "tfpersist"
    library = library_path()
    try:
        files = (library, library.with_name(FRAMEWORK.get(sys.platform, FRAMEWORK_SO)))
        key = "\0".join(f"{p}\0{st.st_size}\0{st.st_mtime_ns}" for p, st in _stats(files))
    except OSError:
        return None  # not installed as expected: _load says what is wrong
    return root / f"op-registry-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pb"


def _stats(paths):
    return [(p, p.stat()) for p in paths]


def _parsed(data: bytes) -> dict[str, object]:
    ops = protos.op_def_pb2.OpList()
    ops.ParseFromString(data)
    return {op.name: op for op in ops.op}


def _read_registry() -> dict[str, object]:
    """The registry as the loaded library answers it (kept on disk when nothing but the
    library registered ops)."""
    lib = _load()
    buffer = lib.TF_GetAllOpList()
    try:
        data = ctypes.string_at(buffer.contents.data, buffer.contents.length)
    finally:
        lib.TF_DeleteBuffer(buffer)
    cache = registry_cache() if "tensorflow" not in sys.modules else None
    if cache is not None:
        with contextlib.suppress(OSError):  # a read-only home: no cache, same answers
            if not cache.is_file() or cache.read_bytes() != data:  # kept once, not each load
                atomic.write_bytes(cache, data)
    return _parsed(data)


def _kept_registry() -> dict[str, object] | None:
    """The registry kept on disk for this library, when the library is not loaded here."""
    if _lib is not None or "tensorflow" in sys.modules:
        return None  # its own answer is a call away, and may know more ops
    cache = registry_cache()
    try:
        registry = _parsed(cache.read_bytes()) if cache else None
    except (OSError, DecodeError):
        return None  # missing or damaged: read from the library, and kept again
    return registry or None


def op_def(op: str):
    """The OpDef TensorFlow registers for ``op``, or None (a library function's name, or
    an op this TensorFlow lacks) — what ``op_def_registry.get`` answers. The registry is read
    whole once (from disk when kept, see above); an op registered since (TensorFlow's Python
    layer and op libraries add some) or missing from the kept registry is looked up on its
    own in the library."""
    global _registry
    if _registry is None:
        _registry = _kept_registry() or _read_registry()
    found = _registry.get(op)
    if found is None:
        found = _registered_since(op)
        if found is not None:
            _registry[op] = found
    return found


def _registered_since(op: str):
    global _scratch
    lib = _load()
    with _lock:
        if _scratch is None:
            _scratch = lib.TF_NewGraph()
    status, buffer = lib.TF_NewStatus(), lib.TF_NewBuffer()
    try:
        lib.TF_GraphGetOpDef(_scratch, op.encode(), buffer, status)
        if lib.TF_GetCode(status) != 0:
            return None  # NOT_FOUND
        found = protos.op_def_pb2.OpDef()
        found.ParseFromString(ctypes.string_at(buffer.contents.data, buffer.contents.length))
        return found
    finally:
        lib.TF_DeleteBuffer(buffer)
        lib.TF_DeleteStatus(status)


class Graph:
    """A GraphDef imported into TensorFlow's C graph (its shape inference run); ``output``
    gives a tensor's dtype and shape. Nothing runs. Use as a context manager."""

    def __init__(self, graph_def, what: str = "the graph"):
        data = graph_def.SerializeToString()
        self._lib = lib = _load()
        self._graph = lib.TF_NewGraph()
        status, options = lib.TF_NewStatus(), lib.TF_NewImportGraphDefOptions()
        buffer = lib.TF_NewBufferFromString(data, len(data))
        try:
            lib.TF_GraphImportGraphDef(self._graph, buffer, options, status)
            if lib.TF_GetCode(status) != 0:
                message = (lib.TF_Message(status) or b"").decode(errors="replace")
                self.close()
                why = first_line(Exception(message)) if message.strip() else "no reason given"
                raise TfpersistError(f"{what} does not import into TensorFlow ({why})")
        finally:
            lib.TF_DeleteBuffer(buffer)
            lib.TF_DeleteImportGraphDefOptions(options)
            lib.TF_DeleteStatus(status)

    def output(self, node: str, port: int = 0) -> tuple[int, list[int | None] | None]:
        """(DataType enum, shape) of ``node:port``: None for an unknown rank, None for an
        unknown dimension."""
        lib = self._lib
        operation = lib.TF_GraphOperationByName(self._graph, node.encode())
        if not operation or not 0 <= port < lib.TF_OperationNumOutputs(operation):
            raise TfpersistError(f"'{node}:{port}' is not a tensor of the graph")
        out = _Output(operation, port)
        status = lib.TF_NewStatus()
        try:
            rank = lib.TF_GraphGetTensorNumDims(self._graph, out, status)
            dims = (ctypes.c_int64 * max(rank, 0))()
            if rank >= 0:
                lib.TF_GraphGetTensorShape(self._graph, out, dims, rank, status)
        finally:
            lib.TF_DeleteStatus(status)
        shape = None if rank < 0 else [d if d >= 0 else None for d in dims]
        return lib.TF_OperationOutputType(out), shape

    def outputs(self, node: str) -> list[tuple[int, list[int | None] | None]]:
        """``output`` of each of ``node``'s outputs."""
        operation = self._lib.TF_GraphOperationByName(self._graph, node.encode())
        if not operation:
            raise TfpersistError(f"'{node}' is not a node of the graph")
        return [self.output(node, i) for i in range(self._lib.TF_OperationNumOutputs(operation))]

    def close(self) -> None:
        if self._graph:
            self._lib.TF_DeleteGraph(self._graph)
            self._graph = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
