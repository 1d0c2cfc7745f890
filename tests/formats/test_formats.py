"""What a model path is, from names on disk (no TensorFlow needed)."""

from __future__ import annotations

import pytest

from tfpersist import formats
from tfpersist.core.errors import TfpersistError


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
