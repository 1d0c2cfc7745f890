"""Workloads that bench.py times in fresh processes: ``python bench/workloads.py NAME ARGS``.

Each prints one line of JSON with what it measured inside the process (so that TF's import
time stays out of throughput figures).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_checkpoint(out: str, params_millions: str) -> None:
    """A TF1 Saver checkpoint of an MLP with about N million float32 parameters."""
    import tensorflow as tf

    tf.compat.v1.disable_v2_behavior()
    v1 = tf.compat.v1
    n = int(float(params_millions) * 1e6)
    width = 1024 if n < 8e6 else 4096
    layers = max(1, round(n / (width * width)))
    graph = tf.Graph()
    with graph.as_default():
        h = v1.placeholder(tf.float32, [None, width], name="x")
        for i in range(layers):
            # Initialised by an op, as training code does (no weights inside the .meta).
            w = v1.get_variable(
                f"layer_{i}/w",
                [width, width],
                initializer=v1.random_normal_initializer(stddev=width**-0.5, seed=i),
            )
            h = tf.nn.relu(tf.matmul(h, w))
        tf.identity(h, name="out")
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, f"{out}/model.ckpt")
    print(json.dumps({"parameters": layers * width * width, "layers": layers, "width": width}))


# A point where per-step overhead does not dominate: two 1024-wide hidden layers, batches of
# 256, 16k synthetic rows of 784 features (MNIST-sized) whose class is a fixed linear rule.
WIDE = {"rows": 16_384, "features": 784, "classes": 10, "hidden": [1024, 1024], "batch": 256}
# The same rows through an MNIST-shaped mlp: 784 → 512 → 512 → 10.
SYNTHETIC = {"mlp-wide": [1024, 1024], "mnist": [512, 512]}


def _data(workload: str):
    """(x, y, number of classes): the prepared digits, or the wide workload's rows."""
    if workload in SYNTHETIC:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(WIDE["rows"], WIDE["features"])).astype(np.float32)
        y = (x @ rng.normal(size=(WIDE["features"], WIDE["classes"]))).argmax(1)
        return x, y.astype(np.int64), WIDE["classes"]
    sys.path.insert(0, str(ROOT / "src"))
    from tfpersist.tables import data, records

    prepared = ROOT / "data" / "prepared"
    schema = data.read_schema(prepared)
    x, y = records.read_split(prepared, "train", schema)
    return x, y, schema.num_classes


def _params(workload: str):
    """params.yaml's model and train sections for ``workload`` (an arch, or mlp-wide)."""
    import yaml

    sys.path.insert(0, str(ROOT / "src"))
    from tfpersist.pipeline.params import ModelParams, TrainParams

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"]["arch"] = "mlp" if workload in SYNTHETIC else workload
    if workload in SYNTHETIC:
        raw["model"]["mlp"]["hidden"] = SYNTHETIC[workload]
        raw["train"]["batch_size"] = WIDE["batch"]
    return ModelParams.from_params(raw), TrainParams.from_params(raw)


def _timed_training(
    arch: str, epochs: str, out: str, cluster=None, threads=None, max_k=None
) -> dict:
    """The pipeline's training loop (train()) on ``arch``'s data, one checkpoint at the end,
    as worker ``cluster.task`` of several when given: its steps and seconds inside train()."""
    import dataclasses

    from tfpersist.pipeline import training

    x, y, classes = _data(arch)
    model, train = _params(arch)
    steps = int(epochs) * math.ceil(len(x) / train.batch_size)
    train = dataclasses.replace(train, epochs=int(epochs), checkpoint_every=steps)
    if threads is not None:
        train = dataclasses.replace(train, threads=int(threads))
    if max_k is not None:
        train = dataclasses.replace(train, max_k=int(max_k))
    split = training.Split(x, y)
    start = time.perf_counter()
    training.train(
        out,
        {"train": split, "val": split},
        classes,
        model,
        train,
        "bench",
        log=lambda m: None,
        progress=False,
        cluster=cluster or training.SINGLE,
    )
    seconds = time.perf_counter() - start
    return {"steps": steps, "seconds": seconds, "examples": int(epochs) * len(x), "arch": arch}


def train_ours(arch: str, epochs: str, out: str, max_k: str | None = None) -> None:
    """The pipeline's training loop in this process (``max_k``: train.max_k, 0 = uncut)."""
    run = _timed_training(arch, epochs, out, max_k=max_k)
    print(
        json.dumps({"examples_per_s": run["examples"] / run["seconds"], "seconds": run["seconds"]})
    )


