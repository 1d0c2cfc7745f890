"""Ship a frozen model to the runtimes people deploy to: a serving SavedModel (TF Serving's
layout), TFLite (TensorFlow's own converter), ONNX (tf2onnx, run by onnxruntime) and a
frozen graph OpenCV's dnn module runs (opencv.py's rewrite, run by cv2.dnn).

Every artifact is written atomically and is the same bytes for the same frozen graph; each
format is loaded back and run next to the frozen graph (``parity``), so a format that computes
something else is caught where it is made.

Imports: core, tfapi, numerics, safety, graph, formats, running.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpersist.core import atomic, layout
from tfpersist.core.errors import TfpersistError, Unsupported, first_line
from tfpersist.tfapi.tfcompat import import_tf

SIGNATURE_KEY = "serving_default"
ONNX_OPSET = 17


@dataclass(frozen=True)
class Signature:
    """The frozen graph's input node names (each format takes every one, by its name; the
    pipeline's model has params.yaml's one) and output node names."""

    input_nodes: list[str]
    output_nodes: list[str]

    def __post_init__(self):
        if isinstance(self.input_nodes, str) or not self.input_nodes:
            raise TypeError(f"input_nodes: a list of one or more names, not {self.input_nodes!r}")


Rows = np.ndarray | dict[str, np.ndarray]  # one input's rows, or {input node: rows}


def feeds(sig: Signature, x: Rows) -> dict[str, np.ndarray]:
    """``x`` as {input node: rows} in the signature's order: one array for a model with one
    input, or a dict naming each input once (the same number of rows each); one line when it
    names an input the model lacks, leaves one out, or the row counts differ."""
    from tfpersist.formats import interpreters

    if not isinstance(x, dict):
        if len(sig.input_nodes) != 1:
            raise TfpersistError(
                f"the model has {len(sig.input_nodes)} inputs ({', '.join(sig.input_nodes)}); "
                "give rows for each by name (--input NAME=FILE.npy, repeatable)"
            )
        x = {sig.input_nodes[0]: x}
    interpreters.check_names("export", x, sig.input_nodes)
    interpreters.check_rows("export", x)
    return {n: x[n] for n in sig.input_nodes}


# -- writers ------------------------------------------------------------------------------------


def saved_model_from_graph_def(graph_def, sig: Signature, out: Path) -> None:
    """A SavedModel (tag ``serve``) whose ``serving_default`` signature takes each input node
    and returns each output node under its own name; no variables (the graph is frozen)."""
    tf = import_tf()
    v1 = tf.compat.v1
    with atomic.replace_dir(out) as scratch:
        target = scratch / "model"  # the Builder wants a directory it creates itself
        graph = tf.Graph()
        with graph.as_default(), v1.Session(graph=graph) as sess:
            tf.import_graph_def(graph_def, name="")
            signature = v1.saved_model.signature_def_utils.predict_signature_def(
                inputs={n: graph.get_tensor_by_name(f"{n}:0") for n in sig.input_nodes},
                outputs={n: graph.get_tensor_by_name(f"{n}:0") for n in sig.output_nodes},
            )
            builder = v1.saved_model.Builder(str(target))
            builder.add_meta_graph_and_variables(
                sess,
                [v1.saved_model.tag_constants.SERVING],
                signature_def_map={SIGNATURE_KEY: signature},
                strip_default_attrs=True,
                clear_devices=True,
            )
            builder.save()
        for item in sorted(target.iterdir()):
            item.rename(scratch / item.name)
        target.rmdir()


def tflite_from_saved_model(saved_model: Path, quantize: str = "none") -> bytes:
    tf = import_tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), [SIGNATURE_KEY])
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        return converter.convert()
    except Exception as e:  # ConverterError: ops TFLite lacks
        raise Unsupported(f"TFLite cannot convert this model ({first_line(e)})") from None


def onnx_from_graph_def(graph_def, sig: Signature, opset: int = ONNX_OPSET) -> bytes:
    import logging

    import tf2onnx

    from tfpersist.graph import rewrites

    logger = logging.getLogger("tf2onnx")
    level = logger.level  # unconverted ops are named by the line that leaves ONNX out
    logger.setLevel(logging.CRITICAL)
    try:
        model, _ = tf2onnx.convert.from_graph_def(
            rewrites.erfc_as_erf(graph_def),
            input_names=[f"{n}:0" for n in sig.input_nodes],
            output_names=[f"{n}:0" for n in sig.output_nodes],
            opset=opset,
        )
    except Exception as e:
        raise Unsupported(f"tf2onnx cannot convert this model ({first_line(e)})") from None
    finally:
        logger.setLevel(level)
    # tf2onnx names unknown dimensions from a process-wide counter (unk__9 in one run, unk__17
    # in the next): rename them in order of appearance, keeping distinct ones distinct.
    names: dict[str, str] = {}
    for info in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in info.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = names.setdefault(dim.dim_param, f"dim_{len(names)}")
    _plain_names(model.graph)
    return model.SerializeToString(deterministic=True)


def _plain_names(graph) -> None:
    """Name the ONNX inputs and outputs as the nodes (``x``, not TF's tensor name ``x:0``),
    as the SavedModel and TFLite signatures do; subgraphs (a loop's body) that read an outer
    name follow."""
    from onnx import AttributeProto

    def graphs(g):
        yield g
        for n in g.node:
            for a in n.attribute:
                if a.type == AttributeProto.GRAPH:
                    yield from graphs(a.g)
                elif a.type == AttributeProto.GRAPHS:
                    for sub in a.graphs:
                        yield from graphs(sub)

    every = list(graphs(graph))
    taken = {
        v
        for g in every
        for v in [
            *(i.name for i in g.input),
            *(o.name for o in g.output),
            *(v for n in g.node for v in [*n.input, *n.output]),
        ]
    }
    renames = {}
    for value in [*graph.input, *graph.output]:
        plain = value.name.removesuffix(":0")
        if plain != value.name and plain not in taken:
            renames[value.name] = plain
            value.name = plain
    for g in every:
        for node in g.node:
            node.input[:] = [renames.get(i, i) for i in node.input]
            node.output[:] = [renames.get(o, o) for o in node.output]


def export(
    graph_def,
    out_dir: str | Path,
    sig: Signature,
    formats: list[str],
    quantize: str = "none",
    opset: int = ONNX_OPSET,
    left_out: dict[str, str] | None = None,
) -> dict[str, dict]:
    """Write each format of the frozen ``graph_def`` under ``out_dir``; returns
    {format: {path, bytes, sha256}}. A format that cannot hold this model
    (errors.Unsupported) fails the call, or with a ``left_out`` dict is recorded there
    ({format: why}) and not written."""
    from tfpersist.graph import graphdefs

    out_dir = Path(out_dir)
    unknown = sorted(set(formats) - set(layout.EXPORT_FORMATS))
    if unknown or not formats:
        known = ", ".join(layout.EXPORT_FORMATS)
        asked = ", ".join(unknown) or "(none)"
        raise TfpersistError(f"export formats {asked}: choose from {known}")
    if quantize not in layout.TFLITE_QUANTIZE:
        raise TfpersistError(
            f"TFLite quantization '{quantize}': choose from {', '.join(layout.TFLITE_QUANTIZE)}"
        )
    graphdefs.check_nodes(graph_def, sig.input_nodes, "input node")
    graphdefs.check_nodes(graph_def, sig.output_nodes)
    from tfpersist.core.digests import digest

    out_dir.mkdir(parents=True, exist_ok=True)

    def tflite() -> bytes:
        if "saved_model" in formats:
            return tflite_from_saved_model(layout.exported(out_dir, "saved_model"), quantize)
        # TFLite converts from a SavedModel: one in a temp dir, not in out_dir
        with tempfile.TemporaryDirectory(prefix="tfpersist-tflite-") as scratch:
            saved_model_from_graph_def(graph_def, sig, Path(scratch) / "saved_model")
            return tflite_from_saved_model(Path(scratch) / "saved_model", quantize)

    def opencv_graph() -> bytes:
        from tfpersist.shipping import opencv

        opencv.one_input(sig.input_nodes)
        rewritten = opencv.rewrite(graph_def, sig.output_nodes)
        opencv.probe(rewritten, sig.input_nodes[0], sig.output_nodes)
        return graphdefs.serialize(rewritten)

    if "saved_model" in formats:
        saved_model_from_graph_def(graph_def, sig, layout.exported(out_dir, "saved_model"))
    writers = {
        "tflite": tflite,
        "onnx": lambda: onnx_from_graph_def(graph_def, sig, opset),
        "opencv": opencv_graph,
    }
    for fmt, write in writers.items():
        if fmt not in formats:
            continue
        try:
            data = write()
        except Unsupported as e:  # its converter or importer cannot take this model
            if left_out is None:
                raise
            left_out[fmt] = str(e)
        else:
            atomic.write_bytes(layout.exported(out_dir, fmt), data)
    written = {}
    for fmt in formats:
        if fmt in (left_out or {}):
            continue
        path = layout.exported(out_dir, fmt)
        sha, size = digest(path)
        written[fmt] = {"path": path.relative_to(out_dir).as_posix(), "bytes": size, "sha256": sha}
    return written


# -- runners ------------------------------------------------------------------------------------


class Loaded:
    """A shipped model loaded by its own runtime; ``run(x)`` → {output node: array}, each
    input fed by its name (``feeds``: one array for a one-input model). The
    SavedModel is loaded as TF Serving loads it (tf.saved_model.load, its signature); the
    .tflite and .onnx through interpreters.py, as predict and serve run them; the OpenCV
    graph in cv2.dnn (opencv.py)."""

    def __init__(self, fmt: str, path: Path, sig: Signature):
        from tfpersist.formats import interpreters

        self.fmt, self.path, self.sig = fmt, Path(path), sig
        if fmt == "saved_model":
            tf = import_tf()
            try:
                self._fn = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]
            except Exception as e:
                why = first_line(e)
                raise TfpersistError(f"{path}: cannot load the SavedModel ({why})") from None
        elif fmt == "tflite":
            self._model = interpreters.TFLiteModel(path)
        elif fmt == "onnx":
            self._model = interpreters.OnnxModel(path)
        elif fmt == "opencv":
            from tfpersist.shipping import opencv

            self._model = opencv.OpenCVModel(path, sig.output_nodes)
        else:
            known = ", ".join(layout.EXPORT_FORMATS)
            raise TfpersistError(f"unknown export format '{fmt}'; choose from {known}")

    def run(self, x: Rows) -> dict[str, np.ndarray]:
        x = {n: _numeric(v) for n, v in feeds(self.sig, x).items()}
        if self.fmt == "saved_model":
            tf = import_tf()
            got = self._fn(**{n: tf.constant(v) for n, v in x.items()})
            return {n: got[n].numpy() for n in self.sig.output_nodes}
        got = self._model.run(x)
        return {n: got[n] for n in self.sig.output_nodes}


def _numeric(x) -> np.ndarray:
    """Integers, booleans and text as they are, everything else float32 (what export
    checks: sample_rows)."""
    x = np.asarray(x)
    return x if x.dtype.kind in "iubUSO" else np.asarray(x, np.float32)


def _words(graph_def, most: int = 64) -> list[str]:
    """Up to ``most`` distinct words of the string constants of a graph (a lookup table's
    keys), sorted: text rows made of what the model knows."""
    from tfpersist.tfapi import dtypes, tensors

    words: set[str] = set()
    for node in graph_def.node:
        if node.op != "Const" or dtypes.as_dtype(node.attr["dtype"].type).name != "string":
            continue
        for value in np.ravel(tensors.make_ndarray(node.attr["value"].tensor)):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            words.update(w for w in text.split() if w.isprintable())
    return sorted(words)[:most]


RTOL, ATOL = layout.EXPORT_RTOL, layout.EXPORT_ATOL  # the defaults (layout.py says how)


@dataclass
class Parity:
    """Each format run on the same rows as the frozen graph: ``outputs`` {format: {output:
    array}}, ``distances`` {format: {output: max abs difference}}, ``exact`` the outputs that
    are not floating point (they must be equal), ``excess`` {format: {output: (largest
    |format − frozen| − rtol·|frozen|, that difference, the frozen value)}} for ``rtol``."""

    outputs: dict[str, dict[str, np.ndarray]]
    distances: dict[str, dict[str, float]]
    exact: set[str]
    excess: dict[str, dict[str, tuple[float, float, float]]]
    rtol: float

    def failures(self, tolerance: float, quantize: str = "none") -> list[str]:
        """``failing``'s lines."""
        return list(self.failing(tolerance, quantize).values())

    def failing(self, tolerance: float, quantize: str = "none") -> dict[str, str]:
        """{format: one line} for each format whose float outputs are not close to the
        frozen graph's —
        ``|format − frozen| <= tolerance + rtol·|frozen|`` fails somewhere, as
        ``np.allclose(rtol, atol=tolerance)`` judges — or whose integer outputs differ at
        all; a dynamically quantized TFLite is only measured."""
        lines = {}
        for fmt, outs in self.distances.items():
            if fmt == "tflite" and quantize == "dynamic":
                continue
            bad = []
            for n, d in outs.items():
                if n in self.exact:
                    if d > 0:
                        bad.append(f"{n} {d:.3g} (class ids must be equal)")
                    continue
                over, diff, value = self.excess[fmt][n]
                if over > tolerance:
                    relative = diff / abs(value) if value else float("inf")
                    bad.append(
                        f"{n} {diff:.3g} where the frozen graph gives {value:.4g} (relative "
                        f"{relative:.2g}; allowed {tolerance:g} + {self.rtol:g}·|value|)"
                    )
            if bad:
                lines[fmt] = f"{fmt} differs from the frozen graph: {', '.join(bad)}"
        return lines


def parity(
    out_dir: Path,
    sig: Signature,
    formats: list[str],
    x: Rows,
    want: dict,
    loaded: dict | None = None,
    rtol: float = RTOL,
) -> Parity:
    """Run each format under ``out_dir`` on ``x`` next to ``want``, the frozen graph's
    outputs on the same rows (frozen_outputs). ``loaded``: {format: Loaded} kept between
    calls (a caller running several chunks loads each format once). ``rtol``: the relative
    allowance the failures are judged with."""
    from tfpersist.numerics.distances import excess, max_abs_diff

    loaded = {} if loaded is None else loaded
    x = feeds(sig, x)
    outputs, distances, beyond = {}, {}, {}
    for fmt in formats:
        if fmt not in loaded:
            loaded[fmt] = Loaded(fmt, layout.exported(out_dir, fmt), sig)
        got = loaded[fmt].run(x)
        outputs[fmt], distances[fmt], beyond[fmt] = got, {}, {}
        for name in sig.output_nodes:
            a, b = want[name], np.asarray(got[name])
            if a.shape != b.shape:
                raise TfpersistError(
                    f"{fmt}: output '{name}' has shape {list(b.shape)}, the frozen graph's "
                    f"{list(a.shape)}"
                )
            distances[fmt][name] = max_abs_diff(a, b)
            beyond[fmt][name] = excess(a, b, rtol)
    exact = {n for n, v in want.items() if v.dtype.kind not in "fc"}
    return Parity(outputs, distances, exact, beyond, rtol)


def frozen_outputs(graph_def, sig: Signature, x: Rows, trust=None) -> dict:
    """The frozen graph's outputs on ``x`` (ops beyond the allowlist as ``trust`` allows)."""
    from tfpersist import safety
    from tfpersist.running.runner import Runner

    with Runner.from_graph_def(graph_def, "the frozen graph") as frozen:
        frozen.trust = trust or safety.TRUST_NOTHING
        return frozen.run(feeds(sig, x), None, sig.output_nodes)


def sample_rows(
    graph_def, input_nodes: list[str], rows: int = 64, seed: int = 0
) -> dict[str, np.ndarray]:
    """{input node: seeded rows shaped like it} (unknown dimensions: ``rows`` for the first,
    1 elsewhere), drawn in order from one generator: standard-normal floats, integers 0
    and 1 (an index any lookup or embedding of two or more rows takes), or text made of the
    graph's own words (_words): parity data when the caller has none."""
    rng = np.random.default_rng(seed)
    return {n: _sample(graph_def, n, rows, rng) for n in input_nodes}


def _sample(graph_def, input_node: str, rows: int, rng) -> np.ndarray:
    tf = import_tf()
    node = next(n for n in graph_def.node if n.name == input_node)
    dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
    if not (dtype in (tf.float32, tf.string) or dtype.is_integer):
        raise TfpersistError(
            f"input '{input_node}' is {dtype.name}: export checks float32, integer and string "
            "inputs only"
        )
    shape = node.attr["shape"].shape
    if shape.unknown_rank:
        raise TfpersistError(f"input '{input_node}' has an unknown rank; export needs its shape")
    dims = [d.size if d.size >= 0 else (rows if i == 0 else 1) for i, d in enumerate(shape.dim)]
    if dtype.is_integer:
        return rng.integers(0, 2, dims).astype(dtype.as_numpy_dtype)
    if dtype == tf.string:  # words the graph holds (a vocabulary) and one it does not
        words = np.array([*_words(graph_def), "tfpersist"])
        if len(dims) == 1:  # a sentence a row
            picked = rng.integers(0, len(words), [dims[0], 3])
            return np.array([" ".join(row) for row in words[picked]])
        return words[rng.integers(0, len(words), dims)]  # a token an element
    return rng.standard_normal(dims).astype(np.float32)


def ship(
    graph_def,
    out_dir: str | Path,
    sig: Signature,
    formats: list[str],
    quantize: str = "none",
    tolerance: float = ATOL,
    x: Rows | None = None,
    trust=None,
    extra: dict | None = None,
    leave_out_unsupported: bool = False,
    rtol: float = RTOL,
    partial: bool = False,
) -> dict:
    """Export into a scratch directory, run every format next to the frozen graph, and only
    when all are close to it — ``|format − frozen| <= tolerance + rtol·|frozen|`` element by
    element (integer outputs: exactly) — move them into
    ``out_dir`` with its card (``export_card``; ``extra``: the feature columns); otherwise
    fail with one line and leave ``out_dir`` as it was. ``x``: the rows (``feeds``), by
    default ``sample_rows``. A dynamically quantized TFLite is
    measured, not held to the tolerance. With ``leave_out_unsupported`` a format that cannot
    hold this model is left out (the report's ``left_out`` says why) instead of failing.
    A format whose own runtime cannot load the file written for it is always left out, the
    rest shipped (all refused: the call fails). With ``partial``, a format that is not close
    is left out too and the rest ships (the caller says what was not); without, it fails the
    call and nothing is written."""
    import os

    from tfpersist.graph import graphdefs
    from tfpersist.shipping import cards

    out_dir = Path(out_dir)
    x = sample_rows(graph_def, sig.input_nodes) if x is None else feeds(sig, x)
    left_out: dict[str, str] | None = {} if leave_out_unsupported else None
    with atomic.scratch_beside(out_dir) as scratch:
        written = export(graph_def, scratch, sig, formats, quantize, left_out=left_out)
        refused, loaded = _loaded(scratch, sig, written)  # a runtime refusing its own file
        shipped = [fmt for fmt in written if fmt not in refused]
        want = frozen_outputs(graph_def, sig, x, trust)
        checked = parity(scratch, sig, shipped, x, want, loaded, rtol)
        failing = checked.failing(tolerance, quantize)
        if failing and not (partial and len(failing) < len(shipped)):
            raise TfpersistError(f"{next(iter(failing.values()))}; nothing written to {out_dir}")
        if not shipped:
            everything = {**(left_out or {}), **refused}
            why = "; ".join(f"{fmt}: {line}" for fmt, line in everything.items())
            raise TfpersistError(f"{why}; nothing written to {out_dir}")
        failing = {fmt: line.removeprefix(f"{fmt} ") for fmt, line in failing.items()}
        left_out = {**(left_out or {}), **refused, **failing}
        shipped = [fmt for fmt in shipped if fmt not in failing]
        for fmt in [*refused, *failing]:
            written.pop(fmt)
        frozen_sha256 = hashlib.sha256(graphdefs.serialize(graph_def)).hexdigest()
        kept, stale = cards.earlier(out_dir, frozen_sha256, formats, shipped)
        cards.remove(out_dir, stale)
        for fmt in shipped:
            new, final = layout.exported(scratch, fmt), layout.exported(out_dir, fmt)
            if new.is_dir():
                with atomic.replace_dir(final) as tmp:
                    for item in sorted(new.iterdir()):
                        item.rename(tmp / item.name)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(new, final)
        listed = {**kept, **written}
        card = cards.export_card(graph_def, sig, listed, left_out or {}, extra or {}, frozen_sha256)
        atomic.write_json(out_dir / layout.EXPORT_CARD, card)
        for fmt in shipped:
            distances = checked.distances[fmt].items()
            written[fmt]["max_abs_diff"] = {n: d for n, d in distances if n not in checked.exact}
            written[fmt]["equal"] = {  # integer outputs (class ids): how often the same
                n: float(np.mean(np.asarray(checked.outputs[fmt][n]) == want[n]))
                for n in sorted(checked.exact)
            }
    return {
        "rows": len(next(iter(x.values()))),
        "formats": written,
        "left_out": left_out or {},
        "kept": sorted(kept),
        "removed": sorted(stale),
    }


def difference(info: dict, noun: str) -> str:
    """A shipped format's distance to the frozen ``noun`` (graph, model), as ship reports it:
    the largest over its float outputs, and each integer output (a class id) that is not
    always the same — a dynamically quantized TFLite, measured, not held — by how often it is."""
    worst = max(info["max_abs_diff"].values(), default=0.0)
    said = f"max abs difference to the frozen {noun} {worst:.3g}"
    for name, share in info.get("equal", {}).items():
        if share < 1:
            said += f", {name} equal for {share:.1%}"
    return said


def _loaded(scratch: Path, sig: Signature, written: dict) -> tuple[dict, dict]:
    """({format: why} for each written format its own runtime refuses to load — onnxruntime
    on a graph tf2onnx wrote but it cannot run, … —, {format: Loaded} for the others)."""
    refused, loaded = {}, {}
    for fmt in written:
        try:
            loaded[fmt] = Loaded(fmt, layout.exported(scratch, fmt), sig)
        except TfpersistError as e:
            path = layout.exported(scratch, fmt)
            why = first_line(e).replace(f"{path}: ", "").replace(str(path), path.name)
            unconverted = _unconverted(path) if fmt == "onnx" else []
            if unconverted:  # what the runtime's complaint comes from, in TensorFlow's terms
                why = f"tf2onnx left TensorFlow's {', '.join(unconverted)} unconverted"
            refused[fmt] = f"its runtime cannot load the file written for it: {why}"
    return refused, loaded


def _unconverted(path: Path) -> list[str]:
    """The op types in an ONNX file that are not ONNX operators: TensorFlow ops tf2onnx
    could not convert and left in place (it only logs them)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    found = {
        n.op_type
        for n in model.graph.node
        if n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type)
    }
    return sorted(found)


def magnitude(distance: float) -> str:
    """The power of ten at or above ``distance``, as text ("1e-06"; exactly equal: "0"): a
    parity figure without the last bits a runtime's CPU-dispatched kernels decide
    (onnxruntime picks AVX2 or AVX-512 code at run time), so metrics reproduce on every
    machine; text, because ``dvc metrics show`` rounds numbers to 5 decimals (1e-06 → 0.0)."""
    return "0" if distance <= 0 else f"{10.0 ** math.ceil(math.log10(distance)):.0e}"
