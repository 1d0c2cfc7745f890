"""A model's signatures as TF Serving serves them: every SignatureDef of a SavedModel by its
key, inputs and outputs by their TensorInfos' tensor names whatever op makes them.

TF Serving loads a SavedModel's meta graph once and runs any signature by feeding and
fetching the tensors its TensorInfos name — ``x:0`` in its half_plus_two test models is an
Identity of the tf.Example parsing, not a Placeholder. Here a TF1 SavedModel (no object
graph) is frozen once with every signature's outputs, no node renamed, and each signature
runs in that one session through ``Session::MakeCallable`` on the tensor names; like TF
Serving's C++ ``Session::Run`` it does not hold a feed to the tensor's static shape (a [3]
feeds an x of [-1, 1]; Python's ``Session.run`` refuses it). A TF2 SavedModel's signatures
are functions: each is frozen and run on its own (loaders.GraphModel). Any other format is
one signature, ``serving_default``, of the model's inputs and outputs.

A signature that cannot run here (its ops outside the allowlist, sparse tensors) is still
listed by metadata; a request for it gets the reason.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import numpy as np

from tfpersist import formats, safety
from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.formats.interpreters import Tensor
from tfpersist.tfapi import dtypes, protos

DEFAULT = "serving_default"
PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
INIT = "__saved_model_init_op"


def table(model) -> dict:
    """{signature key: what runs it} — ``inputs``, ``outputs``, ``optional_inputs``, ``run``."""
    return getattr(model, "signatures", None) or {DEFAULT: model}


def default_key(model) -> str:
    """The signature ``model.run`` runs (its face: inputs, outputs, warm-up, batching)."""
    return getattr(model, "default", DEFAULT)


def method(model, key: str) -> str:
    return defs(model)[key].method_name


def defs(model) -> dict:
    """{key: SignatureDef} as TF Serving's metadata lists them."""
    found = getattr(model, "signature_defs", None)
    if found is None:
        found = {DEFAULT: signature_def(model)}
        with contextlib.suppress(AttributeError):  # made once per model
            model.signature_defs = found
    return found


def _tensor_info(t: Tensor):
    info = protos.meta_graph_pb2.TensorInfo(name=t.name)
    name = "string" if t.dtype in ("string", "object") else t.dtype
    info.dtype = dtypes.by_name(name).enum
    if t.shape is None:
        info.tensor_shape.unknown_rank = True
    for d in t.shape or []:
        info.tensor_shape.dim.add(size=-1 if d is None else d)
    return info


def signature_def(model):
    """A predict SignatureDef of a model's inputs and outputs, named as the model names them."""
    sig = protos.meta_graph_pb2.SignatureDef(method_name=PREDICT)
    for t in [*model.inputs, *getattr(model, "optional_inputs", [])]:
        sig.inputs[t.name].CopyFrom(_tensor_info(t))
    for t in model.outputs:
        sig.outputs[t.name].CopyFrom(_tensor_info(t))
    return sig


def _spec(alias: str, info) -> Tensor:
    """A TensorInfo as the server's Tensor: its alias, dtype, shape (None: unknown rank)."""
    shape = None
    if info.HasField("tensor_shape") and not info.tensor_shape.unknown_rank:
        shape = [None if d.size < 0 else d.size for d in info.tensor_shape.dim]
    return Tensor(alias, dtypes.as_dtype(info.dtype).name, shape)


class Broken:
    """A signature listed but not runnable here: every request gets why."""

    def __init__(self, key: str, why: str):
        self.key, self.why = key, why
        self.inputs, self.outputs, self.optional_inputs = [], [], []

    def run(self, feeds):
        raise TfpersistError(f"signature '{self.key}' cannot run on this server: {self.why}")


class _Session:
    """One frozen graph in one session; runs by tensor names, a prepared callable each."""

    def __init__(self, graph_def, source: str, threads: int | None):
        from tfpersist.running.runner import Runner

        self.runner = Runner.from_graph_def(graph_def, source, threads)
        self._calls: dict = {}
        self._lock = threading.Lock()

    def has(self, tensor: str) -> bool:
        try:
            self.runner.graph.get_tensor_by_name(tensor)
        except (KeyError, ValueError):
            return False
        return True

    def call(self, feeds: tuple[str, ...], fetches: tuple[str, ...]):
        key = (feeds, fetches)
        found = self._calls.get(key)
        if found is None:
            from tensorflow.core.protobuf import config_pb2

            options = config_pb2.CallableOptions(feed=list(feeds), fetch=list(fetches))
            with self._lock:
                found = self._calls.get(key)
                if found is None:
                    found = self._calls[key] = self.runner.sess._make_callable_from_options(options)
        return found

    def close(self) -> None:
        self.runner.close()


class TensorSignature:
    """One signature of a TF1 SavedModel, fed and fetched by its TensorInfos' tensor names."""

    format = "TensorFlow graph"

    def __init__(self, session: _Session, key: str, sig):
        self.key, self._session, self.optional_inputs = key, session, []
        self.inputs = [_spec(a, sig.inputs[a]) for a in sorted(sig.inputs)]
        self.outputs = [_spec(a, sig.outputs[a]) for a in sorted(sig.outputs)]
        self._feeds = {a: sig.inputs[a].name for a in sig.inputs}
        self._fetches = tuple(sig.outputs[a].name for a in sorted(sig.outputs))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf  # imported already: the session is TensorFlow's

        keys = sorted(feeds)  # one callable per set of inputs, whatever order a request names them
        call = self._session.call(tuple(self._feeds[k] for k in keys), self._fetches)
        try:
            got = call(*(feeds[k] for k in keys))
        except (tf.errors.OpError, ValueError, TypeError) as e:
            raise TfpersistError(f"the model failed ({first_line(e)})") from None
        return {t.name: v for t, v in zip(self.outputs, got, strict=True)}


