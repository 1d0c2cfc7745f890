"""Keras models frozen: a ``.keras``, a Keras 2 ``.h5``, or an architecture (a ``.keras``,
``.h5`` or config JSON) with its weights (a ``.weights.h5`` or a TF2 object-based checkpoint).

Every file is checked before Keras opens it (safety.keras_files: the zip, the config against
the built-in allowlist, the HDF5 walked without following links); Keras then loads it with
``safe_mode`` on and ``compile`` off. The model is traced in inference mode
(``training=False``) with a free batch dimension and its variables folded into constants
(``convert_variables_to_constants_v2``); placeholders carry the Keras input names and the
outputs the model's output names (a dict output's keys), not ``Identity_N``. What comes out is
a GraphDef the rest of freezing treats as a frozen .pb (pinned, pruned, op-allowlisted).
"""

from __future__ import annotations

import collections
import contextlib
import re
from pathlib import Path

from tfpersist import formats, safety
from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.formats import checkpoints
from tfpersist.graph import grouped, lookups
from tfpersist.safety import keras_files
from tfpersist.tfapi.tfcompat import import_tf

tf = import_tf()

WEIGHTS = (formats.KERAS_WEIGHTS, formats.TF2_CHECKPOINT)
# what a TF2 checkpoint's root tracks besides the model (tf.train.Checkpoint(model=…, optimizer=…))
NOT_THE_MODEL = {"optimizer", "save_counter", "step", "epoch", "global_step"}


def _keras():
    import keras

    return keras


def load(path: str | Path, kind: str, trust=safety.TRUST_NOTHING, architecture=None):
    """The Keras model at ``path`` (``kind`` as formats.detect names it), checked, then
    loaded by Keras; weights (KERAS_WEIGHTS, TF2_CHECKPOINT) go into ``architecture``'s model."""
    path = Path(path)
    modules = trust.keras_modules
    if kind in WEIGHTS:
        if architecture is None:
            raise TfpersistError(f"{path}: a {kind} holds no architecture; pass --architecture")
        if kind == formats.KERAS_WEIGHTS:  # checked before anything is built or opened
            if formats.is_sharded(path):  # the index, then each shard walked
                keras_files.check_shards(path)
            else:
                keras_files.check_hdf5(path)
        model = _architecture(Path(architecture), trust)
        if kind == formats.KERAS_WEIGHTS:
            try:
                model.load_weights(path)
            except (ValueError, OSError, KeyError, TypeError) as e:
                raise TfpersistError(
                    f"{path}: its weights do not fit {architecture} ({first_line(e)})"
                ) from None
        else:
            restore_checkpoint(model, checkpoints.prefix_of(path), path)
        return model
    if architecture is not None:
        raise TfpersistError(f"--architecture: {path} is a {kind}; it holds its own")
    keras_files.check_file(path, modules)
    return _loaded(path, lambda: _load_model(path))


def _architecture(path: Path, trust):
    """A model built from a checked ``.keras`` (or its folder), ``.h5`` or config JSON."""
    if not (path.is_file() or formats.is_keras_folder(path)):
        raise TfpersistError(
            f"--architecture {path}: no such file (a .keras or its folder, .h5 or JSON config)"
        )
    config = keras_files.check_file(path, trust.keras_modules)
    if config is None:
        raise TfpersistError(f"--architecture {path}: a weights file; pass the model's .keras")
    keras = _keras()
    if path.suffix in (".keras", ".h5") or path.is_dir():
        return _loaded(path, lambda: _load_model(path))
    if "module" not in config:  # Keras 2 JSON
        return _loaded(path, lambda: keras.models.model_from_json(path.read_text()))
    return _loaded(path, lambda: keras.saving.deserialize_keras_object(config, safe_mode=True))


