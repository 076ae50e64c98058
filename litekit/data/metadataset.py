"""Meta-Dataset's converted sources, read without TensorFlow: ``dataset[i] -> (image, label)``.

A source is a folder ``<root>/<source>/`` with ``dataset_spec.json`` (`litekit.data.md_spec`)
and one TFRecord file per class (`litekit.data.tfrecord`), each record a
``tf.train.Example`` with ``image`` (JPEG or PNG bytes) and ``label`` (the class id, int64).
`MetaDatasetSource` is one split of one source: its items are every record of the split's
classes, ``targets`` their class ids (known without decoding an image), and
``superclasses`` the bi-level groups (Omniglot's alphabets) when the spec has them.

Checked when it is built, before anything is trained (each error names the file):
the spec, that every class it lists has its record files, every record's CRCs, that each
record is an Example with one image and one label, that the label is the class of its file
(so a label outside the spec is named), that the number of records is what the spec says,
and that each image's header is one Pillow can decode and its data is not cut short.
These checks run once: they are stored with the record index (`litekit.data.record_index`).
``verify=True`` also decodes every image once, which finds damage inside a JPEG's data;
otherwise such an image is named when it is loaded.

Decoding (`decode_image`) is Meta-Dataset's: 3 channels, a square bilinear resize with
aligned corners and no antialiasing (TensorFlow 1's ``resize_images``), then a named
normalisation: ``"metadataset"`` maps pixels to [-1, 1] (2 · (x / 255 − 0.5), what
Meta-Dataset and the LITE code feed the network); ``"imagenet"`` subtracts the ImageNet
mean and divides by its standard deviation (what torchvision's pretrained weights expect);
``"none"`` keeps [0, 1] (what litekit's other readers give by default); or pass (mean, std)
per channel. There is no default: the choice changes what a pretrained
backbone sees, so it is always named.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from litekit._checks import bad_argument, check_choice, check_int
from litekit.data.folders import bad_path, to_rgb
from litekit.data.md_spec import CONVERT, SPLITS, SourceSpec, load_spec
from litekit.data.normalization import IMAGENET_NORMALIZATION, check_normalization
from litekit.data.record_index import Pending, load_index, write_pending
from litekit.data.tfrecord import ProtobufError, parse_example, read_record

NORMALIZATIONS = ("metadataset", "imagenet", "none")
Normalization = str | tuple[Sequence[float], Sequence[float]]


def resolve_normalization(normalization: Normalization) -> tuple[tuple[float, ...], ...]:
    """(mean, std) on the [0, 1] scale for a named normalisation or a (mean, std) pair.

    ``"metadataset"`` is mean 0.5, std 0.5 (pixels to [-1, 1]); ``"imagenet"`` is
    `litekit.data.IMAGENET_NORMALIZATION`; ``"none"`` keeps pixels in [0, 1] (what litekit's
    other readers give without a normalisation).
    """
    if isinstance(normalization, str):
        check_choice("normalization", normalization, NORMALIZATIONS)
        if normalization == "metadataset":
            return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        if normalization == "none":
            return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        return check_normalization(IMAGENET_NORMALIZATION)
    if normalization is None:
        raise bad_argument(
            "normalization",
            None,
            "name one: 'metadataset' (pixels to [-1, 1], as Meta-Dataset and the LITE code), "
            "'imagenet' (for torchvision's pretrained weights) or 'none' ([0, 1]), or pass "
            "(mean, std).",
        )
    return check_normalization(normalization)


def _image_bytes_whole(data: bytes) -> bool:
    """A JPEG ends with the EOI marker and a PNG with its IEND chunk: cheap checks for an
    image cut short (other formats: trusted to the decoder)."""
    if data[:2] == b"\xff\xd8":
        return data.rstrip(b"\x00")[-2:] == b"\xff\xd9"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return data[-12:-8] == b"\x00\x00\x00\x00" and data[-8:-4] == b"IEND"
    return True


def decode_image(data: bytes, image_size: int, normalization: Normalization) -> torch.Tensor:
    """A (3, image_size, image_size) float tensor from encoded image bytes, as Meta-Dataset
    decodes: RGB, square bilinear resize (aligned corners, no antialiasing), normalised."""
    mean, std = resolve_normalization(normalization)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        rgb = to_rgb(image)
    pixels = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1)[None].float()
    if pixels.shape[-2:] != (image_size, image_size):
        pixels = F.interpolate(
            pixels, size=(image_size, image_size), mode="bilinear", align_corners=True
        )
    shape = (3, 1, 1)
    scaled = pixels[0] / 255.0
    return (scaled - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


class _RecordChecker:
    """Checks one class file's records as its index is made (see the module's list)."""

    def __init__(self, path: Path, class_id: int, spec: SourceSpec, verify: bool) -> None:
        self.path, self.class_id, self.spec, self.verify = path, class_id, spec, verify

    def fail(self, number: int, what: str) -> ValueError:
        return bad_path("record file", self.path, f"record {number}: {what}")

    def __call__(self, number: int, data: bytes) -> None:
        try:
            features = parse_example(data)
        except ProtobufError as error:
            raise self.fail(
                number, f"is not a tf.train.Example ({error}); convert the source again."
            ) from error
        images, labels = features.get("image"), features.get("label")
        if not (isinstance(images, list) and len(images) == 1 and isinstance(images[0], bytes)):
            raise self.fail(
                number,
                f"has no single bytes feature 'image' (features: {sorted(features)}); this is "
                f"not a Meta-Dataset record ({CONVERT}).",
            )
        if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], int)):
            raise self.fail(
                number,
                f"has no single int64 feature 'label' (features: {sorted(features)}); this is "
                f"not a Meta-Dataset record ({CONVERT}).",
            )
        label = labels[0]
        if label not in self.spec.images_per_class:
            raise self.fail(
                number,
                f"its label {label} is not a class of {self.spec.spec_file} (its classes are "
                f"0..{len(self.spec.images_per_class) - 1}); convert the source again, or fix "
                "the spec.",
            )
        if label != self.class_id:
            raise self.fail(
                number,
                f"its label {label} is not the class of this file ({self.class_id}); the "
                "files are mixed up: convert the source again.",
            )
        check_encoded_image(images[0], lambda what: self.fail(number, what), self.verify)


def check_encoded_image(data: bytes, fail, verify: bool) -> None:
    """Raise ``fail(what)`` unless ``data`` is an image Pillow can open and is whole;
    ``verify`` decodes it fully."""
    fix = "replace the image and convert the source again."
    try:
        with Image.open(io.BytesIO(data)) as image:
            if verify:
                image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise fail(
            f"its image cannot be decoded ({type(error).__name__}: {error}); {fix}"
        ) from error
    if not _image_bytes_whole(data):
        raise fail(f"its image is cut short (no end marker); {fix}")


class MetaDatasetSource(Dataset):
    """One split of one converted Meta-Dataset source; ``dataset[i] -> (image, label)``.

    Args:
        root: the folder holding one folder per source (``<root>/<source>/dataset_spec.json``).
        source: the source's folder name (``"omniglot"``, ``"aircraft"``, ...).
        split: ``"TRAIN"``, ``"VALID"`` or ``"TEST"`` (the spec's class split).
        image_size: images become (3, image_size, image_size) tensors.
        normalization: ``"metadataset"`` ([-1, 1]), ``"imagenet"``, or (mean, std); required.
        cache_dir: where record indexes go when the records' folder is read-only.
        verify: decode every image once while indexing (stored: done once per file).
        argument: the name errors about the source folder give it (``"--sources"``).

    ``targets[i]`` is item i's class id in the spec (ids of the split, not 0..C-1);
    ``superclasses`` lists each superclass's class ids for a bi-level spec, else None;
    ``files``, ``offsets``, ``lengths`` and ``records`` say where each item is.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        source: str,
        split: str = "TRAIN",
        image_size: int = 84,
        *,
        normalization: str | tuple[Sequence[float], Sequence[float]],
        cache_dir: str | os.PathLike | None = None,
        verify: bool = False,
        argument: str = "source",
    ) -> None:
        self.split = check_choice("split", split, SPLITS)
        self.image_size = check_int("image_size", image_size, minimum=1)
        self.normalization = normalization
        self.mean_std = resolve_normalization(normalization)
        folder = source_folder(root, source, argument)
        self.spec = load_spec(folder, argument)
        self.name = source
        classes = self.spec.split_classes[self.split]
        if not classes:
            counts = {s: len(c) for s, c in self.spec.split_classes.items()}
            raise bad_argument(
                "split",
                split,
                f"{self.spec.spec_file} has no {split} classes (classes per split: {counts}); "
                "pick a split that has some.",
            )
        files = {c: self.spec.class_files(c) for c in classes}  # every file there, first
        pending: Pending = []  # new indexes, written once every file has passed
        self.files: list[Path] = []
        parts: dict[str, list[np.ndarray]] = {
            "file": [],
            "offset": [],
            "length": [],
            "label": [],
            "record": [],
        }
        for class_id in classes:
            found = 0
            for path in files[class_id]:
                checker = _RecordChecker(path, class_id, self.spec, verify)
                index = load_index(
                    path,
                    cache_dir=cache_dir,
                    check=checker,
                    extra=lambda c=class_id: {"label": c, "verified": verify},
                    pending=pending,
                )
                if verify and not index.extra.get("verified"):
                    for number in range(len(index)):
                        data = read_record(path, index.offsets[number], index.lengths[number])
                        checker(number, data)
                parts["file"].append(np.full(len(index), len(self.files)))
                parts["offset"].append(index.offsets)
                parts["length"].append(index.lengths)
                parts["label"].append(np.full(len(index), class_id))
                parts["record"].append(np.arange(len(index)))
                self.files.append(path)
                found += len(index)
            expected = self.spec.images_per_class[class_id]
            if found != expected:
                raise bad_path(
                    "record file",
                    files[class_id][0],
                    f"class {class_id} has {found} records, but {self.spec.spec_file} says "
                    f"{expected}; convert the source again, or fix the spec's count.",
                )
        write_pending(pending)
        self.file_numbers = np.concatenate(parts["file"]).astype(np.int64)
        self.offsets = np.concatenate(parts["offset"])
        self.lengths = np.concatenate(parts["length"])
        self.labels = np.concatenate(parts["label"]).astype(np.int64)
        self.records = np.concatenate(parts["record"]).astype(np.int64)
        self.superclasses = (
            self.spec.superclasses[self.split] if self.spec.superclasses is not None else None
        )

    @property
    def targets(self) -> list[int]:
        """Class id of every item (in the spec's numbering)."""
        return self.labels.tolist()

    @property
    def classes(self) -> list[int]:
        """The class ids of this split, in order."""
        return list(self.spec.split_classes[self.split])

    def __len__(self) -> int:
        return len(self.labels)

    def record(self, index: int) -> bytes:
        """The raw Example bytes of item ``index`` (CRC checked)."""
        path = self.files[self.file_numbers[index]]
        return read_record(
            path, int(self.offsets[index]), int(self.lengths[index]), int(self.records[index])
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = int(index)
        path = self.files[self.file_numbers[index]]
        number = int(self.records[index])
        image = parse_example(self.record(index))["image"][0]
        try:
            tensor = decode_image(image, self.image_size, self.mean_std)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise bad_path(
                "record file",
                path,
                f"record {number}: its image cannot be decoded ({type(error).__name__}: "
                f"{error}); replace the image and convert the source again.",
            ) from error
        return tensor, int(self.labels[index])

    def describe(self) -> dict[str, Any]:
        """What this source holds, for printing."""
        return {
            "source": self.name,
            "split": self.split,
            "classes": len(self.classes),
            "images": len(self),
            "bilevel": self.superclasses is not None,
            "image_size": self.image_size,
            "normalization": self.normalization
            if isinstance(self.normalization, str)
            else [list(v) for v in self.mean_std],
        }


def available_sources(root: Path) -> list[str]:
    """Folders under ``root`` that hold a ``dataset_spec.json``."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "dataset_spec.json").is_file())


def source_folder(root: str | os.PathLike, source: str, argument: str = "source") -> Path:
    """``root/source`` if it is a folder; otherwise an error naming it and the sources that
    are under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise bad_path("root", root, f"no such folder; {CONVERT}.")
    if not isinstance(source, str) or not source or "/" in source or source in (".", ".."):
        raise bad_argument(argument, source, "name one folder under the root, e.g. 'omniglot'.")
    folder = root / source
    if not folder.is_dir():
        present = available_sources(root)
        raise bad_path(
            argument,
            folder,
            f"no source {source!r} under {str(root)!r}; the sources there are "
            f"{present or 'none'}; pick from them, or convert it ({CONVERT}).",
        )
    return folder
