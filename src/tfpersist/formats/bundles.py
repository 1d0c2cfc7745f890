"""TensorFlow's checkpoint files read without TensorFlow: the TensorBundle format (V2).

``PREFIX.index`` is an SSTable (LevelDB's table format, tensorflow/core/lib/io/table*.cc):
data blocks of prefix-compressed keys, an index block pointing at them, a 48-byte footer
ending in a magic number; every block carries a masked crc32c. Its first key, ``""``, holds a
``BundleHeaderProto`` (shard count, endianness, version); every other key is a tensor name
holding a ``BundleEntryProto``: dtype, shape, shard, offset and size in
``PREFIX.data-SSSSS-of-NNNNN``, and the masked crc32c of the tensor's bytes. A numeric
tensor's bytes are its little-endian array; a string tensor's are varint64 lengths, a masked
crc32c of them, then the strings (tensor_bundle.cc). A partitioned variable's entry lists its
slices, each stored under a key of its own (``EncodeTensorNameSlice``: LevelDB's ordered
code of 0, the name, the rank and each dimension's start and length) and read back into the
whole tensor, as TensorFlow's reader gives it.

Every checksum is verified (google-crc32c: C, ~13 GB/s here); offsets and sizes are checked
against the files before anything is read, so a hostile or truncated checkpoint is one line.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import numpy as np

from tfpersist.core.errors import TfpersistError, Unsupported
from tfpersist.tfapi import dtypes, protos

MAGIC = 0xDB4775248B80FB57
FOOTER = 48
TRAILER = 5  # a block's compression type byte and masked crc32c
NO_COMPRESSION = 0
MAX_INDEX_BYTES = 1 << 30


def mask(crc: int) -> int:
    """LevelDB's masked crc32c (crc32c.h): stored checksums are masked."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def crc32c(data, crc: int = 0) -> int:
    """crc32c of ``data``, extending ``crc``."""
    import google_crc32c

    return google_crc32c.extend(crc, bytes(data) if isinstance(data, memoryview) else data)