# An op's class in the profile of a training step (by its type; oneDNN's rewrites included).
OP_CLASSES = (("matmul", "MatMul"), ("conv", "Conv"), ("pool", "Pool"), ("adam", "ResourceApply"))


def pin_profile(arch: str, epochs: str, threads: str, out: str) -> None:
    """Under this process's oneDNN settings: the pipeline's loop timed (train()), the sha256
    of the checkpoint it wrote (the bits); then, on the same training graph in a new session,
    the mean time of 20 steps after its first (oneDNN builds its kernels in the first), and
    where a step's time goes: five steps traced by TensorFlow (RunMetadata), in ms per step by
    op class."""
    import dataclasses
    import hashlib

    import tensorflow as tf

    from tfpersist.pipeline import cluster, training

    run = _timed_training(arch, epochs, out, threads=threads)
    data = sorted(Path(out).glob("*.data-*"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in data)).hexdigest()
    x, y, classes = _data(arch)
    model, train = _params(arch)
    train = dataclasses.replace(train, threads=int(threads))
    v1 = tf.compat.v1
    g = training._Graph(model, train, training.Split(x, y), classes)
    config = cluster.session_config(train)
    per_class: dict[str, float] = {}
    traced, timed = 5, 20

    def feed(step: int) -> dict:
        rows = training.batch_indices(len(y), train.batch_size, train.seed, step)
        parts = np.array_split(rows, train.micro_batches)
        fed = {g.rows: float(len(rows))}
        for k, x_k, y_k in g.towers:
            fed[x_k], fed[y_k] = x[parts[k]], y[parts[k]]
        return fed

    with v1.Session(graph=g.graph, config=config) as sess:
        sess.run(g.init)
        feeds = [feed(step) for step in range(timed + 1)]
        sess.run(g.train_op, feeds[0])
        start = time.perf_counter()
        for fed in feeds[1:]:
            sess.run(g.train_op, fed)
        step_ms = (time.perf_counter() - start) / timed * 1e3
        for step in range(traced + 1):
            meta = v1.RunMetadata()
            options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
            sess.run(g.train_op, feeds[step], options=options, run_metadata=meta)
            if step == 0:  # the trace's own first-call costs
                continue
            for node in (n for d in meta.step_stats.dev_stats for n in d.node_stats):
                op = node.timeline_label.split("(")[0].split("=")[-1].strip()
                kind = next((c for c, part in OP_CLASSES if part in op), "other")
                per_class[kind] = per_class.get(kind, 0.0) + node.all_end_rel_micros / 1e3
    print(
        json.dumps(
            {
                "examples_per_s": run["examples"] / run["seconds"],
                "sha256": digest,
                "step_ms": step_ms,
                "ms_per_step": {k: v / traced for k, v in per_class.items()},
            }
        )
    )


def _one_worker(arch, epochs, out, cluster, sender) -> None:
    run = _timed_training(arch, epochs, out, cluster)
    x, _, classes = _data(arch)
    model, _ = _params(arch)
    parameters = sum(int(np.prod(v.shape)) for v in _trainable(model, x.shape[1], classes))
    sender.send({"steps": run["steps"], "seconds": run["seconds"], "parameters": parameters})


def _trainable(model, features: int, classes: int):
    import tensorflow as tf

    from tfpersist.pipeline import model as model_lib

    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [None, features])
        model_lib.logits(x, model, classes)
        return tf.compat.v1.trainable_variables()


def train_workers(arch: str, epochs: str, workers: str, out: str) -> None:
    """The pipeline's loop on N worker processes of TF's multi-worker runtime (N = 1: one
    process); the chief's steps/s inside training (imports and start-up left out)."""
    import multiprocessing

    from tfpersist.pipeline.cluster import Cluster
    from tfpersist.pipeline.workers import free_ports

    n = int(workers)
    addresses = tuple(f"127.0.0.1:{p}" for p in free_ports(n))
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe(duplex=False) for _ in range(n)]
    processes = [
        context.Process(
            target=_one_worker,
            args=(arch, epochs, f"{out}/{i}", Cluster(n, i, addresses), pipes[i][1]),
        )
        for i in range(n)
    ]
    for p in processes:
        p.start()
    for _, sender in pipes:
        sender.close()
    try:
        chief = pipes[0][0].recv()
    except EOFError:
        raise SystemExit("train-workers: the chief ended without a result") from None
    for p in processes:
        p.join()
    print(json.dumps({**chief, "steps_per_s": chief["steps"] / chief["seconds"]}))


