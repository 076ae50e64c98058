"""What LITE costs and saves: memory and time of a step, and accuracy against cost.

- `step_cost`: memory and time of one step against h (`litekit.measure.cost_vs_h`);
- `memory_and_time`: memory and step time against N or the image size, one line per kind;
- `reference_memory`: peak memory against N from the reference measurements (JSON lines of
  ``kind, net, size, n, h, peak_gib``), out-of-memory sizes marked;
- `accuracy_vs_cost`: accuracy against the cost to personalise to a task (log x).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litekit._checks import bad_argument, check_int
from litekit.plots.backends import check_backend, draw
from litekit.plots.chart import MARKERS, Axis, Chart, Panel, Rule, Series, numbers
from litekit.plots.rows import check_rows, groups
from litekit.plots.style import COLOURS, FAMILY_COLOURS

MIB = 2.0**20
TIME_TITLE = "time (median; bars: fastest to slowest repeat)"
COST_AXES = {
    "flops": "FLOPs to personalise, per task",
    "seconds": "seconds per task",
    "peak_memory_mib": "peak memory per task (MiB)",
}


def value_range(rows: list[dict], key: str, scale: float = 1.0) -> tuple | None:
    """``(lows, highs)`` of ``key`` from the rows' ``<key>_min`` and ``<key>_max`` (the range
    of repeated measurements), scaled; None when a row lacks them."""
    low, high = f"{key}_min", f"{key}_max"
    if not rows or any(row.get(low) is None or row.get(high) is None for row in rows):
        return None
    return numbers([r[low] * scale for r in rows]), numbers([r[high] * scale for r in rows])


def step_cost_chart(rows: list[dict]) -> Chart:
    """LITE's memory and time per step against h, full back-propagation as dashed rules."""
    rows = check_rows(rows, ("h", "method", "seconds", "saved_bytes"))
    lite = sorted((r for r in rows if r["method"] == "lite"), key=lambda r: r["h"])
    full = [r for r in rows if r["method"] == "full"]
    memory = [("saved_bytes", "kept for backward", 1 / MIB, "circle", "solid")]
    if any(r.get("peak_bytes") is not None for r in rows):
        memory.append(("peak_bytes", "CUDA peak", 1 / MIB, "square", "dot"))
    time = [("seconds", "time", 1.0, "circle", "solid")]
    ticks = tuple(sorted({r["h"] for r in lite} | {r["h"] for r in full}))
    return Chart(
        (
            _cost_panel("memory", "MiB", memory, lite, full, ticks),
            _cost_panel(TIME_TITLE, "seconds per step", time, lite, full, ticks),
        ),
        title="Cost of one step (dashed: full back-propagation)",
        panel_size=(4.8, 4.0),
    )


def _cost_panel(
    title: str, unit: str, readings: list[tuple], lite: list, full: list, ticks: tuple
) -> Panel:
    """One reading per LITE line; full back-propagation as a dashed rule and a diamond at N.

    A reading whose rows also hold ``<key>_min`` and ``<key>_max`` (the range of repeated
    timings) gets error bars from the lowest to the highest repeat.
    """
    series, rules = [], []
    for key, label, scale, marker, dash in readings:
        values = numbers([r[key] * scale for r in lite])
        hs = tuple(r["h"] for r in lite)
        series.append(
            Series(
                hs,
                values,
                f"LITE: {label}",
                colour=COLOURS["lite"],
                marker=marker,
                dash=dash,
                y_range=value_range(lite, key, scale),
            )
        )
        for r in full:
            value = r[key] * scale
            # the rule carries no text: a label on the line would run into the next panel's
            # on a narrow screen; the diamond at h = N names it in the legend instead
            rules.append(Rule(value, colour=COLOURS["full"], dash="dash"))
            series.append(
                Series(
                    (r["h"],),
                    (value,),
                    "full back-prop (h = N)",
                    kind="points",
                    colour=COLOURS["full"],
                    marker="diamond",
                    y_range=value_range([r], key, scale),
                )
            )
    return Panel(  # linear in h, as memory is
        tuple(series),
        x=Axis("h", ticks=ticks),
        y=Axis(unit, limits=(0, None)),
        title=title,
        rules=tuple(rules),
    )


