"""TF Serving's Classify and Regress (REST ``:classify``/``:regress``, gRPC Classify, Regress
and MultiInference): ``tf.Example`` inputs run through a signature whose one input,
``inputs``, takes them serialized; results shaped as TF Serving shapes them.

REST bodies are ``{"signature_name"?, "context"?: {feature: value|list}, "examples": [{…}]}``
as TF Serving's REST page describes them (json_tensor.cc): a JSON double is a float feature,
an integer token (or ``true``/``false``) an int64 one, a string or ``{"b64": …}`` bytes. With
a context each example is fed as the serialized context followed by the serialized example
(protobuf merging: the example's features win), as TF Serving's util.cc does. Signatures are
chosen and checked as classifier.cc and regressor.cc do, with their messages: on a
predict-only model both answer 400.
"""

from __future__ import annotations

import numpy as np

from tfpersist.serving import signatures
from tfpersist.serving.jsontensor import (
    b64_bytes,
    format_error,
    is_b64,
    json_type,
    signature_name,
)
from tfpersist.serving.rest import BadRequest, Unimplemented

KINDS = {"float": "float_list", "int64": "int64_list", "bytes": "bytes_list"}


def _kind(value, name: str) -> tuple[str, object]:
    """TF Serving's AddValueToFeature: a JSON value's feature kind and value."""
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not is_b64(value)):
        raise BadRequest(
            f"Feature: {name} has element with unexpected JSON type: {json_type(value)}"
        )
    if isinstance(value, bool):
        return "int64", int(value)
    if isinstance(value, dict):
        return "bytes", b64_bytes(value)
    if isinstance(value, str):
        return "bytes", value.encode()
    if isinstance(value, float):
        return "float", value
    if value >= 2**63 and value < 2**64:
        raise BadRequest(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    if not -(2**63) <= value < 2**63:  # past 64 bits rapidjson reads a double
        return "float", float(value)
    return "int64", value


def features(obj) -> dict[str, tuple[str, list]]:
    """A JSON example: {feature: (kind, values)}."""
    if not isinstance(obj, dict):
        raise BadRequest(f"Example must be JSON object but got JSON {json_type(obj)}")
    found = {}
    for name, content in obj.items():
        kind, values = None, []
        for value in content if isinstance(content, list) else [content]:
            got, v = _kind(value, name)
            if kind not in (None, got):
                raise BadRequest(
                    f"Unexpected element type in feature: {name} expecting type: {kind}"
                )
            kind = got
            values.append(v)
        found[name] = (kind, values)
    return found


def rest_request(verb: str, body) -> tuple[str, dict | None, list[dict]]:
    """(signature name, context features or None, the examples' features) of a REST
    ``:classify``/``:regress`` body."""
    name = signature_name(body)
    context = features(body["context"]) if "context" in body else None
    if "examples" not in body:
        raise format_error(
            body, "When method is classify, key 'examples' is expected and was not found"
        )
    given = body["examples"]
    if not isinstance(given, list):
        raise format_error(body, "Expecting 'examples' value to be an list/array")
    if not given:
        raise format_error(body, "'examples' value is an empty array")
    return name, context, [features(e) for e in given]


def _example_pb2():
    from tfpersist.tfapi.tfcompat import import_tf

    import_tf()  # quietly, before the protos import it
    from tensorflow.core.example import example_pb2

    return example_pb2


def to_example(found: dict):
    example = _example_pb2().Example()
    for name, (kind, values) in found.items():
        feature = example.features.feature[name]
        if kind is not None:
            getattr(feature, KINDS[kind]).value.extend(values)
    return example


def serialized(context, examples: list) -> np.ndarray:
    """The strings TF Serving feeds: each example (an Example proto) after the context."""
    head = b"" if context is None else context.SerializeToString()
    if not examples:
        raise BadRequest("Input is empty.")
    array = np.empty(len(examples), dtype=object)
    array[:] = [head + e.SerializeToString() for e in examples]
    return array


def signature(model, name: str, method: str):
    """The key and SignatureDef of a classify or regress request, checked as TF Serving's
    classifier.cc / regressor.cc check them."""
    key = name or signatures.DEFAULT
    found = signatures.defs(model)
    if key not in found:
        raise BadRequest(f"No signature was found with the name: {key}")
    sig = found[key]
    what = "classification" if method == signatures.CLASSIFY else "regression"
    if len(sig.inputs) != 1:
        raise BadRequest("Expected one input Tensor.")
    if method == signatures.CLASSIFY and len(sig.outputs) not in (1, 2):
        raise BadRequest(f"Expected one or two output Tensors, found {len(sig.outputs)}")
    if method == signatures.REGRESS and len(sig.outputs) != 1:
        raise BadRequest("Expected one output Tensor.")
    if "inputs" not in sig.inputs:
        raise BadRequest(f"No {what} inputs found in SignatureDef: {sig}")
    if method == signatures.CLASSIFY and not {"classes", "scores"} & set(sig.outputs):
        raise BadRequest(
            'Expected classification signature outputs to contain at least one of "classes" '
            f'or "scores". Signature was: {sig}'
        )
    if method == signatures.REGRESS and "outputs" not in sig.outputs:
        raise BadRequest(f"No regression outputs found in SignatureDef: {sig}")
    return key, sig


def _shape(a: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in a.shape) + "]"


def _dtype(a: np.ndarray) -> str:
    from tfpersist.tfapi import dtypes, protos

    name = "string" if a.dtype.kind in "OSU" else a.dtype.name
    return protos.types_pb2.DataType.Name(dtypes.by_name(name).enum)


def classifications(outputs: dict, count: int) -> list[list[tuple[str, float]]]:
    """Per example, its (label, score) pairs (label "" without ``classes``, score 0 without
    ``scores``), checked as classifier.cc checks them."""
    classes, scores = outputs.get("classes"), outputs.get("scores")
    for what, a, dtype in (("classes", classes, "DT_STRING"), ("scores", scores, "DT_FLOAT")):
        if a is None:
            continue
        a = np.asarray(a)
        if a.ndim != 2:
            raise BadRequest(f"Expected Tensor shape: [batch_size num_classes] but got {_shape(a)}")
        if _dtype(a) != dtype:
            raise BadRequest(f"Expected {what} Tensor of {dtype}. Got: {_dtype(a)}")
        if a.shape[0] != count:
            raise BadRequest(f"Expected {what} output batch size of {count}. Got: {a.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise BadRequest(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    width = (classes if classes is not None else scores).shape[1]
    return [
        [
            (
                "" if classes is None else _text(classes[i, c]),
                0.0 if scores is None else float(scores[i, c]),
            )
            for c in range(width)
        ]
        for i in range(count)
    ]


def _text(label) -> str:
    return label.decode("utf-8", errors="replace") if isinstance(label, bytes) else str(label)


def regressions(outputs: dict, count: int) -> list[float]:
    """Per example its value, checked as regressor.cc checks them."""
    a = np.asarray(outputs["outputs"])
    if not (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)):
        raise BadRequest(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but "
            f"got {_shape(a)}"
        )
    if a.shape[0] != count:
        raise BadRequest(
            f"Input batch size did not match output batch size: {count} vs. {a.shape[0]}"
        )
    if a.dtype != np.float32:
        raise BadRequest(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype(a)}")
    return [float(v) for v in a.reshape(-1)]


def results_json(method: str, outputs: dict, count: int) -> bytes:
    """The REST answer: ``{"results": …}`` (TF Serving's key, though its page says "result");
    scores and values are float32s, written as such (0.1, not 0.10000000149011612), and a
    non-finite one as TF Serving writes it (``NaN``, ``Infinity``)."""
    import json

    import orjson

    if method == signatures.CLASSIFY:
        found = classifications(outputs, count)
        results = [[[label, np.float32(score)] for label, score in row] for row in found]
        scores = [score for row in found for _, score in row]
    else:
        scores = regressions(outputs, count)
        results = [np.float32(v) for v in scores]
    if all(np.isfinite(scores)):
        return orjson.dumps({"results": results}, option=orjson.OPT_SERIALIZE_NUMPY)
    if method == signatures.CLASSIFY:
        return json.dumps({"results": [[list(pair) for pair in row] for row in found]}).encode()
    return json.dumps({"results": scores}).encode()


def multi_tasks(model, tasks, name: str) -> list[tuple[str, str, object]]:
    """MultiInference's tasks checked as multi_inference.cc does: (method, key, SignatureDef)."""
    seen, found = set(), []
    for task in tasks:
        spec = task.model_spec
        if not spec.name:
            raise BadRequest("Found ModelSpec with an empty model name.")
        if spec.name != name:
            raise BadRequest(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        key = spec.signature_name or signatures.DEFAULT
        if key in seen:
            raise BadRequest(f"Duplicate evaluation of signature: {key}")
        seen.add(key)
        if key not in signatures.defs(model):
            raise BadRequest(f"Requested signature not found in model graph: {key}")
        if task.method_name not in (signatures.CLASSIFY, signatures.REGRESS):
            raise Unimplemented(f"Unsupported signature method_name: {task.method_name}")
        found.append((task.method_name, *signature(model, key, task.method_name)))
    return found
