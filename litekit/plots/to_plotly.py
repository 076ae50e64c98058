"""Draw a `Chart` as an interactive `plotly.graph_objects.Figure`.

One subplot per panel, left to right. Plotly has one legend per figure, so a label that
appears in several panels (the same run in a memory and a time panel, say) gets one legend
entry, and clicking it hides that series in every panel. A labelled reference line is
annotated where it is first drawn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from litekit.plots.chart import Axis, Chart, Panel, Series


def to_plotly(chart: Chart) -> Any:
    """The chart as a plotly figure (template ``plotly_white``)."""
    from plotly.subplots import make_subplots

    titles = [panel.title for panel in chart.panels]
    figure = make_subplots(
        rows=1,
        cols=len(chart.panels),
        subplot_titles=titles if any(titles) else None,
        shared_yaxes=chart.share_y,
    )
    figure.update_layout(
        template="plotly_white",
        title=chart.title or None,
        barmode=chart.bars,
        showlegend=chart.legend != "none",
    )
    if chart.legend == "below":
        figure.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2})
    labelled: set[str] = set()
    for column, panel in enumerate(chart.panels, start=1):
        _draw_panel(figure, panel, column, labelled)
    return figure


def _draw_panel(figure: Any, panel: Panel, column: int, labelled: set[str]) -> None:
    import plotly.graph_objects as go

    where = {"row": 1, "col": column}
    if panel.image is not None:
        pixels = np.round(np.clip(panel.image, 0, 1) * 255).astype(np.uint8)
        figure.add_trace(go.Image(z=pixels, name=panel.title), **where)
        figure.update_xaxes(visible=False, **where)
        figure.update_yaxes(visible=False, **where)
        return
    for series in panel.series:
        figure.add_trace(_trace(series, labelled), **where)
    for rule in panel.rules:
        text = rule.label if rule.label and rule.label not in labelled else None
        if text:
            labelled.add(text)
        line = {"line_dash": rule.dash, "line_color": rule.colour, "annotation_text": text}
        if rule.horizontal:
            figure.add_hline(y=rule.at, **line, **where)
        else:
            figure.add_vline(x=rule.at, **line, **where)
    _set_axis(figure, "x", panel.x, column)
    _set_axis(figure, "y", panel.y, column)
    if panel.note:
        suffix = "" if column == 1 else str(column)
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


def _trace(series: Series, labelled: set[str]) -> Any:
    """One plotly trace; a label already in the legend joins its group without a new entry."""
    import plotly.graph_objects as go

    legend = {
        "name": series.label,
        "legendgroup": series.label,
        "showlegend": series.label is not None and series.label not in labelled,
        "opacity": series.opacity,
    }
    if series.label is not None:
        labelled.add(series.label)
    if series.error is not None:
        legend["error_y"] = {"type": "data", "array": list(series.error), "visible": True}
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


def _set_axis(figure: Any, which: str, axis: Axis, column: int) -> None:
    settings: dict[str, Any] = {"title": axis.label or None}
    if axis.log:
        settings["type"] = "log"
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
    update(row=1, col=column, **settings)
