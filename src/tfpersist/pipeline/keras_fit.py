"""Training with Keras's ``fit`` instead of the TF1 loop: resumable to the same bytes, released
as a ``model.keras`` the freeze, export, evaluate and report stages take as they take the
TF1 release checkpoint (examples/keras-fit).

The team's code is a function from the input to the class probabilities (``build``, given
the training rows too, e.g. to adapt a Normalization layer); this
module adds what makes the run a pipeline stage:

- the input is named after ``model.input_node`` and the released model's outputs after
  ``model.output_nodes`` (probabilities, and the class ids as int64), so the frozen graph
  has the TF1 pipeline's signature;
- the batch order of epoch e is the TF1 loop's (keyed by (seed, e), tables/order.py;
  Keras's own shuffling starts over after a resume), dropout's seed state is set from
  (seed, e) at each epoch begin (BackupAndRestore does not save it), ops are deterministic
  on fixed thread pools: a run killed at any point and resumed ends with the bytes of one
  that was not;
- ``keras.callbacks.BackupAndRestore`` in the training directory (a DVC ``persist: true``
  output) with a fingerprint of the params, the data and the model's config: other params
  start afresh, like the TF1 loop;
- the best epoch by validation accuracy kept beside it (``checkpoint.select: best``);
- dvclive's metrics and plots per epoch, at the global step, without timestamps;
- ``model.keras`` written without Keras's save date and zip timestamps, and
  ``signature.json`` (its frozen signature, feature columns, label, classes) beside it.

Layout of the training directory:

    fingerprint.json   what the backup belongs to
    backup/            BackupAndRestore's latest epoch (weights, optimizer, epoch)
    best.weights.h5    the best epoch's weights; best.json its epoch and accuracy
    live/              dvclive
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpersist.core import atomic, digests, faults, layout
from tfpersist.core.errors import TfpersistError
from tfpersist.pipeline import training
from tfpersist.pipeline.params import MAX_K, ModelParams, TrainParams
from tfpersist.tables import data, records
from tfpersist.tfapi.tfcompat import enable_determinism, import_tf

tf = import_tf()

BACKUP_DIR = "backup"
BEST_WEIGHTS = "best.weights.h5"
BEST_INFO = "best.json"
MODEL_FILE = "model.keras"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date: no build time in the file


@dataclass(frozen=True)
class Result:
    epochs: int
    resumed_from: int | None  # the epoch a backup resumed at
    best_epoch: int | None
    best_val_accuracy: float
    model: Path


def _optimizer(name: str, learning_rate: float):
    import keras

    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    return keras.optimizers.SGD(learning_rate)


def _models(build, model: ModelParams, train_x, num_classes: int):
    """The model ``fit`` trains (input → probabilities) and the one released (the same
    layers, outputs named as the params say)."""
    import keras

    x = keras.Input((train_x.shape[1],), name=model.input_node)
    probabilities = build(x, num_classes, train_x)
    if tuple(getattr(probabilities, "shape", ())) != (None, num_classes):
        raise TfpersistError(
            f"the model's output has shape {tuple(getattr(probabilities, 'shape', ()))}; "
            f"build(inputs, num_classes, train_x) must return the class probabilities, "
            f"shape (None, {num_classes})"
        )
    # top_k, not argmax: Keras's float argmax adds a negative-zero fix (Bitcast, BitwiseAnd)
    # that TFLite cannot run; ties go to the lower index in both
    _, top = keras.ops.top_k(probabilities, k=1)
    ids = keras.ops.cast(keras.ops.squeeze(top, axis=-1), "int64")
    released = keras.Model(
        x, {model.probabilities_node: probabilities, model.predictions_node: ids}
    )
    return keras.Model(x, probabilities), released


class _Batches:
    """Epoch e's batches in the order ``training.batch_indices`` gives the TF1 loop."""

    def __init__(self, x, y, batch_size: int, seed: int):
        import keras

        outer = self

        class Epochs(keras.utils.PyDataset):
            def __init__(self):
                super().__init__()

            def __len__(self):
                return math.ceil(len(y) / batch_size)

            def __getitem__(self, i):
                rows = training.batch_indices(len(y), batch_size, seed, outer.epoch * len(self) + i)
                return x[rows], y[rows]

        self.epoch = 0
        self.dataset = Epochs()


def _in_order(x, y, batch_size: int):
    """The validation split in order, as a PyDataset: arrays would go through Keras's
    tf.data adapter, whose ParallelMapDataset makes TensorFlow 2.21 log an ERROR line
    ("NodeDef mentions attribute use_unbounded_threadpool") on every run."""
    import keras

    class InOrder(keras.utils.PyDataset):
        def __len__(self):
            return math.ceil(len(y) / batch_size)

        def __getitem__(self, i):
            return x[i * batch_size : (i + 1) * batch_size], y[
                i * batch_size : (i + 1) * batch_size
            ]

    return InOrder()


