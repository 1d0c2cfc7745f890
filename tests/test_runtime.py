"""The CPU pin: oneDNN's instruction set is capped before TensorFlow loads, so the float bits
are the same on an AVX-512 machine and an AVX2 one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.numerics import runtime

# A few float-heavy steps (matmuls of odd sizes, as training does); prints a hash of the bits.
WORKLOAD = """
import hashlib, sys
from tfpersist.numerics import runtime
runtime.pin(sys.argv[1])
import numpy as np, tensorflow as tf
rng = np.random.default_rng(0)
x = tf.constant(rng.normal(size=(257, 129)).astype(np.float32))
w = tf.constant(rng.normal(size=(129, 67)).astype(np.float32))
h = x
for _ in range(3):
    h = tf.tanh(tf.matmul(h, w) @ tf.transpose(w))
print(hashlib.sha256(h.numpy().tobytes()).hexdigest())
"""


def bits(pin: str, machine_cap: str | None) -> str:
    """The workload's hash under ``pin`` on a machine whose CPU tops out at ``machine_cap``
    (simulated with ONEDNN_MAX_CPU_ISA in the environment; None: this CPU's best)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEDNN", "TF_ENABLE"))}
    if machine_cap:
        env["ONEDNN_MAX_CPU_ISA"] = machine_cap
    result = subprocess.run(
        [sys.executable, "-c", WORKLOAD, pin], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout.strip()


def test_the_pin_gives_an_avx512_machine_the_bits_of_an_avx2_machine():
    pinned_here = bits("avx2", None)
    assert pinned_here == bits("native", "AVX2")  # an AVX2-only CPU, no pin
    if "avx512f" in runtime.cpu_flags():
        # Unpinned, this AVX-512 CPU computes other bits: the pin is what makes them agree.
        assert bits("native", None) != pinned_here
    assert bits("native", "AVX") != pinned_here  # below the pin: other bits (check-repro measures)


def test_settings_and_refusing_to_change_the_pin_after_tensorflow_loads():
    assert runtime.settings("avx2") == {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    assert runtime.settings("native") == {}  # the environment decides
    with pytest.raises(TfpersistError, match="cpu isa 'avx3' is not one of"):
        runtime.check("avx3")
    code = (
        "import os, sys\n"
        "from tfpersist.numerics import runtime\n"
        "runtime.pin('avx')\n"
        "print(os.environ['ONEDNN_MAX_CPU_ISA'], runtime.current())\n"
        "from tfpersist.tfapi import capi\n"
        "capi.op_def('MatMul')\n"  # TensorFlow's C library loaded (no kept registry, below)
        "for late in ('capi', 'tensorflow'):\n"
        "    if late == 'tensorflow':\n"
        "        import tensorflow\n"
        "    runtime.pin('avx')\n"
        "    try:\n"
        "        runtime.pin('avx2')\n"
        "    except Exception as e:\n"
        "        print(late, e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env["TFPERSIST_CACHE"] = "off"  # the op registry read from the library: it loads
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert out[0] == "AVX avx"
    assert out[1].startswith("capi ") and out[2].startswith("tensorflow ")
    for line in out[1:]:
        assert "TensorFlow is already loaded with ONEDNN_MAX_CPU_ISA=AVX" in line


def test_describe_names_the_cpu_and_the_pin():
    info = runtime.describe()
    assert info["cpu"] and info["pin"] == runtime.current()
