"""The numeric runtime: which instruction set TensorFlow's CPU kernels may use.

TensorFlow's matmul and convolution kernels go through oneDNN, which picks its instruction set
at run time: AVX-512 on one machine, AVX2 on another, and each gives other float bits (the
same training run ends with other weights). Capping oneDNN at one instruction set every
machine of a team has makes the bits portable: with ``avx2`` (the default), an Intel AVX-512
Xeon and an AMD AVX2 EPYC train the same bytes. ``native`` lets oneDNN use the best the CPU
has (or what ``ONEDNN_MAX_CPU_ISA`` in the environment allows): faster, reproducible on the
same CPU type only. oneDNN's graph rewrites (on by default only on some CPUs) are turned off
with any cap, for the same reason.

The cap must be set before TensorFlow is imported; ``pin`` refuses to change it afterwards.
No TensorFlow import here.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from tfpersist.core.errors import TfpersistError

# params.yaml's runtime.cpu_isa → oneDNN's ONEDNN_MAX_CPU_ISA (None: no cap)
ISAS = {
    "avx2": "AVX2",
    "avx": "AVX",
    "sse41": "SSE41",
    "avx512": "AVX512_CORE",
    "native": None,
}
DEFAULT = "avx2"
ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
OPTS_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def check(isa: str) -> str:
    if isa not in ISAS:
        raise TfpersistError(f"cpu isa '{isa}' is not one of {', '.join(ISAS)}")
    return isa


def settings(isa: str) -> dict[str, str]:
    """The environment variables ``isa`` sets (``native``: none; the environment decides)."""
    cap = ISAS[check(isa)]
    return {ISA_VARIABLE: cap, OPTS_VARIABLE: "0"} if cap else {}


def pin(isa: str) -> None:
    """Cap oneDNN at ``isa`` for this process and its children (before TF is imported)."""
    wanted = settings(isa)
    capi = sys.modules.get("tfpersist.tfapi.capi")  # TensorFlow's C library, loaded without Python
    if "tensorflow" in sys.modules or (capi is not None and capi.loaded()):
        if any(os.environ.get(k) != v for k, v in wanted.items()):
            raise TfpersistError(
                f"cannot pin the CPU instruction set to '{isa}': TensorFlow is already loaded "
                f"with {ISA_VARIABLE}={os.environ.get(ISA_VARIABLE, 'unset')}"
            )
        return
    os.environ.update(wanted)
    # TensorFlow's C++ log (Grappler's "Starting new session", oneDNN notices) off unless
    # the user asks for it (TF_CPP_MIN_LOG_LEVEL=0): it is read when the library loads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def current() -> str:
    """The pin in force in this process (``native`` when oneDNN is not capped)."""
    cap = os.environ.get(ISA_VARIABLE)
    return next((k for k, v in ISAS.items() if v == cap), cap.lower() if cap else "native")


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The vector instruction sets the CPU reports (avx, avx2, fma, avx512f, ...)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    wanted = ("sse4_1", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    return [f for f in wanted if f in flags]


def describe() -> dict:
    """Where floats were computed: CPU, its vector extensions, the pin, the TF build."""
    info = {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "pin": current(),
        ISA_VARIABLE: os.environ.get(ISA_VARIABLE),
        OPTS_VARIABLE: os.environ.get(OPTS_VARIABLE),
    }
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        info["tensorflow"] = tf.__version__
    return info
