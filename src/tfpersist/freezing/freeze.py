"""Freezing: a model's variables folded into constants, pruned to what the outputs need.

The one entry point (``freeze_to_file``) takes any source. A TF1 checkpoint's graph is
prepared (devices cleared, placeholders pinned, dead ``tf.cond`` branches pruned), pruned
to the outputs as ``extract_sub_graph`` does, and its weights streamed from the checkpoint's
files into the .pb (streaming.py) — no TensorFlow import. What the files alone cannot
answer goes through a session (session.py: TensorFlow's ``convert_variables_to_constants``),
which writes the same bytes. Serialisation is deterministic (same checkpoint → same bytes)
and atomic.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tfpersist import formats, safety
from tfpersist.core import atomic
from tfpersist.core.errors import TfpersistError
from tfpersist.formats import bundles, checkpoints, saved_models
from tfpersist.freezing import streaming
from tfpersist.graph import graphdefs, signature, surgery
from tfpersist.tfapi.tensornames import op_name


def prepare(graph_def, values: dict[str, str] | None, keep: list[str], live=()):
    """The surgery every source gets before freezing; returns the edited GraphDef and the
    placeholders pinned ({name: value}, surgery.pin).

    Devices cleared; ``values`` and placeholder defaults pinned (except the placeholders in
    ``live``); TF2 conditionals lowered and dead ``tf.cond`` branches pruned, keeping the
    nodes in ``keep``.
    """
    surgery.clear_devices(graph_def)
    graphdefs.drop_undefined_attrs(graph_def)  # TF ignores them; a writer must not keep them
    pinned = surgery.pin(graph_def, values or {}, live)
    graph_def = surgery.lower_functional_conditionals(graph_def, keep)
    surgery.clear_devices(graph_def)  # lowering adds colocation attributes
    surgery.prune_dead_branches(graph_def)
    return graph_def, pinned


@dataclass
class Source:
    """A graph ready to freeze: pinned, pruned, its variables still to be folded in.

    ``prefix`` and ``saver_def`` say where the variables' values are (None for a graph
    without variables, such as a .pb).
    """

    what: str  # for messages: the checkpoint prefix, SavedModel or .pb path
    graph_def: object  # the prepared graph (every node; the saver's restore op kept)
    names: list[str]  # output node names
    prefix: Path | None = None
    saver_def: object | None = None
    init_op: str | None = None  # a SavedModel's main op, run after restoring
    pinned: dict = dataclasses.field(default_factory=dict)  # placeholders pinned: values
    not_run: dict = dataclasses.field(default_factory=dict)  # assignments left out: variable

    @property
    def record(self) -> dict:
        """What freezing changed that the card (and the freeze command) must say: the
        placeholders pinned, the assignments the live graph runs and the frozen one does not."""
        return {
            **({"pinned": dict(sorted(self.pinned.items()))} if self.pinned else {}),
            **({"assignments_not_run": self.not_run} if self.not_run else {}),
        }

    @functools.cached_property
    def pruned(self):
        """Only what the outputs need."""
        return graphdefs.extract_sub_graph(self.graph_def, self.names)


def _prepared(
    what, graph_def, names, values, live, trust, prefix=None, saver_def=None, init_op=None
) -> Source:
    """Check names, prepare the graph, and refuse what freezing must not do: outputs that a
    frozen graph would change (an assignment) or that need ops outside the inference
    allowlist (safety.py), and an init op that does."""
    graphdefs.check_nodes(graph_def, names)
    # Checked before any surgery (Grappler's lowering included), over every branch.
    safety.check(graph_def, names, what, trust)
    if init_op:
        safety.check(graph_def, [init_op], f"{what} (its init op)", trust)
    restore_op = op_name(saver_def.restore_op_name) if saver_def else ""
    if restore_op:  # never run by restore.py, but a saver that does more than read is hostile
        what_restores = f"{what} (its restore op)"
        safety.check(graph_def, [restore_op], what_restores, trust, safety.RESTORE_OPS)
    keep = [*names, *(op for op in (restore_op, init_op) if op)]
    not_run = surgery.drop_control_assignments(graph_def, names)  # before lowering the Ifs
    graph_def, pinned = prepare(graph_def, values, keep, live)
    graphdefs.check_nodes(graph_def, names)
    source = Source(what, graph_def, names, prefix, saver_def, init_op, pinned, not_run)
    surgery.check_stateless(source.pruned, names, what)
    return source


def checkpoint_source(source, names, values=None, live=(), trust=safety.TRUST_NOTHING) -> Source:
    """A checkpoint directory or prefix, V1 or V2 format, ready to freeze."""
    prefix = checkpoints.resolve(source)
    meta = graphdefs.read_meta_graph(prefix)
    return _prepared(
        str(prefix), meta.graph_def, names, values, live, trust, prefix, meta.saver_def
    )


def freeze_checkpoint(
    source: str | Path,
    output_nodes: list[str] | str,
    values: dict[str, str] | None = None,
    trust: safety.Trust = safety.TRUST_NOTHING,
    live=(),
):
    """Freeze a checkpoint directory or prefix into a GraphDef through a session.

    The training graph from the ``.meta`` is cleaned first (``prepare``: devices cleared,
    ``values`` and placeholder defaults pinned, dead ``tf.cond`` branches pruned), then the
    variables are restored (restore.py: as the checkpoint's saver maps them, without running
    its restore op) and folded into constants.
    """
    names = graphdefs.node_names(output_nodes)
    return _in_session(checkpoint_source(source, names, values, live, trust))


def freeze_graph_def(
    graph_def,
    output_nodes: list[str] | str,
    values: dict[str, str] | None = None,
    live=(),
    trust: safety.Trust = safety.TRUST_NOTHING,
):
    """Re-freeze a frozen GraphDef: pin, prune dead branches, keep what ``output_nodes`` need."""
    return _graph_def_frozen(graph_def, output_nodes, values, live, trust)[0]


def _graph_def_frozen(graph_def, output_nodes, values, live, trust):
    names = graphdefs.node_names(output_nodes)
    source = _prepared("the graph", graph_def, names, values, live, trust)
    pruned = source.pruned
    read = surgery.variables(pruned)
    if read:
        raise TfpersistError(
            f"the graph reads variables ({', '.join(read[:3])}) but a GraphDef "
            "holds no values for them; freeze from the checkpoint or SavedModel instead"
        )
    return surgery.finish(pruned, "the graph"), source.record


def freeze(
    source: str | Path,
    output_nodes: list[str] | str | None = None,
    values: dict[str, str] | None = None,
    trust: safety.Trust = safety.TRUST_NOTHING,
    live=(),
    signature_key: str | None = None,
    architecture: str | Path | None = None,
):
    """Freeze any source: checkpoint dir or prefix, SavedModel dir, frozen .pb, or a Keras
    model (.keras, .h5; weights — .weights.h5, a TF2 checkpoint — with the ``architecture``
    they belong to: a .keras, .h5 or config JSON).

    Returns (GraphDef, output node names).
    """
    return _freeze(source, output_nodes, values, trust, live, signature_key, architecture)[:2]


def _freeze(source, output_nodes, values, trust, live, signature_key, architecture=None):
    """``freeze``, and what it changed (Source.record)."""
    kind = formats.detect(source, weights=architecture is not None)
    if architecture is not None and kind not in formats.KERAS_SOURCES:
        raise TfpersistError(
            f"--architecture: {source} is a {kind}, which holds its own; the architecture goes "
            "with Keras weights (.weights.h5) or a TF2 checkpoint"
        )
    if kind in formats.KERAS_SOURCES:
        if signature_key:
            raise TfpersistError(f"--signature: {source} is a {kind}, not a SavedModel")
        from tfpersist.freezing import keras

        graph_def, names = keras.freeze(source, kind, output_nodes, trust, architecture)
        frozen, record = _graph_def_frozen(graph_def, names, values, live, trust)
        return frozen, names, record
    if kind == formats.SAVED_MODEL:
        saved = saved_models.load(source, signature_key, trust)
        names = graphdefs.node_names(
            saved.names(graphdefs.node_names(output_nodes) if output_nodes else None)
        )
        if saved.prefix is None:
            frozen, record = _graph_def_frozen(saved.graph_def, names, values, live, trust)
            return frozen, names, record
        src = _prepared(
            str(source),
            saved.graph_def,
            names,
            values,
            live,
            trust,
            saved.prefix,
            saved.saver_def,
            saved.init_op,
        )
        return _in_session(src), names, src.record
    if signature_key:
        raise TfpersistError(f"--signature: {source} is a {kind}, not a SavedModel")
    if not output_nodes:
        raise TfpersistError(
            f"{source}: name the output nodes (--output-nodes a,b); 'tfpersist inspect "
            f"{source}' lists likely ones"
        )
    names = graphdefs.node_names(output_nodes)
    if kind == formats.GRAPH_DEF:
        graph_def = graphdefs.read_graph_def(source)
        frozen, record = _graph_def_frozen(graph_def, names, values, live, trust)
        return frozen, names, record
    src = checkpoint_source(source, names, values, live, trust)
    return _checkpoint_frozen(src), names, src.record


def freeze_meta_graph(path, meta, output_nodes: list[str], trust=safety.TRUST_NOTHING):
    """A TF1 SavedModel's meta graph frozen for ``output_nodes`` (a server's: every
    signature's) with no node renamed, so that its TensorInfos' tensor names still hold."""
    from tfpersist.core import layout
    from tfpersist.tfapi import protos

    graph_def = protos.GraphDef()
    graph_def.CopyFrom(meta.graph_def)
    prefix = Path(path) / layout.SAVED_MODEL_VARIABLES
    if not (Path(f"{prefix}.index").is_file() and meta.saver_def.restore_op_name):
        return _graph_def_frozen(graph_def, output_nodes, None, (), trust)[0]
    init = saved_models.init_op(meta)
    src = _prepared(
        str(path), graph_def, output_nodes, None, (), trust, prefix, meta.saver_def, init
    )
    return _in_session(src)


def is_checkpoint(source: str | Path) -> bool:
    """A checkpoint dir or prefix (not a SavedModel dir, not a .pb file)."""
    return formats.detect(source) == formats.CHECKPOINT


def card(
    graph_def, data: bytes, output_nodes: list[str], extra: dict | None = None, record=None
) -> dict:
    """The small JSON card written beside a frozen model.

    ``extra`` joins the signature (the pipeline adds the feature columns and the label).
    """
    params, param_bytes = graphdefs.constant_parameters(graph_def)
    stats = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "ops": Counter(n.op for n in graph_def.node),
        "parameters": params,
        "parameter_bytes": param_bytes,
    }
    return card_from(streaming.skeleton(graph_def), stats, output_nodes, extra, record)


def card_from(
    skeleton, stats: dict, output_nodes: list[str], extra: dict | None, record=None
) -> dict:
    """The card from a weightless copy of the graph and what writing it counted;
    ``record``: what freezing changed (Source.record)."""
    sig = signature.describe_graph_def(skeleton, output_nodes)
    sig.update(extra or {})
    return {
        "format": "tensorflow.GraphDef",
        "bytes": stats["bytes"],
        "sha256": stats["sha256"],
        "nodes": len(skeleton.node),
        "ops": dict(sorted(stats["ops"].items())),
        "parameters": stats["parameters"],
        "parameter_bytes": stats["parameter_bytes"],
        "signature": sig,
        **(record or {}),
    }


def freeze_to_file(
    source: str | Path,
    out: str | Path,
    output_nodes: list[str] | str | None = None,
    *,
    values: dict[str, str] | None = None,
    live=(),
    signature_key: str | None = None,
    optimize: bool = False,
    card_path: str | Path | None = None,
    extra: dict | None = None,
    trust: safety.Trust = safety.TRUST_NOTHING,
    architecture: str | Path | None = None,
) -> tuple[dict, list[str]]:
    """Freeze any source into ``out`` (and its card): the one entry point for freezing.

    Returns (card, output names); without a card path the card has the counts and no sha256.
    A checkpoint's weights stream from its files tensor by tensor (streaming.py) when the
    graph allows it, else they are restored in a session (``freeze``): same bytes either way.
    ``live`` names placeholders with a default to keep as inputs rather than pin;
    ``optimize`` applies ``optimize.optimize``. The card also carries the feature columns,
    label and classes of a release checkpoint's ``signature.json`` (the pipeline writes one),
    so that ``predict`` picks the same columns from a CSV whoever froze the model.
    """
    extra = {**signature.release_data(source), **(extra or {})}
    if (
        formats.detect(source, weights=architecture is not None) != formats.CHECKPOINT
        or optimize
        or not output_nodes
        or signature_key
    ):
        graph_def, names, record = _freeze(
            source, output_nodes, values, trust, live, signature_key, architecture
        )
        if optimize:
            from tfpersist.graph import optimize as optimizer

            graph_def = optimizer.optimize(graph_def, names)
        return write(graph_def, out, names, card_path, extra, record), names
    names = graphdefs.node_names(output_nodes)
    src = checkpoint_source(source, names, values, live, trust)
    pruned = src.pruned
    reader, frozen_plan = _streaming_plan(src)
    if frozen_plan is None:
        return write(_in_session(src), out, names, card_path, extra, src.record), names
    skeleton = streaming.skeleton(pruned, frozen_plan)
    graphdefs.check_attrs(skeleton)
    try:
        stats = streaming.write(
            pruned, frozen_plan, reader, out, graphdefs.PROTOBUF_LIMIT, digest=card_path is not None
        )
    except TfpersistError as e:  # a short or corrupt .data
        raise checkpoints.unreadable(src.prefix, e) from None
    if card_path is None:  # what the card would say, without the cost of hashing
        return {"nodes": sum(stats["ops"].values()), **stats, **src.record}, names
    info = card_from(skeleton, stats, names, extra, src.record)
    atomic.write_json(card_path, info)
    return info, names


def _streaming_plan(src: Source) -> tuple[bundles.Bundle | None, streaming.Plan | None]:
    """The checkpoint's reader and how its weights stream into the frozen graph; no plan
    where the session must restore them (a V1-format checkpoint: no .index)."""
    reader = _bundle(src.prefix)
    frozen_plan = reader and streaming.plan(src.pruned, reader, src.graph_def, src.saver_def)
    if frozen_plan is not None:
        surgery.tidy_library(src.pruned)  # as the session path leaves it
    return reader, frozen_plan


def _checkpoint_frozen(src: Source):
    """A checkpoint source frozen in memory: streamed from its files, else in a session."""
    reader, frozen_plan = _streaming_plan(src)
    if frozen_plan is None:
        return _in_session(src)
    try:
        return streaming.graph_def_of(src.pruned, frozen_plan, reader)
    except TfpersistError as e:  # a short or corrupt .data
        raise checkpoints.unreadable(src.prefix, e) from None


def _in_session(source: Source):
    from tfpersist.freezing import session  # TensorFlow's Python layer

    return session.freeze_source(source)


def _bundle(prefix: Path) -> bundles.Bundle | None:
    """The checkpoint's index, read; None for a V1-format checkpoint (no .index)."""
    if not Path(f"{prefix}.index").is_file():
        return None
    try:
        return bundles.Bundle(prefix)
    except TfpersistError as e:
        raise checkpoints.unreadable(prefix, e) from None


def freeze_session(sess, output_nodes: list[str] | str, what: str = "the session"):
    """Freeze a live session's graph: variables → constants, pruned to ``output_nodes``."""
    from tfpersist.freezing import session

    return session.freeze_session(sess, output_nodes, what)


def write(
    graph_def,
    path: str | Path,
    output_nodes: list[str],
    card_path: str | Path | None = None,
    extra: dict | None = None,
    record: dict | None = None,
) -> dict:
    """Write the .pb (and its card) atomically; return the card."""
    data = graphdefs.serialize(graph_def)
    info = card(graph_def, data, graphdefs.node_names(output_nodes), extra, record)
    atomic.write_bytes(path, data)
    if card_path is not None:
        atomic.write_json(card_path, info)
    return info
