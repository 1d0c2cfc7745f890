"""A zip member read at random offsets (h5py reading a ``.keras``'s weights).

Imports: the core.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

from tfpersist.core.errors import TfpersistError


def member_file(path: Path, info: zipfile.ZipInfo):
    """A zip member open for random reads. zipfile's own stream seeks backwards by reading
    again from the member's start (and its CRC): h5py's reads of a 200 MB weights file took
    minutes. A stored member — Keras stores them — is a window on the archive's bytes; a
    compressed one is inflated once into a temporary file (in memory up to 64 MiB)."""
    import tempfile

    if info.compress_type == zipfile.ZIP_STORED:
        return _Window(path, info)
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 (the caller closes it)
    with zipfile.ZipFile(path) as archive, archive.open(info) as f:
        shutil.copyfileobj(f, spool, 1 << 20)
    spool.seek(0)
    return spool


class _Window(io.RawIOBase):
    """Bytes [start, start + size) of a file, read-only and seekable."""

    def __init__(self, path: Path, info: zipfile.ZipInfo):
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._file.seek(info.header_offset)
        header = self._file.read(30)  # the local file header: its name and extra vary
        if header[:4] != b"PK\x03\x04":
            self._file.close()
            raise TfpersistError(f"{path}: member '{info.filename}' has no local header")
        names, extra = (
            int.from_bytes(header[26:28], "little"),
            int.from_bytes(header[28:30], "little"),
        )
        self._start = info.header_offset + 30 + names + extra
        self._size = info.file_size
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer) -> int:
        want = min(len(buffer), max(0, self._size - self._at))
        if not want:
            return 0
        got = os.pread(self._file.fileno(), want, self._start + self._at)
        memoryview(buffer)[: len(got)] = got
        self._at += len(got)
        return len(got)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()