class Signatures:
    """A SavedModel served as TF Serving serves it: ``signatures`` (key → runnable),
    ``signature_defs`` (key → SignatureDef, for metadata), and the face of ``default``'s
    (``serving_default`` when there is one): ``inputs``, ``outputs``, ``run``."""

    format = "TensorFlow graph"

    def __init__(self, source: str, signature_defs: dict, signatures: dict, closers: list):
        self.source, self.signature_defs, self.signatures = source, signature_defs, signatures
        runnable = [k for k, s in signatures.items() if not isinstance(s, Broken)]
        if not runnable:
            why = "; ".join(f"{k}: {s.why}" for k, s in signatures.items()) or "none"
            raise TfpersistError(f"{source}: no signature runs here ({why})")
        self.default = DEFAULT if DEFAULT in runnable else sorted(runnable)[0]
        face = signatures[self.default]
        self.inputs, self.outputs = face.inputs, face.outputs
        self.optional_inputs = face.optional_inputs
        self.run = face.run
        self._closers = closers

    def close(self) -> None:
        for close in self._closers:
            close()


def open_model(path, output_nodes=None, signature_key=None, trust=safety.TRUST_NOTHING, **kw):
    """What ``serve`` opens: a SavedModel with every signature (unless one is chosen by
    ``signature_key`` or ``output_nodes``), any other format as loaders.open_model does."""
    from tfpersist.running import loaders

    plain = output_nodes or signature_key or kw.get("architecture") is not None
    if not plain and formats.detect(path, runnable=True) == formats.SAVED_MODEL:
        return open_saved_model(path, trust, kw.get("threads"))
    return loaders.open_model(path, output_nodes, signature_key, trust, **kw)


def open_saved_model(path, trust=safety.TRUST_NOTHING, threads: int | None = None) -> Signatures:
    from tfpersist.formats import saved_models

    meta = saved_models.meta_graph(saved_models.read(path), path)
    found = {}
    for key in sorted(meta.signature_def):
        found[key] = protos.meta_graph_pb2.SignatureDef()
        found[key].CopyFrom(meta.signature_def[key])
    runnable = {k: s for k, s in found.items() if k != INIT}
    if meta.object_graph_def.nodes:
        signatures, closers = _functions(path, runnable, trust, threads)
    else:
        signatures, closers = _tensors(path, meta, runnable, trust, threads)
    return Signatures(str(path), found, signatures, closers)


def _functions(path, runnable: dict, trust, threads) -> tuple[dict, list]:
    """A TF2 SavedModel: each signature a function, frozen and run on its own."""
    from tfpersist.running import loaders

    signatures, closers = {}, []
    for key in runnable:
        try:
            model = loaders.GraphModel.open(
                Path(path), formats.SAVED_MODEL, None, key, trust, threads
            )
        except TfpersistError as e:
            signatures[key] = Broken(key, _private(first_line(e), path))
            continue
        signatures[key] = model
        closers.append(model.close)
    return signatures, closers


def _tensors(path, meta, runnable: dict, trust, threads) -> tuple[dict, list]:
    """A TF1 SavedModel: one graph frozen with every signature's outputs (or, when that
    fails, the default signature's alone), each signature run on its tensor names."""
    from tfpersist.freezing import freeze
    from tfpersist.tfapi.tensornames import op_name

    def outputs(keys) -> list[str]:
        names = {op_name(i.name) for k in keys for i in runnable[k].outputs.values()}
        return sorted(n for n in names if n)

    dense = {
        k: s
        for k, s in runnable.items()
        if all(i.name for i in [*s.inputs.values(), *s.outputs.values()])
    }
    signatures = {
        k: Broken(k, "its inputs or outputs are sparse or composite tensors")
        for k in runnable
        if k not in dense
    }
    try:
        graph_def = freeze.freeze_meta_graph(path, meta, outputs(dense), trust)
        kept = dense
    except TfpersistError as e:
        first = DEFAULT if DEFAULT in dense else min(dense, default=None)
        if first is None:
            raise
        why = _private(first_line(e), path)
        graph_def = freeze.freeze_meta_graph(path, meta, outputs([first]), trust)
        kept = {first: dense[first]}
        signatures.update({k: Broken(k, why) for k in dense if k != first})
    session = _Session(graph_def, str(path), threads)
    for key, sig in kept.items():
        names = [i.name for i in [*sig.inputs.values(), *sig.outputs.values()]]
        missing = [n for n in names if not session.has(n)]
        if missing:
            signatures[key] = Broken(key, f"tensor {missing[0]} is not in the frozen graph")
        else:
            signatures[key] = TensorSignature(session, key, sig)
    return signatures, [session.close]


def _private(message: str, *paths) -> str:
    """A message without the server's file system paths (TF Serving's name none)."""
    for path in {str(p) for p in paths} - {""}:
        message = message.replace(f"{path}: ", "").replace(path, "the model")
    return message
