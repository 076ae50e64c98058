"""TFRecord files and ``tf.train.Example`` records, read without TensorFlow.

Meta-Dataset stores each class as a TFRecord file of ``tf.train.Example`` protocol buffers.
Both formats are small enough to read directly:

- **Framing.** A TFRecord file is a sequence of records, each
  ``uint64 length | uint32 masked_crc(length) | data | uint32 masked_crc(data)``,
  little-endian. ``masked_crc(x) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2**32)``
  with ``c`` the CRC-32C (Castagnoli) of ``x``. `scan_records` walks a file and checks both
  CRCs of every record, so a damaged or truncated file is named, with the record and the
  byte where it goes wrong, before anything is trained on it; `read_record` checks the
  data CRC again on every read.
- **Example.** ``Example{features=1: Features}``, ``Features{feature=1: map<string,
  Feature>}``, a map entry being ``{key=1: string, value=2: Feature}``, and ``Feature`` one
  of ``bytes_list=1``, ``float_list=2``, ``int64_list=3``, each a list in field 1 (numbers
  packed or not: both encodings are legal protobuf). `parse_example` decodes exactly that,
  with any field order, and skips fields it does not know, as protobuf readers do.

Why our own reader rather than the ``tfrecord`` package from PyPI: that package does not
check CRCs, its index loader crashes on a one-record file, it starts at a random record
when given an index, and its directory mode only finds ``*.tfrecord`` (Meta-Dataset's files
end in ``.tfrecords``). The whole format is the two paragraphs above. CRC-32C comes from
the ``crc32c`` package (a C implementation, with the CPU's instruction where there is one):
about 8 µs per 100 KB record here, against 17 ms for the same loop in pure Python, which
would cap reading at some 60 images per second.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import crc32c
import numpy as np

from litekit.data.folders import bad_path

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked CRC of the 8 length bytes
_FOOTER = struct.Struct("<I")  # masked CRC of the data

REDO = "copy or convert this file again (an interrupted copy or conversion leaves this)"


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def scan_records(
    path: str | os.PathLike, check: Callable[[int, bytes], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and lengths of every record's data in the TFRecord file ``path``.

    Every record's length CRC and data CRC are checked; ``check(number, data)``, when given,
    is called on each record's data (to check its contents). A mismatch, a file cut short or
    trailing bytes raise an error naming the file, the record and the byte offset.
    """
    path = Path(path)
    offsets, lengths = [], []
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        position, number = 0, 0
        while position < size:
            header = file.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise _cut_short(path, number, position)
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                raise bad_path(
                    "record file",
                    path,
                    f"record {number} (byte {position}): the CRC of its length does not match, "
                    f"so the file is damaged or not a TFRecord file; {REDO}.",
                )
            start = position + _HEADER.size
            if start + length + _FOOTER.size > size:
                raise _cut_short(path, number, position)
            data = file.read(length)
            (data_crc,) = _FOOTER.unpack(file.read(_FOOTER.size))
            if masked_crc32c(data) != data_crc:
                raise _bad_data_crc(path, number, position)
            if check is not None:
                check(number, data)
            offsets.append(start)
            lengths.append(length)
            position = start + length + _FOOTER.size
            number += 1
    return np.asarray(offsets, dtype=np.int64), np.asarray(lengths, dtype=np.int64)


def _cut_short(path: Path, number: int, position: int) -> ValueError:
    return bad_path(
        "record file",
        path,
        f"the file ends inside record {number} (byte {position}): it is cut short; {REDO}.",
    )


def _bad_data_crc(path: Path, number: int, position: int) -> ValueError:
    return bad_path(
        "record file",
        path,
        f"record {number} (byte {position}): the CRC of its data does not match, so the file "
        f"is damaged; {REDO}.",
    )


def read_record(path: str | os.PathLike, offset: int, length: int, number: int = -1) -> bytes:
    """The data of one record (found by `scan_records`), its CRC checked again."""
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(length + _FOOTER.size)
    if len(data) < length + _FOOTER.size:
        raise _cut_short(Path(path), number, offset - _HEADER.size)
    (data_crc,) = _FOOTER.unpack(data[length:])
    data = data[:length]
    if masked_crc32c(data) != data_crc:
        raise _bad_data_crc(Path(path), number, offset - _HEADER.size)
    return data


# --- protocol buffers: just what tf.train.Example needs --------------------------------------

Feature = list[bytes] | list[int] | list[float]


class ProtobufError(ValueError):
    """A record that is not a well-formed ``tf.train.Example``."""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data):
            raise ProtobufError("a varint runs past the end of its message")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift >= 70:
            raise ProtobufError("a varint is longer than 10 bytes")


def _fields(data: bytes):
    """(field number, wire type, value) of each field of one message; a length-delimited
    value is the bytes it holds, a varint an int, fixed32/fixed64 their raw bytes."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ProtobufError("a length-delimited field runs past the end of its message")
            value, position = data[position : position + length], position + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if position + width > len(data):
                raise ProtobufError("a fixed-width field runs past the end of its message")
            value, position = data[position : position + width], position + width
        else:
            raise ProtobufError(f"field {number} has wire type {wire}, which Example never uses")
        yield number, wire, value


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _numbers(data: bytes, kind: str) -> list:
    """The values of an Int64List (``kind="int64"``) or FloatList, packed or not."""
    values: list = []
    for number, wire, value in _fields(data):
        if number != 1:
            continue
        if kind == "int64":
            if wire == 0:
                values.append(_signed64(value))
            elif wire == 2:  # packed varints
                position = 0
                while position < len(value):
                    item, position = _varint(value, position)
                    values.append(_signed64(item))
        elif wire == 5:
            values.append(struct.unpack("<f", value)[0])
        elif wire == 2:
            if len(value) % 4:
                raise ProtobufError("a packed float list is not a multiple of 4 bytes")
            values.extend(struct.unpack(f"<{len(value) // 4}f", value))
    return values


def _feature(data: bytes) -> Feature:
    found: Feature = []
    for number, wire, value in _fields(data):
        if wire != 2:
            continue
        if number == 1:
            found = [v for n, w, v in _fields(value) if n == 1 and w == 2]
        elif number == 2:
            found = _numbers(value, "float")
        elif number == 3:
            found = _numbers(value, "int64")
    return found


def parse_example(data: bytes) -> dict[str, Feature]:
    """The features of a serialised ``tf.train.Example``: name -> list of values (bytes,
    ints or floats). Raises `ProtobufError` for bytes that are not one."""
    features: dict[str, Feature] = {}
    for number, wire, value in _fields(data):
        if number != 1 or wire != 2:
            continue
        for entry_number, entry_wire, entry in _fields(value):
            if entry_number != 1 or entry_wire != 2:
                continue
            key, feature = b"", b""
            for part, part_wire, content in _fields(entry):
                if part == 1 and part_wire == 2:
                    key = content
                elif part == 2 and part_wire == 2:
                    feature = content
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ProtobufError("a feature name is not UTF-8") from error
            features[name] = _feature(feature)
    return features
