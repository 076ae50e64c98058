"""Real images in class-per-folder layout (``root/<class>/<image>.jpg``), checked.

torchvision's ``ImageFolder`` works with litekit's samplers as it is (they read its
``.targets``). `ImageFolderDataset` is an ``ImageFolder`` that also
- names the folder when a class folder holds no image, before anything is loaded;
- names the file when an image cannot be read (a corrupt or truncated file, or something
  that is not an image), instead of failing deep inside PIL; ``verify=True`` checks every
  file up front;
- resizes to square ``image_size`` tensors, so that episodes can be stacked;
- reads 16-bit grey images (PNG, TIFF) at their grey levels: Pillow's own conversion to
  RGB would clip them, turning almost every pixel white (`to_rgb`);
- takes classes at a deeper level with ``class_depth`` (Omniglot:
  ``images_background/<alphabet>/<character>/*.png`` has class_depth=2).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms

from litekit._checks import check_int
from litekit.data.normalization import check_normalization

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def bad_path(name: str, path: str | os.PathLike, fix: str) -> ValueError:
    """The house-style error for a file or folder, with the whole path (never shortened)."""
    return ValueError(f"{name}={str(path)!r}: {fix}")


# Pillow's modes for one channel of more than 8 bits: 16-bit PNG and TIFF open as "I;16"
# (little-endian), "I;16B" (big-endian) or, in older Pillow, "I" (32-bit integers that hold
# the 16-bit values).
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of ``image``, with 16-bit grey levels scaled, not clipped.

    Pillow's own ``convert("RGB")`` clips a 16-bit value v to min(v, 255), which turns
    almost every pixel of a 16-bit image white. Here v becomes round(v · 255 / 65535)
    (65535 / 255 = 257 exactly), so black stays black, white stays white and the grey levels
    in between keep their order. Mode "I" holds 32-bit integers; values outside 0..65535
    are clipped to that range first. 16-bit RGB PNGs already open as 8-bit "RGB".
    """
    if image.mode not in SIXTEEN_BIT_MODES:
        return image.convert("RGB")
    values = np.asarray(image).astype(np.int64).clip(0, 65535)
    grey = ((values * 255 + 65535 // 2) // 65535).astype(np.uint8)  # round half up
    return Image.fromarray(grey).convert("RGB")  # 2-D uint8: mode "L"


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open, fully decode and convert to 8-bit RGB (16-bit grey scaled by `to_rgb`); a file
    that fails is named in the error."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now: truncated files fail here, not later
            return to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise bad_path(
            "image file",
            path,
            f"cannot be read as an image ({type(error).__name__}: {error}); remove or replace "
            "this file.",
        ) from error


def image_transform(
    image_size: int, normalization: tuple[Sequence[float], Sequence[float]] | None = None
) -> Callable[[Image.Image], torch.Tensor]:
    """Resize the short side to ``image_size``, centre-crop a square, convert to a tensor in
    [0, 1], and normalise it with ``normalization`` = (mean, std) per channel when given (what
    pretrained weights expect: `litekit.learners.pretrained.normalization`)."""
    image_size = check_int("image_size", image_size, minimum=1)
    steps = [
        transforms.Resize(image_size, antialias=True),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
    ]
    if normalization is not None:
        steps.append(transforms.Normalize(*check_normalization(normalization)))
    return transforms.Compose(steps)


def has_image_extension(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def check_root(root: str | os.PathLike, argument: str = "root") -> Path:
    """``root`` as a Path if it is a folder; otherwise an error naming ``argument``."""
    root = Path(root)
    if not root.is_dir():
        raise bad_path(
            argument, root, "no such folder; see data/README.md for how to lay data out."
        )
    return root


def class_folders(root: Path, depth: int, argument: str = "root") -> list[Path]:
    """Folders ``depth`` levels below ``root``, sorted; each must hold at least one image.

    Errors name ``argument`` (the argument or option ``root`` came from) and ``root``.
    """
    level = [root]
    for _ in range(depth):
        level = sorted(child for folder in level for child in folder.iterdir() if child.is_dir())
    if not level:
        raise bad_path(
            argument,
            root,
            f"found no class folders {depth} level(s) down; lay images out as "
            "<folder>/<class>/<image>.jpg (see data/README.md), or set the class depth.",
        )
    for folder in level:
        if not any(f.is_file() and has_image_extension(f) for f in folder.iterdir()):
            raise bad_path(
                argument,
                root,
                f"the class folder {str(folder)!r} holds no {'/'.join(IMAGE_EXTENSIONS)} "
                "image; add images or remove the folder.",
            )
    return level


class ImageFolderDataset(datasets.ImageFolder):
    """A checked ``torchvision.datasets.ImageFolder``: ``dataset[i] -> (image, label)``.

    Args:
        root: the folder that holds one folder per class.
        image_size: images become (3, image_size, image_size) tensors (ignored when a
            ``transform`` is given).
        class_depth: how many folder levels below ``root`` a class is (1: root/<class>).
        transform: replaces the default resize-crop-to-tensor transform.
        verify: decode every image once now, so a bad file fails at construction.
        argument: the name errors about ``root`` give it (the command line passes its
            option, ``"--data"``), so that they name what the user typed.
        normalization: (mean, std) per channel to normalise with, as pretrained weights
            expect (`litekit.data.normalization`); None keeps [0, 1] pixels.

    ``.targets`` and ``.classes`` are as in ``ImageFolder``: the samplers use them without
    loading an image.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        image_size: int = 84,
        *,
        class_depth: int = 1,
        transform: Callable | None = None,
        verify: bool = False,
        argument: str = "root",
        normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        root = check_root(root, argument)
        self.class_depth = check_int("class_depth", class_depth, minimum=1)
        folders = class_folders(root, self.class_depth, argument)
        self._class_names = [str(f.relative_to(root)) for f in folders]
        super().__init__(
            str(root),
            transform=transform
            if transform is not None
            else image_transform(image_size, normalization),
            loader=load_image,
            is_valid_file=lambda path: has_image_extension(path) and Path(path).is_file(),
        )
        if verify:
            for path, _ in self.samples:
                load_image(path)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        """Classes are the checked folders ``class_depth`` levels down (relative paths)."""
        names = getattr(self, "_class_names", None)
        if names is None:  # pragma: no cover - only if torchvision calls it before __init__
            names = [str(f.relative_to(directory)) for f in class_folders(Path(directory), 1)]
        return list(names), {name: i for i, name in enumerate(names)}