def _varint(buf, pos: int, end: int, what: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise TfpersistError(what)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _block(data: bytes, offset: int, size: int, source: str) -> memoryview:
    if offset < 0 or size < 0 or offset + size + TRAILER > len(data):
        raise TfpersistError(f"{source}: a block lies outside the file (truncated?)")
    view = memoryview(data)[offset : offset + size + TRAILER]
    kind = view[size]
    (stored,) = struct.unpack_from("<I", view, size + 1)
    if mask(crc32c(view[: size + 1])) != stored:
        raise TfpersistError(f"{source}: a block's checksum does not match (corrupt file)")
    if kind != NO_COMPRESSION:
        raise Unsupported(f"{source}: compressed index blocks (type {kind}) are not read here")
    return view[:size]


def _entries(block: memoryview, source: str):
    """(key, value) of a block, in order."""
    if len(block) < 4:
        raise TfpersistError(f"{source}: a block too short for its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 * (restarts + 1)
    if restarts == 0 or end < 0:
        raise TfpersistError(f"{source}: a block's restart array is malformed")
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos, end, f"{source}: a key length is cut off")
        unshared, pos = _varint(block, pos, end, f"{source}: a key length is cut off")
        length, pos = _varint(block, pos, end, f"{source}: a value length is cut off")
        if shared > len(key) or pos + unshared + length > end:
            raise TfpersistError(f"{source}: an entry runs past its block")
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        yield key, block[pos : pos + length]
        pos += length


def _handle(value, source: str) -> tuple[int, int]:
    offset, pos = _varint(value, 0, len(value), f"{source}: a block handle is cut off")
    size, _ = _varint(value, pos, len(value), f"{source}: a block handle is cut off")
    return offset, size


def read_table(path: Path) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of an SSTable file, in key order, checksums verified."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_INDEX_BYTES:
            raise TfpersistError(f"{source}: {size} bytes is no checkpoint index")
        data = path.read_bytes()
    except OSError as e:
        raise TfpersistError(f"{source}: cannot read ({e.strerror})") from None
    if len(data) < FOOTER or struct.unpack_from("<Q", data, len(data) - 8)[0] != MAGIC:
        raise TfpersistError(f"{source}: not a TensorFlow checkpoint index (no table footer)")
    footer = memoryview(data)[len(data) - FOOTER :]
    _, pos = _varint(footer, 0, 40, f"{source}: the footer is malformed")  # metaindex
    _, pos = _varint(footer, pos, 40, f"{source}: the footer is malformed")
    index_offset, pos = _varint(footer, pos, 40, f"{source}: the footer is malformed")
    index_size, _ = _varint(footer, pos, 40, f"{source}: the footer is malformed")
    index = _block(data, index_offset, index_size, source)
    rows = []
    for _, handle in _entries(index, source):
        offset, length = _handle(handle, source)
        rows.extend(
            (k, bytes(v)) for k, v in _entries(_block(data, offset, length, source), source)
        )
    return rows


class Bundle:
    """A V2 checkpoint: ``Bundle(prefix)`` reads and checks ``prefix.index``; ``entries``
    (name → BundleEntryProto, partitioned variables' slices left out), ``dtype``/``shape``,
    and ``read(name)`` the tensor, its crc32c verified."""

    def __init__(self, prefix: str | Path):
        self.prefix = Path(prefix)
        index = Path(f"{prefix}.index")
        if not index.is_file():
            raise TfpersistError(f"{prefix}: no {index.name}; expected a TensorFlow checkpoint")
        rows = read_table(index)
        if not rows or rows[0][0] != b"":
            raise TfpersistError(f"{index}: no bundle header (not a TensorBundle checkpoint)")
        self.header = _parse(protos.BundleHeaderProto, rows[0][1], f"{index}: the header")
        if self.header.endianness != protos.BundleHeaderProto.LITTLE or sys.byteorder != "little":
            raise Unsupported(f"{prefix}: big-endian checkpoints and machines are not read here")
        if self.header.version.min_consumer > 1 or self.header.num_shards < 1:
            raise Unsupported(
                f"{prefix}: checkpoint format version {self.header.version.min_consumer} "
                "is newer than this reader's (1)"
            )
        self.entries: dict[str, object] = {}
        self._slices: dict[bytes, bytes] = {}
        for key, value in rows[1:]:
            if key.startswith(b"\0"):  # a slice of a partitioned variable
                self._slices[key] = value
                continue
            name = key.decode("utf-8", "replace")
            self.entries[name] = _parse(protos.BundleEntryProto, value, f"{index}: '{name}'")

    def dtype(self, name: str) -> dtypes.DType:
        return dtypes.as_dtype(self.entries[name].dtype)

    def shape(self, name: str) -> list[int]:
        return [d.size for d in self.entries[name].shape.dim]

    def variables(self) -> dict[str, tuple[str, list[int]]]:
        """name → (dtype name, shape), as TensorFlow's reader maps them."""
        return {n: (self.dtype(n).name, self.shape(n)) for n in self.entries}

    def _shard(self, entry) -> Path:
        return Path(f"{self.prefix}.data-{entry.shard_id:05d}-of-{self.header.num_shards:05d}")

    def read(self, name: str) -> np.ndarray:
        """The tensor ``name`` (numeric or string; a partitioned one put together from its
        slices), every checksum verified."""
        if name not in self.entries:
            raise TfpersistError(f"{self.prefix}: holds no tensor '{name}'")
        entry = self.entries[name]
        if entry.slices:
            return self._assembled(name, entry)
        return self._read(name, entry)

    def _assembled(self, name: str, entry) -> np.ndarray:
        shape = self.shape(name)
        dtype = self.dtype(name)
        whole = np.empty(shape, dtype=object if dtype.name == "string" else dtype.as_numpy())
        filled = np.zeros(shape, dtype=bool)
        for part in entry.slices:
            extents = [(e.start, e.length if e.HasField("length") else -1) for e in part.extent]
            if len(extents) != len(shape):
                raise TfpersistError(f"{self.prefix}: a slice of '{name}' has another rank")
            key = slice_key(name, extents)
            if key not in self._slices:
                raise Unsupported(f"{self.prefix}: a slice of '{name}' is not where expected")
            value = self._read(
                name, _parse(protos.BundleEntryProto, self._slices[key], f"a slice of '{name}'")
            )
            where = tuple(slice(None) if n < 0 else slice(start, start + n) for start, n in extents)
            if whole[where].shape != value.shape:
                raise TfpersistError(f"{self.prefix}: a slice of '{name}' does not fit its extent")
            whole[where] = value
            filled[where] = True
        if not filled.all():
            raise TfpersistError(f"{self.prefix}: the slices of '{name}' do not cover it")
        return whole

    def _read(self, name: str, entry) -> np.ndarray:
        if entry.shard_id >= self.header.num_shards:
            raise TfpersistError(f"{self.prefix}: '{name}' names shard {entry.shard_id}")
        dtype, shape = dtypes.as_dtype(entry.dtype), [d.size for d in entry.shape.dim]
        if any(d < 0 for d in shape):
            raise TfpersistError(f"{self.prefix}: '{name}' has a negative dimension")
        count = int(np.prod(shape, dtype=np.int64))
        path = self._shard(entry)
        try:
            with open(path, "rb") as f:
                end = f.seek(0, 2)
                if entry.offset < 0 or entry.size < 0 or entry.offset + entry.size > end:
                    raise TfpersistError(
                        f"{path}: '{name}' lies past the end of the file (truncated?)"
                    )
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except OSError as e:
            raise TfpersistError(f"{path}: cannot read ({e.strerror})") from None
        if dtype.name == "string":
            array, crc = _strings(raw, count, f"{path}: '{name}'")
        else:
            element = dtype.as_numpy()
            if entry.size != count * element.itemsize:
                raise TfpersistError(
                    f"{path}: '{name}' holds {entry.size} bytes, its shape needs "
                    f"{count * element.itemsize}"
                )
            crc = crc32c(raw)
            array = np.frombuffer(raw, element).reshape(shape)
        if mask(crc) != entry.crc32c:
            raise TfpersistError(f"{path}: '{name}' does not match its checksum (corrupt file)")
        return array.reshape(shape)


class _TensorFlowReader:
    """A V1-format checkpoint (one file, no .index) read by TensorFlow's reader, behind
    Bundle's ``variables`` and ``read``."""

    def __init__(self, prefix: Path):
        from tfpersist.core.errors import first_line
        from tfpersist.tfapi.tfcompat import import_tf

        tf = import_tf()
        try:
            self._reader = tf.train.load_checkpoint(str(prefix))
        except (tf.errors.OpError, ValueError) as e:
            raise TfpersistError(f"{prefix}: {first_line(e)}") from None

    def variables(self) -> dict[str, tuple[str, list[int]]]:
        shapes = self._reader.get_variable_to_shape_map()
        types = self._reader.get_variable_to_dtype_map()
        return {n: (types[n].name, list(shapes[n])) for n in shapes}

    def read(self, name: str) -> np.ndarray:
        return self._reader.get_tensor(name)


def reader(prefix: str | Path):
    """A checkpoint's tensors (``variables()``, ``read(name)``): read from its files, or by
    TensorFlow for a V1-format checkpoint, which has no .index."""
    if Path(f"{prefix}.index").is_file():
        return Bundle(prefix)
    return _TensorFlowReader(Path(prefix))


def slice_key(name: str, extents: list[tuple[int, int]]) -> bytes:
    """The key a slice of ``name`` is stored under (saved_tensor_slice_util.cc's
    EncodeTensorNameSlice; a full dimension is start 0, length -1)."""
    key = bytearray(b"\0")  # WriteNumIncreasing(0): a zero length byte
    key += re.sub(rb"[\x00\xff]", lambda m: _ESCAPES[m.group()], name.encode()) + b"\0\x01"
    key += _ordered_unsigned(len(extents))
    for start, length in extents:
        key += _ordered_signed(start) + _ordered_signed(length)
    return bytes(key)


_ESCAPES = {b"\x00": b"\x00\xff", b"\xff": b"\xff\x00"}  # OrderedCode::WriteString


def _ordered_unsigned(n: int) -> bytes:
    """OrderedCode::WriteNumIncreasing: a length byte, then the big-endian bytes."""
    data = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([len(data)]) + data


_HEADER = [(0, 0), (0x80, 0), (0xC0, 0), (0xE0, 0), (0xF0, 0), (0xF8, 0), (0xFC, 0)]
_HEADER += [(0xFE, 0), (0xFF, 0), (0xFF, 0x80), (0xFF, 0xC0)]


def _ordered_signed(value: int) -> bytes:
    """OrderedCode::WriteSignedNumIncreasing: the length in the leading bits, then the
    two's complement big-endian value."""
    x = ~value if value < 0 else value
    if x < 64:
        return bytes([(_HEADER[1][0] ^ value) & 0xFF])
    length = next(n for n in range(2, 11) if x.bit_length() <= 7 * n - 1)
    data = bytearray(value.to_bytes(10, "big", signed=True)[10 - length :])
    data[0] ^= _HEADER[length][0]
    data[1] ^= _HEADER[length][1]
    return bytes(data)


def _strings(raw: bytes, count: int, what: str) -> tuple[np.ndarray, int]:
    """tensor_bundle.cc's string layout; the checksum runs over each length as raw
    little-endian bytes (4 of them, 8 past 4 GiB), the masked checksum of the lengths, then
    the strings."""
    pos, lengths, crc = 0, [], 0
    for _ in range(count):
        n, pos = _varint(raw, pos, len(raw), f"{what}: a string length is cut off")
        lengths.append(n)
        crc = crc32c(struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n), crc)
    if pos + 4 > len(raw):
        raise TfpersistError(f"{what}: the string lengths' checksum is cut off")
    (stored,) = struct.unpack_from("<I", raw, pos)
    if mask(crc) != stored:
        raise TfpersistError(f"{what}: the string lengths do not match their checksum")
    crc = crc32c(raw[pos : pos + 4], crc)
    pos += 4
    if pos + sum(lengths) != len(raw):
        raise TfpersistError(f"{what}: the strings do not fill the entry")
    crc = crc32c(raw[pos:], crc)
    values = np.empty(count, dtype=object)
    for i, n in enumerate(lengths):
        values[i] = raw[pos : pos + n]
        pos += n
    return values, crc


def _parse(message_class, data: bytes, what: str):
    from google.protobuf.message import DecodeError

    message = message_class()
    try:
        message.ParseFromString(data)
    except DecodeError:
        raise TfpersistError(f"{what} is not a readable {message_class.__name__}") from None
    return message