def train_keras(arch: str, epochs: str) -> None:
    """The same architecture, batch size and optimizer with Keras 3 model.fit."""
    import tensorflow as tf

    model_params, train = _params(arch)
    tf.config.threading.set_intra_op_parallelism_threads(train.threads)
    tf.config.threading.set_inter_op_parallelism_threads(train.threads)
    import keras

    x, y, classes = _data(arch)
    cfg = model_params.config
    layers = [keras.Input((x.shape[1],)), keras.layers.Normalization()]
    if model_params.arch == "mlp":
        for units in cfg["hidden"]:
            layers += [
                keras.layers.Dense(units, activation="relu"),
                keras.layers.Dropout(cfg["dropout"]),
            ]
    else:
        layers.append(keras.layers.Reshape(tuple(cfg["image_shape"])))
        for filters in cfg["filters"]:
            layers += [
                keras.layers.Conv2D(filters, cfg["kernel_size"], padding="same", activation="relu"),
                keras.layers.MaxPooling2D(2, padding="same"),
            ]
        layers += [
            keras.layers.Flatten(),
            keras.layers.Dense(cfg["dense"], activation="relu"),
            keras.layers.Dropout(cfg["dropout"]),
        ]
    layers.append(keras.layers.Dense(classes))
    model = keras.Sequential(layers)
    model.layers[0].adapt(x)
    model.compile(
        keras.optimizers.Adam(train.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=32,  # as a user tuning fit for small batches would
    )
    start = time.perf_counter()
    model.fit(x, y, batch_size=train.batch_size, epochs=int(epochs), verbose=0, shuffle=True)
    seconds = time.perf_counter() - start
    print(json.dumps({"examples_per_s": int(epochs) * len(x) / seconds, "seconds": seconds}))


def _checkpoint_session(checkpoint: str, outputs: list[str]):
    """The peer as a competent TF1 user writes it: import_meta_graph, restore, then
    sess.run on tensors looked up once."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    sess = v1.Session(graph=graph)
    with graph.as_default():
        prefix = str(Path(checkpoint) / "model.ckpt")
        saver = v1.train.import_meta_graph(f"{prefix}.meta", clear_devices=True)
        saver.restore(sess, prefix)
    fetches = [graph.get_tensor_by_name(f"{n}:0") for n in outputs]
    feed = graph.get_tensor_by_name("input_holder:0")
    return lambda rows: sess.run(fetches, {feed: rows})


def inference(frozen: str, optimized: str, checkpoint: str, repeats: str) -> None:
    """Rows/s of the frozen .pb, the --optimize .pb and the release checkpoint, interleaved."""
    from tfpersist.running.runner import Runner
    from tfpersist.tables import records

    prepared = ROOT / "data" / "prepared"
    test, _ = records.read_split(prepared, "test")
    big = np.random.default_rng(0).uniform(0, 16, (10_000, test.shape[1])).astype(np.float32)
    outputs = ["predictions", "probabilities"]
    runners = {"frozen": Runner.from_frozen(frozen), "optimized": Runner.from_frozen(optimized)}
    calls = {
        name: (lambda rows, r=r: r.run(rows, "input_holder", outputs, batch_size=len(rows)))
        for name, r in runners.items()
    }
    calls["checkpoint"] = _checkpoint_session(checkpoint, outputs)
    result = {}
    for label, rows in (("test", test), ("10k", big)):
        times = {k: [] for k in calls}
        loops = max(1, 20_000 // len(rows))
        for call in calls.values():  # warm up
            call(rows)
        for _ in range(int(repeats)):
            for name, call in calls.items():
                start = time.perf_counter()
                for _ in range(loops):
                    call(rows)
                times[name].append((time.perf_counter() - start) / loops)
        result[label] = {k: len(rows) / float(np.median(v)) for k, v in times.items()}
    print(json.dumps(result))


def ledger_row(arch: str, out: str, l1d: str = "") -> None:
    """The pipeline's own training of ``arch`` (params.yaml, the prepared digits, with
    model.mlp.hidden [1024, 1024] for mlp-wide: what ``dvc exp run -S
    'model.mlp.hidden=[1024,1024]'`` trains) and the frozen graph of its chosen checkpoint:
    their sha256, for bench/ledger.csv. ``l1d``: as a CPU with that L1D (KiB) would."""
    import hashlib

    import yaml

    if l1d:
        from tfpersist.pipeline import probe

        probe.simulate(int(l1d))

    from tfpersist.freezing import freeze
    from tfpersist.pipeline import release, training
    from tfpersist.pipeline.params import CheckpointParams, ModelParams, TrainParams

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    if arch == "mlp-wide":
        raw["model"]["mlp"]["hidden"] = [1024, 1024]
    model, train = ModelParams.from_params(raw), TrainParams.from_params(raw)
    prepared = ROOT / "data" / "prepared"
    train_dir, release_dir = Path(out, "train"), Path(out, "release")
    training.train_prepared(prepared, train_dir, model, train, log=lambda m: None, progress=False)
    from tfpersist.formats import checkpoints
    from tfpersist.tables import data

    last = checkpoints.complete_checkpoints(train_dir)[-1]
    chosen = train_dir / "best" if CheckpointParams.from_params(raw).select == "best" else train_dir
    release.export_inference_checkpoint(chosen, release_dir, model, data.read_schema(prepared))
    frozen = Path(out, "model.pb")
    freeze.freeze_to_file(release_dir, frozen, model.output_nodes)
    digest = {
        "train_sha256": hashlib.sha256(Path(f"{last}.data-00000-of-00001").read_bytes()),
        "frozen_sha256": hashlib.sha256(frozen.read_bytes()),
    }
    print(json.dumps({k: v.hexdigest() for k, v in digest.items()}))


# The scale workload: CSVs of N rows × 64 integer features (0..31) and a label of 10 classes
# from a fixed rule; about 175 bytes a row (10M rows: 1.7 GB).
SCALE = {"features": 64, "classes": 10, "chunk": 200_000}


def scale_csv(path: str, rows: str) -> None:
    """Write the scale workload's CSV of ``rows`` rows, a chunk at a time."""
    import pandas as pd

    n, f = int(rows), SCALE["features"]
    rule = np.random.default_rng(0).normal(size=(f, SCALE["classes"]))
    columns = [f"f{i}" for i in range(f)]
    with open(path, "w") as out:
        for i, start in enumerate(range(0, n, SCALE["chunk"])):
            rng = np.random.default_rng([1, i])
            x = rng.integers(0, 32, size=(min(SCALE["chunk"], n - start), f))
            table = pd.DataFrame(x, columns=columns)
            table.insert(0, "label", ((x - 16) @ rule).argmax(1))
            if start == 0:  # every class present in the first rows (prepare checks)
                table.loc[: SCALE["classes"] - 1, "label"] = range(SCALE["classes"])
            out.write(table.to_csv(index=False, header=i == 0, lineterminator="\n"))
    print(json.dumps({"rows": n}))


