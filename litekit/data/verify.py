"""Check your own image folders before training: ``python -m litekit.data.verify``.

    python -m litekit.data.verify --data data/birds/train --validation-data data/birds/val \\
        --test-data data/birds/test --way 5 --shot 5 --query 10 --image-size 224

Each folder is laid out as ``python -m litekit.train --data`` reads it (one folder per class,
``--class-depth`` levels down). For each it decodes every image once, counts classes and
images per class, and finds the smallest image side. Across folders it checks what makes an
evaluation meaningless: a class in two folders (the test would then score classes training
saw), and the same image file in two folders. And it checks that each folder makes the
tasks asked for: ``--way`` classes with ``--shot`` + ``--query`` images each.

Prints one line per folder, then ``problem:`` lines (exit status 1) and ``note:`` lines
(advice, exit status 0), and the same as JSON with ``--out``. A folder that is not laid
out as a dataset (no class folders, an empty class) ends with the usual one-line error and
exit status 2, before anything is read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

from PIL import Image

from litekit._checks import bad_argument
from litekit._cli_help import DefaultsHelpFormatter
from litekit.checkpoint import write_atomic
from litekit.data.folders import bad_path, check_root, class_folders, has_image_extension
from litekit.paths import check_writable_file

PROGRAM = "python -m litekit.data.verify"
#: Fewer training classes than this gets a note: meta-learning learns from the variety of its
#: tasks, and few classes make few different tasks (mini-ImageNet trains on 64).
FEW_TRAINING_CLASSES = 20
SPLITS = (
    ("data", "--data"),
    ("validation_data", "--validation-data"),
    ("test_data", "--test-data"),
)


@dataclass
class FolderReport:
    """What one folder holds: classes, images per class, unreadable files, smallest side."""

    option: str
    folder: str
    classes: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    smallest_side: int | None = None
    hashes: dict[str, str] = field(default_factory=dict, repr=False)  # sha256 -> a file

    @property
    def images(self) -> int:
        return sum(self.classes.values())

    def line(self) -> str:
        counts = sorted(self.classes.values())
        side = f", smallest side {self.smallest_side} px" if self.smallest_side else ""
        return (
            f"{self.option} {self.folder}: {len(counts)} classes, {self.images} images "
            f"({counts[0]} to {counts[-1]} per class){side}"
        )

    def as_dict(self) -> dict:
        row = asdict(self)
        row.pop("hashes")
        row["images"] = self.images
        return row


def read_folder(option: str, folder: str, class_depth: int) -> FolderReport:
    """Decode every image under ``folder``'s class folders once; hash each file."""
    root = check_root(folder, option)
    report = FolderReport(option, str(root))
    for class_folder in class_folders(root, class_depth, option):
        files = sorted(f for f in class_folder.iterdir() if f.is_file() and has_image_extension(f))
        report.classes[str(class_folder.relative_to(root))] = len(files)
        for file in files:
            data = file.read_bytes()
            report.hashes.setdefault(hashlib.sha256(data).hexdigest(), str(file))
            try:
                with Image.open(file) as image:
                    image.load()
                    side = min(image.size)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                report.unreadable.append(str(file))
                continue
            report.smallest_side = (
                side if report.smallest_side is None else min(report.smallest_side, side)
            )
    return report


def _task_problems(report: FolderReport, args: argparse.Namespace) -> list[str]:
    need = args.shot + args.query
    enough = [name for name, count in report.classes.items() if count >= need]
    if len(enough) >= args.way:
        return []
    return [
        f"{report.option} {report.folder}: only {len(enough)} classes have shot + query = "
        f"{need} images, and a task takes --way {args.way} of them; add images or classes, "
        "or lower --way, --shot or --query."
    ]


def _overlaps(reports: list[FolderReport]) -> list[str]:
    """Classes, and identical files, found in two folders."""
    problems = []
    for i, first in enumerate(reports):
        for second in reports[i + 1 :]:
            shared = sorted(set(first.classes) & set(second.classes))
            if shared:
                problems.append(
                    f"{first.option} and {second.option} share {len(shared)} classes "
                    f"({shared[:5]}); the classes of training, validation and test must be "
                    "disjoint, or the scores measure classes training saw."
                )
            same = sorted(set(first.hashes) & set(second.hashes))
            if same:
                pair = (first.hashes[same[0]], second.hashes[same[0]])
                problems.append(
                    f"{len(same)} image files are in both {first.option} and {second.option} "
                    f"(the first: {pair[0]!r} and {pair[1]!r}); remove them from one."
                )
    return problems


