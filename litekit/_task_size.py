"""One vocabulary for a task's size on both command lines: per class, or in all.

``python -m litekit.train`` samples tasks of ``--way`` classes with ``--shot`` support and
``--query`` query images per class; ``python -m litekit.measure`` measures a task of
``--n-support`` and ``--n-query`` images in all. Each accepts both spellings: the totals are
``way × shot`` and ``way × query``. Given together, they must agree; a contradiction is an
error naming both options, before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from litekit._checks import bad_argument


@dataclass(frozen=True)
class Spelling:
    """The two options of one count: per class (``--shot``) and in all (``--n-support``)."""

    per_class: str
    total: str
    images: str  # "support" or "query", for messages


SUPPORT = Spelling("--shot", "--n-support", "support")
QUERY = Spelling("--query", "--n-query", "query")


def resolve(
    spelling: Spelling,
    way: int,
    per_class: int | None,
    total: int | None,
    default_per_class: int,
    *,
    whole_classes: bool,
) -> tuple[int | None, int]:
    """(per class, total) from whichever of the two options was given.

    Neither: the per-class default. ``whole_classes`` (training, where every class of a task
    has the same number of images) refuses a total that ``way`` does not divide; otherwise
    the per-class value of such a total is None (a measurement takes the total as it is).
    """
    if per_class is not None and total is not None:
        if total != way * per_class:
            raise bad_argument(
                spelling.total,
                total,
                f"with --way {way} and {spelling.per_class} {per_class} a task has "
                f"{way * per_class} {spelling.images} images, not {total}; pass one of "
                f"{spelling.per_class} (per class) and {spelling.total} (in all), or values "
                "that agree.",
            )
        return per_class, total
    if total is not None:
        if total % way == 0:
            return total // way, total
        if whole_classes:
            raise bad_argument(
                spelling.total,
                total,
                f"every one of the --way {way} classes takes as many {spelling.images} images; "
                f"pass a multiple of {way}, or {spelling.per_class} (per class).",
            )
        return None, total
    per_class = default_per_class if per_class is None else per_class
    return per_class, way * per_class
