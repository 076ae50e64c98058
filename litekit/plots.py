"""Figures for the LITE diagnostics, each as a static matplotlib or an interactive plotly figure.

Every function takes the plain data `litekit.diagnostics` returns (lists of row dicts, or a
`GradientDecomposition`) and ``backend="matplotlib"`` (a `matplotlib.figure.Figure`, built
without pyplot so nothing global changes) or ``backend="plotly"`` (a
`plotly.graph_objects.Figure`). The same data always gives the same figure.

- `variance_vs_h`: tr Cov[ĝ] against h on log-log axes, with the theory line;
- `cosine_vs_h`: mean cosine between ĝ and the full gradient against h;
- `per_image_contributions`: how much each g_n (and g_Q) adds along the full gradient;
- `running_mean`: the running mean of LITE draws converging (or not) to the full gradient;
- `convention_bias`: the relative bias of each convention, side by side;
- `step_cost`: memory and time of one step against h;
- `learning_curves`, `accuracy_vs_size`, `memory_and_time`: training and measurement figures
  of notebooks 04 and 05;
- `accuracy_vs_cost`: accuracy against the cost to personalise (log x), notebook 06.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litekit._checks import bad_argument, check_choice

BACKENDS = ("matplotlib", "plotly")
COLOURS = {
    "unbiased": "#1b7837",
    "none": "#762a83",
    "loss": "#e08214",
    "same_subset": "#2166ac",
    "features": "#4393c3",
    "set": "#d6604d",
    "query": "#636363",
    "lite": "#1b7837",
    "full": "#b2182b",
}
LABELS = {
    "unbiased": "unbiased (litekit)",
    "none": "no N/h (VTAB+MD code)",
    "loss": "N/h on the loss (ORBIT code)",
    "same_subset": "same subset for both paths",
}
THEORY = "theory N(N-h)/h · tr S²"
THEORY_NONE = "theory h(N-h)/N · tr S²"  # no N/h: each g_n enters with weight 1, not N/h


def _theory_label(name: str, members: list[dict]) -> str:
    formula = THEORY_NONE if name == "none" else THEORY
    return f"{formula} ({members[0].get('theory', 'exact')})"


def _check_rows(rows: Any, keys: Sequence[str]) -> list[dict]:
    if not isinstance(rows, list | tuple) or not rows or not isinstance(rows[0], dict):
        raise bad_argument(
            "rows", type(rows).__name__, "pass the non-empty list of dicts a diagnostic returns."
        )
    missing = [k for k in keys if k not in rows[0]]
    if missing:
        raise bad_argument(
            "rows",
            sorted(rows[0])[:8],
            f"rows need the columns {missing}; pass the table "
            "from the matching litekit.diagnostics function.",
        )
    return list(rows)


def _backend(backend: str) -> str:
    return check_choice("backend", backend, BACKENDS)


def _figure(ncols: int = 1, width: float = 6.4, height: float = 4.0):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = figure.subplots(1, ncols)
    return figure, axes


def _plotly_figure(titles: Sequence[str] | None = None):
    import plotly.graph_objects as go

    if titles is None:
        return go.Figure(layout={"template": "plotly_white"})
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=len(titles), subplot_titles=list(titles))
    figure.update_layout(template="plotly_white")
    return figure


def _log_h_axis(ax: Any, hs: Sequence[int]) -> None:
    """A log x axis labelled at the measured h values, in plain numbers."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    values = sorted(set(hs))
    ax.set_xticks(values, [str(h) for h in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _groups(rows: list[dict], key: str = "scaling") -> dict[str, list[dict]]:
    """Rows grouped by ``key`` in order of first appearance, each sorted by h."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return {name: sorted(members, key=lambda r: r["h"]) for name, members in groups.items()}


def _title(rows: list[dict], what: str) -> str:
    first = rows[0]
    learner = first.get("learner", "")
    n = first.get("n")
    return f"{what}: {learner}, N = {n}" if n is not None else what


# --- variance and cosine against h ------------------------------------------------------------


def variance_vs_h(
    rows: list[dict], *, backend: str = "matplotlib", highlight: int | None = None
) -> Any:
    """tr Cov[ĝ] against h (log-log), measured (with ±2 standard errors) and in theory.

    ``rows`` is `litekit.diagnostics.estimator_stats`'s table. Rows with zero variance
    (h = N, where LITE is plain back-propagation) cannot sit on a log axis and are left
    out, with a note. The theory line is dashed; its kind (exact, lower bound, linearised) is
    in the legend. ``highlight`` marks one h with a vertical line.
    """
    rows = _check_rows(rows, ("h", "scaling", "trace_cov", "trace_stderr", "theory_trace"))
    backend = _backend(backend)
    groups = {
        name: [r for r in members if r["trace_cov"] > 0] for name, members in _groups(rows).items()
    }
    dropped = sorted({r["h"] for r in rows if r["trace_cov"] <= 0})
    note = f"h = {', '.join(map(str, dropped))} not shown: variance 0" if dropped else ""
    title = _title(rows, "Variance of the LITE gradient")
    if backend == "plotly":
        figure = _plotly_figure()
        for name, members in groups.items():
            if not members:
                continue
            hs = [r["h"] for r in members]
            figure.add_scatter(
                x=hs,
                y=[r["trace_cov"] for r in members],
                error_y={"type": "data", "array": [2 * r["trace_stderr"] for r in members]},
                mode="markers+lines",
                name=f"{LABELS.get(name, name)}: measured",
                line={"color": COLOURS.get(name)},
            )
            figure.add_scatter(
                x=hs,
                y=[r["theory_trace"] for r in members],
                mode="lines",
                name=_theory_label(name, members),
                line={"color": COLOURS.get(name), "dash": "dash"},
            )
        if highlight is not None:
            figure.add_vline(x=highlight, line_dash="dot", line_color="grey")
        figure.update_xaxes(type="log", title="h (support images back-propagated)")
        figure.update_yaxes(type="log", title="tr Cov[ĝ]")
        figure.update_layout(title=title + (f"<br><sub>{note}</sub>" if note else ""))
        return figure
    figure, ax = _figure()
    for name, members in groups.items():
        if not members:
            continue
        hs = np.array([r["h"] for r in members])
        colour = COLOURS.get(name)
        ax.errorbar(
            hs,
            [r["trace_cov"] for r in members],
            yerr=[2 * r["trace_stderr"] for r in members],
            fmt="o-",
            color=colour,
            label=f"{LABELS.get(name, name)}: measured",
            capsize=3,
        )
        ax.plot(
            hs,
            [r["theory_trace"] for r in members],
            "--",
            color=colour,
            label=_theory_label(name, members),
        )
    if highlight is not None:
        ax.axvline(highlight, color="grey", linestyle=":", label=f"h = {highlight}")
    _log_h_axis(ax, [r["h"] for members in groups.values() for r in members] or [1])
    ax.set_yscale("log")
    ax.set_xlabel("h (support images back-propagated)")
    ax.set_ylabel("tr Cov[ĝ]")
    ax.set_title(title, fontsize=10)
    if note:
        ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=8, color="grey")
    ax.legend(fontsize=7)
    return figure


def cosine_vs_h(rows: list[dict], *, backend: str = "matplotlib") -> Any:
    """Mean cosine between each LITE draw ĝ and the full gradient, against h (log x)."""
    rows = _check_rows(rows, ("h", "scaling", "mean_cosine"))
    backend = _backend(backend)
    groups = _groups(rows)
    title = _title(rows, "Alignment with the full gradient")
    if backend == "plotly":
        figure = _plotly_figure()
        for name, members in groups.items():
            figure.add_scatter(
                x=[r["h"] for r in members],
                y=[r["mean_cosine"] for r in members],
                mode="markers+lines",
                name=LABELS.get(name, name),
                line={"color": COLOURS.get(name)},
            )
        figure.update_xaxes(type="log", title="h")
        figure.update_yaxes(title="mean cos(ĝ, dL/dθ)", range=[0, 1.05])
        figure.update_layout(title=title)
        return figure
    figure, ax = _figure()
    for name, members in groups.items():
        ax.plot(
            [r["h"] for r in members],
            [r["mean_cosine"] for r in members],
            "o-",
            color=COLOURS.get(name),
            label=LABELS.get(name, name),
        )
    _log_h_axis(ax, [r["h"] for r in rows])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("h")
    ax.set_ylabel("mean cos(ĝ, dL/dθ)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return figure


# --- per-image contributions ------------------------------------------------------------------


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


def per_image_contributions(decomposition: Any, *, backend: str = "matplotlib") -> Any:
    """Bars: how far g_Q and each g_n reach along the full gradient (stacked by path).

    The bars add up to ||dL/dθ||, which is the split of the task gradient made visible;
    tick labels give each support image's class.
    """
    if not hasattr(decomposition, "paths") or not hasattr(decomposition, "full"):
        raise bad_argument(
            "decomposition",
            type(decomposition).__name__,
            "pass the GradientDecomposition from litekit.diagnostics.per_image_gradients.",
        )
    backend = _backend(backend)
    parts = contributions(decomposition)
    n = len(next(iter(decomposition.paths.values())))
    labels = decomposition.support_labels.tolist()
    ticks = ["Q"] + [f"{i}·c{label}" for i, label in enumerate(labels)]
    total = float(decomposition.full.double().norm())
    summed = sum(float(v.sum()) for v in parts.values())
    title = f"Per-image terms along dL/dθ: bars add up to {summed:.4g} (‖dL/dθ‖ = {total:.4g})"
    if backend == "plotly":
        figure = _plotly_figure()
        figure.add_bar(
            x=[ticks[0]], y=parts["query"], name="g_Q (query path)", marker_color=COLOURS["query"]
        )
        for path in decomposition.paths:
            figure.add_bar(
                x=ticks[1:], y=parts[path], name=f"g_n^{path}", marker_color=COLOURS.get(path)
            )
        figure.update_layout(
            barmode="relative",
            title=title,
            xaxis_title="support image · class",
            yaxis_title="⟨g, dL/dθ⟩ / ‖dL/dθ‖",
        )
        return figure
    figure, ax = _figure(width=max(6.4, 0.3 * n + 2))
    x = np.arange(n + 1)
    ax.bar(x[:1], parts["query"], color=COLOURS["query"], label="g_Q (query path)")
    positive, negative = np.zeros(n), np.zeros(n)
    for path in decomposition.paths:
        values = parts[path]
        bottom = np.where(values >= 0, positive, negative)
        ax.bar(x[1:], values, bottom=bottom, color=COLOURS.get(path), label=f"g_n^{path}")
        positive += np.clip(values, 0, None)
        negative += np.clip(values, None, 0)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xticks(x, ticks, rotation=90, fontsize=7)
    ax.set_xlabel("support image · class")
    ax.set_ylabel("⟨g, dL/dθ⟩ / ‖dL/dθ‖")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return figure


# --- running mean -----------------------------------------------------------------------------


def running_mean(
    rows: list[dict], *, backend: str = "matplotlib", noise: float | None = None
) -> Any:
    """||mean of k draws - dL/dθ|| / ||dL/dθ|| against k (log-log), one line per convention.

    ``rows`` is `litekit.diagnostics.running_mean_error`'s table. ``noise``, if given, is
    sqrt(tr Cov[ĝ]) / ||dL/dθ|| of the unbiased estimator, drawn as the expected error
    noise/√k of an unbiased mean.
    """
    rows = _check_rows(rows, ("scaling", "k", "relative_error"))
    backend = _backend(backend)
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["scaling"], []).append(row)
    k_max = max(r["k"] for r in rows)
    ks = np.arange(1, k_max + 1)
    h = rows[0].get("h")
    title = "Running mean of LITE draws" + (f", h = {h}" if h is not None else "")
    if backend == "plotly":
        figure = _plotly_figure()
        for name, members in groups.items():
            figure.add_scatter(
                x=[r["k"] for r in members],
                y=[r["relative_error"] for r in members],
                mode="lines",
                name=LABELS.get(name, name),
                line={"color": COLOURS.get(name)},
            )
        if noise is not None:
            figure.add_scatter(
                x=ks,
                y=noise / np.sqrt(ks),
                mode="lines",
                name="noise / √k",
                line={"color": "grey", "dash": "dash"},
            )
        figure.update_xaxes(type="log", title="draws k")
        figure.update_yaxes(type="log", title="relative error of the mean")
        figure.update_layout(title=title)
        return figure
    figure, ax = _figure()
    for name, members in groups.items():
        ax.plot(
            [r["k"] for r in members],
            [r["relative_error"] for r in members],
            color=COLOURS.get(name),
            label=LABELS.get(name, name),
        )
    if noise is not None:
        ax.plot(ks, noise / np.sqrt(ks), "--", color="grey", label="noise / √k (unbiased)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("draws k")
    ax.set_ylabel("‖mean − dL/dθ‖ / ‖dL/dθ‖")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return figure


# --- bias of the conventions ------------------------------------------------------------------


def convention_bias(rows: list[dict], *, backend: str = "matplotlib", floor: float = 1e-17) -> Any:
    """Relative bias ||E ĝ - dL/dθ|| / ||dL/dθ|| of each convention, grouped by h (log y).

    Takes `estimator_stats` rows (error bars: the Monte-Carlo noise ``bias_noise``) or rows
    of exact enumerations (``h, scaling, relative_bias``; no noise). Values below
    ``floor`` (float64 round-off) are drawn at the floor.
    """
    rows = _check_rows(rows, ("h", "scaling", "relative_bias"))
    backend = _backend(backend)
    hs = sorted({r["h"] for r in rows})
    names = list(dict.fromkeys(r["scaling"] for r in rows))
    table = {(r["h"], r["scaling"]): r for r in rows}

    def noise(row: dict) -> float:
        if "bias_noise" in row and row.get("full_norm"):
            return row["bias_noise"] / row["full_norm"]
        return 0.0

    title = "Bias of the gradient estimate, by convention"
    if backend == "plotly":
        figure = _plotly_figure()
        for name in names:
            members = [table[(h, name)] for h in hs if (h, name) in table]
            figure.add_bar(
                x=[f"h = {r['h']}" for r in members],
                y=[max(r["relative_bias"], floor) for r in members],
                error_y={"type": "data", "array": [noise(r) for r in members]},
                name=LABELS.get(name, name),
                marker_color=COLOURS.get(name),
            )
        figure.update_yaxes(type="log", title="relative bias")
        figure.update_layout(barmode="group", title=title)
        return figure
    figure, ax = _figure()
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        positions, values, errors = [], [], []
        for j, h in enumerate(hs):
            if (h, name) in table:
                row = table[(h, name)]
                positions.append(j + (i - (len(names) - 1) / 2) * width)
                values.append(max(row["relative_bias"], floor))
                errors.append(noise(row))
        ax.bar(
            positions,
            values,
            width,
            yerr=errors,
            color=COLOURS.get(name),
            label=LABELS.get(name, name),
            capsize=2,
        )
    ax.set_yscale("log")
    ax.set_xticks(range(len(hs)), [f"h = {h}" for h in hs])
    ax.set_ylabel("‖E ĝ − dL/dθ‖ / ‖dL/dθ‖")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return figure


# --- cost against h -------------------------------------------------------------------------


def step_cost(rows: list[dict], *, backend: str = "matplotlib") -> Any:
    """Memory (MiB kept for backward; CUDA peak when measured) and seconds per step against h.

    ``rows`` is `litekit.diagnostics.cost_vs_h`'s table: LITE rows as lines, the full
    back-propagation row as a dashed horizontal line.
    """
    rows = _check_rows(rows, ("h", "method", "seconds", "saved_bytes"))
    backend = _backend(backend)
    lite = sorted((r for r in rows if r["method"] == "lite"), key=lambda r: r["h"])
    full = [r for r in rows if r["method"] == "full"]
    mib = 2.0**20
    series = [("saved_bytes", "kept for backward")]
    if any(r.get("peak_bytes") is not None for r in rows):
        series.append(("peak_bytes", "CUDA peak"))
    hs = [r["h"] for r in lite]
    if backend == "plotly":
        figure = _plotly_figure(["memory (MiB)", "time per step (s)"])
        for key, label in series:
            dash = "solid" if key == "saved_bytes" else "dot"
            figure.add_scatter(
                x=hs,
                y=[r[key] / mib for r in lite],
                mode="markers+lines",
                name=f"LITE: {label}",
                line={"color": COLOURS["lite"], "dash": dash},
                row=1,
                col=1,
            )
            for r in full:
                figure.add_hline(
                    y=r[key] / mib, line_dash="dash", line_color=COLOURS["full"], row=1, col=1
                )
        figure.add_scatter(
            x=hs,
            y=[r["seconds"] for r in lite],
            mode="markers+lines",
            name="LITE: time",
            line={"color": COLOURS["lite"]},
            row=1,
            col=2,
        )
        for r in full:
            figure.add_hline(
                y=r["seconds"], line_dash="dash", line_color=COLOURS["full"], row=1, col=2
            )
        figure.update_xaxes(title="h")
        figure.update_layout(title="Cost of one step (dashed: full back-propagation)")
        return figure
    figure, (ax_memory, ax_time) = _figure(ncols=2, width=4.8)
    for key, label in series:
        style = "o-" if key == "saved_bytes" else "s:"
        ax_memory.plot(
            hs, [r[key] / mib for r in lite], style, color=COLOURS["lite"], label=f"LITE: {label}"
        )
        for r in full:
            ax_memory.axhline(
                r[key] / mib,
                color=COLOURS["full"],
                linestyle="--",
                label=f"full back-prop (h = N): {label}",
            )
            ax_memory.plot([r["h"]], [r[key] / mib], "D", color=COLOURS["full"])
    ax_time.plot(hs, [r["seconds"] for r in lite], "o-", color=COLOURS["lite"], label="LITE")
    for r in full:
        ax_time.axhline(
            r["seconds"], color=COLOURS["full"], linestyle="--", label="full back-prop (h = N)"
        )
        ax_time.plot([r["h"]], [r["seconds"]], "D", color=COLOURS["full"])
    ticks = sorted(set(hs) | {r["h"] for r in full})
    for ax, label in ((ax_memory, "MiB"), (ax_time, "seconds per step")):
        ax.set_xticks(ticks, [str(h) for h in ticks])  # linear in h: memory is linear in h
        ax.set_xlabel("h")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    ax_memory.set_title("memory", fontsize=10)
    ax_time.set_title("time", fontsize=10)
    return figure


# --- training and measurement figures (notebooks 04-06) -------------------------------------


def learning_curves(histories: dict[str, Any], *, backend: str = "matplotlib") -> Any:
    """Validation accuracy (with its 95% interval) against the step, one curve per run.

    ``histories`` maps a run's label to the `litekit.train.History` that `fit` returned.
    """
    if not isinstance(histories, dict) or not histories:
        raise bad_argument("histories", histories, "pass {label: History} from litekit.fit.")
    if _backend(backend) == "plotly":
        figure = _plotly_figure()
        for label, history in histories.items():
            figure.add_scatter(
                x=list(history.val_step), y=list(history.val_accuracy), name=label,
                mode="lines+markers",
                error_y={"type": "data", "array": list(history.val_ci95), "visible": True},
            )  # fmt: skip
        figure.update_layout(
            title="validation accuracy during meta-training",
            xaxis_title="optimiser step", yaxis_title="accuracy (95% interval)",
        )  # fmt: skip
        return figure
    figure, ax = _figure()
    for label, history in histories.items():
        ax.errorbar(
            history.val_step,
            history.val_accuracy,
            yerr=history.val_ci95,
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set(
        xlabel="optimiser step",
        ylabel="accuracy (95% interval)",
        title="validation accuracy during meta-training",
    )
    ax.legend(fontsize="small")
    return figure


def accuracy_vs_size(
    points: list[dict],
    *,
    ideal: tuple[Sequence[int], Sequence[float]] | None = None,
    backend: str = "matplotlib",
) -> Any:
    """Held-out accuracy with 95% intervals against image size (log axis).

    ``points``: rows with ``label, size, mean, ci95``; ``ideal``: an optional reference
    curve (sizes, accuracies), such as the ideal observer of the embedded dataset.
    """
    rows = _check_rows(points, ["label", "size", "mean", "ci95"])
    if _backend(backend) == "plotly":
        figure = _plotly_figure()
        if ideal is not None:
            figure.add_scatter(
                x=list(ideal[0]),
                y=list(ideal[1]),
                name="ideal observer",
                mode="lines",
                line={"color": "grey"},
            )
        for row in rows:
            figure.add_scatter(
                x=[row["size"]], y=[row["mean"]], name=row["label"], mode="markers",
                error_y={"type": "data", "array": [row["ci95"]], "visible": True},
            )  # fmt: skip
        figure.update_xaxes(type="log", title="image size (px)")
        figure.update_layout(
            yaxis_title="held-out accuracy (95% interval)", title="accuracy against image size"
        )
        return figure
    figure, ax = _figure()
    if ideal is not None:
        ax.plot(ideal[0], ideal[1], color="grey", label="ideal observer")
    for row in rows:
        ax.errorbar(
            [row["size"]],
            [row["mean"]],
            yerr=[row["ci95"]],
            fmt="o",
            capsize=4,
            label=f"{row['label']}: {100 * row['mean']:.1f}% ± {100 * row['ci95']:.1f}",
        )
    ax.set_xscale("log", base=2)
    ax.set(
        xlabel="image size (px)",
        ylabel="held-out accuracy (95% interval)",
        title="accuracy against image size",
    )
    ax.legend(fontsize="small", loc="lower right")
    return figure


def memory_and_time(
    rows: list[dict],
    *,
    x: str = "n",
    xlabel: str = "support-set size N",
    memory_label: str = "MiB",
    backend: str = "matplotlib",
) -> Any:
    """Memory and step time against ``x``, one line per ``kind`` (full, LITE, ...).

    ``rows``: dicts with ``kind``, the ``x`` column, ``mib`` and ``seconds``.
    """
    rows = _check_rows(rows, ["kind", x, "mib", "seconds"])
    groups = _groups([{**r, "h": r[x]} for r in rows], key="kind")
    if _backend(backend) == "plotly":
        figure = _plotly_figure(["memory", "step time"])
        for column, key in ((1, "mib"), (2, "seconds")):
            for kind, members in groups.items():
                figure.add_scatter(
                    x=[r[x] for r in members], y=[r[key] for r in members], name=kind,
                    legendgroup=kind, showlegend=column == 1, mode="lines+markers",
                    row=1, col=column,
                )  # fmt: skip
            figure.update_xaxes(title=xlabel, row=1, col=column)
        figure.update_yaxes(title=memory_label, row=1, col=1)
        figure.update_yaxes(title="seconds per step", row=1, col=2)
        return figure
    figure, (left, right) = _figure(ncols=2, width=5.5)
    for kind, members in groups.items():
        left.plot([r[x] for r in members], [r["mib"] for r in members], "o-", label=kind)
        right.plot([r[x] for r in members], [r["seconds"] for r in members], "o-", label=kind)
    left.set(xlabel=xlabel, ylabel=memory_label, title="memory")
    right.set(xlabel=xlabel, ylabel="seconds per step", title="step time")
    left.legend(fontsize="small")
    return figure


COST_AXES = {
    "flops": "FLOPs to personalise, per task",
    "seconds": "seconds per task",
    "peak_memory_mib": "peak memory per task (MiB)",
}
FAMILY_COLOURS = {"meta-learning": COLOURS["lite"], "transfer learning": COLOURS["full"]}
MARKERS = ("o", "s", "D", "^", "v", "P")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "triangle-down", "cross")


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
    (``"meta-learning"`` or ``"transfer learning"``) sets the colour. ``reference``, a
    (label, accuracy) pair such as the ideal observer's, is drawn as a dotted line.
    """
    if isinstance(costs, str) or not costs or any(c not in COST_AXES for c in costs):
        raise bad_argument(
            "costs", costs, f"pass a non-empty list of cost columns from {sorted(COST_AXES)}."
        )
    rows = _check_rows(rows, ["label", "mean", "ci95", *costs])
    for row in rows:
        bad = [c for c in costs if not row[c] > 0]
        if bad:
            raise bad_argument(
                "rows",
                {k: row[k] for k in ("label", *bad)},
                f"{bad} must be positive to sit on a log axis; measure them again.",
            )
    backend = _backend(backend)
    title = "accuracy against the cost to personalise"

    def legend(row: dict) -> str:
        return f"{row['label']}: {100 * row['mean']:.1f}% ± {100 * row['ci95']:.1f}"

    if backend == "plotly":
        figure = _plotly_figure([COST_AXES[c] for c in costs])
        for i, row in enumerate(rows):
            hover = ", ".join(f"{c} = {row[c]:.3g}" for c in costs)
            for column, cost in enumerate(costs, start=1):
                figure.add_scatter(
                    x=[row[cost]], y=[row["mean"]], name=legend(row), legendgroup=row["label"],
                    showlegend=column == 1, mode="markers", hovertext=[hover],
                    marker={"color": FAMILY_COLOURS.get(row.get("family")), "size": 11,
                            "symbol": SYMBOLS[i % len(SYMBOLS)]},
                    error_y={"type": "data", "array": [row["ci95"]], "visible": True},
                    row=1, col=column,
                )  # fmt: skip
        figure.update_xaxes(type="log")
        for column in range(1, len(costs) + 1) if reference is not None else ():
            figure.add_hline(
                y=reference[1], line_dash="dot", line_color="grey", row=1, col=column,
                annotation_text=reference[0] if column == 1 else None,
            )  # fmt: skip
        figure.update_yaxes(title="held-out accuracy (95% interval)", row=1, col=1)
        figure.update_layout(title=title)
        return figure
    from matplotlib.ticker import NullFormatter

    figure, axes = _figure(ncols=len(costs), width=4.8, height=4.0)
    axes = np.atleast_1d(axes)
    for ax, cost in zip(axes, costs, strict=True):
        for i, row in enumerate(rows):
            ax.errorbar(
                [row[cost]],
                [row["mean"]],
                yerr=[row["ci95"]],
                fmt=MARKERS[i % len(MARKERS)],
                markersize=8,
                capsize=4,
                color=FAMILY_COLOURS.get(row.get("family")),
                label=legend(row),
            )
        if reference is not None:
            ax.axhline(reference[1], color="grey", linestyle=":", label=reference[0])
        ax.set_xscale("log")
        values = [row[cost] for row in rows]
        ax.set_xlim(min(values) / 3, max(values) * 3)  # room for the markers and a labelled decade
        ax.xaxis.set_minor_formatter(NullFormatter())  # no crowded labels between decades
        ax.set_xlabel(COST_AXES[cost])
    axes[0].set_ylabel("held-out accuracy (95% interval)")
    # One legend below the panels, where it never hides a point or its interval.
    handles, labels = axes[-1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
    figure.suptitle(title, fontsize=10)
    return figure