def _callbacks(train_dir: Path, batches: _Batches, seed: int, logger, steps: int):
    import keras

    class EpochState(keras.callbacks.Callback):
        """The epoch's batch order and each dropout layer's seed state, from (seed, epoch)
        and the layer's place alone."""

        def on_epoch_begin(self, epoch, logs=None):
            batches.epoch = epoch
            generators = [
                g
                for layer in self.model._flatten_layers()
                if (g := getattr(layer, "seed_generator", None)) is not None
            ]
            for i, g in enumerate(generators):
                state = [(seed + i) % 2**32, (epoch << 20) % 2**32]
                g.state.assign(np.array(state, g.state.dtype))

    class Best(keras.callbacks.Callback):
        """The best epoch's weights, its accuracy read back after a resume; dvclive rows."""

        def on_train_batch_end(self, batch, logs=None):
            faults.point("step", int(self.model.optimizer.iterations.numpy()))

        def on_epoch_end(self, epoch, logs=None):
            faults.point("epoch-end", epoch + 1)
            logs = logs or {}
            accuracy = float(logs.get("val_accuracy", 0.0))
            best = _best(train_dir)
            if best is None or accuracy > best["val_accuracy"]:
                with atomic.scratch_beside(train_dir / BEST_WEIGHTS) as tmp:
                    self.model.save_weights(tmp / BEST_WEIGHTS)
                    (tmp / BEST_WEIGHTS).replace(train_dir / BEST_WEIGHTS)
                atomic.write_json(
                    train_dir / BEST_INFO, {"epoch": epoch + 1, "val_accuracy": accuracy}
                )
            logger.log(
                (epoch + 1) * steps,
                {
                    "train/loss": logs.get("loss", 0.0),
                    "train/accuracy": logs.get("accuracy", 0.0),
                    "val/loss": logs.get("val_loss", 0.0),
                    "val/accuracy": accuracy,
                },
            )

    class Backup(keras.callbacks.BackupAndRestore):
        """Keras's BackupAndRestore (it restores the weights, the optimizer and the epoch at
        the start of ``fit``), its weights and epoch written as one: a kill between its own
        two writes would resume the next epoch's weights at the last one's epoch."""

        def on_epoch_end(self, epoch, logs=None):
            with atomic.replace_dir(self.backup_dir) as tmp:
                self.model.save_weights(tmp / Path(self._weights_path).name)
                atomic.write_json(
                    tmp / Path(self._training_metadata_path).name,
                    {"epoch": epoch + 1, "batch": 0},
                )

    backup = Backup(str(train_dir / BACKUP_DIR), save_freq="epoch", delete_checkpoint=False)
    # the best epoch is noted before the backup says the epoch is done
    return [EpochState(), Best(), backup]


def _threads(n: int) -> None:
    """Fixed thread pools (the bits of some kernels depend on them); a process whose
    runtime already started keeps its own (the stage script sets them first)."""
    for get, set_ in (
        (
            tf.config.threading.get_intra_op_parallelism_threads,
            tf.config.threading.set_intra_op_parallelism_threads,
        ),
        (
            tf.config.threading.get_inter_op_parallelism_threads,
            tf.config.threading.set_inter_op_parallelism_threads,
        ),
    ):
        if get() != n:
            with contextlib.suppress(RuntimeError):
                set_(n)


def _best(train_dir: Path) -> dict | None:
    try:
        best = json.loads((train_dir / BEST_INFO).read_text())
    except (OSError, ValueError):
        return None
    return best if isinstance(best, dict) and (train_dir / BEST_WEIGHTS).is_file() else None


def _backup_epoch(train_dir: Path) -> int | None:
    """The epochs the backup holds (where BackupAndRestore resumes), or None."""
    try:
        meta = json.loads((train_dir / BACKUP_DIR / "training_metadata.json").read_text())
    except (OSError, ValueError):
        return None
    return int(meta["epoch"]) if isinstance(meta, dict) and "epoch" in meta else None


