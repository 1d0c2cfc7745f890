"""A ``.keras`` archive checked before Keras sees it: the zip itself (member names, links,
sizes, compression ratio) and ``config.json`` walked for what would run code or read files
when Keras rebuilds the model — the vectors of Keras's 2024–2026 advisories (Lambda layers
and their marshalled bytecode, modules and functions the config names, custom and registered
objects, TFSMLayer, TorchModuleWrapper, JaxLayer/FlaxLayer, lookup vocabularies read from a
path or URL, oversized literals). Keras's own ``safe_mode`` does not isolate the Python
environment it imports from; this reads JSON and the zip directory only (no Keras, no
TensorFlow). The allowlist of every built-in (module, class) pair comes with reading Keras
models; these are the refusals that do not depend on it.
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

from tfpersist.errors import TfpersistError

MEMBERS = {"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"}
ASSETS = "assets/"
MAX_CONFIG_BYTES = 16 * 2**20  # Keras 3.15 only stops a config at 4 GiB (2.6 GB peak measured)
MAX_RATIO = 100  # uncompressed / compressed, for a member over 1 MiB (Keras stores, ratio 1)
MAX_LITERAL = 2**20  # characters in one string, items in one list
MAX_DEPTH = 200

# class names whose loading runs code or reads what the file names, and what they can do
CODE = {
    "Lambda": "a Lambda layer (runs the Python code it carries)",
    "__lambda__": "a lambda (marshalled Python bytecode)",
    "TFSMLayer": "a TFSMLayer (loads and runs a SavedModel from a path it names)",
    "TorchModuleWrapper": "a TorchModuleWrapper (unpickles a PyTorch module: runs code)",
    "JaxLayer": "a JaxLayer (calls the JAX function it names)",
    "FlaxLayer": "a FlaxLayer (calls the Flax module it names)",
}
LOOKUPS = {"StringLookup", "IntegerLookup", "TextVectorization"}
# keras.activations functions a config may reference by name
ACTIVATIONS = frozenset(
    {
        "celu",
        "elu",
        "exponential",
        "gelu",
        "glu",
        "hard_sigmoid",
        "hard_silu",
        "hard_swish",
        "hard_tanh",
        "leaky_relu",
        "linear",
        "log_sigmoid",
        "log_softmax",
        "mish",
        "relu",
        "relu6",
        "selu",
        "sigmoid",
        "silu",
        "softmax",
        "softplus",
        "softsign",
        "sparse_plus",
        "sparsemax",
        "squareplus",
        "swish",
        "tanh",
        "tanh_shrink",
        "threshold",
    }
)


def refuse(path: Path, what: str) -> TfpersistError:
    return TfpersistError(
        f"{path}: refusing this Keras file: {what}; tfpersist reads no Keras file that could "
        "run code — if you trust its author, load it in Keras yourself and export a SavedModel "
        "(model.export('DIR'))"
    )


def check_archive(path: str | Path) -> dict:
    """The parsed ``config.json`` of a ``.keras`` that passes, or one line naming what is
    refused and what it could do."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise TfpersistError(f"{path}: not a readable .keras archive ({e})") from None
    with archive:
        for info in archive.infolist():
            _check_member(path, info)
        if "config.json" not in archive.namelist():
            raise TfpersistError(f"{path}: a .keras archive without config.json")
        with archive.open("config.json") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
    if len(text) > MAX_CONFIG_BYTES:
        raise refuse(path, f"config.json inflates past {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        config = json.loads(text)
    except ValueError as e:
        raise TfpersistError(f"{path}: config.json is not JSON ({e})") from None
    check_config(path, config)
    return config


def _check_member(path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts or "\\" in name:
        raise refuse(path, f"member '{name}' points outside the archive (a write anywhere)")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise refuse(path, f"member '{name}' is a symbolic link (reads any file)")
    if name not in MEMBERS and not (name.startswith(ASSETS) or name.rstrip("/") == "assets"):
        raise refuse(path, f"member '{name}' is none of {', '.join(sorted(MEMBERS))}, assets/")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > 2**20 and ratio > MAX_RATIO:
        raise refuse(
            path, f"member '{name}' inflates {ratio:.0f}× ({info.file_size} bytes): a zip bomb"
        )


def check_config(path: Path, config, keras3: bool = True) -> None:
    """Walk a Keras config (``config.json``, or a Keras 2 ``model_config`` with
    ``keras3=False``): refuse the objects in CODE, lookup vocabularies given as a path or
    URL, modules outside Keras, custom or registered objects (Keras 3 names every built-in's
    module; Keras 2 configs name none, so there only the allowlist to come tells), function
    references outside keras.activations, and literals past MAX_LITERAL."""
    stack = [(config, "config", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise refuse(path, f"{where} nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, str) and len(value) > MAX_LITERAL:
            raise refuse(path, f"{where} holds a string of {len(value)} characters")
        if isinstance(value, list):
            if len(value) > MAX_LITERAL:
                raise refuse(path, f"{where} holds a list of {len(value)} items")
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, dict):
            if "class_name" in value:
                _check_object(path, value, where, keras3)
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in value.items())


def _check_object(path: Path, obj: dict, where: str, keras3: bool) -> None:
    cls, module = obj.get("class_name"), obj.get("module")
    registered = obj.get("registered_name")
    name = (obj.get("config") or {}).get("name") if isinstance(obj.get("config"), dict) else None
    label = f"'{name}' " if name else ""
    if cls in CODE:
        raise refuse(path, f"{label}is {CODE[cls]} ({where})")
    if cls == "function":
        function = obj.get("config")
        if (module or "keras.activations") != "keras.activations" or function not in ACTIVATIONS:
            raise refuse(
                path,
                f"{where} references the function {module}.{function} (Keras would import and "
                "call it; only keras.activations are read)",
            )
        return
    if isinstance(registered, str) and ">" in registered and not registered.startswith("keras"):
        raise refuse(path, f"{where} is the custom object '{registered}' (its code would run)")
    if keras3 and module is None and isinstance(cls, str) and not cls.startswith("__"):
        raise refuse(path, f"{where} is the custom object '{cls}' (no module: its code would run)")
    if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
        raise refuse(path, f"{where} names the module '{module}' (Keras would import it)")
    if cls in LOOKUPS:
        vocabulary = (obj.get("config") or {}).get("vocabulary")
        if isinstance(vocabulary, str):
            raise refuse(
                path, f"{label}({cls}) reads its vocabulary from '{vocabulary}' (a file or URL)"
            )
