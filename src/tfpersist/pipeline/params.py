"""Typed, validated views of params.yaml, one dataclass per stage section.

The stage scripts read params.yaml and pass the parsed mapping here; every check happens once,
at this edge, and fails with a one-line message naming the key, what it got and what it wants.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tfpersist.core.errors import TfpersistError
from tfpersist.core.layout import PARAMS


def _section(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    if not isinstance(params, Mapping):
        raise TfpersistError(f"{PARAMS}: expected a mapping of sections, got {_kind(params)}")
    if name not in params:
        raise TfpersistError(f"{PARAMS}: section '{name}' is missing; add a '{name}:' mapping")
    section = params[name]
    if not isinstance(section, Mapping):
        raise TfpersistError(f"{PARAMS}: '{name}' must be a mapping, got {_kind(section)}")
    return section


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _get(
    section: Mapping[str, Any],
    path: str,
    want: str,
    check: Callable[[Any], bool],
    default: Any = ...,
) -> Any:
    key = path.rsplit(".", 1)[-1]
    if key not in section:
        if default is not ...:
            return default
        raise TfpersistError(f"{PARAMS}: '{path}' is missing; set it to {want}")
    value = section[key]
    if not check(value):
        raise TfpersistError(f"{PARAMS}: '{path}' must be {want}, got {_kind(value)}")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def _nonnegative_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _fraction(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1


def _positive_float(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _name(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip()) and ":" not in v and v == v.strip()


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


@dataclass(frozen=True)
class PrepareParams:
    """How the raw CSV becomes train/val/test splits."""

    label: str  # the label column; every other column is a numeric feature
    val_fraction: float
    test_fraction: float
    seed: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PrepareParams:
        s = _section(params, "prepare")
        p = cls(
            label=_get(s, "prepare.label", "the name of the label column", _text),
            val_fraction=float(_get(s, "prepare.val_fraction", "a number in (0, 1)", _fraction)),
            test_fraction=float(_get(s, "prepare.test_fraction", "a number in (0, 1)", _fraction)),
            seed=_get(s, "prepare.seed", "a non-negative integer", _nonnegative_int),
        )
        if p.val_fraction + p.test_fraction >= 1:
            raise TfpersistError(
                f"{PARAMS}: prepare.val_fraction + prepare.test_fraction must be below 1, "
                f"got {p.val_fraction} + {p.test_fraction}"
            )
        return p


@dataclass(frozen=True)
class ModelParams:
    """The network: its architecture, that architecture's sizes, and the names it exposes."""

    arch: str
    input_node: str
    predictions_node: str  # class ids (int64, shape [batch])
    probabilities_node: str  # softmax (float32, shape [batch, classes])
    config: Mapping[str, Any] = field(default_factory=dict)  # the model.<arch> subsection

    @property
    def output_nodes(self) -> list[str]:
        return [self.predictions_node, self.probabilities_node]

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ModelParams:
        s = _section(params, "model")
        arch = _get(s, "model.arch", "an architecture name such as mlp", _text)
        outputs = _get(
            s,
            "model.output_nodes",
            "a mapping with 'predictions' and 'probabilities' node names",
            lambda v: isinstance(v, Mapping),
        )
        want = "a graph node name (letters, digits, '_', '/', no ':')"
        config = s.get(arch) or {}
        if not isinstance(config, Mapping):
            raise TfpersistError(f"{PARAMS}: 'model.{arch}' must be a mapping of sizes")
        p = cls(
            arch=arch,
            input_node=_get(s, "model.input_node", want, _name),
            predictions_node=_get(outputs, "model.output_nodes.predictions", want, _name),
            probabilities_node=_get(outputs, "model.output_nodes.probabilities", want, _name),
            config=dict(config),
        )
        names = [p.input_node, *p.output_nodes]
        if len(set(names)) != len(names):
            raise TfpersistError(
                f"{PARAMS}: model.input_node and model.output_nodes must be three different "
                f"names, got {', '.join(names)}"
            )
        return p


OPTIMIZERS = ("adam", "sgd", "momentum")
MAX_MICRO_BATCHES = 64  # dropout seeds leave 64 per step (training.py)
MAX_K = 256  # one Eigen K-block on every CPU with an L1D of 32 KiB or more (graph/contractions)


