"""Draw a `Chart` as a static `matplotlib.figure.Figure`.

The figure is built without pyplot, so nothing global changes (no current figure, no
backend switch): a test, a script and a notebook (``display(figure)``) all get the same
picture, and the same chart always gives the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litekit._checks import bad_argument
from litekit.plots.chart import Axis, Chart, Panel, Series, categories, spread

LINESTYLES = {"solid": "-", "dash": "--", "dot": ":"}
MARKER_CODES = {
    "circle": "o",
    "square": "s",
    "diamond": "D",
    "triangle-up": "^",
    "triangle-down": "v",
    "cross": "P",
}


def to_matplotlib(chart: Chart, axes: Sequence[Any] | None = None) -> Any:
    """The chart as a matplotlib figure, one subplot per panel, left to right.

    ``axes``, if given, are existing matplotlib axes to draw into, one per panel (to put a
    chart inside a figure of your own); the chart's title is then left to the caller, and
    the figure the axes belong to is returned.
    """
    if axes is None:
        figure, axes = _new_figure(chart)
        own = True
    else:
        axes = list(axes)
        if len(axes) != len(chart.panels):
            raise bad_argument("axes", len(axes), f"pass {len(chart.panels)} axes, one per panel.")
        figure, own = axes[0].figure, False
    for ax, panel in zip(axes, chart.panels, strict=True):
        _draw_panel(ax, panel, chart.bars)
    _legends(figure, axes, chart)
    if own and chart.title:
        figure.suptitle(chart.title, fontsize=10)
    return figure


def _new_figure(chart: Chart) -> tuple[Any, list]:
    from matplotlib.figure import Figure

    width, height = chart.panel_size
    rows, columns = chart.grid()
    figure = Figure(figsize=(width * columns, height * rows), layout="constrained")
    grid = figure.subplots(rows, columns, sharey=chart.share_y, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[len(chart.panels) :]:  # a grid with an empty last place
        ax.remove()
    return figure, axes[: len(chart.panels)]


def _draw_panel(ax: Any, panel: Panel, bars: str) -> None:
    if panel.image is not None:
        ax.imshow(panel.image)
        ax.set_axis_off()
        ax.set_title(panel.title, fontsize=8)
        return
    names = categories(panel)
    position = {name: i for i, name in enumerate(names)}
    count = sum(series.kind == "bar" for series in panel.series)
    stacks = (np.zeros(len(names)), np.zeros(len(names)))  # tops of the positive, negative bars
    index = 0
    for number, series in enumerate(panel.series):
        if series.kind == "bar":
            artists = _draw_bars(ax, series, position, (index, count), bars, stacks)
            index += 1
        else:
            artists = [_draw_line(ax, series)]
        for artist in artists:  # named, so a reader (or a test) can find each series' artists
            artist.set_gid(f"series {number}")
    for number, rule in enumerate(panel.rules):
        draw = ax.axhline if rule.horizontal else ax.axvline
        line = draw(rule.at, color=rule.colour, linestyle=LINESTYLES[rule.dash], label=rule.label)
        line.set_gid(f"rule {number}")
    _set_axis(ax, "x", panel.x, names)
    _set_axis(ax, "y", panel.y, [])
    if panel.title:
        ax.set_title(panel.title, fontsize=10)
    if panel.note:
        ax.text(0.02, 0.02, panel.note, transform=ax.transAxes, fontsize=8, color="grey")


def _draw_line(ax: Any, series: Series) -> Any:
    """The series' line (with its error bars, if any); returns the data line."""
    style = {
        "color": series.colour,
        "alpha": series.opacity,
        "label": series.label,
        "marker": MARKER_CODES[series.marker] if series.marker else "None",
        "linestyle": "none" if series.kind == "points" else LINESTYLES[series.dash],
    }
    bars = {}
    if series.y_range is not None:
        bars["yerr"] = spread(series.y, *series.y_range)
    elif series.error is not None:
        bars["yerr"] = series.error
    if series.x_range is not None:
        bars["xerr"] = spread(series.x, *series.x_range)
    if bars:
        return ax.errorbar(series.x, series.y, capsize=3, **bars, **style).lines[0]
    return ax.plot(series.x, series.y, **style)[0]


def _draw_bars(
    ax: Any,
    series: Series,
    position: dict,
    index: tuple[int, int],
    mode: str,
    stacks: tuple[np.ndarray, np.ndarray],
) -> list:
    """Bars at their categories' positions: side by side (group) or stacked (relative).

    ``index`` is (this bar series' number, how many bar series the panel has); ``stacks``
    holds each category's running top of the positive and of the negative bars so far.
    Returns the bars.
    """
    where = np.array([position[name] for name in series.x], dtype=int)
    x, values = where.astype(float), np.asarray(series.y, dtype=float)
    width, bottom = 0.8, None
    if mode == "group":
        width = 0.8 / index[1]
        x = x + (index[0] - (index[1] - 1) / 2) * width
    elif mode == "relative":
        positive, negative = stacks
        bottom = np.where(values >= 0, positive[where], negative[where])
        positive[where] += np.clip(values, 0, None)
        negative[where] += np.clip(values, None, 0)
    bars = ax.bar(
        x,
        values,
        width,
        bottom=bottom,
        yerr=series.error,
        color=series.colour,
        alpha=series.opacity,
        label=series.label,
        capsize=2 if series.error is not None else 0,
    )
    return list(bars.patches)


def _set_axis(ax: Any, which: str, axis: Axis, names: list) -> None:
    from matplotlib.ticker import NullFormatter

    is_x = which == "x"
    target = ax.xaxis if is_x else ax.yaxis
    if axis.label:
        (ax.set_xlabel if is_x else ax.set_ylabel)(axis.label)
    if axis.log:
        (ax.set_xscale if is_x else ax.set_yscale)("log")
    set_ticks = ax.set_xticks if is_x else ax.set_yticks
    if names:  # a categorical axis: bars at 0, 1, 2, ... under their names
        set_ticks(range(len(names)), [str(name) for name in names])
    elif axis.ticks is not None:
        set_ticks(axis.ticks, [f"{tick:g}" for tick in axis.ticks])
    if axis.ticks is not None or not axis.minor_labels:
        target.set_minor_formatter(NullFormatter())
    if axis.tick_angle:
        ax.tick_params(axis=which, labelrotation=axis.tick_angle, labelsize=7)
    if axis.limits is not None:
        (ax.set_xlim if is_x else ax.set_ylim)(*axis.limits)


def _legends(figure: Any, axes: list, chart: Chart) -> None:
    if chart.legend == "none":
        return
    if chart.legend == "below":  # one legend under the panels, where it hides no point
        entries: dict[str, Any] = {}
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                entries.setdefault(label, handle)
        if entries:
            constrained = type(figure.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
            place = "outside lower center" if constrained else "lower center"
            figure.legend(
                list(entries.values()), list(entries), loc=place, ncols=2, fontsize="small"
            )
        return
    for ax in axes[:1] if chart.legend == "first" else axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc=chart.legend_place)
