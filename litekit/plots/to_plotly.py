"""Draw a `Chart` as an interactive `plotly.graph_objects.Figure`.

One subplot per panel, in the chart's grid (`Chart.grid`: side by side, or one above the
other). Plotly has one legend per figure, so a label that appears in several panels (the
same run in a memory and a time panel, say) gets one legend entry, and clicking it hides
that series in every panel. A labelled reference line is annotated where it is first drawn.

What makes the figure readable on a page:

- every subplot gets a fixed height and the legend sits under the plots, so the panels keep
  the page's width instead of sharing it with a long legend (a chart of pictures only keeps
  no room for either);
- numbers on the axes are plain or powers of ten (``exponentformat="power"``): plotly's
  default writes SI prefixes (1µ, 1B), which read as units on a ratio or a count;
- a reference line without a label gets no annotation at all (an annotation with no text
  shows plotly.js's placeholder, "new text").
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np

from litekit.plots.chart import Axis, Chart, Panel, Series, spread

PANEL_HEIGHT = 330  # pixels of one row of subplots
GAP = 110  # pixels between two rows: the upper x-axis title and the lower subplot title
TITLE_CHARACTERS = 60  # a subplot title wraps at this many characters per full-width panel
FIGURE_TITLE_CHARACTERS = 75  # and the figure's title (larger letters) at this many
TOP, BOTTOM = 80, 150  # margins: the title above; the x-axis title and the legend below
LEGEND_DROP = 70  # pixels from the bottom of the plots to the top of the legend
PICTURES_BOTTOM = 30  # the bottom margin of a chart of pictures only


def to_plotly(chart: Chart) -> Any:
    """The chart as a plotly figure (template ``plotly_white``)."""
    from plotly.subplots import make_subplots

    rows, columns = chart.grid()
    width = max(20, TITLE_CHARACTERS // columns)
    titles = ["<br>".join(textwrap.wrap(panel.title, width)) for panel in chart.panels]
    height = rows * PANEL_HEIGHT + (rows - 1) * GAP  # the plots, without the margins
    # pictures alone have no axis titles and no legend under them: no room kept for either
    bottom = PICTURES_BOTTOM if all(p.image is not None for p in chart.panels) else BOTTOM
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=titles if any(titles) else None,
        shared_yaxes="all" if chart.share_y else False,
        vertical_spacing=GAP / height if rows > 1 else 0.0,
        horizontal_spacing=0.12 if columns > 1 else 0.0,
    )
    figure.update_annotations(font_size=13)  # the subplot titles, smaller than the title
    legend = {"orientation": "h", "yanchor": "top", "xanchor": "left", "x": 0.0}
    figure.update_layout(
        template="plotly_white",
        title="<br>".join(textwrap.wrap(chart.title, FIGURE_TITLE_CHARACTERS)) or None,
        barmode=chart.bars,
        showlegend=chart.legend != "none",
        height=height + TOP + bottom,
        legend={**legend, "y": -LEGEND_DROP / height},  # under the x axis and its title
        margin={"t": TOP, "b": bottom},
    )
    labelled: set[str] = set()
    for index, panel in enumerate(chart.panels):
        row, column = chart.place(index)
        _draw_panel(figure, panel, row, column, index + 1, labelled)
    return figure


def _draw_panel(
    figure: Any, panel: Panel, row: int, column: int, number: int, labelled: set[str]
) -> None:
    import plotly.graph_objects as go

    where = {"row": row, "col": column}
    if panel.image is not None:
        pixels = np.round(np.clip(panel.image, 0, 1) * 255).astype(np.uint8)
        figure.add_trace(go.Image(z=pixels, name=panel.title), **where)
        figure.update_xaxes(visible=False, **where)
        figure.update_yaxes(visible=False, **where)
        return
    for series in panel.series:
        figure.add_trace(_trace(series, labelled), **where)
    for rule in panel.rules:
        line: dict[str, Any] = {"line_dash": rule.dash, "line_color": rule.colour}
        if rule.label and rule.label not in labelled:
            labelled.add(rule.label)
            line["annotation_text"] = rule.label
        if rule.horizontal:
            figure.add_hline(y=rule.at, **line, **where)
        else:
            figure.add_vline(x=rule.at, **line, **where)
    _set_axis(figure, "x", panel.x, where)
    _set_axis(figure, "y", panel.y, where)
    if panel.note:
        suffix = "" if number == 1 else str(number)
        figure.add_annotation(
            text=panel.note,
            xref=f"x{suffix} domain",
            yref=f"y{suffix} domain",
            x=0.02,
            y=0.02,
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
            font={"size": 10, "color": "grey"},
        )


def _bars(values: tuple, error: tuple | None, ranged: tuple | None) -> dict[str, Any] | None:
    """Plotly's error bars: symmetric (``error``), or from each point's low to its high."""
    if ranged is not None:
        below, above = spread(values, *ranged)
        return {"type": "data", "symmetric": False, "array": list(above),
                "arrayminus": list(below), "visible": True}  # fmt: skip
    if error is not None:
        return {"type": "data", "array": list(error), "visible": True}
    return None


def _trace(series: Series, labelled: set[str]) -> Any:
    """One plotly trace; a label already in the legend joins its group without a new entry."""
    import plotly.graph_objects as go

    legend: dict[str, Any] = {
        "name": series.label,
        "legendgroup": series.label,
        "showlegend": series.label is not None and series.label not in labelled,
        "opacity": series.opacity,
    }
    if series.label is not None:
        labelled.add(series.label)
    for which, values, error, ranged in (
        ("error_y", series.y, series.error, series.y_range),
        ("error_x", series.x, None, series.x_range),
    ):
        bars = _bars(values, error, ranged)
        if bars is not None:
            legend[which] = bars
    if series.hover is not None:
        legend["hovertext"] = list(series.hover)
    if series.kind == "bar":
        return go.Bar(x=list(series.x), y=list(series.y), marker_color=series.colour, **legend)
    mode = "lines+markers" if series.marker else "lines"
    return go.Scatter(
        x=list(series.x),
        y=list(series.y),
        mode="markers" if series.kind == "points" else mode,
        line={"color": series.colour, "dash": series.dash},
        marker={"color": series.colour, "symbol": series.marker},
        **legend,
    )


def _set_axis(figure: Any, which: str, axis: Axis, where: dict[str, int]) -> None:
    settings: dict[str, Any] = {"title": axis.label or None, "exponentformat": "power"}
    if axis.log:
        settings["type"] = "log"
        if not axis.minor_labels:  # decades, and 2 and 5 between them: no crowded labels
            settings["dtick"] = "D2"
    if axis.ticks is not None:
        settings["tickvals"] = list(axis.ticks)
        settings["ticktext"] = [f"{tick:g}" for tick in axis.ticks]
    if axis.tick_angle:
        settings["tickangle"] = -axis.tick_angle  # plotly turns clockwise
    if axis.limits is not None:
        low, high = axis.limits
        if low is not None and high is not None:  # a log axis's range is in decades
            settings["range"] = [math.log10(low), math.log10(high)] if axis.log else [low, high]
        elif low == 0:
            settings["rangemode"] = "tozero"
    update = figure.update_xaxes if which == "x" else figure.update_yaxes
    update(**where, **settings)
