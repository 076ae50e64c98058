"""Writers of Meta-Dataset sources and VTAB-style task folders for the tests.

Independent of litekit's reader: the TFRecord framing, its CRC-32C (a table-driven one in
pure Python, not the ``crc32c`` package the reader uses) and the ``tf.train.Example``
protobuf encoding are written here from their specifications. Images are JPEGs of the
embedded dataset (`litekit.data.ProceduralImages`), a class per record file.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from litekit.data import ProceduralImages


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), reflected, initial and final XOR 0xFFFFFFFF."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as ten bytes of two's complement
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def example(
    image: bytes,
    label: int,
    *,
    packed: bool = True,
    label_first: bool = False,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A serialised tf.train.Example with features ``image`` (bytes) and ``label`` (int64)."""
    bytes_feature = field(1, field(1, image))  # Feature.bytes_list = BytesList{value=[image]}
    if packed:
        int64_list = field(1, varint(label))
    else:
        int64_list = varint(1 << 3 | 0) + varint(label)
    int64_feature = field(3, int64_list)  # Feature.int64_list
    entries = [(b"image", bytes_feature), (b"label", int64_feature)]
    entries += [(k.encode(), field(1, field(1, v))) for k, v in (extra or {}).items()]
    if label_first:
        entries.reverse()
    features = b"".join(field(1, field(1, key) + field(2, value)) for key, value in entries)
    return field(1, features)  # Example.features


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def procedural_jpegs(data: ProceduralImages, label: int, count: int) -> list[bytes]:
    images = []
    for instance in range(count):
        pixels = data.render(label, instance).permute(1, 2, 0).numpy()
        images.append(jpeg((pixels * 255).round().clip(0, 255).astype(np.uint8)))
    return images


def write_records(path: Path, records: Sequence[bytes]) -> None:
    path.write_bytes(b"".join(frame(r) for r in records))


def write_source(
    folder: Path,
    name: str,
    split_sizes: dict[str, Sequence[int]],
    *,
    image_size: int = 32,
    superclasses: dict[str, Sequence[int]] | None = None,
    shards: int = 1,
    seed: int = 0,
    record: Callable[[bytes, int], bytes] = lambda image, label: example(image, label),
) -> Path:
    """A converted source: ``folder/name/dataset_spec.json`` and per-class records.

    ``split_sizes[split]`` lists the image count of each class of the split (ids contiguous,
    TRAIN then VALID then TEST). ``superclasses[split]`` (a bi-level spec) lists how many
    classes each superclass of the split has. ``shards > 1`` writes ``{id}_{k}.tfrecords``.
    """
    out = folder / name
    out.mkdir(parents=True)
    sizes = [n for split in ("TRAIN", "VALID", "TEST") for n in split_sizes.get(split, [])]
    images = ProceduralImages(
        num_classes=len(sizes), images_per_class=max(sizes), image_size=image_size, seed=seed
    )
    for class_id, count in enumerate(sizes):
        records = [record(j, class_id) for j in procedural_jpegs(images, class_id, count)]
        if shards == 1:
            write_records(out / f"{class_id}.tfrecords", records)
        else:
            for k in range(shards):
                write_records(out / f"{class_id}_{k}.tfrecords", records[k::shards])
    spec = {
        "name": name,
        "images_per_class": {str(c): n for c, n in enumerate(sizes)},
        "class_names": {str(c): f"{name}_class_{c}" for c in range(len(sizes))},
        "path": f"/converted/elsewhere/{name}",
        "file_pattern": "{}.tfrecords" if shards == 1 else "{}_{}.tfrecords",
    }
    if superclasses is None:
        spec["__class__"] = "DatasetSpecification"
        spec["classes_per_split"] = {
            s: len(split_sizes.get(s, [])) for s in ("TRAIN", "VALID", "TEST")
        }
    else:
        groups = [n for split in ("TRAIN", "VALID", "TEST") for n in superclasses.get(split, [])]
        spec["__class__"] = "BiLevelDatasetSpecification"
        spec["superclasses_per_split"] = {
            s: len(superclasses.get(s, [])) for s in ("TRAIN", "VALID", "TEST")
        }
        spec["classes_per_superclass"] = {str(i): n for i, n in enumerate(groups)}
        spec["superclass_names"] = {str(i): f"alphabet_{i}" for i in range(len(groups))}
    (out / "dataset_spec.json").write_text(json.dumps(spec, indent=2))
    return out


def write_tiny_metadataset(root: Path, image_size: int = 32) -> Path:
    """Two sources: ``birds`` (plain, 8/3/5 classes) and ``letters`` (bi-level, sharded)."""
    write_source(
        root,
        "birds",
        {"TRAIN": [12, 9, 14, 10, 11, 8, 9, 12], "VALID": [8, 9, 10], "TEST": [10, 12, 9, 8, 11]},
        image_size=image_size,
        seed=1,
    )
    write_source(
        root,
        "letters",
        {"TRAIN": [6] * 11, "VALID": [6] * 5, "TEST": [6] * 6},
        superclasses={"TRAIN": [5, 6], "VALID": [5], "TEST": [6]},
        image_size=image_size,
        shards=2,
        seed=2,
    )
    return root


QUERY = "test"


def write_task_folder(
    root: Path,
    classes: int = 3,
    per_class: int = 5,
    test_per_class: int = 3,
    image_size: int = 40,
    layout: str = "train800val200",
) -> Path:
    """A VTAB-style task: ``root/<layout>/<class>/*.jpg`` and ``root/test/<class>/*.jpg``;
    files named by position in their split, so that sorting by name keeps the split's order."""
    images = ProceduralImages(
        num_classes=classes,
        images_per_class=per_class + test_per_class,
        image_size=image_size,
        seed=3,
    )
    for c in range(classes):
        for i in range(per_class + test_per_class):
            support = i < per_class
            split = layout if support else QUERY
            # named by position in the split, the classes interleaved (as a shuffled split)
            position = i * classes + c if support else (i - per_class) * classes + c
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (images.render(c, i).permute(1, 2, 0).numpy() * 255).round()
            (folder / f"{position:05d}.jpg").write_bytes(jpeg(pixels.astype(np.uint8)))
    return root
