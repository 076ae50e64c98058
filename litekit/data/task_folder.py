"""One large task from two folders (VTAB-1k style): a support folder and a query folder.

The LITE paper's transfer benchmark (VTAB-1k) is one task per dataset: the support set is
1000 labelled training images, the query set the whole test split, scored by top-1
accuracy. On disk, each split is a class-per-folder tree:

    <task>/train800val200/<class>/<image>.jpg    the 1000 support images of VTAB-1k
    <task>/train/<class>/<image>.jpg             the full training split
    <task>/test/<class>/<image>.jpg              the query set

`task_folders` finds the support and query folders of a task in that layout (the support
split ``"train800val200"``, ``"train800"`` or ``"train"``); `TaskFolder` reads one folder.
``first=N`` takes the first N images of a folder in file-name order across its classes,
as the LITE code takes the first 1000 training examples of each dataset: export images
named by their position in the split (``00000.jpg``, ``00001.jpg``, ...) and this is the
split's own order. A support folder over ``max_images`` (1000 by default, the benchmark's N)
is refused before anything is decoded: pass ``first``, or raise the limit.

Images are resized to a square with Lanczos filtering (as the LITE code does for VTAB) and
normalised by name, as Meta-Dataset records are (`litekit.data.metadataset`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.functional import to_tensor

from litekit._checks import bad_argument, check_choice, check_int
from litekit.data.folders import (
    bad_path,
    check_root,
    class_folders,
    has_image_extension,
    load_image,
)
from litekit.data.metadataset import resolve_normalization

SUPPORT_SPLITS = ("train800val200", "train800", "train")
QUERY_SPLIT = "test"
#: VTAB-1k's support set size, and the default limit of a support folder.
VTAB_SUPPORT_SIZE = 1000


def task_folders(root: str | os.PathLike, support: str = "train800val200") -> tuple[Path, Path]:
    """(support folder, query folder) of a task laid out as ``<root>/<split>/<class>/``."""
    root = check_root(root)
    check_choice("support", support, SUPPORT_SPLITS)
    found = []
    for split in (support, QUERY_SPLIT):
        if not (root / split).is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise bad_path(
                "root",
                root,
                f"has no {split}/ folder (it has {present}); lay a task out as "
                f"<task>/{{{','.join(SUPPORT_SPLITS)}}}/<class>/ and <task>/test/<class>/ "
                "(see data/README.md).",
            )
        found.append(root / split)
    return found[0], found[1]


def _images(folder: Path) -> list[Path]:
    return [f for f in folder.iterdir() if f.is_file() and has_image_extension(f)]


@dataclass(frozen=True)
class Item:
    path: Path
    label: int


class TaskFolder(Dataset):
    """The images of one class-per-folder split; ``dataset[i] -> (image, label)``.

    Args:
        folder: ``<folder>/<class>/<image>`` files.
        image_size: images become (3, image_size, image_size) tensors (square resize,
            Lanczos).
        normalization: ``"metadataset"`` ([-1, 1], the LITE code's), ``"imagenet"``, or
            (mean, std); required.
        classes: class names in label order; by default this folder's class folders,
            sorted. A query folder takes its support folder's classes, so that the same
            name means the same label; a class folder outside them is an error.
        first: keep the first ``first`` images in file-name order (across classes).
        max_images: refuse a folder with more images than this (after ``first``).
        argument: the name errors give the folder (``"--support"``).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        image_size: int,
        *,
        normalization: str | tuple[Sequence[float], Sequence[float]],
        classes: list[str] | None = None,
        first: int | None = None,
        max_images: int | None = None,
        argument: str = "folder",
    ) -> None:
        self.folder = check_root(folder, argument)
        self.image_size = check_int("image_size", image_size, minimum=1)
        self.normalization = normalization
        self.mean_std = resolve_normalization(normalization)
        folders = class_folders(self.folder, 1, argument)
        names = [f.name for f in folders]
        if classes is None:
            classes = names
        else:
            unknown = sorted(set(names) - set(classes))
            if unknown:
                raise bad_path(
                    argument,
                    self.folder,
                    f"holds classes {unknown[:5]} that the support set does not have (it has "
                    f"{classes[:5]}{'...' if len(classes) > 5 else ''}); remove them, or add "
                    "them to the support folder.",
                )
        self.classes = list(classes)
        label_of = {name: label for label, name in enumerate(self.classes)}
        items = [Item(path, label_of[f.name]) for f in folders for path in _images(f)]
        items.sort(key=lambda item: (item.path.name, item.path.parent.name))
        if first is not None:
            items = items[: check_int("first", first, minimum=1)]
        if max_images is not None and len(items) > max_images:
            raise bad_path(
                argument,
                self.folder,
                f"holds {len(items)} images, over the limit of {max_images}; take the first "
                f"{max_images} (first={max_images}, on the command line --first {max_images}) "
                "or raise the limit.",
            )
        self.items = items
        self.targets = [item.label for item in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.items[int(index)]
        image = load_image(item.path).resize((self.image_size, self.image_size), Image.LANCZOS)
        mean, std = (torch.tensor(v).view(3, 1, 1) for v in self.mean_std)
        return (to_tensor(image) - mean) / std, item.label


def check_support_classes(support: TaskFolder) -> None:
    """Every class of the support folder must have an image after ``first``: a classifier
    over a class it never saw cannot be built."""
    seen = set(support.targets)
    missing = [name for label, name in enumerate(support.classes) if label not in seen]
    if missing:
        raise bad_argument(
            "first",
            len(support),
            f"the first {len(support)} support images leave out classes {missing[:5]}; take more "
            "images, or remove those class folders.",
        )
