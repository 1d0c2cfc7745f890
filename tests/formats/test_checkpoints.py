from __future__ import annotations

import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.formats import checkpoints


def fake_checkpoint(directory, name, meta=True):
    for ext in (".index", ".data-00000-of-00001", *([".meta"] if meta else [])):
        (directory / f"{name}{ext}").write_bytes(b"x")


def test_state_file_round_trip_with_relative_paths(tmp_path):
    for step in (10, 20):
        fake_checkpoint(tmp_path, f"model.ckpt-{step}")
    checkpoints.write_state(tmp_path, [tmp_path / "model.ckpt-10", tmp_path / "model.ckpt-20"])
    text = (tmp_path / "checkpoint").read_text()
    assert str(tmp_path) not in text
    assert text.startswith('model_checkpoint_path: "model.ckpt-20"\n')
    assert checkpoints.state_paths(tmp_path) == [
        tmp_path / "model.ckpt-10",
        tmp_path / "model.ckpt-20",
    ]
    assert checkpoints.resolve(tmp_path) == tmp_path / "model.ckpt-20"
    assert checkpoints.step_of(checkpoints.resolve(tmp_path)) == 20


def test_incomplete_latest_is_skipped(tmp_path):
    fake_checkpoint(tmp_path, "model.ckpt-10")
    fake_checkpoint(tmp_path, "model.ckpt-20", meta=False)
    checkpoints.write_state(tmp_path, [tmp_path / "model.ckpt-10", tmp_path / "model.ckpt-20"])
    assert checkpoints.complete_checkpoints(tmp_path) == [tmp_path / "model.ckpt-10"]
    assert checkpoints.resolve(tmp_path) == tmp_path / "model.ckpt-10"


def test_errors_name_the_missing_file(tmp_path):
    with pytest.raises(TfpersistError, match=r"no 'checkpoint' state file"):
        checkpoints.resolve(tmp_path)
    fake_checkpoint(tmp_path, "model.ckpt-5", meta=False)
    with pytest.raises(TfpersistError, match=r"incomplete: missing model.ckpt-5.meta"):
        checkpoints.resolve(tmp_path / "model.ckpt-5")
    checkpoints.write_state(tmp_path, [tmp_path / "model.ckpt-5"])
    with pytest.raises(
        TfpersistError, match=r"points at model.ckpt-5, .*missing model.ckpt-5.meta"
    ):
        checkpoints.resolve(tmp_path)
    with pytest.raises(TfpersistError, match=r"not a checkpoint directory or prefix"):
        checkpoints.resolve(tmp_path / "other")


def test_prefix_given_as_one_of_its_files(tmp_path):
    fake_checkpoint(tmp_path, "model.ckpt")
    for name in ("model.ckpt.index", "model.ckpt.meta", "model.ckpt.data-00000-of-00001"):
        assert checkpoints.resolve(tmp_path / name) == tmp_path / "model.ckpt"


def test_copied_directory_with_absolute_state_paths_uses_its_own_files(tmp_path):
    original, copy = tmp_path / "original", tmp_path / "copy"
    for d in (original, copy):
        d.mkdir()
        fake_checkpoint(d, "model.ckpt-7")
    # What Saver writes by default: absolute paths into the original directory.
    (copy / "checkpoint").write_text(
        f'model_checkpoint_path: "{original}/model.ckpt-7"\n'
        f'all_model_checkpoint_paths: "{original}/model.ckpt-7"\n'
    )
    assert checkpoints.resolve(copy) == copy / "model.ckpt-7"
