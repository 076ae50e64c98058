"""Figures a class can read: words and numbers on them, room for every panel, alt text, and
one output per figure (a sharp picture, and the interactive figure when there is one).

`tests/test_plots.py` checks that each drawn figure shows its chart; this file checks what
makes it readable: no placeholder text, powers of ten instead of SI prefixes, subplots with
room for their titles, and what a notebook displays (`litekit.notebook.show`).
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
from test_plots import FIGURES, cost_rows, history, learner_rows

from litekit import notebook, plots
from litekit.plots import export, training
from litekit.plots.chart import Axis, Chart, Panel, Rule, Series, describe
from litekit.plots.to_plotly import GAP, PANEL_HEIGHT, to_plotly


def plotly_figure(name: str):
    function, _, args, keywords = FIGURES[name]
    return function(*args, **keywords, backend="plotly")


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_no_annotation_without_text_and_no_si_prefixes(name):
    """plotly.js writes "new text" into an empty annotation, and "1µ", "1B" on axes whose
    exponent format is its default; every figure sets both."""
    figure = plotly_figure(name)
    texts = [annotation.text for annotation in figure.layout.annotations]
    assert all(texts), f"an annotation without text in {name}: {texts}"
    axes = [key for key in figure.layout.to_plotly_json() if key[1:5] == "axis"]
    assert axes
    for key in axes:
        if figure.layout[key].visible is not False:  # a picture's axes are hidden
            assert figure.layout[key].exponentformat == "power", (name, key)


def test_a_rule_without_a_label_adds_no_annotation():
    panel = Panel((Series((1, 2), (1.0, 2.0)),), rules=(Rule(0.0), Rule(1.0, label="one")))
    figure = to_plotly(Chart((panel,)))
    assert [a.text for a in figure.layout.annotations] == ["one"]
    assert len(figure.layout.shapes) == 2


def test_three_panels_stack_with_room_for_their_titles_and_axes():
    runs = {
        "ProtoNets, 32 px, full back-propagation": history(),
        "ProtoNets, 64 px, LITE h=4 of N=30, query batch 4": history(offset=0.1),
        "SimpleCNAPs, 64 px, LITE h=4 of N=30, query batch 4": history(offset=0.2),
    }
    figure = plots.learning_curves(runs, panels=True, backend="plotly")
    layout = figure.layout
    domains = [layout[f"yaxis{'' if i == 1 else i}"].domain for i in (1, 2, 3)]
    plot_height = layout.height - layout.margin.t - layout.margin.b
    for (low, high), below in zip(domains, domains[1:], strict=False):
        assert (high - low) * plot_height == pytest.approx(PANEL_HEIGHT, rel=0.02)
        assert (low - below[1]) * plot_height == pytest.approx(GAP, rel=0.02)
    for index in (1, 2, 3):  # every panel spans the figure's width: one column
        assert tuple(layout[f"xaxis{'' if index == 1 else index}"].domain) == (0.0, 1.0)
    titles = [a for a in layout.annotations if "ProtoNets" in a.text or "SimpleCNAPs" in a.text]
    assert len({round(a.y, 3) for a in titles}) == 3, "one title per row"
    assert all(max(len(line) for line in a.text.split("<br>")) <= 60 for a in titles)
    assert layout.legend.orientation == "h" and layout.legend.y < 0, "legend under the plots"


def test_a_short_run_still_draws_its_training_line():
    (panel,) = training.learning_curves_chart(history(steps=4), smooth=10).panels
    trained, _ = panel.series
    assert len(trained.x) >= 2 and trained.label == "training tasks (mean of 2)"
    (one_step,) = training.learning_curves_chart(history(steps=1)).panels
    assert one_step.series[0].marker == "circle", "a single point is drawn as a marker"


def test_legends_are_words_not_raw_maths():
    for name in FIGURES:
        figure = plotly_figure(name)
        for trace in figure.data:
            assert "^" not in (trace.name or "") and "_Q" not in (trace.name or ""), trace.name


def test_timing_ranges_are_error_bars_along_the_timed_axis():
    time_panel = plots.step_cost(cost_rows(), backend="plotly")
    lite = next(t for t in time_panel.data if t.name == "LITE: time")
    np.testing.assert_allclose(np.add(lite.y, lite.error_y.array), [0.13, 0.26, 0.52])
    np.testing.assert_allclose(np.subtract(lite.y, lite.error_y.arrayminus), [0.09, 0.18, 0.36])
    rows = learner_rows()
    figure = plots.accuracy_vs_cost(rows, costs=["seconds"], backend="plotly")
    protonets = figure.data[0]
    assert list(protonets.error_x.arrayminus) == pytest.approx([0.02])
    assert list(protonets.error_x.array) == pytest.approx([0.1])
    assert figure.data[1].error_x.array is None, "no range measured, no bars"


def test_alt_text_says_what_the_figure_shows():
    chart = Chart(
        (Panel((Series((1, 2), (3.0, 4.0), label="LITE"),), x=Axis("h", log=True), y=Axis("MiB")),),
        title="Memory of one step",
    )
    text = describe(chart)
    assert text == "Memory of one step. MiB against h (log scale), showing LITE."
    for name in FIGURES:
        function, chart_function, args, keywords = FIGURES[name]
        chart = chart_function(*args, **keywords)
        for backend in plots.BACKENDS:
            assert export.alt_text(function(*args, **keywords, backend=backend)) == describe(chart)
        assert len(describe(chart)) > 20 and ".png" not in describe(chart)


def test_a_figure_bundle_is_a_sharp_png_with_alt_text_and_the_plotly_figure():
    figure = plots.step_cost(cost_rows())
    data, metadata = export.figure_bundle(figure)
    png = base64.b64decode(data["image/png"])
    width, height = export.png_size(png)
    shown = metadata["image/png"]
    assert (width, height) == pytest.approx((2 * shown["width"], 2 * shown["height"]), abs=1)
    assert shown["width"] >= 600, "as wide as the figure is drawn, at twice the pixels"
    assert metadata["litekit"]["alt"] == data["text/plain"] == export.alt_text(figure)
    assert export.PLOTLY not in data
    interactive = plots.step_cost(cost_rows(), backend="plotly")
    both, _ = export.figure_bundle(figure, interactive)
    assert both[export.PLOTLY]["data"][0]["type"] == "scatter"
    with pytest.raises(ValueError, match="not a PNG"):
        export.png_size(b"GIF89a" + bytes(20))


def test_show_displays_one_output_with_the_plotly_figure_only_when_interactive(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(
        IPython.display, "display", lambda data, **kw: shown.append((data, kw["metadata"]))
    )
    monkeypatch.setitem(notebook._SESSION, "interactive", False)
    notebook.show(plots.step_cost, cost_rows())
    monkeypatch.setitem(notebook._SESSION, "interactive", True)
    notebook.show(plots.step_cost, cost_rows())
    notebook.show(plots.step_cost(cost_rows()))  # a figure already drawn: the picture only
    assert [export.PLOTLY in data for data, _ in shown] == [False, True, False]
    assert all("image/png" in data and meta["litekit"]["alt"] for data, meta in shown)
    with pytest.raises(ValueError, match="^figure="):
        notebook.show("a figure")
    with pytest.raises(ValueError, match="^figure="):
        notebook.show(plots.step_cost(cost_rows()), 1)


def test_show_displays_a_diagram_as_svg_with_its_title_and_description(monkeypatch):
    import IPython.display

    from litekit.plots import diagrams

    shown = []
    monkeypatch.setattr(
        IPython.display, "display", lambda data, **kw: shown.append((data, kw["metadata"]))
    )
    notebook.show(diagrams.film())
    ((data, metadata),) = shown
    assert data["image/svg+xml"] == diagrams.film() and "image/png" not in data
    assert metadata["litekit"]["alt"] == data["text/plain"]
    assert data["text/plain"].startswith(diagrams.FILM_TITLE + ". A set encoder codes each")
    assert export.svg_alt('<svg xmlns="http://www.w3.org/2000/svg"/>') == ""
    with pytest.raises(ValueError, match="^figure="):
        notebook.show(diagrams.film(), 1)
