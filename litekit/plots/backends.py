"""The backend that draws a `Chart`: ``"matplotlib"`` (static) or ``"plotly"`` (interactive)."""

from __future__ import annotations

from typing import Any

from litekit._checks import check_choice
from litekit.plots.chart import Chart

BACKENDS = ("matplotlib", "plotly")


def check_backend(backend: Any) -> str:
    """``backend`` if it is one of `BACKENDS`; a figure function calls this before any work."""
    return check_choice("backend", backend, BACKENDS)


def draw(chart: Chart, backend: str) -> Any:
    """``chart`` as a `matplotlib.figure.Figure` or a `plotly.graph_objects.Figure`."""
    if check_backend(backend) == "plotly":
        from litekit.plots.to_plotly import to_plotly

        return to_plotly(chart)
    from litekit.plots.to_matplotlib import to_matplotlib

    return to_matplotlib(chart)
