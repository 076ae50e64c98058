"""Reference measurements made on a large GPU, read back for notebooks and docs.

``benchmarks/reference/h200-protonets-step.jsonl`` holds, one JSON object per line, the
peak memory and step time of ProtoNets training steps on an H200: a header line (the
device), then one row per configuration with ``kind`` (``"full"``, ``"lite"``, ...),
``net``, ``size``, ``n``, ``h``, and ``peak_gib`` and ``step_s``, or ``oom: true`` where
the step did not fit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from litekit._checks import bad_argument


def load_reference(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """A reference file in JSON lines: its header (first line: the device) and its rows."""
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        raise bad_argument("path", str(path), "the reference file is empty.")
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def reference_curve(
    rows: Sequence[dict], kind: str, net: str, size: int, h: int = 40
) -> list[tuple[int, float | None, float | None]]:
    """(N, peak GiB, step seconds) of one kind of step against N; None where out of memory."""
    points = [
        (r["n"], r.get("peak_gib"), r.get("step_s"))
        for r in rows
        if (r["kind"], r["net"], r["size"], r.get("h")) == (kind, net, size, h)
    ]
    return sorted(points)
