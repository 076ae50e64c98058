"""Figures of training runs: learning curves, and held-out accuracy against image size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litekit._checks import bad_argument, check_int
from litekit.plots.backends import check_backend, draw
from litekit.plots.chart import Axis, Chart, Panel, Series, numbers
from litekit.plots.rows import check_rows
from litekit.plots.style import cycled

HISTORY_FIELDS = ("step", "accuracy", "val_step", "val_accuracy", "val_ci95")


def _runs(histories: Any) -> list[tuple[str | None, Any]]:
    """(label, History) pairs from one History (no label) or a {label: History} dict."""
    if all(hasattr(histories, name) for name in HISTORY_FIELDS):
        return [(None, histories)]
    if not isinstance(histories, dict) or not histories:
        raise bad_argument(
            "histories", histories, "pass a History, or {label: History}, from litekit.fit."
        )
    for label, history in histories.items():
        if not all(hasattr(history, name) for name in HISTORY_FIELDS):
            raise bad_argument(
                "histories", {label: type(history).__name__}, "each value must be a History."
            )
    return [(str(label), history) for label, history in histories.items()]


def _run_series(label: str | None, history: Any, smooth: int, colour: str) -> list[Series]:
    """A run's training accuracy (running mean, faint) and its validation accuracy.

    The running mean covers ``smooth`` steps, or half the run when it is shorter, so that a
    short run still draws a line; a run of one step draws a point.
    """
    name = f"{label}: " if label else ""
    series = []
    if len(history.step):
        window = max(1, min(smooth, len(history.accuracy) // 2))
        running = np.convolve(history.accuracy, np.ones(window) / window, mode="valid")
        steps = tuple(int(s) for s in history.step[window - 1 :])
        what = "training tasks" + (f" (mean of {window})" if window > 1 else "")
        series.append(
            Series(
                steps,
                numbers(running),
                f"{name}{what}",
                colour=colour,
                opacity=0.5,
                marker="circle" if len(steps) < 2 else None,
            )
        )
    if len(history.val_step):
        series.append(
            Series(
                tuple(int(s) for s in history.val_step),
                numbers(history.val_accuracy),
                label=f"{name}validation (95% CI)",
                colour=colour,
                marker="circle",
                error=numbers(history.val_ci95),
            )
        )
    return series


def learning_curves_chart(histories: Any, *, smooth: int = 10, panels: bool = False) -> Chart:
    """Training and validation accuracy against the step, per run; see `learning_curves`."""
    runs = _runs(histories)
    smooth = check_int("smooth", smooth, minimum=1)
    x, y = Axis("optimiser step"), Axis("query accuracy")
    if panels:  # the panel's title names the run: one legend, one colour, for all panels
        drawn = tuple(
            Panel(tuple(_run_series(None, history, smooth, cycled(0))), x=x, y=y, title=label or "")
            for label, history in runs
        )
        return Chart(
            drawn,
            title="accuracy during meta-training",
            legend="first",
            legend_place="lower right",
            panel_size=(6.4, 2.8),
            share_y=True,
            columns=1,
        )
    curves = [
        s
        for i, (label, history) in enumerate(runs)
        for s in _run_series(label, history, smooth, cycled(i))
    ]
    return Chart(
        (Panel(tuple(curves), x=x, y=y),),
        title="accuracy during meta-training",
        legend_place="lower right",
    )


def learning_curves(
    histories: Any,
    *,
    backend: str = "matplotlib",
    smooth: int = 10,
    panels: bool = False,
    ax: Any = None,
) -> Any:
    """Training accuracy (running mean over ``smooth`` steps) and validation accuracy with
    its 95% interval, against the optimiser step.

    ``histories`` is the `litekit.train.History` that `fit` returned, or a dict mapping each
    run's label to its History. Runs share one panel, in one colour per run, or get one panel
    each (``panels=True``: one above the other, titled with the run's label, sharing their
    y axis and one legend). ``ax``, a matplotlib axis, draws a single
    panel into it (a figure of your own) and returns its figure.
    """
    backend = check_backend(backend)
    chart = learning_curves_chart(histories, smooth=smooth, panels=panels)
    if ax is None:
        return draw(chart, backend)
    if backend != "matplotlib" or len(chart.panels) != 1:
        raise bad_argument(
            "ax", type(ax).__name__, "draw into an axis with backend='matplotlib', one panel."
        )
    from litekit.plots.to_matplotlib import to_matplotlib

    return to_matplotlib(chart, axes=[ax])


def accuracy_vs_size_chart(
    points: list[dict],
    *,
    ideal: tuple[Sequence[int], Sequence[float]] | None = None,
    ideal_label: str = "ideal observer",
    title: str = "accuracy against image size",
) -> Chart:
    """Accuracy points against image size, and the ideal curve; see `accuracy_vs_size`."""
    rows = check_rows(points, ["label", "size", "mean", "ci95"])
    series = []
    sizes = {row["size"] for row in rows}
    if ideal is not None:
        if len(ideal) != 2 or len(ideal[0]) != len(ideal[1]) or not len(ideal[0]):
            raise bad_argument("ideal", ideal, "pass (sizes, accuracies) of the same length.")
        curve = tuple(int(s) for s in ideal[0])
        series.append(Series(curve, numbers(ideal[1]), ideal_label, colour="grey"))
        low, high = min(curve), max(curve)
        sizes |= {low, high} | {2**k for k in range(4, 14) if low <= 2**k <= high}
    for i, row in enumerate(rows):
        series.append(
            Series(
                (row["size"],),
                (float(row["mean"]),),
                label=f"{row['label']}: {100 * row['mean']:.1f}% ± {100 * row['ci95']:.1f}",
                kind="points",
                colour=cycled(i),
                marker="circle",
                error=(float(row["ci95"]),),
            )
        )
    panel = Panel(
        tuple(series),
        x=Axis("image size (px)", log=True, ticks=tuple(sorted(sizes))),
        y=Axis("held-out accuracy (95% interval)"),
    )
    return Chart((panel,), title=title, legend_place="lower right")


def accuracy_vs_size(
    points: list[dict],
    *,
    ideal: tuple[Sequence[int], Sequence[float]] | None = None,
    backend: str = "matplotlib",
    ideal_label: str = "ideal observer",
    title: str = "accuracy against image size",
) -> Any:
    """Held-out accuracy with 95% intervals against image size (log axis, plain labels).

    ``points``: rows with ``label, size, mean, ci95``; ``ideal``: an optional reference
    curve (sizes, accuracies), such as the ideal observer of the embedded dataset, named
    ``ideal_label`` in the legend.
    """
    backend = check_backend(backend)
    chart = accuracy_vs_size_chart(points, ideal=ideal, ideal_label=ideal_label, title=title)
    return draw(chart, backend)
