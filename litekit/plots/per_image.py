"""How far each per-image term g_n (and the query term g_Q) reaches along the full gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from litekit._checks import bad_argument
from litekit.plots.backends import check_backend, draw
from litekit.plots.chart import Axis, Chart, Panel, Rule, Series, numbers
from litekit.plots.style import COLOURS

# Legend names in words: what each bar is a term of. g_Q, g_n^features and g_n^set in the
# tutorials' maths.
PATH_NAMES = {
    "query": "query path (one term)",
    "features": "per image: through its embedding",
    "set": "per image: through the set encoder",
}


def contributions(decomposition: Any) -> dict[str, np.ndarray]:
    """Each term's length along the full gradient: ⟨g, u⟩ with u = dL/dθ / ||dL/dθ||.

    Returns ``{"query": array([⟨g_Q, u⟩]), path: (N,) array of ⟨g_n^path, u⟩}``. The
    numbers add up to ||dL/dθ|| when the split is exact.
    """
    full = decomposition.full.double()
    unit = full / full.norm()
    out = {"query": np.array([float(decomposition.query.double() @ unit)])}
    for path, terms in decomposition.paths.items():
        out[path] = (terms.double() @ unit).cpu().numpy()
    return out


def per_image_contributions_chart(decomposition: Any) -> Chart:
    """Stacked bars of g_Q and every g_n along dL/dθ; see `per_image_contributions`."""
    if not hasattr(decomposition, "paths") or not hasattr(decomposition, "full"):
        raise bad_argument(
            "decomposition",
            type(decomposition).__name__,
            "pass the GradientDecomposition from litekit.diagnostics.per_image_gradients.",
        )
    parts = contributions(decomposition)
    n = len(next(iter(decomposition.paths.values())))
    ticks = tuple(f"{i}·c{label}" for i, label in enumerate(decomposition.support_labels.tolist()))
    query = numbers(parts["query"])
    query_bar = Series(("Q",), query, PATH_NAMES["query"], kind="bar", colour=COLOURS["query"])
    series = [query_bar]
    for path in decomposition.paths:
        terms, colour = numbers(parts[path]), COLOURS.get(path)
        label = PATH_NAMES.get(path, f"per image: {path} path")
        series.append(Series(ticks, terms, label=label, kind="bar", colour=colour))
    total = float(decomposition.full.double().norm())
    summed = sum(float(v.sum()) for v in parts.values())
    panel = Panel(
        tuple(series),
        x=Axis("support image · class", tick_angle=90),
        y=Axis("⟨g, dL/dθ⟩ / ‖dL/dθ‖"),
        rules=(Rule(0.0, colour="black", dash="solid"),),
    )
    return Chart(
        (panel,),
        title=f"Per-image terms along dL/dθ: bars add up to {summed:.4g} (‖dL/dθ‖ = {total:.4g})",
        bars="relative",
        panel_size=(max(6.4, 0.3 * n + 2), 4.0),
    )


def per_image_contributions(decomposition: Any, *, backend: str = "matplotlib") -> Any:
    """Bars: how far g_Q and each g_n reach along the full gradient (stacked by path).

    The bars add up to ||dL/dθ||, which is the split of the task gradient made visible;
    tick labels give each support image's index and class.
    """
    backend = check_backend(backend)
    return draw(per_image_contributions_chart(decomposition), backend)
