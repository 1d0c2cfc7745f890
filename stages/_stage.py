"""What every stage script shares: params.yaml in, the CPU pin, one-line errors and exit 1 out.

Set TFPERSIST_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tfpersist.core.errors import TfpersistError, unexpected
from tfpersist.core.layout import PARAMS
from tfpersist.numerics import runtime
from tfpersist.pipeline.params import RuntimeParams


def load_params() -> dict:
    try:
        text = Path(PARAMS).read_text()
    except FileNotFoundError:
        raise TfpersistError(
            f"{PARAMS}: not found; run the stage from the repository root"
        ) from None
    try:
        params = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise TfpersistError(f"{PARAMS}: malformed YAML{where}: {problem}") from None
    if not isinstance(params, dict):
        raise TfpersistError(f"{PARAMS}: expected a mapping of sections at the top level")
    return params


def usage(doc: str | None, argv: list[str]) -> None:
    """The script's docstring's ``usage: python stages/X.py A B …`` line held to ``argv``: a
    wrong count of arguments is one line naming them (dvc.yaml's cmd and the script agree)."""
    line = r"^usage: python (\S+)((?:[ \t]+[A-Z][A-Z0-9_]*|\n[ \t]+)+)$"  # continued: indented
    found = re.search(line, doc or "", re.M)
    if found and len(found.group(2).split()) != len(argv):
        names = " ".join(found.group(2).split())
        raise TfpersistError(
            f"usage: python {found.group(1)} {names} ({len(argv)} arguments given)"
        )


def run(main: Callable[[list[str]], None]) -> None:
    """Pin the CPU instruction set (params ``runtime``), then call ``main(argv)``; turn a
    TfpersistError into ``<stage>: error: …`` and exit 1."""
    stage = Path(sys.argv[0]).stem
    try:
        usage(sys.modules["__main__"].__doc__, sys.argv[1:])
        runtime.pin(RuntimeParams.from_params(load_params()).cpu_isa)
        main(sys.argv[1:])
    except TfpersistError as e:
        if os.environ.get("TFPERSIST_DEBUG") == "1":
            raise
        print(f"{stage}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{stage}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # a bug, or a failure nobody foresaw: still one line
        if os.environ.get("TFPERSIST_DEBUG") == "1":
            raise
        print(f"{stage}: error: {unexpected(e)}", file=sys.stderr)
        sys.exit(1)