def _loaded(path: Path, load):
    import warnings

    try:
        with warnings.catch_warnings(), _fresh_names():
            warnings.simplefilter("ignore")
            model = load()
    except Exception as e:  # Keras raises anything from a file it cannot rebuild
        raise TfpersistError(f"{path}: Keras cannot load it ({first_line(e)})") from None
    if not getattr(model, "built", True) or input_structure(model) is None:
        raise TfpersistError(f"{path}: the model is not built (its inputs are unknown)")
    return model


def _load_model(path: Path):
    """Keras's ``load_model`` (safe mode, not compiled) of a checked ``.keras``, its folder or
    a ``.h5``. A folder goes by its name with a trailing separator (Keras opens a name ending
    ``.keras`` as a zip); plain npz weights, which Keras reads only pickled, go as HDF5 in a
    temporary copy of the folder (keras_models.h5_folder)."""
    import os
    import tempfile

    from tfpersist.formats import keras_models

    load = _keras().saving.load_model
    weights = keras_files.weights_of(path)
    if weights is None or weights[1] != "npz":
        name = os.path.join(path, "") if path.is_dir() else path
        return load(name, safe_mode=True, compile=False)
    with tempfile.TemporaryDirectory(prefix="tfpersist-keras-") as scratch:
        folder = keras_models.h5_folder(path, weights[0], Path(scratch) / "model")
        return load(os.path.join(folder, ""), safe_mode=True, compile=False)


@contextlib.contextmanager
def _fresh_names():
    """Keras names a layer that its config does not name (a subclassed model's ``Dense``) from
    a process-wide counter: ``dense`` in one load, ``dense_2`` in the next. Loading with the
    counter fresh names the weights the same every time (compare of two such files, or of
    one against its .pb, in one process); the counter is put back after."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # another Keras layout: names as Keras gives them
        yield
        return
    key = "object_name_uids"
    before = global_state.get_global_attribute(key)
    global_state.set_global_attribute(key, collections.defaultdict(int))
    try:
        yield
    finally:
        global_state.set_global_attribute(key, before)


def restore_checkpoint(model, prefix: Path, what) -> None:
    """Restore a TF2 object-based checkpoint into ``model``: the model is the root's child
    that holds it (``tf.train.Checkpoint(model=model, optimizer=…)``, any name) or the root;
    every variable of the model must be found (the optimizer's are left)."""
    reader = tf.train.load_checkpoint(str(prefix))
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(checkpoints.OBJECT_GRAPH_KEY.decode()))
    names = [c.local_name for c in graph.nodes[0].children if c.local_name not in NOT_THE_MODEL]
    errors = []
    for name in [*names, None]:
        root = tf.train.Checkpoint(**{name: model}) if name else tf.train.Checkpoint(root=model)
        try:
            status = root.read(str(prefix))
            status.assert_existing_objects_matched()
            status.expect_partial()
            return
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            found = re.search(r"Found (\d+) Python objects", str(e))
            missing = f"{found.group(1)} of its objects missing" if found else first_line(e)
            errors.append(f"as '{name}': {missing}" if name else f"as the root: {missing}")
    raise TfpersistError(
        f"{what}: the checkpoint does not hold this architecture's variables ("
        f"{'; '.join(errors)}); pass the architecture the checkpoint was written from"
    )


def input_structure(model):
    """The model's inputs as it takes them: one tensor, a list, or a dict (None when unknown).
    A subclassed model has no symbolic inputs: they come from the shape it was built with
    (its build config), named after its ``call``'s first parameter."""
    struct = getattr(model, "_inputs_struct", None)
    if struct is not None:
        return struct
    inputs = getattr(model, "inputs", None)
    if inputs:
        return inputs[0] if len(inputs) == 1 else list(inputs)
    return _built_inputs(model)


