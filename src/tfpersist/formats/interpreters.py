"""The runtimes beside TensorFlow's: a .tflite in TFLite's interpreter, an .onnx in
onnxruntime — each checked before anything runs (a .tflite's custom ops refused and its
TF-fallback "Flex" ops held to the inference allowlist; an .onnx's ops from custom domains
and external-data paths outside its directory refused) and each with the same face as
loaders.GraphModel: ``inputs``, ``outputs`` (Tensor), ``run({name: array})``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpersist import formats, safety
from tfpersist.core.errors import TfpersistError, first_line

# ONNX operator domains onnxruntime implements itself (no custom-op library needed)
ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}


@dataclass(frozen=True)
class Tensor:
    """One input or output: the name a caller uses, its numpy dtype, its shape (None:
    any size)."""

    name: str
    dtype: str
    shape: list[int | None] | None


@functools.cache
def _dtype(name: str) -> np.dtype:
    return np.dtype(name)  # dtype.name is a Python property: ~5 µs a call


def fits(feeds: dict, inputs: list[Tensor]) -> bool:
    """``feeds`` are exactly the inputs' arrays, of their dtypes and shapes, with one number
    of rows: every check below would pass and nothing needs converting (a served request's
    usual case, a few µs cheaper than the checks that say what is wrong)."""
    if len(feeds) != len(inputs):
        return False
    rows = None
    for t in inputs:
        a = feeds.get(t.name)
        if type(a) is not np.ndarray or t.shape is None or a.ndim != len(t.shape) or not a.ndim:
            return False
        if a.dtype != _dtype(t.dtype) or rows not in (None, a.shape[0]):
            return False
        rows = a.shape[0]
        for want, have in zip(t.shape, a.shape, strict=True):
            if want is not None and want != have:
                return False
    return True


def check_rows(source: str, feeds: dict[str, np.ndarray]) -> int:
    """The number of rows every input has, or one line saying they differ."""
    rows = {len(v) if np.ndim(v) else 1 for v in feeds.values()}
    if len(rows) > 1:
        raise TfpersistError(
            f"{source}: the inputs have different numbers of rows "
            f"({', '.join(f'{n}: {len(v)}' for n, v in feeds.items())})"
        )
    return rows.pop()


def check_names(source: str, given, known, all_needed: bool = True) -> None:
    """One line when ``given`` names an input the model lacks, or (``all_needed``) leaves
    one out. A graph may hold placeholders its outputs do not need: TF says which it needs."""
    extra = sorted(set(given) - set(known))
    missing = sorted(set(known) - set(given)) if all_needed else []
    if extra or missing:
        what = f"no input '{extra[0]}'" if extra else f"input '{missing[0]}' not fed"
        raise TfpersistError(f"{source}: {what}; its inputs are {', '.join(known)}")


def check_shapes(source: str, feeds: dict[str, np.ndarray], inputs: list[Tensor]) -> None:
    """One line when an array does not fit its input's shape: a runtime that resizes its
    inputs to whatever it is given (TFLite) would otherwise compute garbage."""
    for t in inputs:
        if t.name not in feeds or t.shape is None:
            continue
        got = list(np.shape(feeds[t.name]))
        fits = len(got) == len(t.shape) and all(
            want is None or want == have for want, have in zip(t.shape, got, strict=True)
        )
        if not fits:
            want = "[" + ", ".join("?" if d is None else str(d) for d in t.shape) + "]"
            raise TfpersistError(f"{source}: input '{t.name}' takes {want}, the data is {got}")


class _Selecting:
    """``select(names)``: run returns only those outputs (--output-nodes)."""

    optional_inputs: tuple[Tensor, ...] = ()  # inputs with a default (graphs only)

    def select(self, names: list[str] | None):
        if names:
            known = {t.name: t for t in self.outputs}
            missing = [n for n in names if n not in known]
            if missing:
                raise TfpersistError(
                    f"{self.source}: no output '{missing[0]}'; its outputs are {', '.join(known)}"
                )
            self.outputs = [known[n] for n in names]
        return self

    def _only_selected(self, got: dict) -> dict:
        return {t.name: got[t.name] for t in self.outputs}


# -- TFLite --------------------------------------------------------------------------------------


def tflite_ops(model: bytes) -> tuple[list[str], list[str]]:
    """(custom op codes, TensorFlow ops run through the Flex delegate) of a .tflite."""
    from tfpersist.tfapi.tfcompat import import_tf

    import_tf()  # TensorFlow quiet and pinned before any of it loads
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    custom, flex = [], []
    for code in root.operatorCodes or []:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = (code.customCode or b"").decode("utf-8", "replace")
            (flex if name.startswith("Flex") else custom).append(name.removeprefix("Flex"))
    return sorted(set(custom)), sorted(set(flex))


class TFLiteModel(_Selecting):
    """A .tflite in TFLite's interpreter, built-in kernels only (no delegate): its
    ``serving_default`` signature's names when it has one, else its tensors' names."""

    format = formats.TFLITE

    def __init__(self, path, trust=safety.TRUST_NOTHING, threads: int | None = None):
        self.source = str(path)
        data = Path(path).read_bytes()
        try:
            custom, flex = tflite_ops(data)
        except Exception as e:
            raise TfpersistError(f"{path}: not a readable TFLite model ({first_line(e)})") from None
        if custom and not trust.everything:
            raise TfpersistError(
                f"{path}: refusing to run a TFLite model with custom ops ({', '.join(custom)}); "
                "only TFLite's built-in ops run here (--allow-unsafe-ops runs it anyway)"
            )
        safety.require(flex, str(path), trust)
        try:
            self._open(data, threads)
        except Exception as e:
            why = first_line(e)
            raise TfpersistError(f"{path}: cannot load the TFLite model ({why})") from None

    def _open(self, data: bytes, threads) -> None:
        import warnings

        from tfpersist.tfapi.tfcompat import import_tf

        tf = import_tf()
        with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated" (LiteRT)
            warnings.simplefilter("ignore", UserWarning)
            self._interpreter = tf.lite.Interpreter(
                model_content=data,
                num_threads=threads or 1,
                # TFLite's own kernels, not the XNNPACK delegate: what every device has
                experimental_op_resolver_type=(
                    tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                ),
            )
        signatures = self._interpreter.get_signature_list()
        self._key = "serving_default" if "serving_default" in signatures else None
        if self._key is None and signatures:
            self._key = sorted(signatures)[0]
        if self._key:
            self._runner = self._interpreter.get_signature_runner(self._key)
            ins = self._runner.get_input_details()
            outs = self._runner.get_output_details()
        else:
            self._interpreter.allocate_tensors()
            ins = {d["name"]: d for d in self._interpreter.get_input_details()}
            outs = {d["name"]: d for d in self._interpreter.get_output_details()}

        def spec(name, d):
            shape = [None if s < 0 else int(s) for s in d.get("shape_signature", d["shape"])]
            return Tensor(name, np.dtype(d["dtype"]).name, shape)

        self._in_details, self._out_details = ins, outs
        self.inputs = [spec(n, d) for n, d in sorted(ins.items())]
        self.outputs = [spec(n, d) for n, d in sorted(outs.items())]

    def run(self, feeds: dict[str, np.ndarray], batch_size: int = 1024) -> dict[str, np.ndarray]:
        if not fits(feeds, self.inputs):
            check_names(self.source, feeds, [t.name for t in self.inputs])
            check_rows(self.source, feeds)
            check_shapes(self.source, feeds, self.inputs)
            feeds = {
                k: np.asarray(v, self._in_details[k]["dtype"]).reshape(np.shape(v))
                for k, v in feeds.items()
            }
        try:
            if self._key:
                return self._only_selected(self._runner(**feeds))
            it = self._interpreter
            for name, value in feeds.items():
                index = self._in_details[name]["index"]
                if list(it.get_input_details()[0]["shape"]) != list(value.shape):
                    it.resize_tensor_input(index, value.shape)
            it.allocate_tensors()
            for name, value in feeds.items():
                it.set_tensor(self._in_details[name]["index"], value)
            it.invoke()
            return {t.name: it.get_tensor(self._out_details[t.name]["index"]) for t in self.outputs}
        except (ValueError, RuntimeError) as e:
            raise TfpersistError(f"{self.source}: {first_line(e)}") from None

    def close(self) -> None:
        pass


# -- ONNX ---------------------------------------------------------------------------------------


def onnx_problems(path: Path) -> list[str]:
    """What makes an .onnx unsafe to load here: ops from domains onnxruntime would need a
    custom-op library for, external-data files outside the model's directory."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise TfpersistError(f"{path}: not a readable ONNX model ({first_line(e)})") from None
    problems = []
    nodes = list(model.graph.node) + [n for f in model.functions for n in f.node]
    local = {f.domain for f in model.functions}
    domains = sorted({n.domain for n in nodes} - ONNX_DOMAINS - local)
    if domains:
        problems.append(f"ops from custom domains ({', '.join(domains)})")
    root = path.resolve().parent
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                target = (root / entry.value).resolve()
                if Path(entry.value).is_absolute() or not target.is_relative_to(root):
                    problems.append(f"external data outside its directory ({entry.value})")
    return problems


