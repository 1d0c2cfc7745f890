from __future__ import annotations

import pytest

from tfpersist.core import atomic


def test_write_bytes_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out" / "a.bin"
    atomic.write_bytes(path, b"one")
    atomic.write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["a.bin"]


def test_json_is_sorted_with_newline(tmp_path):
    atomic.write_json(tmp_path / "m.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "m.json").read_bytes() == b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'


def test_replace_dir_keeps_previous_content_when_the_writer_fails(tmp_path):
    out = tmp_path / "artifact"
    with atomic.replace_dir(out) as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(RuntimeError), atomic.replace_dir(out) as tmp:
        (tmp / "v").write_text("half")
        raise RuntimeError("killed")
    assert (out / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]
    with atomic.replace_dir(out) as tmp:
        (tmp / "w").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["w"]
