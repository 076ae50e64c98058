"""Reading the tables the figures take: lists of row dicts, checked and grouped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litekit._checks import bad_argument


def check_rows(rows: Any, keys: Sequence[str]) -> list[dict]:
    """``rows`` as a list, if it is a non-empty list of dicts with the columns ``keys``."""
    if not isinstance(rows, list | tuple) or not rows or not isinstance(rows[0], dict):
        raise bad_argument(
            "rows", type(rows).__name__, "pass the non-empty list of dicts a diagnostic returns."
        )
    missing = [k for k in keys if k not in rows[0]]
    if missing:
        raise bad_argument(
            "rows",
            sorted(rows[0])[:8],
            f"rows need the columns {missing}; pass the table "
            "from the matching litekit.diagnostics function.",
        )
    return list(rows)


def groups(rows: list[dict], key: str, order: str | None = None) -> dict[Any, list[dict]]:
    """Rows grouped by ``key`` in order of first appearance, each sorted by ``order`` if given."""
    grouped: dict[Any, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    if order is None:
        return grouped
    return {name: sorted(members, key=lambda r: r[order]) for name, members in grouped.items()}


def task_title(rows: list[dict], what: str) -> str:
    """``what``, followed by the learner and N of the rows' task when the rows say."""
    first = rows[0]
    n = first.get("n")
    return f"{what}: {first.get('learner', '')}, N = {n}" if n is not None else what
