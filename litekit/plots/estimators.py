"""Figures of the LITE gradient estimator ĝ: its variance, alignment, running mean and bias.

Each figure has a ``*_chart`` function that prepares what it shows from the tables of
`litekit.diagnostics` (one row per h and scaling), and a figure function that draws that
chart with the chosen backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from litekit.plots.backends import check_backend, draw
from litekit.plots.chart import Axis, Chart, Panel, Rule, Series, numbers
from litekit.plots.rows import check_rows, groups, task_title
from litekit.plots.style import COLOURS, LABELS

SCALING = "scaling"  # the column of a diagnostics table that names the estimator's scaling
THEORY = "theory N(N-h)/h · tr S²"
THEORY_NONE = "theory h(N-h)/N · tr S²"  # no N/h: each g_n enters with weight 1, not N/h


def _theory_label(name: str, members: list[dict]) -> str:
    formula = THEORY_NONE if name == "none" else THEORY
    return f"{formula} ({members[0].get('theory', 'exact')})"


def variance_vs_h_chart(rows: list[dict], *, highlight: int | None = None) -> Chart:
    """tr Cov[ĝ] against h, measured (±2 standard errors) and in theory; see `variance_vs_h`."""
    rows = check_rows(rows, ("h", SCALING, "trace_cov", "trace_stderr", "theory_trace"))
    series: list[Series] = []
    for name, members in groups(rows, SCALING, order="h").items():
        shown = [r for r in members if r["trace_cov"] > 0]  # variance 0 has no log position
        if not shown:
            continue
        hs = tuple(r["h"] for r in shown)
        colour = COLOURS.get(name)
        series.append(
            Series(
                hs,
                numbers([r["trace_cov"] for r in shown]),
                label=f"{LABELS.get(name, name)}: measured",
                colour=colour,
                marker="circle",
                error=numbers([2 * r["trace_stderr"] for r in shown]),
            )
        )
        theory = numbers([r["theory_trace"] for r in shown])
        label = _theory_label(name, shown)
        series.append(Series(hs, theory, label=label, colour=colour, dash="dash"))
    dropped = sorted({r["h"] for r in rows if r["trace_cov"] <= 0})
    rules = ()
    if highlight is not None:
        rules = (Rule(highlight, horizontal=False, label=f"h = {highlight}"),)
    ticks = sorted({h for s in series for h in s.x}) or [1]
    panel = Panel(
        tuple(series),
        x=Axis("h (support images back-propagated)", log=True, ticks=tuple(ticks)),
        y=Axis("tr Cov[ĝ]", log=True),
        rules=rules,
        note=f"h = {', '.join(map(str, dropped))} not shown: variance 0" if dropped else "",
    )
    return Chart((panel,), title=task_title(rows, "Variance of the LITE gradient"))


def variance_vs_h(
    rows: list[dict], *, backend: str = "matplotlib", highlight: int | None = None
) -> Any:
    """tr Cov[ĝ] against h (log-log), measured (with ±2 standard errors) and in theory.

    ``rows`` is `litekit.diagnostics.estimator_stats`'s table. Rows with zero variance
    (h = N, where LITE is plain back-propagation) cannot sit on a log axis and are left
    out, with a note. The theory line is dashed; its kind (exact, lower bound, linearised) is
    in the legend. ``highlight`` marks one h with a vertical line.
    """
    backend = check_backend(backend)
    return draw(variance_vs_h_chart(rows, highlight=highlight), backend)


def cosine_vs_h_chart(rows: list[dict]) -> Chart:
    """Mean cosine between ĝ and dL/dθ against h, one line per scaling; see `cosine_vs_h`."""
    rows = check_rows(rows, ("h", SCALING, "mean_cosine"))
    series = tuple(
        Series(
            tuple(r["h"] for r in members),
            numbers([r["mean_cosine"] for r in members]),
            label=LABELS.get(name, name),
            colour=COLOURS.get(name),
            marker="circle",
        )
        for name, members in groups(rows, SCALING, order="h").items()
    )
    panel = Panel(
        series,
        x=Axis("h", log=True, ticks=tuple(sorted({r["h"] for r in rows}))),
        y=Axis("mean cos(ĝ, dL/dθ)", limits=(0, 1.05)),
    )
    return Chart((panel,), title=task_title(rows, "Alignment with the full gradient"))


def cosine_vs_h(rows: list[dict], *, backend: str = "matplotlib") -> Any:
    """Mean cosine between each LITE draw ĝ and the full gradient, against h (log x)."""
    backend = check_backend(backend)
    return draw(cosine_vs_h_chart(rows), backend)


def running_mean_chart(rows: list[dict], *, noise: float | None = None) -> Chart:
    """Relative error of the mean of k draws against k; see `running_mean`."""
    rows = check_rows(rows, (SCALING, "k", "relative_error"))
    series = [
        Series(
            tuple(r["k"] for r in members),
            numbers([r["relative_error"] for r in members]),
            label=LABELS.get(name, name),
            colour=COLOURS.get(name),
        )
        for name, members in groups(rows, SCALING).items()
    ]
    if noise is not None:
        ks = np.arange(1, max(r["k"] for r in rows) + 1)
        expected = numbers(noise / np.sqrt(ks))
        label = "noise / √k (unbiased)"
        series.append(Series(tuple(ks.tolist()), expected, label, colour="grey", dash="dash"))
    h = rows[0].get("h")
    panel = Panel(
        tuple(series),
        x=Axis("draws k", log=True),
        y=Axis("‖mean − dL/dθ‖ / ‖dL/dθ‖", log=True),
    )
    title = "Running mean of LITE draws" + (f", h = {h}" if h is not None else "")
    return Chart((panel,), title=title)


def running_mean(
    rows: list[dict], *, backend: str = "matplotlib", noise: float | None = None
) -> Any:
    """||mean of k draws - dL/dθ|| / ||dL/dθ|| against k (log-log), one line per scaling.

    ``rows`` is `litekit.diagnostics.running_mean_error`'s table. ``noise``, if given, is
    sqrt(tr Cov[ĝ]) / ||dL/dθ|| of the unbiased estimator, drawn as the expected error
    noise/√k of an unbiased mean.
    """
    backend = check_backend(backend)
    return draw(running_mean_chart(rows, noise=noise), backend)


def scaling_bias_chart(rows: list[dict], *, floor: float = 1e-17) -> Chart:
    """Relative bias of each scaling, bars grouped by h; see `scaling_bias`."""
    rows = check_rows(rows, ("h", SCALING, "relative_bias"))
    hs = sorted({r["h"] for r in rows})
    table = {(r["h"], r[SCALING]): r for r in rows}

    def noise(row: dict) -> float:
        if "bias_noise" in row and row.get("full_norm"):
            return row["bias_noise"] / row["full_norm"]
        return 0.0

    series = []
    for name in dict.fromkeys(r[SCALING] for r in rows):
        members = [table[(h, name)] for h in hs if (h, name) in table]
        errors = numbers([noise(r) for r in members])
        series.append(
            Series(
                tuple(f"h = {r['h']}" for r in members),
                numbers([max(r["relative_bias"], floor) for r in members]),
                label=LABELS.get(name, name),
                kind="bar",
                colour=COLOURS.get(name),
                error=errors if any(errors) else None,
            )
        )
    panel = Panel(tuple(series), y=Axis("‖𝔼ĝ − dL/dθ‖ / ‖dL/dθ‖", log=True))
    return Chart((panel,), title="Bias of the gradient estimate, by scaling", bars="group")


def scaling_bias(rows: list[dict], *, backend: str = "matplotlib", floor: float = 1e-17) -> Any:
    """Relative bias ||E ĝ - dL/dθ|| / ||dL/dθ|| of each scaling, grouped by h (log y).

    Takes `estimator_stats` rows (error bars: the Monte-Carlo noise ``bias_noise``) or rows
    of exact enumerations (``h, scaling, relative_bias``; no noise). Values below
    ``floor`` (float64 round-off) are drawn at the floor.
    """
    backend = check_backend(backend)
    return draw(scaling_bias_chart(rows, floor=floor), backend)