def _built_inputs(model):
    import inspect

    config = model.get_build_config() if hasattr(model, "get_build_config") else None
    shape = (config or {}).get("input_shape")
    if shape is None:
        return None
    keras = _keras()
    dtype = getattr(model, "input_dtype", None) or "float32"
    parameters = [p for p in inspect.signature(model.call).parameters if p != "self"]
    first = parameters[0] if parameters else "inputs"

    def tensor(name, dims):
        return keras.KerasTensor((None, *tuple(dims)[1:]), dtype, name=name)

    if isinstance(shape, dict):
        return {k: tensor(k, v) for k, v in shape.items()}
    if shape and isinstance(shape[0], (list, tuple)):
        return [tensor(f"{first}_{i}", dims) for i, dims in enumerate(shape)]
    return tensor(first, shape)


def output_names(model) -> list[str]:
    """The model's output names in the order a traced call flattens them: a dict output's
    keys (sorted), else each output layer's name (repeats numbered)."""
    struct = getattr(model, "_outputs_struct", None)
    if struct is None and not getattr(model, "outputs", None):
        # a subclassed model names no outputs (nor, stably, itself): output_0, … as
        # Keras's own model.export() names them
        struct = model.compute_output_spec(input_structure(model))
        if not isinstance(struct, dict):
            return [f"output_{i}" for i in range(len(tf.nest.flatten(struct)))]
    if isinstance(struct, dict):
        names = sorted(struct)
    else:
        flat = tf.nest.flatten(struct if struct is not None else model.outputs)
        names = [t._keras_history[0].name for t in flat]
    seen: dict[str, int] = {}
    unique = []
    for name in (_node_name(n) for n in names):
        seen[name] = seen.get(name, -1) + 1
        unique.append(name if not seen[name] else f"{name}_{seen[name]}")
    return unique


def _node_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.\-/]", "_", str(name))
    return name if re.match(r"[A-Za-z0-9.]", name) else f"x{name}"


def frozen_graph_def(model, what):
    """(GraphDef, input names, output names) of ``model`` in inference mode, variables
    folded in, batch dimension free."""
    from tensorflow.python.framework import convert_to_constants

    structure = input_structure(model)

    def spec(t):
        return tf.TensorSpec((None, *tuple(t.shape)[1:]), t.dtype, name=_node_name(t.name))

    specs = tf.nest.map_structure(spec, structure)
    inputs = [s.name for s in tf.nest.flatten(specs)]
    # a node name is one name: an output called like an input (a dict model's "foo" in and
    # out) becomes "foo_output"
    outputs = [f"{n}_output" if n in inputs else n for n in output_names(model)]
    try:
        traced = tf.function(
            lambda x: model(x, training=False), input_signature=[specs], autograph=False
        ).get_concrete_function()
        frozen = convert_to_constants.convert_variables_to_constants_v2(
            traced, lower_control_flow=False
        )
    except Exception as e:  # a layer that cannot be traced with a free batch dimension
        raise TfpersistError(f"{what}: cannot trace the Keras model ({first_line(e)})") from None
    graph_def = frozen.graph.as_graph_def()
    lookups.embed_tables(traced, graph_def, what)
    produced = [t.name.split(":")[0] for t in frozen.outputs]
    if len(produced) != len(outputs):
        raise TfpersistError(
            f"{what}: the traced model gives {len(produced)} outputs, its config names "
            f"{len(outputs)}"
        )
    renames = dict(zip(produced, outputs, strict=True))
    renames.update(_variable_names(model, traced, graph_def, set(renames.values())))
    _rename(graph_def, renames)
    _drop_ordering(graph_def)
    grouped.ungroup(graph_def)  # Keras's XLA-compiled grouped convolutions, as plain ops
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    if sorted(placeholders) != sorted(inputs):
        raise TfpersistError(
            f"{what}: the traced graph's inputs {placeholders} are not the model's {inputs}"
        )
    return graph_def, inputs, outputs