@dataclass(frozen=True)
class TrainParams:
    """The training loop: seed, length, batches, optimizer and checkpointing."""

    seed: int
    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    checkpoint_every: int  # steps between checkpoints (and logged metrics)
    max_to_keep: int  # periodic checkpoints kept in models/train
    threads: int  # TF intra/inter-op threads; fixed so that results are reproducible
    micro_batches: int = 4  # each batch's fixed cut: the bytes do not depend on `workers`
    workers: int = 1  # worker processes on this machine (TF's multi-worker runtime)
    collective_timeout: float = 60.0  # seconds a worker waits for the others at each step
    max_k: int = MAX_K  # contractions cut to K ≤ this (pipeline/portable.py); 0: not cut

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainParams:
        s = _section(params, "train")
        p = cls(
            seed=_get(s, "train.seed", "a non-negative integer", _nonnegative_int),
            epochs=_get(s, "train.epochs", "a positive integer", _positive_int),
            batch_size=_get(s, "train.batch_size", "a positive integer", _positive_int),
            optimizer=_get(
                s, "train.optimizer", f"one of {', '.join(OPTIMIZERS)}", lambda v: v in OPTIMIZERS
            ),
            learning_rate=float(
                _get(s, "train.learning_rate", "a positive number", _positive_float)
            ),
            checkpoint_every=_get(
                s, "train.checkpoint_every", "a positive number of steps", _positive_int
            ),
            max_to_keep=_get(s, "train.max_to_keep", "a positive integer", _positive_int),
            threads=_get(s, "train.threads", "a positive integer", _positive_int, default=1),
            micro_batches=_get(
                s,
                "train.micro_batches",
                f"an integer from 1 to {MAX_MICRO_BATCHES}",
                lambda v: _positive_int(v) and v <= MAX_MICRO_BATCHES,
                default=4,
            ),
            workers=_get(s, "train.workers", "a positive integer", _positive_int, default=1),
            collective_timeout=float(
                _get(
                    s,
                    "train.collective_timeout",
                    "a positive number of seconds",
                    _positive_float,
                    default=60.0,
                )
            ),
            max_k=_get(
                s,
                "train.max_k",
                "a non-negative integer (0: contractions not cut)",
                _nonnegative_int,
                default=MAX_K,
            ),
        )
        if p.micro_batches % p.workers:
            raise TfpersistError(
                f"{PARAMS}: train.workers ({p.workers}) must divide train.micro_batches "
                f"({p.micro_batches}): each worker computes as many whole micro-batches"
            )
        return p


@dataclass(frozen=True)
class RuntimeParams:
    """Where floats are computed: oneDNN's instruction-set cap (runtime.py)."""

    cpu_isa: str  # avx2 (default: same bits on every AVX2+ CPU) | native | avx | sse41 | avx512

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RuntimeParams:
        from tfpersist.numerics import runtime

        s = params.get("runtime", {}) if isinstance(params, Mapping) else {}
        if not isinstance(s, Mapping):
            raise TfpersistError(f"{PARAMS}: 'runtime' must be a mapping, got {_kind(s)}")
        isa = _get(
            s,
            "runtime.cpu_isa",
            f"one of {', '.join(runtime.ISAS)}",
            lambda v: v in runtime.ISAS,
            default=runtime.DEFAULT,
        )
        return cls(cpu_isa=isa)


CHECKPOINT_CHOICES = ("best", "latest")


@dataclass(frozen=True)
class CheckpointParams:
    """Which training checkpoint becomes the release checkpoint."""

    select: str

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CheckpointParams:
        s = _section(params, "checkpoint")
        return cls(
            select=_get(
                s,
                "checkpoint.select",
                "'best' (highest validation accuracy) or 'latest'",
                lambda v: v in CHECKPOINT_CHOICES,
            )
        )


@dataclass(frozen=True)
class ExportParams:
    """Which formats the export stage ships, and how close each must stay to the frozen model."""

    formats: tuple[str, ...]  # of layout.EXPORT_FORMATS; empty: nothing shipped
    tflite_quantize: str  # none | dynamic (its accuracy is reported, not held to tolerance)
    tolerance: float  # absolute part of the closeness each format is held to (test split)
    rtol: float  # relative part: |format − frozen| <= tolerance + rtol·|frozen|

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ExportParams:
        from tfpersist.core.layout import EXPORT_FORMATS, EXPORT_RTOL, TFLITE_QUANTIZE

        s = _section(params, "export")
        formats = _get(
            s,
            "export.formats",
            f"a list of {', '.join(EXPORT_FORMATS)} (or [])",
            lambda v: isinstance(v, list) and all(f in EXPORT_FORMATS for f in v),
        )
        if len(set(formats)) < len(formats):
            raise TfpersistError(f"{PARAMS}: 'export.formats' lists a format twice: {formats}")
        return cls(
            formats=tuple(formats),
            tflite_quantize=_get(
                s,
                "export.tflite_quantize",
                " or ".join(TFLITE_QUANTIZE),
                lambda v: v in TFLITE_QUANTIZE,
                default="none",
            ),
            tolerance=_get(
                s,
                "export.tolerance",
                "a positive number (the absolute tolerance, e.g. 1.0e-5)",
                _positive_float,
            ),
            rtol=float(
                _get(
                    s,
                    "export.rtol",
                    "a number ≥ 0 (the relative tolerance, e.g. 1.0e-3)",
                    lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
                    default=EXPORT_RTOL,
                )
            ),
        )
