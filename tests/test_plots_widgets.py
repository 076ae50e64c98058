"""Figures draw what the data say, and the widget callback is a plain, testable function."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import make_episode, make_learner
from matplotlib.figure import Figure

from litekit import plots, widgets
from litekit.diagnostics import per_image_gradients

SCALINGS = ("unbiased", "none")


def stats_rows(n: int = 8) -> list[dict]:
    """A synthetic `estimator_stats` table: exact theory, h = N with zero variance."""
    rows = []
    for scaling in SCALINGS:
        factor = 1.0 if scaling == "unbiased" else 0.1
        for h in (1, 2, 4, n):
            theory = factor * n * (n - h) / h
            rows.append(
                {
                    "learner": "ProtoNets",
                    "n": n,
                    "h": h,
                    "scaling": scaling,
                    "trace_cov": theory * 1.05,
                    "trace_stderr": 0.1 * theory,
                    "theory_trace": theory,
                    "theory": "exact",
                    "mean_cosine": h / n,
                    "relative_bias": 0.0 if scaling == "unbiased" else 1 - h / n,
                    "bias_noise": 0.01,
                    "full_norm": 2.0,
                }
            )
    return rows


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


@pytest.fixture(scope="module")
def decomposition():
    return per_image_gradients(make_learner("simple_cnaps"), make_episode(6))


def test_variance_figure_has_measured_and_theory_lines_on_log_axes():
    rows = stats_rows()
    figure = plots.variance_vs_h(rows, highlight=2)
    ax = figure.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    theory = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(theory) == len(SCALINGS)
    unbiased_theory = [r["theory_trace"] for r in rows if r["scaling"] == "unbiased"][:3]
    np.testing.assert_allclose(theory[0].get_ydata(), unbiased_theory)
    assert len(ax.containers) == len(SCALINGS)  # one errorbar series each
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["h = 8 not shown: variance 0"]
    assert any(line.get_linestyle() == ":" for line in ax.get_lines())  # the highlight
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "exact" in " ".join(legend)
    # each scaling's theory line is labelled with its own formula
    assert "theory N(N-h)/h · tr S² (exact)" in legend
    assert "theory h(N-h)/N · tr S² (exact)" in legend


def test_variance_figure_in_plotly():
    figure = plots.variance_vs_h(stats_rows(), backend="plotly")
    assert len(figure.data) == 2 * len(SCALINGS)
    assert figure.layout.xaxis.type == figure.layout.yaxis.type == "log"
    assert [trace.line.dash for trace in figure.data[:2]] == ["solid", "dash"]
    assert list(figure.data[0].x) == [1, 2, 4]


def test_cosine_figure():
    figure = plots.cosine_vs_h(stats_rows())
    ax = figure.axes[0]
    assert len(ax.get_lines()) == len(SCALINGS) and ax.get_ylim() == (0, 1.05)
    assert len(plots.cosine_vs_h(stats_rows(), backend="plotly").data) == len(SCALINGS)


def test_contribution_bars_add_up_to_the_gradient_norm(decomposition):
    parts = plots.contributions(decomposition)
    assert set(parts) == {"query", "set", "features"}
    total = sum(float(v.sum()) for v in parts.values())
    assert total == pytest.approx(float(decomposition.full.norm()), rel=1e-12)
    figure = plots.per_image_contributions(decomposition)
    bars = figure.axes[0].patches
    assert len(bars) == 1 + 2 * decomposition.n
    heights = sum(bar.get_height() for bar in bars)
    assert heights == pytest.approx(total, rel=1e-12)
    interactive = plots.per_image_contributions(decomposition, backend="plotly")
    assert [trace.name for trace in interactive.data] == [
        "query path (one term)",
        "per image: through the set encoder",
        "per image: through its embedding",
    ]


def test_running_mean_and_bias_figures():
    rows = [
        {"scaling": c, "h": 2, "k": k, "relative_error": e / np.sqrt(k) + b}
        for c, e, b in (("unbiased", 1.0, 0.0), ("loss", 1.0, 2.0))
        for k in range(1, 51)
    ]
    figure = plots.running_mean(rows, noise=1.0)
    assert len(figure.axes[0].get_lines()) == 3
    assert len(plots.running_mean(rows, backend="plotly").data) == 2
    bias = plots.scaling_bias(stats_rows(), floor=1e-6)
    heights = [bar.get_height() for bar in bias.axes[0].patches]
    assert len(heights) == 4 * len(SCALINGS)
    assert min(heights) == 1e-6  # exact zeros drawn at the floor of the log axis
    assert plots.scaling_bias(stats_rows(), backend="plotly").layout.barmode == "group"


def test_cost_figure_shows_lite_against_full():
    rows = [
        {"h": h, "method": "lite", "seconds": 0.1 * h, "saved_bytes": 2**20 * h, "peak_bytes": None}
        for h in (1, 2, 4)
    ] + [{"h": 8, "method": "full", "seconds": 1.0, "saved_bytes": 2**23, "peak_bytes": None}]
    figure = plots.step_cost(rows)
    memory, time = figure.axes
    np.testing.assert_allclose(memory.get_lines()[0].get_ydata(), [1, 2, 4])
    assert list(memory.get_lines()[1].get_xydata()[0]) == [8, 8]  # full, marked at h = N
    assert memory.get_lines()[2].get_ydata()[0] == 8  # ... and dashed across the panel
    assert len(time.get_lines()) == 3
    assert len(plots.step_cost(rows, backend="plotly").data) == 4  # LITE and the h = N mark


def cost_rows() -> list[dict]:
    return [
        {"label": "ProtoNets", "family": "meta-learning", "mean": 0.7, "ci95": 0.05,
         "flops": 3e9, "seconds": 0.1, "peak_memory_mib": 50.0},
        {"label": "FineTuner", "family": "transfer learning", "mean": 0.75, "ci95": 0.04,
         "flops": 9e10, "seconds": 3.0, "peak_memory_mib": 100.0},
        {"label": "no family", "mean": 0.6, "ci95": 0.1,
         "flops": 1e9, "seconds": 0.2, "peak_memory_mib": 20.0},
    ]  # fmt: skip


def test_accuracy_against_cost_on_log_axes():
    rows = cost_rows()
    figure = plots.accuracy_vs_cost(rows)
    flops, seconds = figure.axes
    assert flops.get_xscale() == seconds.get_xscale() == "log"
    assert flops.get_xlabel() == plots.COST_AXES["flops"]
    assert flops.get_xlim() == pytest.approx((1e9 / 3, 9e10 * 3))  # every point, with room
    points = [c.lines[0].get_xydata()[0].tolist() for c in flops.containers]
    assert points == [[r["flops"], r["mean"]] for r in rows]
    bars = [c[2][0].get_segments()[0] for c in flops.containers]  # the 95% intervals
    np.testing.assert_allclose([b[1][1] - b[0][1] for b in bars], [2 * r["ci95"] for r in rows])
    colours = [c.lines[0].get_color() for c in seconds.containers]
    assert colours[:2] == [plots.COLOURS["lite"], plots.COLOURS["full"]]
    legend = [t.get_text() for t in figure.legends[0].get_texts()]  # below both panels
    assert legend[1] == "FineTuner: 75.0% ± 4.0"
    memory = plots.accuracy_vs_cost(rows, costs=["peak_memory_mib"], reference=("ideal", 0.8))
    ax = memory.axes[0]
    assert len(memory.axes) == 1 and ax.get_xlabel().startswith("peak memory")
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1 and list(dotted[0].get_ydata()) == [0.8, 0.8]
    assert "ideal" in [t.get_text() for t in memory.legends[0].get_texts()]


def test_accuracy_against_cost_in_plotly():
    figure = plots.accuracy_vs_cost(cost_rows(), backend="plotly")
    assert len(figure.data) == 3 * 2  # one trace per learner and panel
    assert figure.layout.xaxis.type == figure.layout.xaxis2.type == "log"
    assert [t.showlegend for t in figure.data] == [True] * 3 + [False] * 3  # panel by panel
    assert list(figure.data[1].x) == [9e10] and list(figure.data[4].x) == [3.0]
    assert list(figure.data[1].error_y.array) == [0.04]
    assert figure.data[0].marker.color == plots.COLOURS["lite"]
    ruled = plots.accuracy_vs_cost(cost_rows(), reference=("ideal", 0.8), backend="plotly")
    assert [shape.y0 for shape in ruled.layout.shapes] == [0.8, 0.8]


@pytest.mark.parametrize(
    ("costs", "change", "argument"),
    [
        ("flops", {}, "costs"),
        (["energy"], {}, "costs"),
        ([], {}, "costs"),
        (["flops"], {"flops": 0}, "rows"),
        (["seconds"], {"seconds": None}, "rows"),
    ],
)
def test_bad_cost_plot_arguments(costs, change, argument):
    rows = cost_rows()
    rows[0] = {k: v for k, v in rows[0].items() if change.get(k, 1) is not None}
    rows[0].update({k: v for k, v in change.items() if v is not None})
    with pytest.raises(ValueError, match=rf"^{argument}="):
        plots.accuracy_vs_cost(rows, costs=costs)


def test_same_data_same_picture():
    assert png(plots.variance_vs_h(stats_rows())) == png(plots.variance_vs_h(stats_rows()))


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: plots.variance_vs_h(stats_rows(), backend="bokeh"), "backend"),
        (lambda: plots.variance_vs_h([]), "rows"),
        (lambda: plots.cosine_vs_h([{"h": 1}]), "rows"),
        (lambda: plots.per_image_contributions(stats_rows()), "decomposition"),
    ],
)
def test_bad_plot_arguments(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}="):
        call()


# --- the widget ---------------------------------------------------------------------------------

SMALL = {"n": 6, "image_size": 32, "draws": 4}


def test_explore_clamps_h_above_n_with_a_visible_note():
    result = widgets.explore(h=50, **SMALL)
    assert result.clamped and result.h == 6 and result.n == 6
    assert result.note.startswith("h = 50 is more than the N = 6 support images: clamped to h = 6")
    assert isinstance(result.figure, Figure)
    assert [r["h"] for r in result.rows] == [1, 2, 4, 6]
    unclamped = widgets.explore(h=3, **SMALL)
    assert not unclamped.clamped and unclamped.note.startswith("h = 3 of N = 6")


def test_explore_is_deterministic_and_follows_its_controls():
    first = widgets.explore(h=2, learner="simple_cnaps", scaling="same_subset", seed=1, **SMALL)
    again = widgets.explore(h=2, learner="simple_cnaps", scaling="same_subset", seed=1, **SMALL)
    other = widgets.explore(h=2, learner="simple_cnaps", scaling="same_subset", seed=2, **SMALL)
    assert first.rows == again.rows and first.note == again.note
    assert first.rows != other.rows
    assert {r["scaling"] for r in first.rows} == {"same_subset"}
    assert first.rows[0]["learner"] == "SimpleCNAPs"
    assert "plotly" in type(widgets.explore(backend="plotly", **SMALL).figure).__module__


@pytest.mark.parametrize(
    ("options", "argument"),
    [({"h": 0}, "h"), ({"n": 3}, "n"), ({"scaling": "orbit"}, "scaling"), ({"seed": -1}, "seed")],
)
def test_explore_rejects_bad_controls(options, argument):
    with pytest.raises(ValueError, match=rf"^{argument}="):
        widgets.explore(**{**SMALL, **options})


def test_panel_redraws_through_the_plain_callback_without_a_kernel():
    initial = widgets.explore(h=2, **SMALL)
    panel = widgets.variance_panel(initial, h=2, n=6, draws=4)
    assert panel.result is initial and "h = 2 of N = 6" in panel.note.value
    panel.controls["h"].value = 40  # the observer calls explore with the new value
    assert panel.result.clamped and panel.result.h == 6
    assert "clamped" in panel.note.value and "#b2182b" in panel.note.value
    assert panel.values() == {
        "h": 40,
        "n": 6,
        "image_size": 32,
        "learner": "protonets",
        "scaling": "unbiased",
        "seed": 0,
    }