def _variable_names(model, traced, graph_def, taken: set) -> dict[str, str]:
    """The constants folded from variables, named by the Keras variables' paths
    (``second_dense/kernel``) instead of the trace's ``…/ReadVariableOp/resource``: compare
    then says which layer's weights changed."""
    paths = {}
    for variable in model.variables:
        handle = getattr(getattr(variable, "value", None), "handle", None)
        if handle is not None:
            paths[id(handle)] = _node_name(variable.path)
    names = {n.name for n in graph_def.node} | taken
    renames = {}
    for outer, inner in zip(traced.captured_inputs, traced.graph.internal_captures, strict=False):
        path = paths.get(id(outer))
        if path and inner.op.name in names and path not in names:
            renames[inner.op.name] = path
            names.add(path)
    return renames


def _drop_ordering(graph_def) -> None:
    """Drop the NoOps a traced function orders its variable reads with (the reads are
    constants now) and the control inputs naming them: an output is then a plain Identity
    of what it computes (OpenCV, which drops Identity ops, keeps its name)."""
    noops = {
        n.name for n in graph_def.node if n.op == "NoOp" and all(i.startswith("^") for i in n.input)
    }
    kept = [n for n in graph_def.node if n.name not in noops]
    for node in kept:
        node.input[:] = [i for i in node.input if i.lstrip("^") not in noops]
    del graph_def.node[:]
    graph_def.node.extend(kept)


def _rename(graph_def, renames: dict[str, str]) -> None:
    """Rename nodes (the outputs' Identity nodes), moving any node already holding a new
    name out of the way first; inputs referring to them follow."""
    taken = {n.name for n in graph_def.node}
    moved = dict(renames)
    for new in renames.values():
        if new in taken and new not in renames:
            spare, i = f"{new}_inner", 0
            while spare in taken:
                i += 1
                spare = f"{new}_inner_{i}"
            moved[new] = spare
            taken.add(spare)

    def renamed(ref: str) -> str:
        control = ref.startswith("^")
        name, colon, port = ref.lstrip("^").partition(":")
        return ("^" if control else "") + moved.get(name, name) + colon + port

    for node in graph_def.node:
        node.name = moved.get(node.name, node.name)
        node.input[:] = [renamed(i) for i in node.input]


def freeze(path, kind, output_nodes=None, trust=safety.TRUST_NOTHING, architecture=None):
    """(GraphDef, output names) of the Keras model at ``path``: all its outputs, or those of
    ``output_nodes`` (by output name)."""
    model = load(path, kind, trust, architecture)
    graph_def, _, outputs = frozen_graph_def(model, str(path))
    if output_nodes:
        from tfpersist.graph import graphdefs

        asked = graphdefs.node_names(output_nodes)
        unknown = [n for n in asked if n not in outputs]
        if unknown:
            raise TfpersistError(
                f"{path}: no output {', '.join(unknown)}; the model's outputs: {', '.join(outputs)}"
            )
        outputs = asked
    return graph_def, outputs


def predict(path, kind, x, outputs: list[str], trust=safety.TRUST_NOTHING, architecture=None):
    """Keras's own ``model.predict`` of the model at ``path`` (checked and loaded as
    ``load``) on ``x`` (one array, or a dict by input name): {output name: array} for
    ``outputs``, named as ``frozen_graph_def`` names them — the reference a frozen graph is
    held to."""
    model = load(path, kind, trust, architecture)
    if isinstance(x, dict) and len(x) == 1 and not isinstance(input_structure(model), dict):
        (x,) = x.values()
    got = model.predict(x, verbose=0)
    flat = tf.nest.flatten(got) if not isinstance(got, dict) else [got[k] for k in sorted(got)]
    names = output_names(model)
    inputs = {_node_name(t.name) for t in tf.nest.flatten(input_structure(model))}
    by_name = {f"{n}_output" if n in inputs else n: v for n, v in zip(names, flat, strict=True)}
    missing = [n for n in outputs if n not in by_name]
    if missing:
        raise TfpersistError(
            f"{path}: no output {', '.join(missing)}; the model's outputs: {', '.join(by_name)}"
        )
    return {n: by_name[n] for n in outputs}
