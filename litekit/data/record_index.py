"""Index files for TFRecord files: where each record starts, made once and cached.

A TFRecord file has no table of contents: finding record k means reading the k records
before it. The index (one per record file) holds every record's data offset and length.
It is made on first use by `litekit.data.tfrecord.scan_records`, which checks every CRC
(and whatever the caller checks in each record) on the way, so a file that has an index
was read whole and found sound once.

Where it goes: beside the records, as ``<file>.litekit-index``, when that folder can be
written; otherwise (a read-only copy of the data, a shared mount) under a cache folder,
``cache_dir`` or by default ``$LITEKIT_CACHE`` or ``~/.cache/litekit``, in a subfolder
named by a hash of the records' folder. An index records the size and modification time of
its file and is made again when either changes; a file at the index's path that is not a
litekit index is never overwritten.

Format: the 8 bytes ``LKTFIDX1``, a 4-byte little-endian length, that many bytes of JSON
(file size, modification time, record count, and ``extra``: what the caller checked), then
``count`` int64 offsets and ``count`` int64 lengths, little-endian.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litekit.data.folders import bad_path
from litekit.data.tfrecord import scan_records

MAGIC = b"LKTFIDX1"
SUFFIX = ".litekit-index"


@dataclass(frozen=True)
class RecordIndex:
    """Where the records of one file are: ``offsets[k]`` and ``lengths[k]`` of record k's
    data; ``extra`` is what the index's maker stored beside them (e.g. the label)."""

    path: Path
    offsets: np.ndarray
    lengths: np.ndarray
    extra: dict[str, Any]

    def __len__(self) -> int:
        return len(self.offsets)


def default_cache_dir() -> Path:
    """``$LITEKIT_CACHE``, or ``~/.cache/litekit``."""
    return Path(os.environ.get("LITEKIT_CACHE") or Path.home() / ".cache" / "litekit")


def index_path(record_file: Path, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the index of ``record_file`` lives: beside it when its folder can be written,
    otherwise under the cache folder."""
    record_file = Path(record_file)
    folder = record_file.parent
    if os.access(folder, os.W_OK | os.X_OK):
        return folder / (record_file.name + SUFFIX)
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cache / "record-indexes" / f"{folder.name}-{key}" / (record_file.name + SUFFIX)


def _stamp(record_file: Path) -> dict[str, int]:
    status = record_file.stat()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _read(path: Path, record_file: Path, stamp: dict[str, int]) -> RecordIndex | None:
    """The index at ``path`` if it is ours, whole, and made from the file as it is now."""
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        return None
    (size,) = struct.unpack_from("<I", blob, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(blob[start : start + size])
        count = int(header["count"])
    except (ValueError, KeyError, TypeError):
        return None
    if header.get("size") != stamp["size"] or header.get("mtime_ns") != stamp["mtime_ns"]:
        return None
    body = blob[start + size :]
    if len(body) != 16 * count:
        return None
    numbers = np.frombuffer(body, dtype="<i8")
    return RecordIndex(record_file, numbers[:count].copy(), numbers[count:].copy(), header["extra"])


def _write(path: Path, index: RecordIndex, stamp: dict[str, int]) -> None:
    """Write atomically (a temporary file, then a rename); an unwritable place is skipped
    (the index is made again next time), never an error."""
    if path.exists() and not path.read_bytes()[: len(MAGIC)] == MAGIC:
        raise bad_path(
            "index file",
            path,
            "is in the way of litekit's record index and is not one; move it away (litekit "
            "never overwrites a file it did not write).",
        )
    header = json.dumps({**stamp, "count": len(index), "extra": index.extra}).encode()
    blob = b"".join(
        [
            MAGIC,
            struct.pack("<I", len(header)),
            header,
            index.offsets.astype("<i8").tobytes(),
            index.lengths.astype("<i8").tobytes(),
        ]
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(blob)
        os.replace(temporary, path)
    except OSError:
        return


Pending = list[tuple[Path, RecordIndex, dict[str, int]]]


def load_index(
    record_file: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    check: Callable[[int, bytes], None] | None = None,
    extra: Callable[[], dict[str, Any]] | None = None,
    pending: Pending | None = None,
) -> RecordIndex:
    """The index of ``record_file``: read from its cache, or made by scanning the file.

    When made, ``check(number, data)`` is called on every record (and may raise), and
    ``extra()`` gives what to store beside the offsets; a cached index was checked when it
    was made, so neither is called again. A new index is written at once, or, when
    ``pending`` is given, appended to it for `write_pending` (so that a reader of many files
    writes nothing until every file has passed).
    """
    record_file = Path(record_file)
    if not record_file.is_file():
        raise bad_path("record file", record_file, "no such file.")
    stamp = _stamp(record_file)
    where = index_path(record_file, cache_dir)
    cached = _read(where, record_file, stamp)
    if cached is not None:
        return cached
    offsets, lengths = scan_records(record_file, check)
    index = RecordIndex(record_file, offsets, lengths, extra() if extra is not None else {})
    if pending is None:
        _write(where, index, stamp)
    else:
        pending.append((where, index, stamp))
    return index


def write_pending(pending: Pending) -> None:
    """Write the indexes `load_index` left in ``pending``."""
    for where, index, stamp in pending:
        _write(where, index, stamp)
