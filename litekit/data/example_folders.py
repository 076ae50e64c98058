"""A small dataset of image folders made from the embedded dataset, to try your own-data
workflow before you have images: ``python -m litekit.data.example_folders data/shapes``.

    data/shapes/train/<class>/<image>.png
    data/shapes/validation/<class>/<image>.png
    data/shapes/test/<class>/<image>.png

The three splits hold disjoint classes (different classes of one `ProceduralImages`), as your
own training, validation and test classes must be. (At small sizes some classes of the
embedded dataset look alike: fine details are invisible below 224 px; see its docstring.)
Everything is a function of ``--seed``; the folder must not exist yet (nothing is ever
overwritten).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from litekit._checks import bad_argument, check_int
from litekit._cli_help import DefaultsHelpFormatter
from litekit.data.folders import bad_path
from litekit.data.procedural import MAX_SIZE, MIN_SIZE, ProceduralImages

PROGRAM = "python -m litekit.data.example_folders"
SPLITS = ("train", "validation", "test")


def write_example_folders(
    root: str | Path,
    *,
    classes: Sequence[int] = (12, 6, 6),
    images_per_class: int = 12,
    image_size: int = 96,
    seed: int = 0,
    options: bool = False,
) -> Path:
    """Write ``root/{train,validation,test}/class_<code>/<i>.png``; returns ``root``.

    ``classes`` gives the number of classes of each split; they are consecutive, disjoint
    ranges of the embedded dataset's classes. ``root`` must not exist, or be an empty folder.
    Checked before anything is written; ``options`` names the command line's options in
    errors (``--image-size``) instead of the arguments.
    """

    def name(argument: str) -> str:
        return "--" + argument.replace("_", "-") if options and argument != "root" else argument

    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise bad_path(
            name("root"), root, "already there and not an empty folder; pass a new folder."
        )
    if len(classes) != len(SPLITS):
        raise bad_argument(name("classes"), classes, "pass three counts: train, validation, test.")
    counts = [check_int(name("classes"), c, minimum=2) for c in classes]
    images_per_class = check_int(name("images_per_class"), images_per_class, minimum=1)
    size_fix = f"pass a size from {MIN_SIZE} to {MAX_SIZE}."
    image_size = check_int(name("image_size"), image_size, minimum=MIN_SIZE, fix=size_fix)
    if image_size > MAX_SIZE:
        raise bad_argument(name("image_size"), image_size, size_fix)
    seed = check_int(name("seed"), seed, minimum=0)
    # One dataset whose classes are dealt out to the splits: distinct classes, and images
    # that differ between splits (each class draws its own nuisances).
    data = ProceduralImages(sum(counts), images_per_class, image_size, seed)
    first = 0
    for split, count in zip(SPLITS, counts, strict=True):
        for label in range(first, first + count):
            folder = root / split / f"class_{label:03d}"
            folder.mkdir(parents=True)
            for instance in range(images_per_class):
                pixels = data.render(label, instance).permute(1, 2, 0).numpy()
                image = Image.fromarray((pixels * 255).round().astype(np.uint8))
                image.save(folder / f"{instance:03d}.png")
        first += count
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Write a small train/validation/test dataset of PNG folders.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("root", help="a folder that does not exist yet")
    parser.add_argument(
        "--classes", type=int, nargs=3, default=[12, 6, 6], help="train, validation, test"
    )
    parser.add_argument("--images-per-class", type=int, default=12, help="images per class")
    parser.add_argument("--image-size", type=int, default=96, help="side of the square images")
    parser.add_argument("--seed", type=int, default=0, help="what the images are")
    args = parser.parse_args(argv)
    try:
        root = write_example_folders(
            args.root, classes=args.classes, images_per_class=args.images_per_class,
            image_size=args.image_size, seed=args.seed, options=True,
        )  # fmt: skip
    except ValueError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {root}/train, {root}/validation and {root}/test")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
