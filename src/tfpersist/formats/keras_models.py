"""What a Keras file holds, read without Keras or TensorFlow: the layers and the named inputs
and outputs from its config, the parameters and weight statistics from its weights (HDF5,
npz, or the shards of a sharded index) — a ``.keras`` zipped or unzipped in a folder alike.

The file is checked first (safety.keras_files): a file that is refused is not read further
(its HDF5 past the walk that refused it), and the refusal is the command's one line. Output
shapes come from the config where a layer's kind says them (Dense, Embedding, recurrent
layers, shape-keeping layers); ``tfpersist freeze`` knows them all.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

from tfpersist.safety import keras_files

# layers whose output has their input's shape
SAME_SHAPE = {
    "Activation",
    "BatchNormalization",
    "Dropout",
    "ELU",
    "GaussianDropout",
    "GaussianNoise",
    "LayerNormalization",
    "LeakyReLU",
    "Normalization",
    "PReLU",
    "ReLU",
    "RMSNormalization",
    "Rescaling",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "UnitNormalization",
}
RECURRENT = {"LSTM", "GRU", "SimpleRNN"}


def describe(path: str | Path, kind: str, modules=()) -> dict:
    """A summary of a ``.keras``, a Keras 2 ``.h5`` or a weights file (``kind`` as
    formats.detect names it)."""
    path = Path(path)
    info = {"format": _form(path, kind), "path": str(path), "unsafe_ops": [], "unsafe_risks": {}}
    if path.is_file() and path.name.endswith(keras_files.INDEX_SUFFIX):
        shards = keras_files.check_shards(path)
        info["shards"] = [s.name for s in shards]
        weights = []
        for shard in shards:
            weights += _weights(shard)
    else:
        config = keras_files.check_file(path, modules)
        if config is not None:
            info.update(model_summary(config))
        info.update(_metadata(path))
        weights = _weights(path)
    info["weights"] = weights
    info["parameters"] = sum(w["size"] for w in weights)
    info["parameter_bytes"] = sum(w["bytes"] for w in weights)
    return info


def _form(path: Path, kind: str) -> str:
    """The kind, said more precisely for the forms that share it."""
    if path.is_dir():
        return f"{kind}, unzipped in a folder"
    if path.name.endswith(keras_files.INDEX_SUFFIX):
        return f"{kind}: a sharded index"
    return kind


def _metadata(path: Path) -> dict:
    """The Keras version that wrote the file."""
    if path.is_dir() or zipfile.is_zipfile(path):
        try:
            with keras_files.open_member(path, "metadata.json") as f:
                meta = json.loads(f.read(2**16))
        except (KeyError, FileNotFoundError, ValueError):
            return {}
        return {"keras_version": meta.get("keras_version")} if isinstance(meta, dict) else {}
    import h5py

    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version")
    version = version.decode() if isinstance(version, bytes) else version
    return {"keras_version": str(version)} if version is not None else {}


def _weights(path: Path) -> list[dict]:
    """Every weight of the file (a ``.keras``'s, zipped or in a folder: its HDF5 datasets or
    its npz arrays): its path, shape, dtype, and statistics of its values."""
    import h5py

    if path.is_dir() or zipfile.is_zipfile(path):
        found = keras_files.weights_of(path)
        if found is None:
            return []
        member, form = found
        if form == "npz":  # checked: plain numbers only, read without unpickling
            arrays = keras_files.read_npz(path, member)
            return [_entry(name, a, a) for name, a in arrays.items() if a.dtype.kind in "fiub"]
        with keras_files.open_member(path, member) as f, h5py.File(f, "r") as h5:
            return _datasets(h5)
    with h5py.File(path, "r") as f:
        return _datasets(f)


def _datasets(f) -> list[dict]:
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiub":
            found.append(_entry(name, obj, obj[()]))

    f.visititems(visit)
    return found


def _entry(name: str, array, values) -> dict:
    """A weight's name, shape, dtype, size and bytes; a float one's statistics too."""
    import numpy as np

    entry = {
        "name": name,
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "size": int(array.size),
        "bytes": int(array.size) * array.dtype.itemsize,
    }
    if array.size and array.dtype.kind == "f":
        data = np.asarray(values, dtype=np.float64)
        entry.update(
            mean=float(data.mean()),
            std=float(data.std()),
            min=float(data.min()),
            max=float(data.max()),
        )
    return entry


def h5_folder(path: str | Path, member: str, folder: Path) -> Path:
    """A checked ``.keras`` (zipped or in a folder) whose weights are plain npz arrays, copied
    into ``folder`` as the folder Keras loads: its config, metadata and assets as they are,
    the arrays as HDF5 datasets under their names — Keras's own weight paths
    (``layers/dense/vars/0``), where Keras's walk of the model looks each variable up. Keras
    itself reads npz weights only as the pickled dicts it writes."""
    import h5py

    path = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        import shutil

        for name in ("config.json", "metadata.json"):
            if (path / name).is_file():
                shutil.copyfile(path / name, folder / name)
        if (path / "assets").is_dir():
            shutil.copytree(path / "assets", folder / "assets", symlinks=True)
    else:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():  # checked: no name outside, no link
                if info.filename in ("config.json", "metadata.json") or info.filename.startswith(
                    keras_files.ASSETS
                ):
                    archive.extract(info, folder)
    with h5py.File(folder / keras_files.WEIGHTS_H5, "w") as f:
        for name, array in keras_files.read_npz(path, member).items():
            f.create_dataset(name, data=array)
    return folder


def model_summary(config: dict) -> dict:
    """Model class and name, layers, inputs and outputs of a Keras 3 or Keras 2 config."""
    inner = config.get("config") if isinstance(config.get("config"), (dict, list)) else {}
    layers = inner if isinstance(inner, list) else inner.get("layers") or []  # Keras 2.0: a list
    layers = [layer for layer in layers if isinstance(layer, dict)]
    by_name = {_layer_name(layer): layer for layer in layers}
    sequential = config.get("class_name") == "Sequential"
    inputs = [_input(layer) for layer in layers if layer.get("class_name") == "InputLayer"]
    if not inputs and sequential and layers:  # Keras 2: the first layer's batch_input_shape
        first = layers[0].get("config", {})
        if "batch_input_shape" in first:
            inputs = [_input({"config": {**first, "name": f"{_layer_name(layers[0])}_input"}})]
    if sequential:
        body = [layer for layer in layers if layer.get("class_name") != "InputLayer"]
        output_layers = [(_layer_name(body[-1]),) * 2] if body else []
    else:
        output_layers = _names(inner.get("output_layers"))
    shapes = _shapes(layers, inputs, sequential)
    outputs = []
    for key, name in output_layers:
        layer = by_name.get(name, {})
        outputs.append(
            {
                "name": key,
                "layer": layer.get("class_name"),
                "dtype": _dtype(layer.get("config", {})),
                "shape": shapes.get(name),
            }
        )
    return {
        "model": {"class": config.get("class_name"), "name": inner.get("name")}
        if isinstance(inner, dict)
        else {"class": config.get("class_name"), "name": None},
        "inputs": inputs,
        "outputs": outputs,
        "layers": [
            {"name": _layer_name(layer), "class": layer.get("class_name")}
            for layer in layers
            if layer.get("class_name") != "InputLayer"
        ],
    }


def _layer_name(layer: dict) -> str:
    return str(layer.get("name") or layer.get("config", {}).get("name"))


def _names(spec) -> list[tuple[str, str]]:
    """(output name, layer name) from ``output_layers``: [name, node, tensor], a list of
    those, or a dict of them (the key names the output)."""
    if isinstance(spec, dict):
        return [(key, n) for key in sorted(spec) for _, n in _names(spec[key])]
    if isinstance(spec, list) and spec and isinstance(spec[0], str):
        return [(spec[0], spec[0])]
    if isinstance(spec, list):
        return [n for item in spec for n in _names(item)]
    return []


def _input(layer: dict) -> dict:
    config = layer.get("config", {})
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    return {
        "name": _layer_name(layer),
        "dtype": _dtype(config),
        "shape": [None, *shape[1:]] if isinstance(shape, list) and shape else None,
    }


def _dtype(config: dict) -> str | None:
    """The dtype a layer computes in: its policy's (``mixed_float16`` computes in float16)."""
    dtype = config.get("dtype")
    if isinstance(dtype, dict):  # a DTypePolicy
        dtype = (dtype.get("config") or {}).get("name")
    if isinstance(dtype, str) and dtype.startswith("mixed_"):
        return dtype.removeprefix("mixed_")
    return dtype if isinstance(dtype, str) else None