class OnnxModel(_Selecting):
    """An .onnx in onnxruntime (CPU); names are the graph's input and output names."""

    format = formats.ONNX

    def __init__(self, path, trust=safety.TRUST_NOTHING, threads: int | None = None):
        self.source = str(path)
        problems = onnx_problems(Path(path))
        if problems and not trust.everything:
            raise TfpersistError(
                f"{path}: refusing to run an ONNX model with {problems[0]} "
                "(--allow-unsafe-ops runs it anyway)"
            )
        try:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = threads or 1
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:
            raise TfpersistError(f"{path}: cannot load the ONNX model ({first_line(e)})") from None

        def spec(arg):
            dtype = {"tensor(float)": "float32", "tensor(int64)": "int64"}.get(
                arg.type, arg.type.removeprefix("tensor(").removesuffix(")")
            )
            shape = [d if isinstance(d, int) else None for d in arg.shape]
            return Tensor(arg.name, dtype, shape)

        self.inputs = [spec(a) for a in self._session.get_inputs()]
        self.outputs = [spec(a) for a in self._session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray], batch_size: int = 1024) -> dict[str, np.ndarray]:
        if not fits(feeds, self.inputs):
            check_names(self.source, feeds, [t.name for t in self.inputs])
            check_rows(self.source, feeds)
            check_shapes(self.source, feeds, self.inputs)
            dtypes = {t.name: t.dtype for t in self.inputs}
            feeds = {k: np.asarray(v, dtypes.get(k)) for k, v in feeds.items()}
        names = [t.name for t in self.outputs]
        try:
            return dict(zip(names, self._session.run(names, feeds), strict=True))
        except Exception as e:  # onnxruntime's InvalidArgument, Fail
            raise TfpersistError(f"{self.source}: {first_line(e)}") from None

    def close(self) -> None:
        pass
