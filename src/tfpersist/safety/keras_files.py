"""A ``.keras`` archive checked before Keras sees it: the zip itself (member names, links,
sizes, compression ratio) and ``config.json`` walked for what would run code or read files
when Keras rebuilds the model — the vectors of Keras's 2024–2026 advisories (Lambda layers
and their marshalled bytecode, modules and functions the config names, custom and registered
objects, TFSMLayer, TorchModuleWrapper, JaxLayer/FlaxLayer, lookup vocabularies read from a
path or URL, oversized literals). Keras's own ``safe_mode`` does not isolate the Python
environment it imports from; this reads JSON and the zip directory only (no Keras, no
TensorFlow). The allowlist of every built-in (module, class) pair comes with reading Keras
models; these are the refusals that do not depend on it.

Every form Keras 3 writes goes through the same checks: the zipped archive, the same files
unzipped in a folder (``model.save(DIR, zipped=False)``: no link, nothing else in it), weights
as HDF5 (walked, no link followed) or as npz (``weights_format="npz"``: every array's ``.npy``
header read, never unpickled), and sharded weights (``save_weights("w.weights.json",
max_shard_size=…)``: the index names only shard files beside it, each walked).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from tfpersist.core.errors import TfpersistError
from tfpersist.safety.keras_allowlist import CLASSES, FUNCTIONS
from tfpersist.safety.zipped import member_file

WEIGHTS_H5 = "model.weights.h5"
WEIGHTS_NPZ = "model.weights.npz"
MEMBERS = {"config.json", "metadata.json", WEIGHTS_H5, WEIGHTS_NPZ}
ASSETS = "assets/"
INDEX_SUFFIX = ".weights.json"  # a sharded weights index (Keras loads it as one by this name)
SHARD_SUFFIX = ".weights.h5"
INDEX_KEYS = {"metadata", "weight_map"}
NUMERIC = "fiub"  # the dtype kinds a weight is stored as (float, int, uint, bool)
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP = b"PK\x05\x06"  # a zip of nothing: its end record alone
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PICKLED = "holds pickled Python objects, which would run code when read"
NPZ_HOW = (
    "tfpersist reads npz weights as plain numeric arrays only (allow_pickle=False), and Keras "
    "3.15 pickles every array it writes to npz (it cannot read them back either) — save the "
    "model with HDF5 weights, Keras's default (model.save('m.keras'))"
)
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


def refuse(path: Path, what: str, custom: bool = False, how: str | None = None) -> TfpersistError:
    if custom and not how:
        how = (
            "if it is your own code, --keras-module MODULE imports the module that registers "
            "it (keras.saving.register_keras_serializable) and lets it in"
        )
    elif not how:
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
    """The parsed ``config.json`` of a ``.keras`` that passes (its weights walked too:
    check_weights), or one line naming what is refused and what it could do; ``modules``: the
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
        for member in (WEIGHTS_H5, WEIGHTS_NPZ):
            if member in archive.namelist():
                with member_file(path, archive.getinfo(member)) as f:
                    check_weights(path, f, member)
    return _config(path, text, modules)


def check_folder(path: str | Path, modules=()) -> dict:
    """A ``.keras`` unzipped (``model.save(DIR, zipped=False)``: ``config.json``,
    ``metadata.json``, ``model.weights.h5``, maybe ``assets/``) checked as strictly as the
    archive: nothing in it a link (a link reads what it points to, anywhere) or other than a
    file or folder, nothing but those names, its weights walked and its config checked.
    Returns the parsed config."""
    path = Path(path)
    entries = {}

    def unreadable(error: OSError):
        raise TfpersistError(f"{path}: cannot read {error.filename} ({error.strerror})")

    for root, dirs, files in os.walk(path, onerror=unreadable):
        for name in sorted(dirs + files):
            full = Path(root) / name
            entry = full.relative_to(path).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise refuse(
                    path, f"'{entry}' is a symbolic link to {os.readlink(full)} (reads any file)"
                )
            top = entry.split("/")[0]
            if not (stat.S_ISREG(mode) or (stat.S_ISDIR(mode) and top == "assets")):
                raise refuse(path, f"'{entry}' is not a regular file")
            if top not in MEMBERS and top != "assets":
                raise refuse(path, f"'{entry}' is none of {', '.join(sorted(MEMBERS))}, assets/")
            entries[entry] = full
    if "config.json" not in entries:
        raise TfpersistError(
            f"{path}: a Keras model folder without config.json; pass the folder "
            "model.save(DIR, zipped=False) wrote, or the .keras"
        )
    weights = [m for m in (WEIGHTS_H5, WEIGHTS_NPZ) if m in entries]
    if not weights:
        raise TfpersistError(
            f"{path}: a Keras model folder without its weights ({WEIGHTS_H5} or {WEIGHTS_NPZ}); "
            "pass the whole folder model.save(DIR, zipped=False) wrote"
        )
    with open(entries["config.json"], "rb") as f:
        text = f.read(MAX_CONFIG_BYTES + 1)
    for member in weights:
        with open(entries[member], "rb") as f:
            check_weights(path, f, member)
    return _config(path, text, modules)


