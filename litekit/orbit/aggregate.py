"""ORBIT's two averages of per-video scores, each with its 95% interval.

A run scores every target video of every task of every user. From those per-video records
(one score per metric each):

- **per video**: the mean over all records pooled, with n = the number of records;
- **per user**: for each user, the mean over that user's records (all their tasks'
  videos), then the mean over users, with n = the number of users.

Each interval is 1.96 · σ / √n with σ the *population* standard deviation (``np.std`` with
ddof = 0) of the n values averaged, as the ORBIT benchmark's code computes it. (litekit's
`litekit.evaluate` of plain episodes uses the sample standard deviation, ddof = 1; on
ORBIT's hundreds of videos the two differ by well under 1%.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from litekit._checks import bad_argument

INTERVAL_NOTE = (
    "95% interval: 1.96 * std / sqrt(n), std with ddof=0 (population), as ORBIT computes it; "
    "per_user: n = users (each user's mean over their tasks' videos first); per_video: n = "
    "all videos of all tasks, pooled"
)


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% half-width 1.96 · σ / √n, σ the population standard deviation."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        raise bad_argument("values", list(values), "pass at least one value.")
    return float(array.mean()), float(1.96 * array.std(ddof=0) / math.sqrt(array.size))


def _summary(values: Sequence[float]) -> dict[str, float]:
    mean, ci95 = interval(values)
    return {"mean": mean, "ci95": ci95, "n": len(values)}


def aggregate(records: Iterable[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    """Per-user and per-video means of each metric, with their intervals.

    ``records`` are per-video dicts with a ``"user"`` and a float per metric. Returns
    ``{"per_user": {metric: {"mean", "ci95", "n"}}, "per_video": {...}}``.
    """
    records = list(records)
    if not records:
        raise bad_argument("records", records, "pass at least one per-video record.")
    by_user: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_user.setdefault(str(record["user"]), []).append(record)
    result: dict[str, Any] = {"per_user": {}, "per_video": {}}
    for metric in metrics:
        pooled = [float(r[metric]) for r in records]
        user_means = [float(np.mean([float(r[metric]) for r in rs])) for rs in by_user.values()]
        result["per_user"][metric] = _summary(user_means)
        result["per_video"][metric] = _summary(pooled)
    return result