def fit(
    build: Callable,
    prepared_dir: str | Path,
    train_dir: str | Path,
    release_dir: str | Path,
    model: ModelParams,
    params: TrainParams,
    select: str = "best",
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> Result:
    """Train ``build(keras.Input, num_classes, train_x) -> probabilities`` with ``fit`` on
    the prepared splits (resuming from ``train_dir``), then write the ``select``-ed epoch
    (best | latest) to ``release_dir``: model.keras and signature.json."""
    import keras

    prepared, train_dir = Path(prepared_dir), Path(train_dir)
    schema = data.read_schema(prepared)
    paths = {name: prepared / layout.split_file(name) for name in ("train", "val")}
    splits = {name: records.read_split(prepared, name, schema) for name in paths}
    (x, y), (vx, vy) = splits["train"], splits["val"]

    enable_determinism()
    _threads(params.threads)
    keras.utils.set_random_seed(params.seed)
    trainable, released = _models(build, model, x, schema.num_classes)
    config = json.dumps(released.get_config(), sort_keys=True, default=str).encode()
    expected = training.fingerprint(
        model, params, digests.files_digest([*paths.values(), prepared / layout.SCHEMA])
    )
    expected["keras_model"] = hashlib.sha256(config).hexdigest()
    training.prepare_directory(train_dir, expected, log)
    resumed = _backup_epoch(train_dir)
    if resumed is not None and resumed > params.epochs:
        log(f"{train_dir}: its backup is past train.epochs={params.epochs}; starting fresh")
        shutil.rmtree(train_dir)
        training.prepare_directory(train_dir, expected, log)
        resumed = None
    if resumed is not None:
        log(f"train: resuming from epoch {resumed} of {params.epochs}")
    wide = past_the_bound(trainable, params.batch_size)
    if wide:
        log(
            f"train: warning: {', '.join(wide)} contract over more than K = {MAX_K}: Keras's "
            "layers are not cut as the TF1 loop's are, so these bytes may differ on a CPU with "
            "another L1 data cache (32 KiB vs 48 KiB); the TF1 loop (model.arch) cuts them"
        )

    trainable.compile(
        optimizer=_optimizer(params.optimizer, params.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    batches = _Batches(x, y, params.batch_size, params.seed)
    steps = len(batches.dataset)
    logger = training.Logger(
        train_dir / layout.LIVE_DIR, None if resumed is None else resumed * steps
    )
    trainable.fit(
        batches.dataset,
        epochs=params.epochs,
        shuffle=False,
        validation_data=_in_order(vx, vy, params.batch_size),
        callbacks=_callbacks(train_dir, batches, params.seed, logger, steps),
        verbose=0,
    )
    best = _best(train_dir)
    if select == "best" and best is not None:
        trainable.load_weights(train_dir / BEST_WEIGHTS)
    path = save_release(released, release_dir, model, schema)
    return Result(
        params.epochs,
        resumed,
        best and best["epoch"],
        best["val_accuracy"] if best else float("nan"),
        path,
    )


def past_the_bound(model, rows: int, bound: int = MAX_K) -> list[str]:
    """Each layer with a kernel whose forward, input-gradient or weight-gradient contraction
    sums over more than ``bound`` (Dense: inputs, units, rows; a convolution: taps × input
    channels, taps × output channels, rows × output pixels), as "name (K = …)"."""
    out = []
    for layer in model._flatten_layers(include_self=False):
        kernel = getattr(layer, "kernel", None)
        shape = [int(d) for d in getattr(kernel, "shape", ())]
        if len(shape) == 2:
            ks = [shape[0], shape[1], rows]
        elif len(shape) >= 3:
            taps = math.prod(shape[:-2])
            output = [int(d) for d in layer.output.shape[1:-1] if d is not None]
            ks = [taps * shape[-2], taps * shape[-1], rows * math.prod(output)]
        else:
            continue
        if max(ks) > bound:
            out.append(f"{layer.name} (K = {max(ks)})")
    return out


def save_release(model, release_dir: str | Path, params: ModelParams, schema) -> Path:
    """``release_dir``/model.keras (reproducible bytes) and signature.json: what the frozen
    graph will take and give, and the data it reads (freeze and predict use it)."""
    from tfpersist.freezing import keras as keras_freezing
    from tfpersist.graph import signature

    release_dir = Path(release_dir)
    with atomic.replace_dir(release_dir) as tmp:
        raw = tmp / f"raw-{MODEL_FILE}"
        model.save(raw)
        atomic.write_bytes(tmp / MODEL_FILE, reproducible_keras(raw.read_bytes()))
        raw.unlink()
        graph_def, _, _ = keras_freezing.frozen_graph_def(model, MODEL_FILE)
        sig = signature.describe_graph_def(graph_def, params.output_nodes)
        atomic.write_json(tmp / layout.SIGNATURE, {**sig, **schema.to_json()})
    return release_dir / MODEL_FILE


def _numbered(obj, ids: dict):
    if isinstance(obj, dict):
        return {
            k: ids.setdefault(v, len(ids)) if k == "shared_object_id" else _numbered(v, ids)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_numbered(v, ids) for v in obj]
    return obj


def reproducible_keras(archive: bytes) -> bytes:
    """A .keras archive without what changes from one save to the next: the save date in
    metadata.json, the members' zip timestamps, and the ``shared_object_id`` Keras writes
    for an object several layers share (the Python ``id()``, an address: numbered here in
    order of appearance)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            content = zin.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(content)
                meta.pop("date_saved", None)
                content = json.dumps(meta, sort_keys=True).encode()
            elif info.filename == "config.json":
                content = json.dumps(_numbered(json.loads(content), {})).encode()
            member = zipfile.ZipInfo(info.filename, ZIP_EPOCH)
            member.compress_type = info.compress_type
            member.external_attr = 0o644 << 16
            zout.writestr(member, content)
    return out.getvalue()