def _shapes(layers: list[dict], inputs: list[dict], sequential: bool) -> dict:
    """Output shapes of the layers whose kind says them, from their input's shape (the
    previous layer's in a Sequential, the first inbound tensor's in a Functional)."""
    shapes = {i["name"]: i["shape"] for i in inputs}
    previous = inputs[0]["shape"] if inputs else None
    for layer in layers:
        if layer.get("class_name") == "InputLayer":
            continue
        shape_in = previous if sequential else _inbound_shape(layer)
        shape = _output_shape(layer.get("class_name"), layer.get("config", {}), shape_in)
        shapes[_layer_name(layer)] = shape
        previous = shape
    return shapes


def _inbound_shape(layer: dict):
    nodes = layer.get("inbound_nodes") or []
    if not nodes or not isinstance(nodes[0], dict):
        return (layer.get("build_config") or {}).get("input_shape")
    args = nodes[0].get("args") or []
    first = args[0] if args else None
    if isinstance(first, dict) and first.get("class_name") == "__keras_tensor__":
        return first.get("config", {}).get("shape")
    return None


def _output_shape(cls, config: dict, shape):
    if not isinstance(shape, list) or not shape:
        return None
    shape = [None, *shape[1:]]
    if cls in SAME_SHAPE:
        return shape
    if cls == "Dense":
        return [*shape[:-1], config.get("units")]
    if cls == "Embedding":
        return [*shape, config.get("output_dim")]
    if cls == "Flatten":
        rest = shape[1:]
        return [None, math.prod(rest)] if None not in rest else [None, None]
    if cls in RECURRENT and len(shape) == 3:
        units = config.get("units")
        return [None, shape[1], units] if config.get("return_sequences") else [None, units]
    return None
