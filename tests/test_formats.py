"""What a model path is (no TensorFlow needed), and the CPU pin."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tfpersist import formats, runtime
from tfpersist.errors import TfpersistError


def test_detects_each_format_from_names_on_disk(tmp_path):
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pbtxt").write_text("")
    assert formats.detect(saved) == formats.SAVED_MODEL
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "checkpoint").write_text('model_checkpoint_path: "m"\n')
    assert formats.detect(ckpt) == formats.CHECKPOINT
    for name in ("m.index", "m.meta", "m.data-00000-of-00001"):
        (ckpt / name).write_bytes(b"")
    assert formats.detect(ckpt / "m") == formats.CHECKPOINT  # a prefix: no such file
    assert formats.detect(ckpt / "m.index") == formats.CHECKPOINT
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "model.ckpt").write_bytes(b"\0")  # V1 format: the prefix is the data file
    (v1 / "model.ckpt.meta").write_bytes(b"")
    assert formats.detect(v1 / "model.ckpt") == formats.CHECKPOINT
    (tmp_path / "model.pb").write_bytes(b"")
    assert formats.detect(tmp_path / "model.pb") == formats.GRAPH_DEF


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: (p / "saved_model.pb").write_bytes(b"x") and p / "saved_model.pb",
            "pass its directory",
        ),
        (lambda p: p, "neither a SavedModel"),
        (lambda p: p / "nothing", "no such file or directory"),
    ],
)
def test_paths_that_are_no_model_get_one_line_saying_what_to_pass(tmp_path, make, message):
    with pytest.raises(TfpersistError, match=message):
        formats.detect(make(tmp_path))


def test_the_pin_sets_onednn_before_tensorflow_and_refuses_to_change_after():
    assert runtime.settings("avx2") == {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    assert runtime.settings("native") == {}  # the environment decides
    with pytest.raises(TfpersistError, match="cpu isa 'avx3' is not one of"):
        runtime.check("avx3")
    code = (
        "import os, sys\n"
        "from tfpersist import runtime\n"
        "runtime.pin('avx')\n"
        "print(os.environ['ONEDNN_MAX_CPU_ISA'], runtime.current())\n"
        "import tensorflow\n"
        "runtime.pin('avx')\n"
        "try:\n"
        "    runtime.pin('avx2')\n"
        "except Exception as e:\n"
        "    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert out[0] == "AVX avx"
    assert "TensorFlow is already loaded with ONEDNN_MAX_CPU_ISA=AVX" in out[1]


def test_describe_names_the_cpu_and_the_pin():
    info = runtime.describe()
    assert info["cpu"] and info["pin"] == runtime.current()