def _config(path: Path, text: bytes, modules) -> dict:
    if len(text) > MAX_CONFIG_BYTES:
        raise refuse(path, f"config.json inflates past {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        config = json.loads(text)
    except ValueError as e:
        raise TfpersistError(f"{path}: config.json is not JSON ({e})") from None
    check_config(path, config, modules=modules)
    return config


def _outside(name: str) -> bool:
    """A zip member name that would land outside where it is unpacked."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts or "\\" in name


def _check_member(path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    if _outside(name):
        raise refuse(path, f"member '{name}' points outside the archive (a write anywhere)")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise refuse(path, f"member '{name}' is a symbolic link (reads any file)")
    if name not in MEMBERS and not (name.startswith(ASSETS) or name.rstrip("/") == "assets"):
        raise refuse(path, f"member '{name}' is none of {', '.join(sorted(MEMBERS))}, assets/")
    _check_ratio(path, info, f"member '{name}'")


def _check_ratio(path: Path, info: zipfile.ZipInfo, what: str) -> None:
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > 2**20 and ratio > MAX_RATIO:
        raise refuse(path, f"{what} inflates {ratio:.0f}× ({info.file_size} bytes): a zip bomb")


def check_weights(path: Path, source, member: str) -> list[dict] | None:
    """A model's weights file (``source``: an open binary file), checked by what its bytes
    are, whatever its name says (Keras 3.15 writes npz weights into a folder under the name
    model.weights.h5): HDF5 walked (check_hdf5), npz read header by header (check_npz: its
    arrays returned)."""
    head = source.read(8)
    source.seek(0)
    if head.startswith(HDF5_MAGIC):
        check_hdf5(path, source, member)
        return None
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP)):
        return check_npz(path, source, f"{member} (an npz)" if member.endswith(".h5") else member)
    raise TfpersistError(
        f"{path}: {member} is neither HDF5 nor npz (the two weights formats Keras writes)"
    )


def check_npz(path: Path, source, member: str) -> list[dict]:
    """An npz of weights (``source``: a path or an open binary file) read as NumPy would read
    it with ``allow_pickle=False`` — but only the ``.npy`` headers, nothing unpickled or
    allocated: every member an ``.npy`` inside the archive, its dtype plain numbers (an
    object array is pickled Python: refused), the bytes its shape and dtype declare exactly
    the bytes it stores (no allocation bomb, no truncated array). Returns each array's name,
    dtype and shape, in the archive's order."""
    import numpy as np

    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as e:
        raise TfpersistError(f"{path}: {member} is not a readable npz archive ({e})") from None
    arrays, seen = [], set()
    with archive:
        for info in archive.infolist():
            name = info.filename
            where = f"{member} member '{name}'"
            if _outside(name):
                raise refuse(path, f"{where} points outside the archive")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise refuse(path, f"{where} is a symbolic link")
            if not name.endswith(".npy"):
                raise refuse(path, f"{where} is not an .npy array (all an npz of weights holds)")
            _check_ratio(path, info, where)
            array = name.removesuffix(".npy")
            if array in seen:
                raise refuse(path, f"{member}: array '{array}' is in it twice")
            seen.add(array)
            with archive.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f".npy format version {version[0]}.{version[1]}")
                except ValueError as e:
                    raise refuse(path, f"{where} is not a readable .npy array ({e})") from None
                offset = f.tell()
            if dtype.hasobject:
                raise refuse(path, f"{member}: array '{array}' {PICKLED}", how=NPZ_HOW)
            if dtype.kind not in NUMERIC or dtype.fields or dtype.subdtype:
                raise refuse(
                    path,
                    f"{member}: array '{array}' is not a plain numeric array (dtype {dtype}); "
                    "a weight is an array of floats, integers or booleans",
                )
            declared = math.prod(shape) * dtype.itemsize
            stored = info.file_size - offset
            if declared != stored:
                raise refuse(
                    path,
                    f"{member}: array '{array}' declares {list(shape)} {dtype} ({declared} "
                    f"bytes) but stores {stored} bytes",
                )
            arrays.append({"name": array, "dtype": str(dtype), "shape": list(shape)})
    return arrays


