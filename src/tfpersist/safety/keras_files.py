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
from tfpersist.safety.keras_allowlist import CLASSES, FUNCTIONS

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
# what Keras turns back into plain data (tensors, arrays, slices), not into objects
DATA = {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__"}
# Keras 2 configs name no module; these are its model classes
KERAS2_MODELS = {"Model", "Functional", "Sequential"}
BUILT_INS = frozenset().union(*CLASSES.values())
FUNCTION_NAMES = frozenset().union(*FUNCTIONS.values())
MAX_STORED_RATIO = 100  # an HDF5 dataset's declared bytes over the bytes it stores (past 1 MiB)


def refuse(path: Path, what: str, custom: bool = False) -> TfpersistError:
    if custom:
        how = (
            "if it is your own code, --keras-module MODULE imports the module that registers "
            "it (keras.saving.register_keras_serializable) and lets it in"
        )
    else:
        how = (
            "tfpersist reads no Keras file that could run code — if you trust its author, load "
            "it in Keras yourself and export a SavedModel (model.export('DIR'))"
        )
    return TfpersistError(f"{path}: refusing this Keras file: {what}; {how}")


def registered(modules) -> frozenset[str]:
    """The registered names of the custom Keras objects that importing the user's ``modules``
    registers (their code, named by the user; never the file's)."""
    if not modules:
        return frozenset()
    import importlib

    import keras

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise TfpersistError(f"--keras-module {module}: cannot import it ({e})") from None
    return frozenset(
        name
        for name, obj in keras.saving.get_custom_objects().items()
        if any(
            getattr(obj, "__module__", "") == m
            or getattr(obj, "__module__", "").startswith(f"{m}.")
            for m in modules
        )
    )


def check_archive(path: str | Path, modules=()) -> dict:
    """The parsed ``config.json`` of a ``.keras`` that passes (its weights file walked too:
    check_hdf5), or one line naming what is refused and what it could do; ``modules``: the
    user's modules whose registered objects may appear (Trust.keras_modules)."""
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
        if "model.weights.h5" in archive.namelist():
            with archive.open("model.weights.h5") as f:
                check_hdf5(path, f, "model.weights.h5")
    if len(text) > MAX_CONFIG_BYTES:
        raise refuse(path, f"config.json inflates past {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        config = json.loads(text)
    except ValueError as e:
        raise TfpersistError(f"{path}: config.json is not JSON ({e})") from None
    check_config(path, config, modules=modules)
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


def check_config(path: Path, config, keras3: bool = True, modules=()) -> None:
    """Walk a Keras config (``config.json``, or a Keras 2 ``model_config`` with
    ``keras3=False``): every object must be a built-in of keras_allowlist (Keras 3: its
    (module, class) pair; Keras 2 names no module: its class) or registered by the user's
    ``modules``; refused by name: the objects in CODE, lookup vocabularies given as a path
    or URL, modules outside Keras, custom or registered objects, function references outside
    Keras's activations, losses and metrics, and literals past MAX_LITERAL."""
    if not isinstance(config, dict):
        raise TfpersistError(f"{path}: its Keras config is not a JSON object")
    trusted = registered(modules)
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
                _check_object(path, value, where, keras3, trusted)
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in value.items())


def _check_object(path: Path, obj: dict, where: str, keras3: bool, trusted) -> None:
    cls, module = obj.get("class_name"), obj.get("module")
    registered_name = obj.get("registered_name")
    config = obj.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    label = f"'{name}' " if isinstance(name, str) else ""
    if cls in CODE:
        raise refuse(path, f"{label}is {CODE[cls]} ({where})")
    if cls == "function":
        _check_function(path, module, config, where, trusted)
        return
    if cls in DATA:
        return
    if isinstance(registered_name, str) and registered_name in trusted:
        return
    if not keras3 and cls in trusted:  # a Keras 2 config names it "package>Name" as its class
        return
    if isinstance(registered_name, str) and ">" in registered_name:
        raise refuse(
            path, f"{where} is the custom object '{registered_name}' (its code would run)", True
        )
    if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
        raise refuse(path, f"{where} names the module '{module}' (Keras would import it)", True)
    if keras3:
        known = isinstance(module, str) and cls in CLASSES.get(module, ())
    else:
        known = cls in BUILT_INS or cls in KERAS2_MODELS
    if not known:
        what = f"{module}.{cls}" if module else cls
        raise refuse(
            path,
            f"{label}{where} is the custom object '{what}', not one of Keras's built-in "
            "layers, initializers, regularizers, constraints or dtype policies (its code would "
            "run)",
            True,
        )
    if cls in LOOKUPS:
        vocabulary = config.get("vocabulary") if isinstance(config, dict) else None
        if isinstance(vocabulary, str):
            raise refuse(
                path, f"{label}({cls}) reads its vocabulary from '{vocabulary}' (a file or URL)"
            )


def _check_function(path: Path, module, function, where: str, trusted) -> None:
    """A reference to a function: Keras's activations, losses and metrics by name (module
    ``builtins`` or theirs), or one the user's modules registered."""
    if isinstance(function, str):
        if function in trusted:
            return
        if module in (None, "builtins") and function in FUNCTION_NAMES:
            return
        if function in FUNCTIONS.get(module, ()):
            return
    raise refuse(
        path,
        f"{where} references the function {module}.{function} (Keras would import and call "
        "it; only Keras's activations, losses and metrics are read)",
        custom=isinstance(function, str) and ">" in function,
    )


def check_hdf5(path: Path, source=None, member: str | None = None) -> None:
    """Walk an HDF5 file (``source``: a file object, by default ``path``) without following
    a link: refuse soft and external links, datasets stored outside the file or virtual, and
    datasets declaring far more bytes than they store (Keras would allocate them)."""
    import h5py

    where = f"{member} " if member else ""
    try:
        f = h5py.File(source if source is not None else path, "r")
    except OSError as e:
        raise TfpersistError(f"{path}: {where}is not a readable HDF5 file ({e})") from None
    with f:
        problems = []

        def visit(name, link):
            if isinstance(link, h5py.ExternalLink):
                problems.append(
                    f"'{name}' is an external link to {link.filename} (reads another file)"
                )
            elif isinstance(link, h5py.SoftLink):
                problems.append(f"'{name}' is a soft link to {link.path}")
            elif isinstance(link, h5py.HardLink):
                problem = _dataset_problem(f.get(name))
                if problem:
                    problems.append(f"'{name}' {problem}")
            return problems[0] if problems else None

        f.visititems_links(visit)
    if problems:
        raise refuse(path, f"{where}dataset {problems[0]}")


def _dataset_problem(obj) -> str | None:
    import h5py

    if not isinstance(obj, h5py.Dataset):
        return None
    plist = obj.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        return "is a virtual dataset (reads other files)"
    if plist.get_external_count():
        return "keeps its data in an external file (reads any file)"
    declared = int(obj.size or 0) * obj.dtype.itemsize
    stored = obj.id.get_storage_size()
    if declared > 2**20 and declared > MAX_STORED_RATIO * max(stored, 1):
        return f"declares {declared} bytes but stores {stored} (an allocation bomb)"
    return None


def check_file(path: str | Path, modules=()) -> dict | None:
    """Check any Keras file before Keras opens it, by what it is: a ``.keras`` zip (its
    members, config and weights), an HDF5 file (walked; a Keras 2 model's ``model_config``
    checked too), or a JSON config (``config.json``, ``model.to_json()``). Returns the
    config, or None for a weights-only HDF5 file."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        return check_archive(path, modules)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        check_hdf5(path)
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
        if raw is None:
            return None
        config = _json(path, raw.decode() if isinstance(raw, bytes) else str(raw), "model_config")
        check_config(path, config, keras3=False, modules=modules)
        return config
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise refuse(path, f"a config past {MAX_CONFIG_BYTES >> 20} MiB")
    config = _json(path, path.read_text(errors="replace"), "the file")
    check_config(
        path, config, keras3=isinstance(config, dict) and "module" in config, modules=modules
    )
    return config


def _json(path: Path, text: str, what: str):
    try:
        return json.loads(text)
    except ValueError as e:
        raise TfpersistError(
            f"{path}: {what} is not a Keras config (.keras, .h5 or JSON: {e})"
        ) from None
