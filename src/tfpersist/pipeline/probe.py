"""The wide probe: two small models whose contractions, cut or not, reach past every CPU's
Eigen block — an MNIST-shaped mlp 784→1024→512→10 and a cnn over 20×20 images (400 pixels:
cut into tiles) with 32 channels — trained the pipeline's way (training.train, the release
checkpoint, the frozen graph) in seconds on data drawn from a fixed seed.

The sha256 of each one's last training checkpoint and of its frozen graph are what
``bench/ledger.csv`` records for each CPU the project meets, and what ``tfpersist
check-repro --probe`` compares this machine's bytes with. ``l1d`` trains it as a CPU with
that L1 data cache would (cpucache.simulate): run it in a process that has run no op yet.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from tfpersist.core.errors import TfpersistError
from tfpersist.formats import checkpoints
from tfpersist.freezing import freeze
from tfpersist.numerics import cpucache, runtime
from tfpersist.pipeline import release, training
from tfpersist.pipeline.params import ModelParams, TrainParams
from tfpersist.tables.data import Schema

CLASSES, ROWS, VAL_ROWS, SEED = 10, 96, 32, 2026
MODELS = {  # arch → (features, model.<arch>)
    "mlp": (784, {"hidden": [1024, 512], "dropout": 0.2}),
    "cnn": (400, {"image_shape": [20, 20, 1], "filters": [32, 32], "kernel_size": 3, "dense": 64}),
}
TRAIN = TrainParams(
    seed=42,
    epochs=2,
    batch_size=16,
    optimizer="adam",
    learning_rate=0.001,
    checkpoint_every=12,
    max_to_keep=1,
    threads=1,
    micro_batches=2,
)


def splits(features: int) -> dict[str, training.Split]:
    """Ten Gaussian classes in ``features`` dimensions, drawn from ``SEED``."""
    rng = np.random.default_rng(SEED)
    centers = rng.normal(0, 1, (CLASSES, features)).astype(np.float32)
    out = {}
    for name, rows in (("train", ROWS), ("val", VAL_ROWS)):
        y = rng.integers(0, CLASSES, rows)
        x = (centers[y] + rng.normal(0, 2, (rows, features))).astype(np.float32)
        out[name] = training.Split(x, y.astype(np.int64))
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def simulate(l1d_kib: int, fresh: bool = True) -> None:
    """Eigen in TensorFlow blocks as a CPU with an L1D of ``l1d_kib`` would. L2 and L3 set
    the row and column blocks, not the sums (the issue's probe; here the cnn's bytes were
    the same under a 1 MiB L2): they are held at 2 MiB and 32 MiB, since TensorFlow's
    convolutions under a 1 MiB L2 run ten times slower on this machine. ``fresh``: the first
    sizes of the process, set before any op runs; later ones replace them (Eigen reads them at
    each contraction: the control matmuls then give what a fresh process under them gives)."""
    if fresh and cpucache.read()[0][1]:
        raise TfpersistError(
            "the probe's simulated cache sizes must be set before any TensorFlow op runs in "
            "the process; run it in a fresh one"
        )
    cpucache.simulate(l1d_kib * cpucache.KIB, 2048 * cpucache.KIB, 32 * 1024 * cpucache.KIB)


def run(
    l1d_kib: int | None = None, arches=tuple(MODELS), fresh: bool = True
) -> dict[str, dict[str, str]]:
    """Train each probe model in a temp dir: {arch: {train_sha256, frozen_sha256}}, and
    {"control": {plain_sha256}} (``control``). ``fresh``: as ``simulate``."""
    if runtime.current() == "native":
        raise TfpersistError("the probe proves the portable pin: run it under cpu_isa avx2")
    if l1d_kib is not None:
        simulate(l1d_kib, fresh)
    out = {}
    with tempfile.TemporaryDirectory(prefix="tfpersist-probe-") as tmp:
        for arch in arches:
            features, config = MODELS[arch]
            data = splits(features)
            schema = Schema("label", [f"x{i}" for i in range(features)], CLASSES)
            model = ModelParams(arch, "input_holder", "predictions", "probabilities", config)
            train_dir, release_dir = Path(tmp, arch, "train"), Path(tmp, arch, "release")
            training.train(
                train_dir, data, CLASSES, model, TRAIN, "probe", log=lambda m: None, progress=False
            )
            last = checkpoints.complete_checkpoints(train_dir)[-1]
            data_file = Path(f"{last}.data-00000-of-00001")
            release.export_inference_checkpoint(train_dir, release_dir, model, schema)
            frozen = Path(tmp, arch, "model.pb")
            freeze.freeze_to_file(release_dir, frozen, model.output_nodes)
            out[arch] = {"train_sha256": _sha256(data_file), "frozen_sha256": _sha256(frozen)}
    out["control"] = {"plain_sha256": control()}
    return out


def control() -> str:
    """sha256 of two plain (uncut) MatMuls, K = 784 and 1024: bits that follow the L1D Eigen
    blocks by (32, 48 and 64 KiB each give others) — the proof that a simulation took hold."""
    from tfpersist.tfapi.tfcompat import import_tf, session_config

    tf = import_tf()
    rng = np.random.default_rng(SEED)
    graph = tf.Graph()
    with graph.as_default():
        products = [
            tf.matmul(
                rng.normal(size=(64, k)).astype(np.float32),
                rng.normal(size=(k, 256)).astype(np.float32),
            )
            for k in (784, 1024)
        ]
    with tf.compat.v1.Session(graph=graph, config=session_config(1)) as sess:
        values = sess.run(products)
    return hashlib.sha256(b"".join(v.tobytes() for v in values)).hexdigest()