def check_shards(path: str | Path) -> list[Path]:
    """A sharded weights index (``model.save_weights("w.weights.json", max_shard_size=…)``:
    JSON ``{"metadata": …, "weight_map": {group: [shard, …]}}``) and its shards: every shard
    a file name beside the index ending ``.weights.h5`` (no folder, no ``..``: nothing
    outside its folder), a regular file (no link), walked by check_hdf5 — the one Keras
    opens first whatever the index says (``w_00000.weights.h5``) too. Returns the shards."""
    path = Path(path)
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise refuse(path, f"a weights index past {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        index = json.loads(path.read_bytes())
    except ValueError as e:
        raise TfpersistError(f"{path}: not a sharded weights index (not JSON: {e})") from None
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise TfpersistError(
            f"{path}: not a sharded weights index (no weight_map); pass the .weights.json "
            "model.save_weights(…, max_shard_size=…) wrote"
        )
    extra = sorted(set(index) - INDEX_KEYS)
    if extra:
        raise refuse(path, f"the index holds '{extra[0]}', none of {', '.join(sorted(INDEX_KEYS))}")
    # what ShardedH5IOStore opens first, whatever the index names
    names = [f"{path.stem.replace('.weights', '')}_00000{SHARD_SUFFIX}"]
    for group, files in index["weight_map"].items():
        for name in files if isinstance(files, list) else [files]:
            if not isinstance(name, str):
                raise refuse(path, f"the index names {name!r} as a shard of '{group}'")
            if name in ("", ".", "..") or PurePosixPath(name).name != name or _outside(name):
                raise refuse(
                    path,
                    f"the index names the shard '{name}' for '{group}', outside its folder "
                    "(reads any file); a shard is a file name beside the index",
                )
            if not name.endswith(SHARD_SUFFIX):
                raise refuse(path, f"the index names '{name}' for '{group}', not a {SHARD_SUFFIX}")
            names.append(name)
    shards = []
    for name in dict.fromkeys(names):
        shard = path.parent / name
        try:
            mode = os.lstat(shard).st_mode
        except FileNotFoundError:
            raise TfpersistError(
                f"{path}: its shard {name} is missing; pass the index with every shard "
                "model.save_weights wrote beside it"
            ) from None
        if stat.S_ISLNK(mode):
            raise refuse(path, f"the shard '{name}' is a symbolic link (reads any file)")
        if not stat.S_ISREG(mode):
            raise refuse(path, f"the shard '{name}' is not a regular file")
        check_hdf5(path, str(shard), name)
        shards.append(shard)
    return shards


def weights_of(path: str | Path) -> tuple[str, str] | None:
    """The weights of a checked ``.keras`` (zip or folder): (its name, "h5" or "npz" by its
    bytes) — the member Keras reads (model.weights.h5 before model.weights.npz); None for
    any other file."""
    path = Path(path)
    if not (path.is_dir() or zipfile.is_zipfile(path)):
        return None
    for member in (WEIGHTS_H5, WEIGHTS_NPZ):
        with contextlib.suppress(KeyError, FileNotFoundError), open_member(path, member) as f:
            return member, "npz" if f.read(4) in (ZIP_MAGIC, EMPTY_ZIP) else "h5"
    return None


@contextlib.contextmanager
def open_member(path: Path, member: str):
    """A file of a checked ``.keras``, zipped or unzipped, open for reading (KeyError or
    FileNotFoundError when absent), seekable in constant time (member_file)."""
    if Path(path).is_dir():
        with open(Path(path) / member, "rb") as f:
            yield f
        return
    with zipfile.ZipFile(path) as archive, member_file(path, archive.getinfo(member)) as f:
        yield f


def read_npz(path: str | Path, member: str) -> dict:
    """The arrays of a checked ``.keras``'s npz weights (check_npz passed), read by NumPy
    with ``allow_pickle=False``, in the archive's order."""
    import numpy as np

    with open_member(Path(path), member) as f, np.load(f, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


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
    members, config and weights) or the same unzipped in a folder, a sharded weights index
    (``.weights.json``, its shards walked), an HDF5 file (walked; a Keras 2 model's
    ``model_config`` checked too), or a JSON config (``config.json``, ``model.to_json()``).
    Returns the config, or None for weights only."""
    path = Path(path)
    if path.is_dir():
        return check_folder(path, modules)
    if path.name.endswith(INDEX_SUFFIX):
        check_shards(path)
        return None
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(ZIP_MAGIC):
        return check_archive(path, modules)
    if head.startswith(HDF5_MAGIC):
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