def step_cost(rows: list[dict], *, backend: str = "matplotlib") -> Any:
    """Memory (MiB kept for backward; CUDA peak when measured) and seconds per step against h.

    ``rows`` is `litekit.measure.cost_vs_h`'s table: LITE rows as lines, the full
    back-propagation row as a dashed horizontal line (and a diamond at h = N).
    """
    backend = check_backend(backend)
    return draw(step_cost_chart(rows), backend)


def memory_and_time_chart(
    rows: list[dict],
    *,
    x: str = "n",
    xlabel: str = "support-set size N",
    memory_label: str = "MiB",
    title: str = "",
    names: dict[str, str] | None = None,
    time_label: str = "seconds per step",
) -> Chart:
    """Memory and step time against ``x``, one line per kind; see `memory_and_time`."""
    rows = check_rows(rows, ["kind", x, "mib", "seconds"])
    if names is not None and not isinstance(names, dict):
        raise bad_argument("names", names, "pass {kind: legend name}, or None.")
    names = names or {}
    panels = []
    timed = value_range(rows, "seconds") is not None
    columns = (
        ("mib", memory_label, "memory"),
        ("seconds", time_label, TIME_TITLE if timed else "time"),
    )
    for key, unit, name in columns:
        series = tuple(
            Series(
                tuple(r[x] for r in members),
                numbers([r[key] for r in members]),
                label=str(names.get(kind, kind)),
                colour=COLOURS.get(kind),
                marker="circle",
                y_range=value_range(members, key),
            )
            for kind, members in groups(rows, "kind", order=x).items()
        )
        panels.append(Panel(series, x=Axis(xlabel), y=Axis(unit), title=name))
    return Chart(tuple(panels), title=title, legend="first", panel_size=(5.5, 4.0))


def memory_and_time(
    rows: list[dict],
    *,
    x: str = "n",
    xlabel: str = "support-set size N",
    memory_label: str = "MiB",
    backend: str = "matplotlib",
    title: str = "",
    names: dict[str, str] | None = None,
    time_label: str = "seconds per step",
) -> Any:
    """Memory and step time against ``x``, one line per ``kind`` (full, LITE, ...).

    ``rows``: dicts with ``kind``, the ``x`` column, ``mib`` and ``seconds`` (with
    ``seconds_min`` and ``seconds_max``, the range of the timed repeats, drawn as error
    bars). The kinds
    ``"full"`` and ``"lite"`` get the house colours; ``names`` maps a kind to its legend
    entry (``{"lite": "LITE, h=10"}``), by default the kind itself; ``time_label`` is the
    time axis's title (what was timed: ``"seconds to score the task"``).
    """
    backend = check_backend(backend)
    chart = memory_and_time_chart(
        rows,
        x=x,
        xlabel=xlabel,
        memory_label=memory_label,
        title=title,
        names=names,
        time_label=time_label,
    )
    return draw(chart, backend)


REFERENCE_KINDS = (
    ("full", "full back-propagation", COLOURS["full"]),
    ("lite", "minimal LITE", COLOURS["lite"]),
)


def reference_memory_chart(
    rows: list[dict], panels: Sequence[tuple[str, int]], *, h: int = 40
) -> Chart:
    """Peak GiB against N per backbone and image size; see `reference_memory`."""
    rows = check_rows(rows, ["kind", "net", "size", "n"])
    if isinstance(panels, str) or not panels or any(len(p) != 2 for p in panels):
        raise bad_argument("panels", panels, "pass a list of (backbone, image size) pairs.")
    h = check_int("h", h, minimum=1)
    drawn = []
    for net, size in panels:
        chosen = [r for r in rows if (r["net"], r["size"], r.get("h")) == (net, size, h)]
        if not chosen:
            raise bad_argument(
                "panels", (net, size), f"the reference has no rows for {net} at {size} px, h={h}."
            )
        series, rules = [], []
        for kind, name, colour in REFERENCE_KINDS:
            label = name if kind == "full" else f"{name}, h={h}"
            first = {}  # one point per N: the first row, where a set-up was measured twice
            for r in chosen:
                if r["kind"] == kind:
                    first.setdefault(r["n"], r.get("peak_gib"))
            points = sorted(first.items())
            shown = [(n, peak) for n, peak in points if peak is not None]
            if shown:
                ns, peaks = zip(*shown, strict=True)
                series.append(Series(ns, numbers(peaks), label, colour=colour, marker="circle"))
            rules += [
                Rule(n, horizontal=False, label=f"{label}: out of memory", colour=colour)
                for n, peak in points
                if peak is None
            ]
        drawn.append(
            Panel(
                tuple(series),
                x=Axis("support-set size N"),
                y=Axis("peak GiB"),
                title=f"{net}, {size} px",
                rules=tuple(rules),
            )
        )
    return Chart(tuple(drawn), panel_size=(5.5, 3.8))


