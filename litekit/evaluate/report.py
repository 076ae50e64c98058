"""What an evaluation prints and writes: a table, and one JSON document.

The JSON document (``--out``)::

    {"format": "litekit-evaluation", "version": 1,
     "source": "orbit", "options": {...},              # the command line, as values
     "checkpoint": {"path", "step", "model": {...}},   # what was scored
     "aggregates": {...},                              # means with 95% intervals
     "summary": {...},                                 # counts, what was left out, notes
     "tasks": [...], "videos": [...]}                  # the source's records

Which records a source writes, and how its intervals are computed, is in its module
(`litekit.evaluate.sources`). ``--out`` is checked before anything runs: it may be new or
an earlier evaluation's JSON, never another file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from litekit import checkpoint as checkpoints
from litekit.data.folders import bad_path
from litekit.paths import check_writable_file

FORMAT = "litekit-evaluation"
VERSION = 1


def check_out(path: str | None) -> Path | None:
    """``--out`` can be written, and is new or an earlier evaluation's (never overwrite
    anything else)."""
    if path is None:
        return None
    target = check_writable_file("--out", path)
    if target.exists():
        try:
            earlier = json.loads(target.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            earlier = None
        if not isinstance(earlier, dict) or earlier.get("format") != FORMAT:
            raise bad_path(
                "--out",
                target,
                "a file that is not a litekit evaluation is there; litekit will not overwrite "
                "it. Pass another path.",
            )
    return target


def document(
    source: str,
    options: Mapping[str, Any],
    checkpoint: Mapping[str, Any],
    aggregates: Mapping[str, Any],
    summary: Mapping[str, Any],
    records: Mapping[str, list],
) -> dict[str, Any]:
    """The JSON document of one evaluation (see the module docstring)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "options": dict(options),
        "checkpoint": dict(checkpoint),
        "aggregates": dict(aggregates),
        "summary": dict(summary),
        **{name: list(values) for name, values in records.items()},
    }


def write(document: Mapping[str, Any], path: Path) -> None:
    """Write the document atomically (a crash leaves the old file or the new one)."""
    checkpoints.write_atomic((json.dumps(document, indent=1) + "\n").encode(), path)


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of equal keys as a plain-text table with a header line."""
    if not rows:
        return ""
    columns = list(rows[0])
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
