"""The tfpersist command: freeze, inspect, predict, compare, export and serve any TensorFlow model,
release and promote its versions, check that the pipeline reproduces, and run the local DVC
remote.

TensorFlow is imported only inside the commands that need it, so ``--help`` is instant.
Usage errors exit 2, failures exit 1 with one line ``tfpersist: error: …`` (``--debug`` or
TFPERSIST_DEBUG=1 shows the traceback).

One module per command, its parser beside its handler (``add_parser``); the library does
the work. Imports: anything.
"""

from __future__ import annotations

import argparse
import os
import sys

from tfpersist import __version__
from tfpersist.cli import (
    check_repro,
    compare,
    export,
    freeze,
    inspect,
    predict,
    registry,
    remote,
    serve,
)
from tfpersist.cli.common import ALLOW_OPS_HELP, KERAS_MODULE_HELP, UNSAFE_HELP, Parser, csv_names
from tfpersist.core.errors import TfpersistError, UsageError, unexpected


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tfpersist", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--version", action="version", version=f"tfpersist {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--cpu-isa",
        default=os.environ.get("TFPERSIST_CPU_ISA", "avx2"),
        help="instruction set TensorFlow's CPU kernels may use: avx2 (default; the same bits on "
        "every AVX2 CPU, Intel or AMD), native (fastest; same CPU type only), avx, sse41, avx512",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    trust = argparse.ArgumentParser(add_help=False)  # flags shared by the commands that run
    trust.add_argument(
        "--allow-ops", type=csv_names, default=[], metavar="A,B", help=ALLOW_OPS_HELP
    )
    trust.add_argument("--allow-unsafe-ops", action="store_true", help=UNSAFE_HELP)
    trust.add_argument(
        "--keras-module", action="append", default=[], metavar="MODULE", help=KERAS_MODULE_HELP
    )
    for add in (
        freeze.add_parser,
        inspect.add_parser,
        predict.add_parser,
        compare.add_parser,
        export.add_parser,
        serve.add_parser,
        registry.add_parser,
        check_repro.add_parser,
        remote.add_parser,
    ):
        add(sub, trust)

    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("TFPERSIST_DEBUG") == "1"
    try:
        args = build_parser().parse_args(argv)
        from tfpersist.numerics import runtime

        runtime.pin(runtime.check(args.cpu_isa))
        return args.func(args) or 0
    except UsageError as e:
        if debug:
            raise
        print(f"tfpersist: error: {e}", file=sys.stderr)
        return 2
    except TfpersistError as e:
        if debug:
            raise
        print(f"tfpersist: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tfpersist: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug, or a failure nobody foresaw: still one line
        if debug:
            raise
        print(f"tfpersist: error: {unexpected(e)}", file=sys.stderr)
        return 1
