"""What a figure shows, written once, whichever library draws it.

Every figure function of `litekit.plots` first prepares a `Chart` from its data: the series
(x, y, error bars, legend label, colour, line style), the axes (label, log scale, ticks,
limits), reference lines, titles and notes. A drawer then turns the chart into a figure:
`litekit.plots.to_matplotlib.to_matplotlib` or `litekit.plots.to_plotly.to_plotly`. The
numbers are computed in one place, so the two backends cannot tell different stories, and
a test can compare a drawn figure with the chart it came from.

The types are plain frozen dataclasses of tuples and strings: no library objects, nothing
to draw with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Dash = Literal["solid", "dash", "dot"]
Kind = Literal["line", "points", "bar"]
MARKERS = ("circle", "square", "diamond", "triangle-up", "triangle-down", "cross")


@dataclass(frozen=True)
class Series:
    """One line, set of points or set of bars in a panel.

    Attributes:
        x: the positions: numbers, or names (strings) on a categorical axis.
        y: the values, one per position.
        label: the legend entry; None keeps the series out of the legend. Series with the
            same label in several panels share one legend entry where the backend has one
            legend per figure (plotly).
        kind: ``"line"`` (joined points, with markers when ``marker`` is set), ``"points"``
            (markers only) or ``"bar"``.
        colour: a colour name or hex code; None lets the drawer pick.
        dash: the line style of a line.
        marker: a marker symbol from `MARKERS`, or None.
        error: symmetric error bars (± error, one per point), or None.
        opacity: 1 is opaque; lower draws a faint line (a noisy training curve, say).
        hover: one line of text per point, shown on hover where the backend can.
        y_range: error bars from each point's low to its high value, ``(lows, highs)``: the
            range of repeated measurements around their median, say. None: no such bars.
        x_range: the same along x (a time on the x axis).
    """

    x: tuple
    y: tuple[float, ...]
    label: str | None = None
    kind: Kind = "line"
    colour: str | None = None
    dash: Dash = "solid"
    marker: str | None = None
    error: tuple[float, ...] | None = None
    opacity: float = 1.0
    hover: tuple[str, ...] | None = None
    y_range: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    x_range: tuple[tuple[float, ...], tuple[float, ...]] | None = None


@dataclass(frozen=True)
class Rule:
    """A reference line across a whole panel: horizontal at ``y = at``, or vertical at ``x = at``.

    Its ``label`` goes in the legend (matplotlib) or next to the line (plotly).
    """

    at: float
    horizontal: bool = True
    label: str | None = None
    colour: str = "grey"
    dash: Dash = "dot"


@dataclass(frozen=True)
class Axis:
    """One axis of a panel.

    Attributes:
        label: the axis title.
        log: a logarithmic scale.
        ticks: positions to label, in plain numbers (``"32"``, not ``"2^5"``); None leaves the
            ticks to the backend.
        limits: (low, high); either may be None (open). A log axis takes positive limits.
        minor_labels: False hides the labels between labelled ticks on a log axis, where
            they would crowd.
        tick_angle: degrees to turn the tick labels (long category names).
    """

    label: str = ""
    log: bool = False
    ticks: tuple[float, ...] | None = None
    limits: tuple[float | None, float | None] | None = None
    minor_labels: bool = True
    tick_angle: int = 0


@dataclass(frozen=True, eq=False)  # an image array has no single truth value: compare by identity
class Panel:
    """One set of axes: its series and reference lines, or one picture.

    ``image`` is an (H, W, 3) array with values in [0, 1]; a panel with an image shows the
    picture alone, without axes. ``note`` is a short grey line in the panel's lower left
    corner (what the panel leaves out, say).
    """

    series: tuple[Series, ...] = ()
    x: Axis = Axis()
    y: Axis = Axis()
    title: str = ""
    rules: tuple[Rule, ...] = ()
    note: str = ""
    image: np.ndarray | None = None


@dataclass(frozen=True)
class Chart:
    """A whole figure: panels side by side, a title and where the legend goes.

    Attributes:
        panels: one or more panels, left to right.
        title: the figure's title.
        legend: ``"each"`` (every panel its own legend), ``"first"`` (the first panel's
            only: the panels share their series), ``"below"`` (one legend under all the
            panels) or ``"none"``.
        legend_place: where a panel's legend sits (matplotlib's ``loc``: ``"best"``,
            ``"lower right"``, ...).
        bars: how the bar series of a panel share a position: ``"overlay"``, ``"group"``
            (side by side) or ``"relative"`` (stacked: positive values up from zero, negative
            ones down).
        panel_size: (width, height) of one panel in inches, for the static figure.
        share_y: the panels share their y axis.
        columns: panels per row; None puts them all in one row. Three panels or more are
            easier to read one above the other (``columns=1``) on a page or a laptop screen.
    """

    panels: tuple[Panel, ...]
    title: str = ""
    legend: Literal["each", "first", "below", "none"] = "each"
    legend_place: str = "best"
    bars: Literal["overlay", "group", "relative"] = "overlay"
    panel_size: tuple[float, float] = (6.4, 4.0)
    share_y: bool = False
    columns: int | None = None

    def grid(self) -> tuple[int, int]:
        """(rows, columns) of the panels, filled row by row."""
        count = max(1, len(self.panels))
        columns = min(self.columns or count, count)
        return -(-count // columns), columns

    def place(self, index: int) -> tuple[int, int]:
        """(row, column) of panel ``index``, counted from 1 as plotly does."""
        _, columns = self.grid()
        return index // columns + 1, index % columns + 1


def spread(values: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> tuple:
    """How far below and above each value its range reaches: (below, above), never negative."""
    below = tuple(max(0.0, float(v) - float(low)) for v, low in zip(values, lows, strict=True))
    above = tuple(max(0.0, float(high) - float(v)) for v, high in zip(values, highs, strict=True))
    return below, above


def describe(chart: Chart) -> str:
    """A sentence or two that says what ``chart`` shows: the alt text of its pictures.

    Its title, then for each panel what is plotted against what (and which axes are
    logarithmic), and the names in its legend, so that a reader who cannot see the figure
    knows what it is about.
    """
    parts = [chart.title.rstrip(".") + "." if chart.title else ""]
    pictures = [panel for panel in chart.panels if panel.image is not None]
    if pictures:
        captions = "; ".join(panel.title for panel in pictures if panel.title)
        parts.append(f"{len(pictures)} image{'s' if len(pictures) > 1 else ''}: {captions}.")
    for panel in chart.panels:
        if panel.image is not None:
            continue
        y = panel.y.label + (" (log scale)" if panel.y.log else "")
        x = panel.x.label + (" (log scale)" if panel.x.log else "")
        what = f"{y or 'values'} against {x}" if x else (y or "values")
        prefix = f"{panel.title}: " if panel.title and len(chart.panels) > 1 else ""
        names = [s.label for s in panel.series if s.label] + [
            r.label for r in panel.rules if r.label
        ]
        shown = f", showing {'; '.join(dict.fromkeys(names))}" if names else ""
        parts.append(f"{prefix}{what}{shown}.")
    return " ".join(part for part in parts if part).strip()


def numbers(values) -> tuple[float, ...]:
    """A tuple of plain floats (from a list, an array or a tensor), as the series store them."""
    return tuple(float(v) for v in np.asarray(values, dtype=float).ravel())


def categories(panel: Panel) -> list:
    """The category names of a panel's bar series, in order of first appearance."""
    names: dict = {}
    for series in panel.series:
        if series.kind == "bar":
            names.update(dict.fromkeys(series.x))
    return list(names)
