"""Resumable training with periodic TF1 checkpoints, a best-so-far checkpoint and dvclive logs.

Layout of the training directory (a DVC ``persist: true`` output):

    checkpoint, model.ckpt-<step>.{index,data-*,meta}   periodic checkpoints (max_to_keep)
    best/checkpoint, best/model.ckpt-<step>.*            highest validation accuracy so far
    fingerprint.json                                     params + data the checkpoints belong to
    live/                                                dvclive metrics and plots

Everything that determines the next step is in the checkpoint or a pure function of the
step: weights, optimizer slots, global step and best accuracy are variables; the batch order
is a keyed bijection of the rows (key: seed, epoch), computed a batch at a time; dropout
masks are stateless, seeded by (seed, step). The splits are read a batch at a time from the
prepared record files: memory does not grow with the data.
A run killed at any point and resumed therefore ends with the same bytes as one that was not.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tfpersist.core import atomic, digests, faults, layout
from tfpersist.core.errors import TfpersistError
from tfpersist.formats import checkpoints
from tfpersist.graph import contractions
from tfpersist.numerics import runtime
from tfpersist.pipeline import architectures
from tfpersist.pipeline import model as model_lib
from tfpersist.pipeline.cluster import (
    AGREE_KEY,
    GRADIENTS_KEY,
    SINGLE,
    Cluster,
    Watchdog,
    agree,
    chief_state,
    report_line,
    run_step,
    session_config,
)
from tfpersist.pipeline.cluster import server as start_server
from tfpersist.pipeline.params import MAX_K, MAX_MICRO_BATCHES, ModelParams, TrainParams
from tfpersist.pipeline.portable import ordered_sum
from tfpersist.tables import data, records
from tfpersist.tables.order import batch_indices
from tfpersist.tables.records import Split
from tfpersist.tfapi.tfcompat import enable_determinism, import_tf

tf = import_tf()
v1 = tf.compat.v1

LABELS_NODE = "labels"
# Params that do not change what the checkpoints contain: raising `epochs` continues training.
# Nor where it runs: `workers` and how long they wait for each other.
_NOT_FINGERPRINTED = ("epochs", "max_to_keep", "workers", "collective_timeout")


@dataclass(frozen=True)
class Result:
    step: int  # the last step: train.epochs × batches per epoch
    resumed_from: int | None
    best_step: int | None
    best_val_accuracy: float
    cluster: Cluster = SINGLE  # where this process trained

    def summary(self, arch: str) -> str:
        """The stage's last line: the chief's (or one process's) result, or what a
        non-chief worker did."""
        if self.cluster.chief:
            return (
                f"train: {arch} trained to step {self.step}; best validation accuracy "
                f"{self.best_val_accuracy:.4f} at step {self.best_step}"
            )
        first = (self.resumed_from or 0) + 1  # after `start`; past `step`: nothing to do
        steps = f"steps {first}–{self.step}" if first <= self.step else "no steps"
        return (
            f"train: worker {self.cluster.task} of {self.cluster.workers} computed its part of "
            f"{steps}, starting from "
            f"the chief's state ({self.cluster.addresses[0]}); the chief evaluates and writes "
            "the checkpoints, nothing was written here"
        )


def fingerprint(model: ModelParams, train: TrainParams, data_digest: str) -> dict:
    """What the checkpoints in a training directory were made from."""
    t = {k: v for k, v in asdict(train).items() if k not in _NOT_FINGERPRINTED}
    if t["max_k"] == MAX_K:  # left out at its default: the fingerprints (and lock) made before
        del t["max_k"]
    model_params = json.loads(json.dumps(asdict(model)))
    # The CPU pin decides the float bits: checkpoints made under another one start fresh.
    return {"data": data_digest, "model": model_params, "train": t, "cpu_isa": runtime.current()}


def _optimizer(name: str, learning_rate: float):
    if name == "adam":
        return v1.train.AdamOptimizer(learning_rate)
    if name == "momentum":
        return v1.train.MomentumOptimizer(learning_rate, momentum=0.9)
    return v1.train.GradientDescentOptimizer(learning_rate)


class _Graph:
    """The training graph: the evaluation tower (it creates the variables, so their initial
    values do not depend on the towers that follow), one training tower per micro-batch this
    worker computes, and the update every worker applies alike.

    A batch is cut into ``train.micro_batches`` fixed parts; each part's gradients (of its
    summed loss over the batch's rows) are gathered from every worker in part order
    (CollectiveGatherV2, when there are several) and summed in the order 0..K-1, so the
    update — and every byte after it — is the same whatever the number of workers."""

    def __init__(
        self,
        model: ModelParams,
        train: TrainParams,
        data: Split,
        num_classes: int,
        cluster: Cluster = SINGLE,
        stats: tuple | None = None,  # (mean, scale) when known: one pass over the data
    ):
        self.graph = tf.Graph()
        self.cluster = cluster
        k_all = self.parts = train.micro_batches
        with self.graph.as_default(), tf.device(cluster.device()):
            v1.set_random_seed(train.seed)
            self.step = v1.train.get_or_create_global_step()
            self.x = model_lib.input_placeholder(model, data.features)
            self.y = v1.placeholder(tf.int64, [None], name=LABELS_NODE)
            mean, scale = stats or model_lib.normalization_stats(data)
            self.bound, self.rows_max = contraction_bound(train)
            eval_logits = model_lib.logits(
                self.x, model, num_classes, False, mean=mean, scale=scale, bound=self.bound
            )
            model_lib.outputs(eval_logits, model)
            with tf.name_scope("evaluate"):
                self.eval_loss = tf.reduce_sum(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(
                        labels=self.y, logits=eval_logits
                    )
                )
                self.eval_correct = tf.reduce_sum(
                    tf.cast(tf.equal(tf.argmax(eval_logits, 1), self.y), tf.float32)
                )
            variables = v1.trainable_variables()
            self.rows = v1.placeholder(tf.float32, [], name="batch_rows")
            self.towers, grads, losses, corrects = [], [], [], []
            for k in cluster.micro_batches(k_all):
                with tf.name_scope(f"train/micro_{k}"):
                    x = v1.placeholder(tf.float32, [None, data.features], name="x")
                    y = v1.placeholder(tf.int64, [None], name="y")
                    # dropout masks drawn from (seed, step, micro-batch, layer)
                    micro = (self.step * k_all + k) * MAX_MICRO_BATCHES
                    seed = tf.stack([tf.constant(train.seed, tf.int64), micro])
                    logits = model_lib.logits(
                        x, model, num_classes, True, seed, bound=self.bound, rows=self.rows_max
                    )
                    loss = tf.reduce_sum(
                        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                    )
                    loss = loss / self.rows
                    grads.append(tf.gradients(loss, variables))
                    losses.append(loss)
                    corrects.append(
                        tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
                    )
                self.towers.append((k, x, y))
            self.timeout = train.collective_timeout
            with tf.name_scope("train/gather"):
                if cluster.workers == 1:
                    summed = [ordered_sum([g[i] for g in grads]) for i in range(len(variables))]
                    self.loss, self.correct = ordered_sum(losses), ordered_sum(corrects)
                else:
                    summed, self.loss, self.correct = self._gathered_sums(
                        grads, losses, corrects, variables
                    )
            self.train_op = _optimizer(train.optimizer, train.learning_rate).apply_gradients(
                zip(summed, variables, strict=True), global_step=self.step
            )
            self.best = v1.get_variable(
                "best_val_accuracy", initializer=-1.0, trainable=False, dtype=tf.float32
            )
            self.new_best = v1.placeholder(tf.float32, [], name="new_best_val_accuracy")
            self.set_best = v1.assign(self.best, self.new_best)
            if cluster.workers > 1:  # before step 0: the fingerprints, then the chief's state
                self.agree_in = v1.placeholder(tf.int64, [2], name="agree")
                self.agreed = self._gathered(self.agree_in, AGREE_KEY)
                with tf.name_scope("sync"):
                    self.sync = chief_state(v1.global_variables(), self._gathered)
            # No Saver-side retention: checkpoints.save + write_state manage the directory.
            self.saver = v1.train.Saver(max_to_keep=None, save_relative_paths=True)
            self.init = v1.global_variables_initializer()

    def _gathered(self, local, key: int):
        """``local`` from every worker, concatenated in worker order along axis 0. No op
        timeout: TensorFlow would start a thread per op and step that sleeps that long
        (thousands, then no more threads); a watchdog bounds the wait (``_Watchdog``)."""
        return tf.raw_ops.CollectiveGatherV2(
            input=local,
            group_size=self.cluster.workers,
            group_key=1,
            instance_key=key,
            ordering_token=[],
        )

    def _gathered_sums(self, grads, losses, corrects, variables):
        """One gather a step: each micro-batch's gradients, loss and correct count flattened
        into one vector; all K summed in part order (elementwise, so the same bits as the
        one-worker sums of each tensor), then cut back into the variables' shapes."""
        packed = tf.stack(
            [
                tf.concat([tf.reshape(t, [-1]) for t in [*g, loss, correct]], 0)
                for g, loss, correct in zip(grads, losses, corrects, strict=True)
            ]
        )
        gathered = self._gathered(packed, GRADIENTS_KEY)
        total = ordered_sum([gathered[i] for i in range(self.parts)])
        sizes = [int(np.prod(v.shape.as_list())) for v in variables] + [1, 1]
        pieces = tf.split(total, sizes)
        summed = [tf.reshape(p, v.shape) for p, v in zip(pieces, variables, strict=False)]
        return summed, tf.reshape(pieces[-2], []), tf.reshape(pieces[-1], [])


def contraction_bound(train: TrainParams) -> tuple[int | None, int]:
    """The K every contraction of the training graph is cut to — ``train.max_k``; None (plain
    ops) when it is 0 or under the ``native`` pin, which promises no portability — and the
    most rows a micro-batch has."""
    rows = math.ceil(train.batch_size / train.micro_batches)
    cut = train.max_k and runtime.current() != "native"
    return (train.max_k if cut else None), rows


def check_contractions(g: _Graph) -> list[contractions.Contraction]:
    """The training graph's contractions; under a portable pin, refuse (one line) when one
    sums over more than the bound: its bits would depend on the CPU's caches."""
    fetched = [g.train_op, g.loss, g.correct, g.eval_loss, g.eval_correct]
    graph_def = v1.graph_util.extract_sub_graph(
        g.graph.as_graph_def(), [t.name.split(":")[0] for t in fetched]
    )  # what a step and an evaluation run: TF builds gradients no step asks for, unrun
    found = contractions.find(graph_def, rows=g.rows_max)
    if g.bound is not None and contractions.beyond(found, g.bound):
        raise TfpersistError(
            f"train: {contractions.explain(found, g.bound)}; build the layers with "
            "architectures.Layers (dense, conv2d: cut to the bound), or set "
            "runtime.cpu_isa: native in params.yaml to train without the portability promise"
        )
    return found


def prepare_directory(train_dir: Path, expected: dict, log: Callable[[str], None]) -> None:
    """Keep ``train_dir`` if its checkpoints match ``expected``; otherwise start it afresh."""
    path = train_dir / layout.FINGERPRINT
    if train_dir.exists() and any(train_dir.iterdir()):
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            found = None
        if not isinstance(found, dict):
            found = None
        if found == expected:
            return
        if found is None:
            log(f"{train_dir}: holds no readable {layout.FINGERPRINT}; starting fresh")
        else:
            flat_expected, flat_found = _flatten(expected), _flatten(found)
            changed = sorted(
                key
                for key in flat_expected.keys() | flat_found.keys()
                if flat_expected.get(key) != flat_found.get(key)
            )
            log(
                f"{train_dir}: checkpoints were made with different "
                f"{'data' if changed == ['data'] else 'params or data'} "
                f"({', '.join(changed)}); not resuming from them, starting fresh"
            )
        shutil.rmtree(train_dir)
    train_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, expected)


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _tidy(directory: Path, keep: list[Path]) -> None:
    """Remove checkpoint files and temp leftovers that ``keep`` does not account for."""
    keep_names = {p.name for p in keep}
    for path in directory.iterdir():
        name = path.name
        stem = name.split(".index")[0].split(".meta")[0].split(".data-")[0]
        if (
            name.startswith(layout.CHECKPOINT_PREFIX) and stem not in keep_names
        ) or "_temp" in name:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _trim_history(live_dir: Path, step: int) -> None:
    """Drop logged rows after ``step`` (logged before a crash, about to be logged again)."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        with tsv.open(newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
        atomic.write_text(tsv, "".join("\t".join(r) + "\n" for r in kept))


class Logger:
    """dvclive, resumable, without timestamps, reports, dvc.yaml or experiment saving."""

    def __init__(self, live_dir: Path, resume_step: int | None):
        from dvclive import Live

        if resume_step is not None:
            _trim_history(live_dir, resume_step)
        self.live = Live(
            str(live_dir),
            resume=resume_step is not None,
            report=None,
            save_dvc_exp=False,
            dvcyaml=False,
        )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.live.step = step
        for name, value in metrics.items():
            self.live.log_metric(name, round(float(value), 6))
        self.live.make_summary()


def prepare_run(train_dir: Path, expected: dict, total: int, log) -> None:
    """The chief's housekeeping before any worker reads ``train_dir``: start afresh on other
    params or data, or when its checkpoints are past ``total`` steps; drop leftovers."""
    prepare_directory(train_dir, expected, log)
    complete = checkpoints.complete_checkpoints(train_dir)
    if complete and (checkpoints.step_of(complete[-1]) or 0) > total:
        log(
            f"{train_dir}: latest checkpoint is at step {checkpoints.step_of(complete[-1])}, "
            f"past the {total} steps of the params' train.epochs; starting fresh"
        )
        shutil.rmtree(train_dir)
        prepare_directory(train_dir, expected, log)
        complete = []
    _tidy(train_dir, complete)
    best_dir = train_dir / layout.BEST_DIR
    if best_dir.is_dir():
        _tidy(best_dir, checkpoints.complete_checkpoints(best_dir))


def total_steps(n: int, params: TrainParams) -> int:
    return params.epochs * math.ceil(n / params.batch_size)


def train(
    train_dir: str | Path,
    data: dict[str, Split],
    num_classes: int,
    model: ModelParams,
    params: TrainParams,
    data_digest: str,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    progress: bool | None = None,
    cluster: Cluster = SINGLE,
    prepared: bool = False,
    report: Callable[[str], None] | None = None,
) -> Result:
    """Train (or resume training) into ``train_dir``; return where it ended.

    ``data`` holds the "train" and "val" splits. ``progress`` None shows a bar on a terminal.
    As task ``cluster.task`` of several workers, the workers check before step 0 that they
    agree on the fingerprint (params, data, CPU pin), then the chief restores its last
    complete checkpoint and every other worker receives its state (weights, optimizer slots,
    step, best accuracy) over the collective runtime — only the chief reads, evaluates, logs
    and writes ``train_dir``. ``prepared``: the directory was
    already prepared (prepare_run) by whoever started the workers. ``report``: where a worker
    whose wait outlasts ``train.collective_timeout`` says so before it exits (stderr).
    """
    train_dir = Path(train_dir)
    architectures.get(model.arch)  # an unknown arch fails before any checkpoint is touched
    enable_determinism()
    n = len(data["train"])
    total = total_steps(n, params)
    expected = fingerprint(model, params, data_digest)
    if cluster.chief and not prepared:
        prepare_run(train_dir, expected, total, log)
    # only the chief's directory counts: the others receive its state (a non-chief's own
    # models/train, stale or foreign, is never read)
    mine = cluster.chief and train_dir.is_dir()
    complete = checkpoints.complete_checkpoints(train_dir) if mine else []
    best_dir = train_dir / layout.BEST_DIR
    best = checkpoints.complete_checkpoints(best_dir) if mine and best_dir.is_dir() else []

    faults.TASK = cluster.task
    if params.micro_batches % cluster.workers:
        raise TfpersistError(
            f"{cluster.workers} workers for train.micro_batches={params.micro_batches}: the "
            "micro-batches must split evenly over the workers"
        )
    stats = model_lib.normalization_stats(data["train"])
    g = _Graph(model, params, data["train"], num_classes, cluster, stats)
    # the .meta of a checkpoint is the one-worker graph's, whatever the number of workers
    meta = (
        g
        if cluster.workers == 1
        else _Graph(model, params, data["train"], num_classes, stats=stats)
    )
    check_contractions(meta)
    config = session_config(params, cluster)
    server = start_server(cluster, config)
    watchdog = (
        Watchdog(params.collective_timeout, cluster.task, report or report_line)
        if cluster.workers > 1
        else None
    )
    if watchdog:  # a peer that never comes up: bounded too
        watchdog.arm(0)
    with v1.Session(server.target if server else "", graph=g.graph, config=config) as sess:
        if complete:
            g.saver.restore(sess, str(complete[-1]))
        else:
            sess.run(g.init)
        if cluster.workers > 1:  # the same params and data, then the chief's state for all
            agree(sess, g, expected, watchdog)
            run_step(sess, g.sync, {}, cluster, 0, watchdog)
        start = int(sess.run(g.step))
        if cluster.chief and complete:
            if start < total:
                log(f"train: resuming from {complete[-1].name} (step {start} of {total})")
            else:
                log(f"train: {complete[-1].name} already reaches step {total}; nothing to train")
        logger = (
            Logger(train_dir / layout.LIVE_DIR, start if complete else None)
            if cluster.chief
            else None
        )
        best_acc = float(sess.run(g.best))

        def save(directory: Path, kept: list[Path], keep: int, step: int) -> list[Path]:
            kind = "best-" if directory == best_dir else ""
            prefix = directory / layout.CHECKPOINT_PREFIX
            path = checkpoints.save(
                sess, g.saver, prefix, step, kind, meta=(meta.graph, meta.saver)
            )
            faults.point(f"{kind}before-state", step)
            kept = [p for p in kept if p.name != path.name] + [path]
            checkpoints.write_state(directory, kept[-keep:])
            faults.point(f"{kind}saved", step)
            for old in kept[:-keep]:
                checkpoints.delete(old)
            return kept[-keep:]

        window_loss, window_correct, window_rows = 0.0, 0.0, 0
        bar = _progress(total, start, progress if cluster.chief else False)
        step_call = _prepared_step(sess, g) if watchdog is None else None
        for step in range(start + 1, total + 1):
            rows = batch_indices(n, params.batch_size, params.seed, step - 1)
            x, y = data["train"].take(rows)  # this batch's rows only, from memory or the file
            parts = np.array_split(np.arange(len(rows)), params.micro_batches)
            feed = {g.rows: np.float32(len(rows))}
            for k, x_k, y_k in g.towers:
                feed[x_k], feed[y_k] = x[parts[k]], y[parts[k]]
            if watchdog is None:  # one process: the prepared step, same executor and bits
                loss, correct = step_call(*feed.values())
            else:
                fetches = [g.train_op, g.loss, g.correct]
                _, loss, correct = run_step(sess, fetches, feed, cluster, step, watchdog)
            window_loss += float(loss) * len(rows)
            window_correct += float(correct)
            window_rows += len(rows)
            bar.update(1)
            faults.point("step", step)
            if not cluster.chief or (step % params.checkpoint_every and step != total):
                continue
            val_loss, val_acc = _evaluate(sess, g, data["val"])
            logger.log(
                step,
                {
                    "train/loss": window_loss / window_rows,
                    "train/accuracy": window_correct / window_rows,
                    "val/loss": val_loss,
                    "val/accuracy": val_acc,
                },
            )
            bar.set_postfix(loss=f"{window_loss / window_rows:.4f}", val_acc=f"{val_acc:.4f}")
            window_loss, window_correct, window_rows = 0.0, 0.0, 0
            # compared as the variable holds it (float32): a resumed run reads the best back
            # from the checkpoint, and a later tie must not count as better in one run only
            val_acc = float(np.float32(val_acc))
            if val_acc > best_acc:
                best_acc = val_acc
                sess.run(g.set_best, {g.new_best: val_acc})
                best_dir.mkdir(exist_ok=True)
                best = save(best_dir, best, 1, step)
            complete = save(train_dir, complete, params.max_to_keep, step)
        bar.close()
    best_step = checkpoints.step_of(best[-1]) if best else None
    return Result(total, start if start else None, best_step, best_acc, cluster)


def load_prepared(prepared_dir: str | Path) -> tuple[dict, int, str]:
    """The train and val splits the prepare stage (pipeline/prepare.py) wrote — record files
    read a batch at a time (tables/records.py) —, the number of classes, and the digest of
    those files and the schema (what checkpoints belong to)."""
    prepared = Path(prepared_dir)
    schema = data.read_schema(prepared)
    paths = {name: prepared / layout.split_file(name) for name in ("train", "val")}
    splits = {name: records.open_split(prepared, name, schema, check=True) for name in paths}
    digest = digests.files_digest([*paths.values(), prepared / layout.SCHEMA])
    return splits, schema.num_classes, digest


def train_prepared(
    prepared_dir: str | Path,
    train_dir: str | Path,
    model: ModelParams,
    params: TrainParams,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    progress: bool | None = None,
    cluster: Cluster = SINGLE,
    prepared: bool = False,
    report: Callable[[str], None] | None = None,
) -> Result:
    """Train on the prepared splits (``load_prepared``); their digest decides whether
    existing checkpoints resume. ``cluster``, ``prepared``, ``report``: as ``train``."""
    splits, num_classes, digest = load_prepared(prepared_dir)
    return train(
        train_dir,
        splits,
        num_classes,
        model,
        params,
        digest,
        log=log,
        progress=progress,
        cluster=cluster,
        prepared=prepared,
        report=report,
    )


def _prepared_step(sess, g: _Graph):
    """C++'s ``Session::MakeCallable`` for a training step (the batch's rows, each tower's
    x and y in; the update run, loss and correct count out): a step without ``Session.run``'s
    Python (~0.3 ms a step). The same pruned graph and executor as ``Session.run``: the same
    bits (the committed lock's, tests/pipeline/test_pipeline.py)."""
    from tensorflow.core.protobuf import config_pb2

    feeds = [g.rows, *(t for _, x_k, y_k in g.towers for t in (x_k, y_k))]
    options = config_pb2.CallableOptions(
        feed=[t.name for t in feeds],
        fetch=[g.loss.name, g.correct.name],
        target=[g.train_op.name],
    )
    return sess._make_callable_from_options(options)


def _evaluate(sess, g: _Graph, split, batch_size: int = 1024) -> tuple[float, float]:
    loss, correct = 0.0, 0.0
    for x, y in split.chunks(batch_size):
        batch_loss, batch_correct = sess.run([g.eval_loss, g.eval_correct], {g.x: x, g.y: y})
        loss += float(batch_loss)
        correct += float(batch_correct)
    return loss / len(split), correct / len(split)


def _progress(total: int, start: int, show: bool | None):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=start,
        desc="train",
        unit="step",
        file=sys.stderr,
        disable=None if show is None else not show,
        dynamic_ncols=True,
    )
