"""Write sources in Meta-Dataset's format: TFRecord files of ``tf.train.Example`` records.

For small sources made here (the tutorials' miniature Meta-Dataset, the benchmarks), and
for converting a class-per-folder dataset of your own into a source that
`litekit.data.MetaDatasetSource` and Meta-Dataset's own reader both read:

- `encode_example` serialises an Example with ``image`` (bytes) and ``label`` (int64);
- `write_records` frames records into a TFRecord file (`litekit.data.tfrecord`);
- `write_source` writes a source folder: one ``{class_id}.tfrecords`` per class and its
  ``dataset_spec.json`` (plain, or bi-level with superclasses);
- `procedural_source` fills one with JPEGs of the embedded dataset
  (`litekit.data.ProceduralImages`);
- `procedural_task` writes a VTAB-style task folder of them (`litekit.data.TaskFolder`).

Meta-Dataset's own conversion scripts (for its ten public sources) are described in
data/README.md.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from litekit._checks import bad_argument
from litekit.data.md_spec import SPEC_FILE, SPLITS
from litekit.data.procedural import ProceduralImages
from litekit.data.tfrecord import masked_crc32c


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_example(image: bytes, label: int) -> bytes:
    """A serialised ``tf.train.Example{image: bytes_list, label: int64_list}``."""
    image_feature = _field(1, _field(1, image))
    label_feature = _field(3, _field(1, _varint(int(label))))
    entries = _field(1, _field(1, b"image") + _field(2, image_feature))
    entries += _field(1, _field(1, b"label") + _field(2, label_feature))
    return _field(1, entries)


def write_records(path: str | os.PathLike, records: Iterable[bytes]) -> None:
    """Write ``records`` as a TFRecord file (length, its CRC, data, its CRC)."""
    with open(path, "wb") as file:
        for data in records:
            length = struct.pack("<Q", len(data))
            file.write(length + struct.pack("<I", masked_crc32c(length)))
            file.write(data + struct.pack("<I", masked_crc32c(data)))


def write_source(
    folder: str | os.PathLike,
    name: str,
    images: Sequence[Sequence[bytes]],
    classes_per_split: dict[str, int],
    *,
    superclasses: dict[str, Sequence[int]] | None = None,
) -> Path:
    """Write ``folder/name``: class c's encoded images ``images[c]`` as ``c.tfrecords``, and
    the spec. Classes are numbered TRAIN, then VALID, then TEST (``classes_per_split``);
    ``superclasses[split]`` gives the class count of each superclass for a bi-level spec.
    Refuses a folder that already exists (nothing is overwritten)."""
    out = Path(folder) / name
    if out.exists():
        raise bad_argument("name", name, f"{str(out)!r} exists; pick a new folder.")
    if sum(classes_per_split.get(s, 0) for s in SPLITS) != len(images):
        raise bad_argument(
            "classes_per_split", classes_per_split, f"must add up to the {len(images)} classes."
        )
    out.mkdir(parents=True)
    for class_id, encoded in enumerate(images):
        write_records(out / f"{class_id}.tfrecords", (encode_example(b, class_id) for b in encoded))
    spec = {
        "name": name,
        "images_per_class": {str(c): len(e) for c, e in enumerate(images)},
        "class_names": {str(c): f"{name}_{c}" for c in range(len(images))},
        "path": str(out),
        "file_pattern": "{}.tfrecords",
    }
    if superclasses is None:
        spec["__class__"] = "DatasetSpecification"
        spec["classes_per_split"] = {s: classes_per_split.get(s, 0) for s in SPLITS}
    else:
        groups = [n for split in SPLITS for n in superclasses.get(split, [])]
        spec["__class__"] = "BiLevelDatasetSpecification"
        spec["superclasses_per_split"] = {s: len(superclasses.get(s, [])) for s in SPLITS}
        spec["classes_per_superclass"] = {str(i): n for i, n in enumerate(groups)}
        spec["superclass_names"] = {str(i): f"{name}_group_{i}" for i in range(len(groups))}
    (out / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    return out


def jpeg_bytes(pixels: np.ndarray, quality: int = 90) -> bytes:
    """An (H, W, 3) uint8 array as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def procedural_jpegs(data: ProceduralImages, label: int, count: int) -> list[bytes]:
    """``count`` images of class ``label`` of the embedded dataset, as JPEG bytes."""
    out = []
    for instance in range(count):
        pixels = data.render(label, instance).permute(1, 2, 0).numpy()
        out.append(jpeg_bytes((pixels * 255).round().clip(0, 255).astype(np.uint8)))
    return out


def procedural_source(
    folder: str | os.PathLike,
    name: str,
    classes_per_split: dict[str, int],
    images_per_class: int,
    *,
    image_size: int = 84,
    seed: int = 0,
    superclasses: dict[str, Sequence[int]] | None = None,
) -> Path:
    """A source of the embedded dataset's images in Meta-Dataset's format."""
    classes = sum(classes_per_split.get(s, 0) for s in SPLITS)
    data = ProceduralImages(
        num_classes=classes, images_per_class=images_per_class, image_size=image_size, seed=seed
    )
    images = [procedural_jpegs(data, c, images_per_class) for c in range(classes)]
    return write_source(folder, name, images, classes_per_split, superclasses=superclasses)


def procedural_task(
    root: str | os.PathLike,
    classes: int,
    support_per_class: int,
    query_per_class: int,
    *,
    image_size: int = 84,
    seed: int = 0,
    first_class: int = 0,
    support_split: str = "train800val200",
) -> Path:
    """A VTAB-style task of the embedded dataset's images: ``root/<support_split>/<class>/``
    and ``root/test/<class>/`` JPEGs, each named by its position in its split with the
    classes interleaved (as an exported, shuffled split would be), so that the first N in
    file-name order hold every class once N >= ``classes``. Refuses an existing ``root``."""
    root = Path(root)
    if root.exists():
        raise bad_argument("root", str(root), "exists; pick a new folder.")
    data = ProceduralImages(
        num_classes=classes,
        images_per_class=support_per_class + query_per_class,
        image_size=image_size,
        seed=seed,
        first_class=first_class,
    )
    for c in range(classes):
        encoded = procedural_jpegs(data, c, support_per_class + query_per_class)
        for split, images in ((support_split, encoded[:support_per_class]),
                              ("test", encoded[support_per_class:])):  # fmt: skip
            folder = root / split / f"class_{c:03d}"
            folder.mkdir(parents=True)
            for i, image in enumerate(images):
                (folder / f"{i * classes + c:06d}.jpg").write_bytes(image)
    return root
