"""What every recap shares: the `Recap` itself and the sentences that compare measurements.

A recap sentence states what *this run's* numbers show, and nothing a short run cannot
show: when two intervals overlap it says so, and when a run was too short for a claim that
needs a long one it says how short, and what to run to see it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from litekit._checks import bad_argument


@dataclass(frozen=True)
class Recap:
    """A notebook's closing "what you saw": sentences true of one run, and the facts behind
    them, for the notebook's asserts.

    Attributes:
        sentences: one Markdown sentence (or two) per point, shown as a bulleted list.
        facts: what the sentences were decided on (``{"apart": False, ...}``), so that a
            notebook can assert each displayed sentence against its own numbers.
    """

    sentences: tuple[str, ...]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def markdown(self) -> str:
        """The sentences as a Markdown bulleted list."""
        return "\n".join(f"- {sentence}" for sentence in self.sentences)

    def _repr_markdown_(self) -> str:  # Jupyter shows a recap as Markdown
        return self.markdown

    def __str__(self) -> str:
        return self.markdown

    def __contains__(self, text: str) -> bool:
        return any(text in sentence for sentence in self.sentences)


def percent(value: float, digits: int = 1) -> str:
    """0.625 as ``"62.5%"``."""
    return f"{100 * value:.{digits}f}%"


def accuracy(mean: float, ci95: float) -> str:
    """An accuracy with its 95% interval: ``"62.5% ± 4.1"`` (points)."""
    return f"{100 * mean:.1f}% ± {100 * ci95:.1f}"


def points(value: float) -> str:
    """A difference of accuracies in points, signed, with no "-0.0": ``"+2.5 points"``."""
    shown = f"{100 * value:+.1f}"
    return ("0.0" if shown in ("+0.0", "-0.0") else shown) + " points"


def seconds(value: float) -> str:
    """A time in s or ms, three significant digits."""
    return f"{1000 * value:.3g} ms" if value < 1 else f"{value:.3g} s"


def timing(median: float, low: float | None, high: float | None) -> str:
    """A median time and the range of the repeats: ``"12.3 ms (11.9 to 15.0 ms)"``."""
    if low is None or high is None:
        return seconds(median)
    return f"{seconds(median)} ({seconds(low)} to {seconds(high)} over the repeats)"


def intervals_apart(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when the intervals ``(low, high)`` do not overlap."""
    return a[1] < b[0] or b[1] < a[0]


def check_number(name: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float (positive when asked), or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_argument(name, value, "pass a finite number from the run.")
    if positive and value <= 0:
        raise bad_argument(name, value, "pass a positive number from the run.")
    return float(value)


def check_range(name: str, median: float, low: float | None, high: float | None) -> None:
    """A measured median inside its range (either end may be unknown)."""
    check_number(name, median, positive=True)
    if low is not None and high is not None and not low <= median <= high:
        raise bad_argument(name, (low, median, high), "pass low <= median <= high of the repeats.")


def compare_times(
    first: str,
    first_time: tuple[float, float | None, float | None],
    second: str,
    second_time: tuple[float, float | None, float | None],
) -> tuple[str, str]:
    """A sentence comparing two measured times, and the verdict: ``"faster"`` (the first is),
    ``"slower"`` or ``"same"``.

    Each time is ``(median, fastest, slowest)`` over repeated runs. Only ranges that do not
    overlap count as a difference: on a busy machine a difference inside the ranges is noise.
    """
    for name, value in ((first, first_time), (second, second_time)):
        check_range(name, *value)
    (a, a_low, a_high), (b, b_low, b_high) = first_time, second_time
    described = f"{first} took {timing(*first_time)}, {second} {timing(*second_time)}"
    known = None not in (a_low, a_high, b_low, b_high)
    if known and intervals_apart((a_low, a_high), (b_low, b_high)):
        verdict = "faster" if a < b else "slower"
        ratio = b / a if a < b else a / b
        word = "faster" if verdict == "faster" else "slower"
        return f"{described}: {ratio:.1f}× {word}, beyond the spread of the repeats", verdict
    if known:
        return (
            f"{described}: the ranges overlap, so on this machine they took the same time",
            "same",
        )
    return f"{described}: too few repeats to tell them apart", "same"


def trend(first: float, last: float, noise: float) -> str:
    """``"rose"``, ``"fell"`` or ``"stayed"``: whether ``last - first`` is beyond ``noise``."""
    if last - first > noise:
        return "rose"
    if first - last > noise:
        return "fell"
    return "stayed"


def listing(items: Sequence[str]) -> str:
    """``["a", "b", "c"]`` as ``"a, b and c"``."""
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