def _notes(reports: list[FolderReport], args: argparse.Namespace) -> list[str]:
    notes = []
    train = reports[0]
    if len(train.classes) < FEW_TRAINING_CLASSES:
        notes.append(
            f"--data has {len(train.classes)} training classes; meta-learning learns from the "
            f"variety of its tasks, and {FEW_TRAINING_CLASSES} or more classes (mini-ImageNet "
            "has 64) make the learner generalise better. Start from pretrained --weights."
        )
    if len(reports) == 1:
        notes.append(
            "no --validation-data or --test-data: hold out classes for both, to choose the "
            "best checkpoint and to report a score on classes never trained on."
        )
    for report in reports:
        if report.smallest_side is not None and report.smallest_side < args.image_size:
            notes.append(
                f"{report.option}: the smallest image side is {report.smallest_side} px, under "
                f"--image-size {args.image_size}: such images are enlarged."
            )
    return notes


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROGRAM,
        description="Check class-per-folder images for training, validation and test.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="training classes (default: required)")
    parser.add_argument("--validation-data", default=None, help="default: none")
    parser.add_argument("--test-data", default=None, help="default: none")
    parser.add_argument("--class-depth", type=int, default=1, help="levels down to a class")
    parser.add_argument("--way", type=int, default=5, help="classes per task")
    parser.add_argument("--shot", type=int, default=5, help="support images per class")
    parser.add_argument("--query", type=int, default=10, help="query images per class")
    parser.add_argument("--image-size", type=int, default=84, help="the size you will train at")
    parser.add_argument("--out", default=None, help="also write the report as JSON (default: none)")
    return parser


def _check(args: argparse.Namespace) -> None:
    for name, minimum in (("class_depth", 1), ("way", 2), ("shot", 1), ("query", 1)):
        if getattr(args, name) < minimum:
            raise bad_argument(
                "--" + name.replace("_", "-"), getattr(args, name), f"pass an integer >= {minimum}."
            )
    if args.image_size < 1:
        raise bad_argument("--image-size", args.image_size, "pass an integer >= 1.")
    if args.out is not None:
        out = check_writable_file("--out", args.out)
        if out.exists() and not _is_report(out):
            raise bad_path(
                "--out", out, "a file that is not a verify report is there; pass another path."
            )


def _is_report(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("format") == "litekit-data-verify"
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return False


def verify(args: argparse.Namespace) -> dict:
    """The report: every folder read, then the problems and notes."""
    reports = [
        read_folder(option, getattr(args, name), args.class_depth)
        for name, option in SPLITS
        if getattr(args, name) is not None
    ]
    problems = []
    for report in reports:
        if report.unreadable:
            problems.append(
                f"{report.option}: {len(report.unreadable)} files cannot be read as images "
                f"(the first: {report.unreadable[0]!r}); remove or replace them."
            )
        problems += _task_problems(report, args)
    problems += _overlaps(reports)
    return {
        "format": "litekit-data-verify",
        "folders": [r.as_dict() for r in reports],
        "lines": [r.line() for r in reports],
        "problems": problems,
        "notes": _notes(reports, args),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """0: ready to train; 1: problems found (listed); 2: a bad option or folder."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check(args)
        for name, option in SPLITS:  # every folder's layout, before any image is read
            if getattr(args, name) is not None:
                root = check_root(getattr(args, name), option)
                class_folders(root, args.class_depth, option)
        result = verify(args)
    except ValueError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    for line in result["lines"]:
        print(line)
    for problem in result["problems"]:
        print(f"problem: {problem}")
    for note in result["notes"]:
        print(f"note: {note}")
    if not result["problems"]:
        print(
            f"ok: every image decodes, the folders share no class and no file, and each makes "
            f"{args.way}-way {args.shot}-shot tasks with {args.query} queries per class."
        )
    if args.out is not None:
        write_atomic((json.dumps(result, indent=2) + "\n").encode(), Path(args.out))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
