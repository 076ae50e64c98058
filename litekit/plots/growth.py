"""How full back-propagation's memory grows: against N, and against the pixels per image."""

from __future__ import annotations

from typing import Any

from litekit._checks import bad_argument
from litekit.plots.backends import check_backend, draw
from litekit.plots.chart import Axis, Chart, Panel, Series, numbers
from litekit.plots.rows import check_rows
from litekit.plots.style import COLOURS

MIB = 2**20


def _panel(rows: list[dict], x: str, xlabel: str, title: str) -> Panel:
    from litekit.measure.growth import linear_fit

    rows = sorted(rows, key=lambda r: r[x])
    xs = [r[x] for r in rows]
    mib = numbers([r["saved_bytes"] / MIB for r in rows])
    fit = linear_fit(xs, mib)
    measured = Series(tuple(xs), mib, label="measured", colour=COLOURS["full"], kind="points",
                      marker="circle")  # fmt: skip
    line = Series((0, xs[-1]), numbers([fit(0), fit(xs[-1])]), label="straight line (fit)",
                  colour="grey", dash="dash")  # fmt: skip
    return Panel(
        (line, measured),
        x=Axis(xlabel, limits=(0, None)),
        y=Axis("activations kept for backward (MiB)", limits=(0, None)),
        title=title,
    )


def memory_growth_chart(rows: list[dict]) -> Chart:
    """Saved activations against N and against pixels per image; see `memory_growth`."""
    rows = check_rows(rows, ["vary", "n", "image_size", "pixels", "saved_bytes"])
    by_n = [r for r in rows if r["vary"] == "n"]
    by_size = [r for r in rows if r["vary"] == "size"]
    for name, part in (("n", by_n), ("size", by_size)):
        if len({r["n" if name == "n" else "pixels"] for r in part}) < 2:
            raise bad_argument(
                "rows", rows, f"need two or more rows with vary={name!r} (memory_growth's rows)."
            )
    size, n = by_n[0]["image_size"], by_size[0]["n"]
    return Chart(  # one above the other: each panel's titles have the page's width
        (
            _panel(by_n, "n", "support images N", f"against N, at {size} × {size} px"),
            _panel(by_size, "pixels", "pixels per image", f"against image size, at N = {n}"),
        ),
        title="full back-propagation: memory for the backward pass",
        legend="first",
        panel_size=(6.0, 3.0),
        columns=1,
    )


def memory_growth(rows: list[dict], *, backend: str = "matplotlib") -> Any:
    """Full back-propagation's saved activations against N and against pixels per image.

    ``rows`` is `litekit.measure.memory_growth`'s table. Each panel shows the measured
    points and the least-squares straight line through them, drawn from zero, so that a
    reader can see both that the growth is linear and what is there at N = 0 (the query
    images' activations).
    """
    backend = check_backend(backend)
    return draw(memory_growth_chart(rows), backend)
