"""Rows of numbers (the diagnostics' tables) printed as aligned plain text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litekit._checks import bad_argument


def format_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 3
) -> str:
    """Rows as an aligned plain-text table, floats to ``digits`` significant figures.

    For printing a diagnostics table without pandas (``pandas.DataFrame(rows)`` also works).
    """
    if not rows:
        raise bad_argument("rows", rows, "pass at least one row.")
    columns = list(columns or rows[0].keys())

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}g}"
        return str(value)

    body = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in body)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)),
        *("  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)) for line in body),
    ]
    return "\n".join(lines)
