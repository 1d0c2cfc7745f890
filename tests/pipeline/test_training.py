from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError
from tfpersist.formats import checkpoints
from tfpersist.pipeline import training
from tfpersist.pipeline.params import ModelParams, TrainParams

from helpers import tree_digest

MODEL = ModelParams(
    "mlp", "input_holder", "predictions", "probabilities", {"hidden": [8], "dropout": 0.2}
)
TRAIN = TrainParams(
    seed=3,
    epochs=2,
    batch_size=50,
    optimizer="adam",
    learning_rate=0.01,
    checkpoint_every=4,
    max_to_keep=2,
    threads=1,
)


@pytest.fixture(scope="module")
def splits(digits):
    x, y = digits
    return {
        "train": training.Split(x[:300], y[:300]),
        "val": training.Split(x[300:400], y[300:400]),
    }


def fit(directory, splits, train=TRAIN, model=MODEL, messages=None):
    log = messages.append if messages is not None else (lambda m: None)
    return training.train(directory, splits, 10, model, train, "digest", log=log, progress=False)


def test_batches_are_a_pure_function_of_seed_and_step():
    a = [training.batch_indices(10, 4, 1, s) for s in range(6)]
    b = [training.batch_indices(10, 4, 1, s) for s in range(6)]
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert sorted(np.concatenate(a[:3])) == list(range(10))  # one epoch: every row once
    assert [len(i) for i in a[:3]] == [4, 4, 2]
    assert not (np.concatenate(a[:3]) == np.concatenate(a[3:])).all()  # reshuffled per epoch


def test_training_writes_checkpoints_best_and_logs(tmp_path, splits):
    result = fit(tmp_path, splits)
    assert result.step == 12 and result.resumed_from is None
    assert checkpoints.state_paths(tmp_path) == [
        tmp_path / "model.ckpt-8",
        tmp_path / "model.ckpt-12",
    ]
    assert str(tmp_path) not in (tmp_path / "checkpoint").read_text()
    best = checkpoints.resolve(tmp_path / layout.BEST_DIR)
    assert checkpoints.step_of(best) == result.best_step
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert summary["step"] == 12 and 0 <= summary["val"]["accuracy"] <= 1
    rows = (tmp_path / "live/plots/metrics/val/accuracy.tsv").read_text().splitlines()
    assert rows == [
        "step\taccuracy",
        *[f"{s}\t{rows[i + 1].split()[1]}" for i, s in enumerate((4, 8, 12))],
    ]
    assert not [p for p in tmp_path.rglob("*") if "tmp" in p.name or "_temp" in p.name]
    # another architecture changes the fingerprint (which starts afresh), but an unknown one
    # must fail before the checkpoints are touched
    before = tree_digest(tmp_path)
    with pytest.raises(TfpersistError, match="'resnet' is not an architecture"):
        fit(tmp_path, splits, model=dataclasses.replace(MODEL, arch="resnet"))
    assert tree_digest(tmp_path) == before


def test_same_params_same_bytes_and_rerun_is_a_no_op(tmp_path, splits):
    fit(tmp_path / "a", splits)
    fit(tmp_path / "b", splits)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    before = tree_digest(tmp_path / "a")
    again = fit(tmp_path / "a", splits)
    assert again.resumed_from == 12
    assert tree_digest(tmp_path / "a") == before


def test_more_epochs_continue_exactly(tmp_path, splits):
    """Raising epochs resumes, and ends where an uninterrupted longer run ends."""
    longer = dataclasses.replace(TRAIN, epochs=3)
    fit(tmp_path / "short", splits)
    messages = []
    result = fit(tmp_path / "short", splits, longer, messages=messages)
    assert result.resumed_from == 12 and result.step == 18
    assert any("resuming from model.ckpt-12" in m for m in messages)
    fit(tmp_path / "long", splits, longer)
    assert tree_digest(tmp_path / "short") == tree_digest(tmp_path / "long")


def test_a_tie_with_the_restored_best_is_not_better(tmp_path, splits):
    """The best accuracy comes back from the checkpoint as float32: a later tie (7/10 is
    0.7 in one run, float32's 0.699999988 after a resume) must not make a new best in the
    resumed run only."""
    few = {
        "train": splits["train"],
        "val": training.Split(splits["val"].x[:10], splits["val"].y[:10]),
    }
    short = dataclasses.replace(TRAIN, epochs=5, checkpoint_every=1)  # 30 steps
    longer = dataclasses.replace(short, epochs=6)
    fit(tmp_path / "short", few, short)
    fit(tmp_path / "short", few, longer)
    fit(tmp_path / "long", few, longer)
    rows = (tmp_path / "long/live/plots/metrics/val/accuracy.tsv").read_text().split()[2:]
    accuracy = [float(a) for a in rows[1::2]]
    best_at_resume = max(accuracy[:30])
    assert best_at_resume in accuracy[30:]  # the tie this test is about happens …
    assert float(np.float32(best_at_resume)) < best_at_resume  # … where float32 rounds down
    assert tree_digest(tmp_path / "short") == tree_digest(tmp_path / "long")


def test_incomplete_latest_checkpoint_resumes_from_the_previous(tmp_path, splits):
    fit(tmp_path / "ref", splits)
    fit(tmp_path / "run", splits)
    # As if killed between writing step 12's .index/.data and its .meta:
    (tmp_path / "run" / "model.ckpt-12.meta").unlink()
    messages = []
    result = fit(tmp_path / "run", splits, messages=messages)
    assert result.resumed_from == 8
    assert tree_digest(tmp_path / "run") == tree_digest(tmp_path / "ref")


def test_changed_params_do_not_resume(tmp_path, splits):
    fit(tmp_path, splits)
    messages = []
    other = dataclasses.replace(TRAIN, learning_rate=0.02)
    result = fit(tmp_path, splits, other, messages=messages)
    assert result.resumed_from is None
    assert any("different params or data (train.learning_rate)" in m for m in messages)
    changed_data = training.train(
        tmp_path, splits, 10, MODEL, other, "other", lambda m: messages.append(m), False
    )
    assert changed_data.resumed_from is None
    assert "(data)" in messages[-1]
