"""Data past memory: keyed bijections, record files read a batch at a time, prepare streamed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError
from tfpersist.pipeline import prepare
from tfpersist.pipeline.params import PrepareParams
from tfpersist.tables import order, records

from conftest import ROOT


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 17, 1000, 1259, 4097, 70_001])
def test_a_keyed_order_is_a_bijection_of_every_size(n):
    p = order.Permutation(n, 7, 1)
    rows = p(np.arange(n))
    assert np.array_equal(np.sort(rows), np.arange(n))
    assert np.array_equal(p(np.arange(n)[::-1]), rows[::-1])  # any positions, pure
    if n > 16:
        assert not np.array_equal(rows, order.Permutation(n, 7, 2)(np.arange(n)))
        assert not np.array_equal(rows, np.arange(n))


def test_the_order_looks_shuffled():
    """Not a statistician's test: displacement and neighbours of a 10k-row order look like a
    random permutation's (a broken round function gives near-identity or stride patterns)."""
    n = 10_000
    rows = order.Permutation(n, 42, 0)(np.arange(n))
    assert abs(np.corrcoef(np.arange(n), rows)[0, 1]) < 0.05
    steps = np.abs(np.diff(rows))
    assert np.median(steps) > n / 5 and len(np.unique(steps)) > n / 3


