"""What the commands share: the argument parser that makes usage errors one line, the trust
flags' help and reading, and argument types."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from tfpersist.core.errors import UsageError

UNSAFE_HELP = (
    "run the model whatever ops it holds, even ones that touch files or run Python "
    "(see 'tfpersist inspect'); only for models you trust"
)

ALLOW_OPS_HELP = (
    "also allow these ops outside the inference allowlist, e.g. PrintV2 (comma-separated; "
    "'tfpersist inspect' lists a model's)"
)


KERAS_MODULE_HELP = (
    "a Python module of yours that registers custom Keras objects "
    "(keras.saving.register_keras_serializable): imported first, its registered objects may "
    "then appear in a Keras file (repeatable; only for code you trust)"
)


ARCHITECTURE_HELP = (
    "for Keras weights (.weights.h5) or a TF2 object-based checkpoint: the model they belong "
    "to (a .keras, a Keras 2 .h5, or its config JSON), built after the same checks"
)


MODEL_SPEC_HELP = (
    "a file or directory; PATH@REV for the DVC-tracked artifact at a git revision, branch, "
    "tag or DVC experiment; or a registered version: NAME@vX.Y.Z, NAME@latest, NAME#STAGE "
    "(e.g. digits#prod)"
)


def add_repo(p) -> None:
    p.add_argument(
        "--repo", default=".", help="DVC repository for PATH@REV and NAME@VERSION (default: .)"
    )


@contextlib.contextmanager
def local_model(spec: str, repo: str):
    """``spec`` as a local path for the command's life: a path as it is; ``PATH@REV`` and a
    registered version fetched through DVC into a scratch directory (versions.materialize;
    the resolution said on stderr). Yields the Version (``.spec`` is how to call it)."""
    import tempfile

    from tfpersist import versions

    if Path(spec).exists() or ("@" not in spec and "#" not in spec):
        yield versions.Version(spec, Path(spec))
        return
    with tempfile.TemporaryDirectory(prefix="tfpersist-") as scratch:
        yield versions.materialize(spec, repo, Path(scratch))


def trust_from(args):
    from tfpersist import safety

    return safety.Trust.of(args.allow_unsafe_ops, args.allow_ops, args.keras_module)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage errors: one line, exit 2
        raise UsageError(f"{message} (see '{self.prog} --help')")


def csv_names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    return name.strip(), value.strip()


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


def named_inputs(values: list[str]) -> str | dict[str, str]:
    """``--input FILE`` (one input) or ``--input NAME=FILE`` repeated → FILE or {NAME: FILE}."""
    named = [
        tuple(i.split("=", 1)) if "=" in i and not Path(i).exists() else (None, i) for i in values
    ]
    if len(named) > 1 and any(name is None for name, _ in named):
        raise UsageError("with several --input, name each placeholder: --input NAME=FILE")
    if len({name for name, _ in named}) < len(named):
        raise UsageError("--input: each placeholder once")
    return named[0][1] if named[0][0] is None else dict(named)


def named_data(inputs: str | dict[str, str], card: dict | None = None):
    """The arrays ``--input`` names (``named_inputs``): one array (a CSV's columns as the
    ``card``'s features say), or {placeholder: array}."""
    from tfpersist.running import prediction

    if isinstance(inputs, str):
        return prediction.read_inputs(Path(inputs), card)
    return {name: prediction.read_inputs(Path(f), None) for name, f in inputs.items()}
