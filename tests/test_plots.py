"""Every figure, in both backends, draws exactly the chart its data prepared.

Each figure function of `litekit.plots` prepares a `Chart` (``*_chart``) and draws it. The
checks here read the drawn figure back (matplotlib with the Agg canvas, plotly's figure
dict) and compare it with the chart: the series' data, styles and legend entries, the
axes' scales, labels, ticks and limits, the reference lines, titles and notes. Other tests
check that the charts say what the data say.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import to_hex

from litekit import Episode, plots
from litekit.plots import cost, episodes, estimators, growth, images, per_image, training
from litekit.plots import orbit as orbit_plots
from litekit.plots import to_plotly as to_plotly_module
from litekit.plots.chart import Axis, Chart, Panel, Rule, Series
from litekit.plots.to_matplotlib import LINESTYLES, MARKER_CODES, to_matplotlib
from litekit.plots.to_plotly import to_plotly
from litekit.train import History

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
SCALING = estimators.SCALING


# --- reading a drawn figure back --------------------------------------------------------------


def gid(ax, name: str) -> list:
    return [artist for artist in ax.get_children() if artist.get_gid() == name]


def check_matplotlib_axis(ax, which: str, axis: Axis) -> None:
    get = {"x": (ax.get_xlabel, ax.get_xscale, ax.get_xticks, ax.get_xlim),
           "y": (ax.get_ylabel, ax.get_yscale, ax.get_yticks, ax.get_ylim)}[which]  # fmt: skip
    label, scale, ticks, limits = get
    assert label() == axis.label
    assert scale() == ("log" if axis.log else "linear")
    if axis.ticks is not None:
        assert list(ticks()) == list(axis.ticks)
        labels = (ax.get_xticklabels if which == "x" else ax.get_yticklabels)()
        assert [t.get_text() for t in labels] == [f"{v:g}" for v in axis.ticks]
    if axis.limits is not None:
        for got, want in zip(limits(), axis.limits, strict=True):
            assert want is None or got == pytest.approx(want)


def check_matplotlib_series(ax, number: int, series: Series) -> None:
    artists = gid(ax, f"series {number}")
    if series.kind == "bar":
        assert len(artists) == len(series.y)
        np.testing.assert_allclose([bar.get_height() for bar in artists], series.y)
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        centres = [ticks[round(bar.get_x() + bar.get_width() / 2)] for bar in artists]
        assert centres == [str(x) for x in series.x]  # each bar under its category
        colours = {to_hex(bar.get_facecolor(), keep_alpha=False) for bar in artists}
        assert series.colour is None or colours == {to_hex(series.colour)}
        return
    (line,) = artists
    np.testing.assert_allclose(np.asarray(line.get_xdata(), dtype=float), series.x)
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), series.y)
    want_style = "None" if series.kind == "points" else LINESTYLES[series.dash]
    assert line.get_linestyle() == want_style
    assert line.get_marker() == (MARKER_CODES[series.marker] if series.marker else "None")
    assert series.colour is None or to_hex(line.get_color()) == to_hex(series.colour)
    assert line.get_alpha() == series.opacity
    if series.error is not None or series.y_range is not None:
        (container,) = [c for c in ax.containers if getattr(c, "lines", [None])[0] is line]
        segments = container.lines[2][-1].get_segments()  # the y bars come last
        ends = [(bottom, top) for (_, bottom), (_, top) in segments]
        if series.y_range is not None:  # from each point's low to its high
            np.testing.assert_allclose(ends, np.transpose(series.y_range))
        else:
            heights = [top - bottom for bottom, top in ends]
            np.testing.assert_allclose(heights, np.multiply(2, series.error))


def legend_texts(figure, ax) -> list[str]:
    legends = [ax.get_legend()] if ax.get_legend() else list(figure.legends)
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def check_matplotlib(chart: Chart, figure) -> None:
    """The matplotlib figure shows ``chart``: panels, series, rules, axes, titles, legends."""
    assert len(figure.axes) == len(chart.panels)
    assert figure.get_suptitle() == chart.title
    for index, (ax, panel) in enumerate(zip(figure.axes, chart.panels, strict=True)):
        assert ax.get_title() == panel.title
        if panel.image is not None:
            np.testing.assert_allclose(ax.images[0].get_array(), panel.image)
            assert not ax.axison
            continue
        for number, series in enumerate(panel.series):
            check_matplotlib_series(ax, number, series)
        for number, rule in enumerate(panel.rules):
            (line,) = gid(ax, f"rule {number}")
            data = line.get_ydata() if rule.horizontal else line.get_xdata()
            assert list(data) == [rule.at, rule.at]
            assert line.get_linestyle() == LINESTYLES[rule.dash]
        if panel.note:
            assert panel.note in [t.get_text() for t in ax.texts]
        check_matplotlib_axis(ax, "x", panel.x)
        check_matplotlib_axis(ax, "y", panel.y)
        labels = [s.label for s in panel.series] + [r.label for r in panel.rules]
        if chart.legend == "each" or (chart.legend == "first" and index == 0):
            # matplotlib lists error-bar and bar series after plain lines: compare as sets
            assert sorted(legend_texts(figure, ax)) == sorted(label for label in labels if label)
        elif chart.legend == "below":
            assert {label for label in labels if label} <= set(legend_texts(figure, ax))
        else:
            assert ax.get_legend() is None


def check_plotly(chart: Chart, figure) -> None:
    """The plotly figure shows ``chart``: one subplot per panel, in the same order."""
    assert (figure.layout.title.text or "").replace("<br>", " ") == chart.title
    traces = list(figure.data)
    shapes = list(figure.layout.shapes)
    notes = [a.text for a in figure.layout.annotations]
    named: list[str] = []
    for column, panel in enumerate(chart.panels, start=1):
        suffix = "" if column == 1 else str(column)
        if panel.title:  # subplot titles are annotations, long ones wrapped
            assert panel.title in [note.replace("<br>", " ") for note in notes]
        if panel.image is not None:
            trace = traces.pop(0)
            assert trace.type == "image" and trace.xaxis == f"x{suffix}"
            np.testing.assert_array_equal(trace.z, np.round(panel.image * 255))
            continue
        for series in panel.series:
            trace = traces.pop(0)
            assert trace.xaxis == f"x{suffix}" and trace.name == series.label
            assert trace.type == ("bar" if series.kind == "bar" else "scatter")
            assert list(trace.x) == list(series.x)
            np.testing.assert_allclose(trace.y, series.y)
            if series.y_range is not None:
                lows, highs = series.y_range
                np.testing.assert_allclose(np.add(trace.y, trace.error_y.array), highs)
                np.testing.assert_allclose(np.subtract(trace.y, trace.error_y.arrayminus), lows)
            elif series.error is None:
                assert trace.error_y.array is None
            else:
                np.testing.assert_allclose(trace.error_y.array, series.error)
            if series.x_range is not None:
                lows, highs = series.x_range
                np.testing.assert_allclose(np.add(trace.x, trace.error_x.array), highs)
                np.testing.assert_allclose(np.subtract(trace.x, trace.error_x.arrayminus), lows)
            if trace.type == "scatter":
                assert trace.line.dash == series.dash and trace.marker.symbol == series.marker
                assert trace.mode == ("markers" if series.kind == "points" else
                                      "lines+markers" if series.marker else "lines")  # fmt: skip
            colour = trace.marker.color
            assert colour == series.colour
            if trace.showlegend:
                named.append(trace.name)
        for rule in panel.rules:
            shape = shapes.pop(0)
            start, end = (shape.y0, shape.y1) if rule.horizontal else (shape.x0, shape.x1)
            assert start == end == rule.at and shape.line.dash == rule.dash
            reference = shape.yref if rule.horizontal else shape.xref
            assert reference == ("y" if rule.horizontal else "x") + suffix
        if panel.note:
            assert panel.note in notes
        for which, axis in (("x", panel.x), ("y", panel.y)):
            layout = figure.layout[f"{which}axis{suffix}"]
            assert (layout.title.text or "") == axis.label
            assert (layout.type == "log") == axis.log
            if axis.ticks is not None:
                assert list(layout.tickvals) == list(axis.ticks)
    assert not traces and not shapes, "nothing drawn beyond the chart"
    labels = [s.label for p in chart.panels for s in p.series if s.label]
    assert named == list(dict.fromkeys(labels)), "one legend entry per label"


CHECKS = {"matplotlib": check_matplotlib, "plotly": check_plotly}


# --- the data behind the figures --------------------------------------------------------------


def stats_rows(n: int = 8) -> list[dict]:
    """A synthetic `estimator_stats` table: exact theory, h = N with zero variance."""
    rows = []
    for scaling, factor in (("unbiased", 1.0), ("none", 0.1)):
        for h in (1, 2, 4, n):
            theory = factor * n * (n - h) / h
            rows.append({"learner": "ProtoNets", "n": n, "h": h, SCALING: scaling,
                         "trace_cov": theory * 1.05, "trace_stderr": 0.1 * theory,
                         "theory_trace": theory, "theory": "exact", "mean_cosine": h / n,
                         "relative_bias": 0.0 if scaling == "unbiased" else 1 - h / n,
                         "bias_noise": 0.01, "full_norm": 2.0})  # fmt: skip
    return rows


def running_rows() -> list[dict]:
    return [
        {SCALING: c, "h": 2, "k": k, "relative_error": 1 / np.sqrt(k) + b}
        for c, b in (("unbiased", 0.0), ("loss", 2.0))
        for k in range(1, 21)
    ]


def cost_rows(peak: bool = False) -> list[dict]:
    rows = [{"h": h, "method": "lite", "seconds": 0.1 * h, "seconds_min": 0.09 * h,
             "seconds_max": 0.13 * h, "saved_bytes": 2**20 * h,
             "peak_bytes": 2**21 * h if peak else None} for h in (1, 2, 4)]  # fmt: skip
    full = {"h": 8, "method": "full", "seconds": 1.0, "seconds_min": 0.9, "seconds_max": 1.5,
            "saved_bytes": 2**23}  # fmt: skip
    return rows + [{**full, "peak_bytes": 2**24 if peak else None}]


def measured_rows() -> list[dict]:
    return [
        {"kind": kind, "n": n, "mib": scale * n + 100, "seconds": 0.01 * n}
        for kind, scale in (("full", 2.0), ("lite", 0.0))
        for n in (50, 25, 100)  # out of order: the lines are sorted by x
    ]


def learner_rows() -> list[dict]:
    return [
        {"label": "ProtoNets", "family": "meta-learning", "mean": 0.7, "ci95": 0.05,
         "flops": 3e9, "seconds": 0.1, "seconds_min": 0.08, "seconds_max": 0.2,
         "peak_memory_mib": 50.0},
        {"label": "FineTuner", "family": "transfer learning", "mean": 0.75, "ci95": 0.04,
         "flops": 9e10, "seconds": 3.0, "peak_memory_mib": 100.0},
    ]  # fmt: skip


def reference_rows() -> list[dict]:
    path = ROOT / "benchmarks" / "reference" / "h200-protonets-step.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()[1:] if line.strip()]


def history(steps: int = 12, offset: float = 0.0) -> History:
    generator = np.random.default_rng(int(10 * offset))
    accuracy = 0.2 + offset + 0.5 * np.arange(steps) / steps + 0.05 * generator.random(steps)
    return History(
        step=list(range(1, steps + 1)), loss=[1.0] * steps, accuracy=accuracy.tolist(),
        seconds=[0.1 * s for s in range(steps)], val_step=[0, steps // 2, steps],
        val_accuracy=[0.2 + offset, 0.4 + offset, 0.6 + offset], val_ci95=[0.05, 0.04, 0.03],
    )  # fmt: skip


def growth_rows() -> list[dict]:
    rows = [
        {"vary": "n", "n": n, "image_size": 48, "pixels": 48**2, "saved_bytes": 2**20 * (6 + 2 * n)}
        for n in (40, 10, 20)
    ]  # out of order
    return rows + [{"vary": "size", "n": 20, "image_size": s, "pixels": s * s,
                    "saved_bytes": 2**10 * s * s} for s in (32, 64)]  # fmt: skip


def small_episode(shots: tuple[int, ...] = (2, 2, 2)) -> Episode:
    labels = torch.tensor([k for k, shot in enumerate(shots) for _ in range(shot)])
    g = torch.Generator().manual_seed(0)
    return Episode(
        support_images=torch.rand(len(labels), 3, 6, 6, generator=g),
        support_labels=labels.flip(0),  # any order: rows are by label
        query_images=torch.rand(len(shots), 1, 6, 6, generator=g).expand(-1, 3, -1, -1),
        query_labels=torch.arange(len(shots)),
        class_ids=torch.arange(len(shots)) + 10,
    )


class Decomposition:
    """What `per_image_gradients` returns, as far as the figure reads it: small and exact."""

    def __init__(self) -> None:
        self.full = torch.tensor([3.0, 4.0], dtype=torch.float64)
        self.query = torch.tensor([1.0, 1.0], dtype=torch.float64)
        self.paths = {
            "features": torch.tensor([[1.0, 2.0], [2.0, 0.0], [-1.0, 1.0]], dtype=torch.float64),
            "set": torch.tensor([[0.0, 0.5], [0.0, -0.5], [0.0, 0.0]], dtype=torch.float64),
        }
        self.support_labels = torch.tensor([0, 1, 1])


# Every public figure function: (figure function, chart function, arguments, keywords).
FIGURES = {
    "variance_vs_h": (plots.variance_vs_h, estimators.variance_vs_h_chart, [stats_rows()],
                      {"highlight": 2}),
    "cosine_vs_h": (plots.cosine_vs_h, estimators.cosine_vs_h_chart, [stats_rows()], {}),
    "running_mean": (plots.running_mean, estimators.running_mean_chart, [running_rows()],
                     {"noise": 1.0}),
    "scaling_bias": (plots.scaling_bias, estimators.scaling_bias_chart,
                        [stats_rows()], {"floor": 1e-6}),
    "per_image_contributions": (plots.per_image_contributions,
                                per_image.per_image_contributions_chart,
                                [Decomposition()], {}),
    "step_cost": (plots.step_cost, cost.step_cost_chart, [cost_rows(peak=True)], {}),
    "memory_and_time": (plots.memory_and_time, cost.memory_and_time_chart, [measured_rows()],
                        {"memory_label": "MiB, peak", "title": "memory and time",
                         "names": {"full": "full back-propagation"}}),
    "reference_memory": (plots.reference_memory, cost.reference_memory_chart,
                         [reference_rows(), [("resnet18", 224), ("efficientnet_b0", 320)]], {}),
    "accuracy_vs_cost": (plots.accuracy_vs_cost, cost.accuracy_vs_cost_chart, [learner_rows()],
                         {"reference": ("ideal", 0.8)}),
    "learning_curves": (plots.learning_curves, training.learning_curves_chart,
                        [{"full": history(), "lite": history(offset=0.1)}], {"panels": True}),
    "accuracy_vs_size": (plots.accuracy_vs_size, training.accuracy_vs_size_chart,
                         [[{"label": "full", "size": 32, "mean": 0.6, "ci95": 0.05},
                           {"label": "LITE", "size": 64, "mean": 0.75, "ci95": 0.04}]],
                         {"ideal": ([32, 64, 128, 224], [0.61, 0.78, 0.9, 0.97])}),
    "image_strip": (plots.image_strip, images.image_strip_chart,
                    [[torch.rand(3, 8, 8), torch.rand(1, 16, 16)], ["small", "grey"]],
                    {"title": "two images"}),
    "episode_images": (plots.episode_images, episodes.episode_images_chart, [small_episode()],
                       {"title": "a task"}),
    "memory_growth": (plots.memory_growth, growth.memory_growth_chart, [growth_rows()], {}),
    "video_strip": (plots.video_strip, orbit_plots.video_strip_chart,
                    [[torch.rand(3, 16, 16) for _ in range(5)], [1, 0, 2, 0, 0], 0],
                    {"class_names": ["keys", "mug", "cane"], "shown": 3}),
    "recognition_timeline": (plots.recognition_timeline, orbit_plots.recognition_timeline_chart,
                             [[1, 0, 2, 0, 0], 0], {"class_names": ["keys", "mug", "cane"]}),
}  # fmt: skip


def test_every_public_figure_is_tested():
    figures = {
        name
        for name in plots.__all__
        if callable(getattr(plots, name)) and not isinstance(getattr(plots, name), type)
    }  # functions, not the chart's description types
    assert figures - {"contributions", "draw"} == set(FIGURES)


@pytest.mark.parametrize("backend", plots.BACKENDS)
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_draws_its_chart(name, backend):
    figure_function, chart_function, args, keywords = FIGURES[name]
    chart = chart_function(*args, **keywords)
    figure = figure_function(*args, **keywords, backend=backend)
    CHECKS[backend](chart, figure)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_bad_backend_is_refused_before_any_work(name):
    figure_function, _, args, _ = FIGURES[name]
    with pytest.raises(ValueError, match="^backend='bokeh': choose one of"):
        figure_function(*[None] * len(args), backend="bokeh")  # the data would be refused too


# --- what the charts say ----------------------------------------------------------------------


def test_variance_chart_leaves_out_zero_variance_and_labels_each_theory():
    rows = stats_rows()
    chart = estimators.variance_vs_h_chart(rows, highlight=2)
    (panel,) = chart.panels
    measured, theory = panel.series[0], panel.series[1]
    unbiased = [r for r in rows if r[SCALING] == "unbiased" and r["h"] < 8]
    assert measured.x == (1, 2, 4) and theory.dash == "dash"
    np.testing.assert_allclose(measured.y, [r["trace_cov"] for r in unbiased])
    np.testing.assert_allclose(measured.error, [2 * r["trace_stderr"] for r in unbiased])
    np.testing.assert_allclose(theory.y, [r["theory_trace"] for r in unbiased])
    assert [s.label for s in panel.series[1::2]] == [
        "theory N(N-h)/h · tr S² (exact)",
        "theory h(N-h)/N · tr S² (exact)",
    ]
    assert panel.note == "h = 8 not shown: variance 0"
    assert panel.rules == (Rule(2, horizontal=False, label="h = 2"),)
    assert panel.x.log and panel.y.log and panel.x.ticks == (1, 2, 4)
    assert chart.title == "Variance of the LITE gradient: ProtoNets, N = 8"


def test_running_mean_chart_draws_the_expected_noise_of_an_unbiased_mean():
    (panel,) = estimators.running_mean_chart(running_rows(), noise=2.0).panels
    assert [s.label for s in panel.series] == [
        plots.LABELS["unbiased"],
        plots.LABELS["loss"],
        "noise / √k (unbiased)",
    ]
    np.testing.assert_allclose(panel.series[2].y, 2.0 / np.sqrt(np.arange(1, 21)))


def test_bias_chart_groups_by_h_and_floors_exact_zeros():
    chart = estimators.scaling_bias_chart(stats_rows(), floor=1e-6)
    assert chart.bars == "group"
    unbiased, none = chart.panels[0].series
    assert unbiased.x == ("h = 1", "h = 2", "h = 4", "h = 8")
    assert unbiased.y == (1e-6,) * 4  # zeros, drawn at the floor of the log axis
    assert none.y[:3] == pytest.approx([7 / 8, 6 / 8, 4 / 8]) and none.y[3] == 1e-6
    np.testing.assert_allclose(unbiased.error, [0.005] * 4)  # bias_noise / full_norm


def test_grouped_bars_sit_side_by_side_around_their_category():
    figure = plots.scaling_bias(stats_rows(), floor=1e-6)
    ax = figure.axes[0]
    first, second = gid(ax, "series 0"), gid(ax, "series 1")
    centres = [bar.get_x() + bar.get_width() / 2 for bar in first + second]
    np.testing.assert_allclose(centres, [-0.2, 0.8, 1.8, 2.8, 0.2, 1.2, 2.2, 3.2])


def test_contribution_bars_stack_and_add_up_to_the_gradient_norm():
    decomposition = Decomposition()
    chart = per_image.per_image_contributions_chart(decomposition)
    query, features, set_path = chart.panels[0].series
    # u = (3, 4) / 5: g_Q reaches 7/5; the feature terms 11/5, 6/5, 1/5; the set terms 2/5, ...
    assert query.x == ("Q",) and query.y == pytest.approx((1.4,))
    assert features.x == ("0·c0", "1·c1", "2·c1")
    assert features.y == pytest.approx((2.2, 1.2, 0.2))
    assert set_path.y == pytest.approx((0.4, -0.4, 0))
    total = sum(sum(s.y) for s in chart.panels[0].series)
    assert total == pytest.approx(5.0)  # ||dL/dθ||
    assert chart.bars == "relative" and chart.title.endswith("bars add up to 5 (‖dL/dθ‖ = 5)")
    ax = plots.per_image_contributions(decomposition).axes[0]
    set_bars = gid(ax, "series 2")
    # positive set terms start on top of the feature bars, negative ones below zero
    assert [bar.get_y() for bar in set_bars] == pytest.approx([2.2, 0.0, 0.2])
    assert [bar.get_height() for bar in set_bars] == pytest.approx([0.4, -0.4, 0.0])


def test_step_cost_chart_in_mib_with_full_back_propagation_marked_at_n():
    chart = cost.step_cost_chart(cost_rows(peak=True))
    memory, time = chart.panels
    kept, full_kept, peak, full_peak = memory.series
    assert kept.x == (1, 2, 4) and kept.y == (1.0, 2.0, 4.0) and kept.dash == "solid"
    assert peak.y == (2.0, 4.0, 8.0) and peak.dash == "dot" and peak.label == "LITE: CUDA peak"
    assert (full_kept.x, full_kept.y, full_kept.marker) == ((8,), (8.0,), "diamond")
    assert (full_peak.x, full_peak.y) == ((8,), (16.0,))
    assert [r.at for r in memory.rules] == [8.0, 16.0]
    assert time.series[0].y == pytest.approx((0.1, 0.2, 0.4)) and time.rules[0].at == 1.0
    assert memory.x.ticks == (1, 2, 4, 8) and memory.y.limits == (0, None)
    without_peak = cost.step_cost_chart(cost_rows())
    assert len(without_peak.panels[0].series) == 2


def test_memory_and_time_sorts_each_kind_and_keeps_one_legend():
    chart = cost.memory_and_time_chart(measured_rows(), memory_label="MiB, peak")
    memory, time = chart.panels
    assert [s.label for s in memory.series] == ["full", "lite"]
    assert memory.series[0].x == (25, 50, 100) and memory.series[0].y == (150.0, 200.0, 300.0)
    assert memory.series[0].colour == plots.COLOURS["full"]
    assert time.series[1].y == pytest.approx((0.25, 0.5, 1.0))
    assert memory.y.label == "MiB, peak" and chart.legend == "first"
    named = cost.memory_and_time_chart(measured_rows(), names={"lite": "LITE, h=10"})
    assert [s.label for s in named.panels[1].series] == ["full", "LITE, h=10"]
    assert named.panels[1].series[1].colour == plots.COLOURS["lite"]
    with pytest.raises(ValueError, match="^names="):
        plots.memory_and_time(measured_rows(), names=["full"])
    figure = plots.memory_and_time(measured_rows(), backend="plotly")
    assert [t.showlegend for t in figure.data] == [True, True, False, False]
    assert [t.legendgroup for t in figure.data] == ["full", "lite", "full", "lite"]


def test_reference_memory_reads_the_h200_rows_and_marks_out_of_memory():
    chart = cost.reference_memory_chart(reference_rows(), [("efficientnet_b0", 224),
                                                           ("efficientnet_b0", 320)])  # fmt: skip
    fits, too_large = chart.panels
    full, lite = fits.series
    assert full.x == (100, 500, 1000) and full.y == (11.485, 44.132, 84.901)
    assert lite.label == "minimal LITE, h=40" and lite.y == (6.598, 6.6, 6.608)
    assert not fits.rules and too_large.title == "efficientnet_b0, 320 px"
    assert [(r.at, r.horizontal, r.label) for r in too_large.rules] == [
        (1000, False, "full back-propagation: out of memory")
    ]
    (eight,) = cost.reference_memory_chart(reference_rows(), [("efficientnet_b0", 224)],
                                           h=8).panels  # fmt: skip
    assert [s.x for s in eight.series] == [(500,)]


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: plots.reference_memory(reference_rows(), [("vgg", 224)]), "panels"),
        (lambda: plots.reference_memory(reference_rows(), "resnet18"), "panels"),
        (lambda: plots.reference_memory(reference_rows(), [("resnet18", 224)], h=0), "h"),
        (lambda: plots.reference_memory([{"kind": "full"}], [("resnet18", 224)]), "rows"),
    ],
)
def test_bad_reference_arguments(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}="):
        call()


def test_learning_curves_of_one_history_as_history_plot_drew_them():
    run = history(steps=12)
    (panel,) = training.learning_curves_chart(run, smooth=4).panels
    training_series, validation = panel.series
    assert training_series.label == "training tasks (mean of 4)" and training_series.opacity == 0.5
    assert training_series.x == tuple(range(4, 13))
    running = np.convolve(run.accuracy, np.ones(4) / 4, mode="valid")
    np.testing.assert_allclose(training_series.y, running)
    assert validation.label == "validation (95% CI)" and validation.x == (0, 6, 12)
    assert validation.y == (0.2, 0.4, 0.6) and validation.error == (0.05, 0.04, 0.03)
    assert validation.colour == training_series.colour
    assert (panel.x.label, panel.y.label) == ("optimiser step", "query accuracy")


def test_learning_curves_of_several_runs_together_or_one_panel_each():
    runs = {"full": history(), "lite": history(offset=0.1)}
    (together,) = training.learning_curves_chart(runs).panels
    assert [s.label for s in together.series] == [
        "full: training tasks (mean of 6)", "full: validation (95% CI)",
        "lite: training tasks (mean of 6)", "lite: validation (95% CI)",
    ]  # fmt: skip
    assert together.series[0].colour != together.series[2].colour
    apart = training.learning_curves_chart(runs, panels=True)
    assert [p.title for p in apart.panels] == ["full", "lite"] and apart.share_y
    assert apart.columns == 1 and apart.grid() == (2, 1), "one panel above the other"
    # the title names the run; the legend, shared by the panels, names what is drawn
    assert [s.label for s in apart.panels[1].series] == [
        "training tasks (mean of 6)", "validation (95% CI)"
    ]  # fmt: skip
    figure = plots.learning_curves(runs, panels=True)
    assert figure.axes[0].get_shared_y_axes().joined(*figure.axes)
    empty = training.learning_curves_chart(History())
    assert empty.panels[0].series == ()
    assert plots.learning_curves(History()).axes[0].get_legend() is None


def test_learning_curves_draw_into_an_axis_of_your_own():
    from matplotlib.figure import Figure

    mine = Figure()
    ax = mine.subplots()
    ax.set_title("mine")
    assert plots.learning_curves(history(), ax=ax) is mine
    assert ax.get_title() == "mine" and mine.get_suptitle() == ""  # the caller's figure
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "training tasks (mean of 6)",
        "validation (95% CI)",
    ]
    with pytest.raises(ValueError, match="^ax="):
        plots.learning_curves(history(), ax=ax, backend="plotly")
    with pytest.raises(ValueError, match="^ax="):
        plots.learning_curves({"a": history(), "b": history()}, ax=ax, panels=True)


@pytest.mark.parametrize(
    ("histories", "keywords", "argument"),
    [({}, {}, "histories"), ({"run": [0.5]}, {}, "histories"), ([1, 2], {}, "histories"),
     (None, {"smooth": 0}, "smooth")],
)  # fmt: skip
def test_bad_learning_curve_arguments(histories, keywords, argument):
    with pytest.raises(ValueError, match=rf"^{argument}="):
        plots.learning_curves(history() if histories is None else histories, **keywords)


def test_accuracy_vs_size_labels_sizes_in_pixels():
    points = FIGURES["accuracy_vs_size"][2][0]
    chart = training.accuracy_vs_size_chart(
        points, ideal=([32, 64, 512], [0.6, 0.8, 0.97]), ideal_label="ideal, 5-way", title="T"
    )
    (panel,) = chart.panels
    ideal, full, lite = panel.series
    assert (ideal.label, ideal.x, ideal.colour) == ("ideal, 5-way", (32, 64, 512), "grey")
    assert full.label == "full: 60.0% ± 5.0" and full.error == (0.05,) and lite.x == (64,)
    assert panel.x.log and panel.x.ticks == (32, 64, 128, 256, 512) and chart.title == "T"
    ends = training.accuracy_vs_size_chart(points, ideal=([24, 224], [0.5, 0.9])).panels[0]
    assert ends.x.ticks == (24, 32, 64, 128, 224)  # the curve's ends, the points, powers of 2
    with pytest.raises(ValueError, match="^ideal="):
        training.accuracy_vs_size_chart(points, ideal=([32, 64], [0.5]))


def test_image_strip_shows_channels_last_and_grey_as_grey():
    colour, grey = torch.rand(3, 4, 6), torch.rand(1, 5, 5)
    chart = images.image_strip_chart([colour, grey.numpy()], ["a", "b"], title="t")
    first, second = chart.panels
    np.testing.assert_allclose(first.image, colour.permute(1, 2, 0).numpy(), rtol=1e-6)
    assert second.image.shape == (5, 5, 3)
    np.testing.assert_allclose(second.image[..., 2], grey[0].numpy(), rtol=1e-6)
    assert (first.title, chart.title, chart.legend) == ("a", "t", "none")


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [(([],), "images"), (([torch.rand(4, 4, 4)],), r"images\[0\]"),
     (([torch.rand(3, 4, 4) + 1.5],), r"images\[0\]"),
     (([torch.rand(3, 4, 4)], ["a", "b"]), "captions")],
)  # fmt: skip
def test_bad_images(arguments, argument):
    with pytest.raises(ValueError, match=rf"^{argument}="):
        plots.image_strip(*arguments)


def test_episode_images_put_each_class_on_its_own_row_in_both_sets():
    task = small_episode(shots=(1, 3, 2))
    chart = episodes.episode_images_chart(task)
    support, query = chart.panels
    side, step = 6, 6 + episodes.GAP
    assert support.image.shape == (3 * step - episodes.GAP, 3 * step - episodes.GAP, 3)
    assert query.image.shape == (3 * step - episodes.GAP, side, 3)
    labels = task.support_labels.tolist()
    for k in range(3):  # row k, in order: the support images labelled k
        mine = [i for i, label in enumerate(labels) if label == k]
        for j, i in enumerate(mine):
            tile = support.image[k * step : k * step + side, j * step : j * step + side]
            np.testing.assert_allclose(tile, task.support_images[i].permute(1, 2, 0), rtol=1e-6)
    assert (support.image[0:side, step:] == 1).all()  # class 0 has one shot: white after it
    assert (support.title, query.title, chart.legend) == ("support set", "query set", "none")
    assert chart.title == "a 3-way 1 to 3-shot task: N = 6 support images, M = 3 query images"
    even = episodes.episode_images_chart(small_episode())
    assert even.title == "a 3-way 2-shot task: N = 6 support images, M = 3 query images"
    assert episodes.episode_images_chart(small_episode(), title="mine").title == "mine"
    drawn = plots.episode_images(small_episode(), backend="plotly")
    assert drawn.layout.margin.b == to_plotly_module.PICTURES_BOTTOM  # no legend, no axes


def test_episode_images_refuse_what_is_not_a_task_or_not_in_0_1():
    with pytest.raises(ValueError, match="^episode='list'"):
        plots.episode_images([1, 2])
    task = small_episode()
    task.support_images = task.support_images * 3
    with pytest.raises(ValueError, match=r"^support_images\[0\]="):
        plots.episode_images(task)


def test_memory_growth_draws_the_points_and_their_straight_line_from_zero():
    by_n, by_pixels = growth.memory_growth_chart(growth_rows()).panels
    line, measured = by_n.series
    assert measured.x == (10, 20, 40) and measured.y == (26.0, 46.0, 86.0)
    assert line.x == (0, 40) and line.y == pytest.approx((6.0, 86.0))
    assert by_n.x.limits == (0, None) and by_n.title == "against N, at 48 × 48 px"
    line, measured = by_pixels.series
    assert measured.x == (1024, 4096) and line.y == pytest.approx((0.0, 4.0))
    assert by_pixels.title == "against image size, at N = 20"
    assert growth.memory_growth_chart(growth_rows()).grid() == (2, 1)  # one above the other
    with pytest.raises(ValueError, match="^rows="):
        growth.memory_growth_chart(growth_rows()[:4])


# --- the drawers, on charts written by hand ---------------------------------------------------


def test_plotly_axes_limits_on_log_axes_are_in_decades():
    panel = Panel(
        (Series((10.0, 1000.0), (1.0, 2.0)),),
        x=Axis("x", log=True, limits=(1.0, 1e4)),
        y=Axis("y", limits=(0, None)),
    )
    figure = to_plotly(Chart((panel,)))
    assert list(figure.layout.xaxis.range) == [0.0, 4.0]
    assert figure.layout.yaxis.rangemode == "tozero"
    drawn = to_matplotlib(Chart((panel,)))
    assert drawn.axes[0].get_xlim() == (1.0, 1e4) and drawn.axes[0].get_ylim()[0] == 0


def test_one_legend_below_the_panels_in_matplotlib():
    series = Series((1,), (1.0,), "a", kind="points", marker="circle")
    chart = Chart((Panel((series,)), Panel((series,))), legend="below")
    figure = to_matplotlib(chart)
    assert [ax.get_legend() for ax in figure.axes] == [None, None]
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["a"]


def test_drawing_into_axes_needs_one_axis_per_panel():
    from matplotlib.figure import Figure

    chart = Chart((Panel(), Panel()))
    with pytest.raises(ValueError, match="^axes=1: pass 2 axes"):
        to_matplotlib(chart, axes=[Figure().subplots()])


def test_video_strip_marks_the_first_correct_frame():
    frames = [torch.full((3, 16, 16), 0.5) for _ in range(10)]
    predictions = [2, 2, 1, 1, 1, 1, 0, 1, 1, 1]  # label 1: first correct at frame 2
    chart = orbit_plots.video_strip_chart(frames, predictions, 1, class_names="abc", shown=3)
    titles = [p.title for p in chart.panels]
    assert titles == ["frame 0: c", "first correct, frame 2: b", "frame 9: b"]
    red, green = (np.array([0xD6, 0x27, 0x28]) / 255, np.array([0x2C, 0xA0, 0x2C]) / 255)
    np.testing.assert_allclose(chart.panels[0].image[0, 0], red)
    np.testing.assert_allclose(chart.panels[1].image[0, 0], green)
    assert chart.panels[1].image[2, 2].tolist() == green.tolist()  # a thicker frame
    assert chart.panels[2].image[2, 2].tolist() == [0.5, 0.5, 0.5]
    assert "frame accuracy 0.70" in chart.title and "frames to recognition 0.20" in chart.title
    assert chart.grid() == (1, 3)  # fewer frames than a row holds
    eight = orbit_plots.video_strip_chart([torch.rand(3, 8, 8) for _ in range(8)], [0] * 8, 0)
    assert eight.grid() == (2, 4)  # rows of 4: captions readable in a page's width


def test_recognition_timeline_rules_and_vote():
    chart = orbit_plots.recognition_timeline_chart([0, 0, 1, 1, 0], 1, class_names=["x", "y"])
    (panel,) = chart.panels
    assert [s.label for s in panel.series] == ["right", "wrong"]
    assert panel.series[0].x == (2, 3) and panel.series[1].x == (0, 1, 4)
    assert panel.rules[1].at == 2 and not panel.rules[1].horizontal
    assert "frames to recognition 0.40" in panel.rules[1].label
    assert "the vote says x (wrong)" in chart.title
    low, high = panel.y.limits  # room under class 0 for the note naming the classes
    assert low <= -0.9 and high == 1.5 and panel.note == "classes: 0 x, 1 y"
    never = orbit_plots.recognition_timeline_chart([0, 0], 1)
    assert len(never.panels[0].rules) == 1  # no first correct frame to mark