def test_batches_cover_each_epoch_once_and_cost_a_batch():
    n, batch = 10_007, 64
    per_epoch = -(-n // batch)
    epoch = np.concatenate([order.batch_indices(n, batch, 3, s) for s in range(per_epoch)])
    assert np.array_equal(np.sort(epoch), np.arange(n))
    again = np.concatenate([order.batch_indices(n, batch, 3, s) for s in range(per_epoch)])
    assert np.array_equal(epoch, again)
    later = order.batch_indices(n, batch, 3, per_epoch + 5)  # next epoch, another order
    assert not np.array_equal(later, epoch[5 * batch : 6 * batch])
    # a step at 10M rows computes its block of the order, not the whole permutation
    assert len(order.batch_indices(10_000_000, 32, 1, 123_456)) == 32
    assert order._order_block.cache_info().currsize <= 4


def _write(path, x, y):
    with open(path, "wb") as f:
        writer = records.Writer(f, len(y), x.shape[1])
        for i in range(0, len(y), 1000):
            writer.append(x[i : i + 1000], y[i : i + 1000])
        writer.close()


def test_records_read_rows_ranges_and_refuse_damage(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.random((5000, 7), dtype=np.float32), rng.integers(0, 3, 5000)
    path = tmp_path / "train.npy"
    _write(path, x, y)
    loaded = np.load(path)  # NumPy's own format
    assert np.array_equal(loaded["x"], x) and np.array_equal(loaded["y"], y)
    for in_memory in (records.IN_MEMORY, 0):
        monkeypatch.setattr(records, "IN_MEMORY", in_memory)
        rows = records.Records(path, 7)
        pick = np.array([4999, 3, 3, 0, 2500])
        got_x, got_y = rows.take(pick)
        assert np.array_equal(got_x, x[pick]) and np.array_equal(got_y, y[pick])
        assert np.array_equal(np.concatenate([c[1] for c in rows.chunks(999)]), y)
        assert len(rows) == 5000 and rows.features == 7
        rows.close()
    with pytest.raises(TfpersistError, match="rows of 7 features, the schema lists 8"):
        records.Records(path, 8)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(TfpersistError, match="truncated or corrupt"):
        records.Records(path, 7)
    np.save(path, x)
    with pytest.raises(TfpersistError, match="not a prepared split"):
        records.Records(path, 7)
    wide = np.zeros(3, [("x", "<f8", (7,)), ("y", "<i8")])  # float64 features
    np.save(path, wide)
    with pytest.raises(TfpersistError, match="not a prepared split"):
        records.Records(path, 7)
    np.save(path, np.zeros(0, records.dtype(7)))
    with pytest.raises(TfpersistError, match="holds no rows; run the prepare stage again"):
        records.Records(path, 7)
    with pytest.raises(TfpersistError, match=r"not a prepared split \(Is a directory\)"):
        records.Records(tmp_path, 7)  # a directory


def test_a_hand_edited_split_is_one_line_before_training(tmp_path):
    """Labels outside the classes or a NaN feature in train.npy: refused when training opens
    the split, naming the file (not TensorFlow's error mid-step)."""
    from tfpersist.pipeline import training

    raw = ROOT / "data" / "raw" / "digits.csv"
    prepare.prepare(raw, tmp_path, PrepareParams("label", 0.15, 0.15, 2026))
    train = tmp_path / layout.split_file("train")
    rows = np.load(train)
    rows["y"][3] = 12
    np.save(train, rows)
    with pytest.raises(TfpersistError, match=r"train.npy: label 12 is outside the 10 classes"):
        training.load_prepared(tmp_path)
    rows["y"][3], rows["x"][5, 2] = 0, np.nan
    np.save(train, rows)
    with pytest.raises(TfpersistError, match=r"train.npy: row 5 has a missing or infinite"):
        training.load_prepared(tmp_path)
    with records.Records(train) as opened, pytest.raises(IndexError, match="outside"):
        opened.take(np.array([-1]))  # a split held in memory is range-checked too


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_a_shuffled_epoch_holds_a_bounded_part_of_the_file(tmp_path, monkeypatch):
    """Reading every row of a 100 MB split in random batches: the process's memory does not
    grow by the file (a np.load(mmap_mode='r') grew by all of it: records.py says why)."""
    n, f = 400_000, 64
    path = tmp_path / "train.npy"
    with open(path, "wb") as out:
        writer = records.Writer(out, n, f)
        for i in range(0, n, 50_000):
            writer.append(np.full((50_000, f), i, np.float32), np.arange(i, i + 50_000))
        writer.close()
    monkeypatch.setattr(records, "IN_MEMORY", 0)
    rows = records.Records(path, f)
    before = _rss()
    seen = 0
    for s in range(n // 1000):
        _, y = rows.take(order.batch_indices(n, 1000, 0, s))
        seen += len(np.unique(y))
    assert seen == n
    grown = _rss() - before
    assert grown < 16 << 20, (
        f"grew {grown >> 20} MiB reading a {path.stat().st_size >> 20} MiB file"
    )


def test_prepare_streams_to_the_same_splits_as_a_whole_table(tmp_path):
    raw = ROOT / "data" / "raw" / "digits.csv"
    params = PrepareParams("label", 0.15, 0.15, 2026)
    _, sizes = prepare.prepare(raw, tmp_path / "a", params, chunk_rows=97)
    prepare.prepare(raw, tmp_path / "b", params)
    for name in ("train.npy", "val.npy", "test.npy", "test.csv", "schema.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    table = pd.read_csv(raw)
    whole = prepare.stratified_split(table, "label", 0.15, 0.15, 2026)
    features = [c for c in table.columns if c != "label"]
    for name, split in whole.items():
        got = np.load(tmp_path / "a" / layout.split_file(name))
        assert np.array_equal(got["x"], split[features].to_numpy(np.float32))
        assert np.array_equal(got["y"], split["label"].to_numpy())
        assert sizes[name] == len(split)
    assert pd.read_csv(tmp_path / "a" / layout.TEST_CSV).equals(whole["test"])
    x, y = records.read_split(tmp_path / "a", "val", rows=5)  # a check's bounded head
    assert np.array_equal(y, whole["val"]["label"].to_numpy()[:5]) and x.shape == (5, 64)


def test_prepare_streamed_keeps_line_numbers_and_column_types(tmp_path):
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.integers(0, 9, (300, 3)), columns=["a", "b", "c"])
    table["label"] = np.arange(300) % 3
    table["b"] = table["b"].astype(object)
    table.loc[250, "b"] = 2.5  # one float, in the last chunk only
    raw = tmp_path / "raw.csv"
    table.to_csv(raw, index=False)
    prepare.prepare(raw, tmp_path / "out", PrepareParams("label", 0.2, 0.2, 0), chunk_rows=100)
    test = (tmp_path / "out" / "test.csv").read_text().splitlines()
    assert all(len(line.split(",")[1].split(".")) == 2 for line in test[1:])  # b: floats
    assert all("." not in line.split(",")[0] for line in test[1:])  # a: integers
    lines = raw.read_text().splitlines()
    lines[271] = lines[271].replace(lines[271].split(",")[0], "x", 1)
    raw.write_text("\n".join(lines) + "\n")
    with pytest.raises(TfpersistError, match=r"column 'a' is not numeric \(line 272: 'x'\)"):
        prepare.prepare(raw, tmp_path / "out", PrepareParams("label", 0.2, 0.2, 0), 100)
    table.loc[7, "label"] = 10**12  # a class id no count array should be made for
    table.to_csv(raw, index=False)
    with pytest.raises(TfpersistError, match="holds class id 1000000000000; class ids must"):
        prepare.prepare(raw, tmp_path / "out", PrepareParams("label", 0.2, 0.2, 0), 100)