def scale_prepare(csv: str, out: str) -> None:
    """The prepare stage's library call on the scale CSV."""
    from tfpersist.pipeline import prepare
    from tfpersist.pipeline.params import PrepareParams

    start = time.perf_counter()
    _, sizes = prepare.prepare(csv, out, PrepareParams("label", 0.15, 0.15, 2026))
    print(json.dumps({"seconds": time.perf_counter() - start, **sizes}))


def scale_train(prepared: str, out: str, rows: str) -> None:
    """The pipeline's training (params.yaml's model, batches of 256) on the prepared record
    files, read as the train stage reads them, for epochs covering at least ``rows`` rows:
    rows/s inside train() — its normalization pass, final validation and checkpoint
    included."""
    import dataclasses

    from tfpersist.pipeline import training
    from tfpersist.tables import data, records

    raw = _params("mlp")
    model, train = raw
    schema = data.read_schema(prepared)
    splits = {name: records.open_split(prepared, name, schema) for name in ("train", "val")}
    n = len(splits["train"])
    epochs = max(1, math.ceil(int(rows) / n))
    train = dataclasses.replace(train, batch_size=256, epochs=epochs)
    steps = epochs * math.ceil(n / train.batch_size)
    train = dataclasses.replace(train, checkpoint_every=steps)
    start = time.perf_counter()
    training.train(out, splits, schema.num_classes, model, train, "bench", progress=False)
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": epochs * n, "seconds": seconds, "rows_per_s": epochs * n / seconds}))


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
