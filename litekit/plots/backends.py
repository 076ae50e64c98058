"""The backend that draws a `Chart`: ``"matplotlib"`` (static) or ``"plotly"`` (interactive)."""

from __future__ import annotations

from typing import Any

from litekit._checks import check_choice
from litekit.plots.chart import Chart, describe

BACKENDS = ("matplotlib", "plotly")


def check_backend(backend: Any) -> str:
    """``backend`` if it is one of `BACKENDS`; a figure function calls this before any work."""
    return check_choice("backend", backend, BACKENDS)


def draw(chart: Chart, backend: str) -> Any:
    """``chart`` as a `matplotlib.figure.Figure` or a `plotly.graph_objects.Figure`, with
    its description recorded as its alt text (`litekit.plots.export.alt_text`)."""
    from litekit.plots.export import remember_alt

    if check_backend(backend) == "plotly":
        from litekit.plots.to_plotly import to_plotly

        return remember_alt(to_plotly(chart), describe(chart))
    from litekit.plots.to_matplotlib import to_matplotlib

    return remember_alt(to_matplotlib(chart), describe(chart))