def reference_memory(
    rows: list[dict],
    panels: Sequence[tuple[str, int]],
    *,
    h: int = 40,
    backend: str = "matplotlib",
) -> Any:
    """Peak memory against N, full back-propagation against LITE, one panel per set-up.

    ``rows`` are reference measurements (`litekit.measure.load_reference`): ``kind``
    (``"full"`` or ``"lite"``), ``net``, ``size``, ``n``, ``h`` and ``peak_gib``, None or
    missing where the step ran out of memory; an N that ran out of memory is a dotted
    vertical line. ``panels`` lists the (backbone, image size) pairs to draw, side by side;
    ``h`` picks LITE's subset size.
    """
    backend = check_backend(backend)
    return draw(reference_memory_chart(rows, panels, h=h), backend)


def accuracy_vs_cost_chart(
    rows: list[dict],
    *,
    costs: Sequence[str] = ("flops", "seconds"),
    reference: tuple[str, float] | None = None,
) -> Chart:
    """One point per learner and cost, on log x axes; see `accuracy_vs_cost`."""
    if isinstance(costs, str) or not costs or any(c not in COST_AXES for c in costs):
        raise bad_argument(
            "costs", costs, f"pass a non-empty list of cost columns from {sorted(COST_AXES)}."
        )
    rows = check_rows(rows, ["label", "mean", "ci95", *costs])
    for row in rows:
        bad = [c for c in costs if not row[c] > 0]
        if bad:
            raise bad_argument(
                "rows",
                {k: row[k] for k in ("label", *bad)},
                f"{bad} must be positive to sit on a log axis; measure them again.",
            )
    rules = ()
    if reference is not None:
        rules = (Rule(float(reference[1]), label=reference[0]),)
    panels = []
    for cost in costs:
        series = tuple(
            Series(
                (float(row[cost]),),
                (float(row["mean"]),),
                label=f"{row['label']}: {100 * row['mean']:.1f}% ± {100 * row['ci95']:.1f}",
                kind="points",
                colour=FAMILY_COLOURS.get(row.get("family")),
                marker=MARKERS[i % len(MARKERS)],
                error=(float(row["ci95"]),),
                hover=(", ".join(f"{c} = {row[c]:.3g}" for c in costs),),
                x_range=value_range([row], cost),
            )
            for i, row in enumerate(rows)
        )
        values = [row[cost] for row in rows]
        axis = Axis(  # room for the markers and a labelled decade; no crowded minor labels
            COST_AXES[cost],
            log=True,
            limits=(min(values) / 3, max(values) * 3),
            minor_labels=False,
        )
        y = Axis("held-out accuracy (95% interval)" if not panels or len(costs) > 2 else "")
        panels.append(Panel(series, x=axis, y=y, rules=rules))
    return Chart(
        tuple(panels),
        title="accuracy against the cost to personalise",
        legend="below",
        panel_size=(4.8, 4.0),
        columns=1 if len(panels) > 2 else None,
    )


def accuracy_vs_cost(
    rows: list[dict],
    *,
    costs: Sequence[str] = ("flops", "seconds"),
    reference: tuple[str, float] | None = None,
    backend: str = "matplotlib",
) -> Any:
    """Held-out accuracy (95% interval) against the cost to personalise, one panel per cost.

    ``rows``: one dict per learner with ``label``, ``mean``, ``ci95`` and the ``costs``
    columns (``flops``, ``seconds``, ``peak_memory_mib``, as in
    `litekit.cost.PersonalisationCost`), each positive: the x axes are logarithmic, so a
    learner ten times as expensive sits one decade to the right. An optional ``family``
    (``"meta-learning"`` or ``"transfer learning"``) sets the colour; ``seconds_min`` and
    ``seconds_max`` (the range of the timed repeats) draw error bars along the time axis.
    ``reference``, a
    (label, accuracy) pair such as the ideal observer's, is drawn as a dotted line.
    """
    backend = check_backend(backend)
    return draw(accuracy_vs_cost_chart(rows, costs=costs, reference=reference), backend)
