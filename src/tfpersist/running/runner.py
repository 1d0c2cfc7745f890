"""A loaded model to run on data: a frozen GraphDef, or a checkpoint restored into its graph."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tfpersist import safety
from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.formats import checkpoints
from tfpersist.formats.interpreters import check_rows
from tfpersist.graph import graphdefs, surgery
from tfpersist.tfapi.tensornames import op_name
from tfpersist.tfapi.tfcompat import import_tf, session_config

tf = import_tf()
v1 = tf.compat.v1


class Runner:
    """A graph in its own session; ``run`` feeds one input in batches and fetches outputs."""

    def __init__(self, graph, sess, source: str):
        self.graph = graph
        self.sess = sess
        self.source = source
        self.trust = safety.TRUST_NOTHING  # ops allowed beyond the inference allowlist
        self._checks: dict = {}  # (inputs, outputs, trust) → (feeds, fetches), see _checked
        self._callables: dict = {}  # (feeds, fetches) → Session.make_callable

    @classmethod
    def from_graph_def(cls, graph_def, source: str = "graph", threads: int | None = None) -> Runner:
        graph = tf.Graph()
        with graph.as_default():
            try:
                tf.import_graph_def(graph_def, name="")
            except (ValueError, TypeError, tf.errors.OpError) as e:
                raise TfpersistError(
                    f"{source}: the graph does not import ({first_line(e)})"
                ) from None
        return cls(graph, v1.Session(graph=graph, config=session_config(threads)), source)

    @classmethod
    def from_frozen(cls, path: str | Path, threads: int | None = None) -> Runner:
        return cls.from_graph_def(graphdefs.read_graph_def(path), str(path), threads)

    @classmethod
    def from_checkpoint(
        cls, source: str | Path, threads: int | None = None, trust=safety.TRUST_NOTHING
    ) -> Runner:
        """The checkpoint's graph with its variables restored (restore.py: as its saver maps
        them, without running the graph's own restore op)."""
        from tfpersist.freezing import restore

        prefix = checkpoints.resolve(source)
        meta = graphdefs.read_meta_graph(prefix)
        graph_def = meta.graph_def
        restore_op = op_name(meta.saver_def.restore_op_name)
        if restore_op:  # never run, but a saver that does more than read is hostile
            what = f"{prefix} (its restore op)"
            safety.check(graph_def, [restore_op], what, trust, safety.RESTORE_OPS)
        surgery.clear_devices(graph_def)
        runner = cls.from_graph_def(graph_def, str(prefix), threads)
        runner.trust = trust
        try:
            keys = restore.saver_keys(graph_def, meta.saver_def)
            if keys is None:
                raise TfpersistError(f"{prefix}: its saver's restore op is not a plain restore")
            if restore.restore(runner.sess, keys, prefix) == []:
                raise TfpersistError(f"{prefix}: its saver restores no variable")
        except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: short .data
            runner.close()
            raise TfpersistError(
                f"{prefix}: cannot restore the checkpoint ({first_line(e)})"
            ) from None
        except TfpersistError:
            runner.close()
            raise
        return runner

    @functools.cached_property
    def graph_def(self):
        """The graph as a GraphDef, made once (every run checks names and ops against it)."""
        return self.graph.as_graph_def()

    def tensor(self, name: str):
        name = graphdefs.node_names([name])[0]
        graphdefs.check_nodes(self.graph_def, [name], "node")
        return self.graph.get_tensor_by_name(f"{name}:0")

    def run(
        self,
        x: np.ndarray | dict[str, np.ndarray],
        input_node: str | None,
        output_nodes: list[str],
        batch_size: int = 1024,
    ) -> dict[str, np.ndarray]:
        """Outputs for every row of ``x``, batch by batch, concatenated.

        ``x`` is one array fed to ``input_node``, or {input node: array} for a model with
        several inputs (the same number of rows each)."""
        inputs = dict(x) if isinstance(x, dict) else {input_node: x}
        names = tuple(inputs)
        feeds, fetches = self._checked(names, tuple(output_nodes))
        for name, feed in zip(names, feeds, strict=True):
            self._check_shape(name, feed, inputs[name])
        # a scalar input (a flag such as use_abs) goes with every batch; the rest are rows
        fixed, rows = {}, {}
        for name, feed in zip(names, feeds, strict=True):
            (fixed if feed_is_scalar(feed) else rows)[feed] = inputs[name]
        count = check_rows(self.source, {f.op.name: v for f, v in rows.items()}) if rows else 1
        if count <= batch_size:  # one call: no copies
            values = self._run(fetches, {**fixed, **rows})
            return dict(zip(output_nodes, values, strict=True))
        parts: list[list[np.ndarray]] = [[] for _ in fetches]
        for i in range(0, count, batch_size):
            batch = {**fixed, **{f: v[i : i + batch_size] for f, v in rows.items()}}
            for part, value in zip(parts, self._run(fetches, batch), strict=True):
                part.append(value)
        return {n: np.concatenate(p) for n, p in zip(output_nodes, parts, strict=True)}

    def _run(self, fetches, feed: dict) -> list:
        try:
            if all(_exact(t, v) for t, v in feed.items()):  # a prepared callable: less per call
                key = (tuple(feed), tuple(fetches))
                call = self._callables.get(key)
                if call is None:
                    call = self._callables[key] = self._prepared(list(feed), fetches)
                return call(*feed.values())
            return self.sess.run(fetches, feed)
        except (tf.errors.OpError, ValueError, TypeError) as e:
            raise TfpersistError(f"{self.source}: the model failed ({first_line(e)})") from None

    def _prepared(self, feeds: list, fetches: list):
        """C++'s ``Session::MakeCallable`` for these feeds and fetches: a run without
        ``Session.run``'s Python (~70 µs against ~360 µs for a 1-row MLP here; the same
        executor and kernels, so the same bits). ``Session.make_callable`` is no such thing
        when given feeds: it calls ``Session.run`` (TF 2.21's session.py)."""
        from tensorflow.core.protobuf import config_pb2

        options = config_pb2.CallableOptions(
            feed=[t.name for t in feeds], fetch=[t.name for t in fetches]
        )
        return self.sess._make_callable_from_options(options)

    def _check_shape(self, input_node: str, feed, x: np.ndarray) -> None:
        want = feed.shape.as_list() if feed.shape.rank is not None else None
        if want is not None and len(want) != np.ndim(x):
            shown = "[" + ", ".join("?" if d is None else str(d) for d in want) + "]"
            raise TfpersistError(
                f"{self.source}: input '{input_node}' takes {len(want)}-d arrays {shown}, the "
                f"data is {np.ndim(x)}-d {list(np.shape(x))}"
                + (" (one row? reshape it to [1, ...])" if np.ndim(x) == len(want) - 1 else "")
            )
        if want and want[-1] is not None and np.shape(x)[-1] != want[-1]:
            raise TfpersistError(
                f"{self.source}: input '{input_node}' takes {want[-1]} features per row, "
                f"the data has {np.shape(x)[-1]}"
            )

    def _checked(self, input_nodes: tuple[str, ...], output_nodes: tuple[str, ...]):
        """(feed tensors, fetch tensors), names and ops checked once per combination (and
        trust): a predict loop pays for the checks on its first call only."""
        key = (input_nodes, output_nodes, self.trust)
        if key not in self._checks:
            fetches = [self.tensor(n) for n in output_nodes]
            safety.check(self.graph_def, list(output_nodes), self.source, self.trust)
            self._checks[key] = ([self.tensor(n) for n in input_nodes], fetches)
        return self._checks[key]

    def close(self) -> None:
        self.sess.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _exact(tensor, value) -> bool:
    """An array of the placeholder's own dtype (a callable converts nothing)."""
    return isinstance(value, np.ndarray) and value.dtype == tensor.dtype.as_numpy_dtype


def feed_is_scalar(tensor) -> bool:
    """Whether a graph input takes one value for the whole call (rank 0), not rows."""
    return tensor.shape.rank == 0
