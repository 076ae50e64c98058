"""An ipywidgets panel to explore how the subset size h trades variance for memory.

The panel is a thin shell: every redraw calls `explore`, a plain function that builds a
seeded task, measures LITE's gradient statistics against h and returns the figure and a
one-line note. Tests and headless notebook runs call `explore` directly; only an
interactive session (`litekit.notebook.is_interactive`) builds the sliders.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import torch

from litekit._checks import check_choice, check_int
from litekit._deprecated import old_names
from litekit.diagnostics import LEARNERS, SCALINGS, demo_task, estimator_stats
from litekit.plots import BACKENDS, variance_vs_h
from litekit.plots.export import figure_bundle

MAX_H, MAX_N, MAX_IMAGE_SIZE = 64, 64, 128


@dataclass
class Exploration:
    """What one redraw of the panel shows.

    Attributes:
        figure: the variance-against-h figure (matplotlib or plotly).
        note: one line of text, starting with the clamping note when h > N.
        rows: the `estimator_stats` table behind the figure.
        h: the h used (``min(h, N)``); n: the support size N; clamped: whether h was cut.
    """

    figure: Any
    note: str
    rows: list[dict]
    h: int
    n: int
    clamped: bool


def _grid(n: int, h: int) -> list[int]:
    """The h values the panel measures: 1, 2, 4, ... below N, N itself, and the chosen h."""
    values = {n, h}
    power = 1
    while power < n:
        values.add(power)
        power *= 2
    return sorted(values)


def explore(
    h: int = 8,
    n: int = 20,
    image_size: int = 32,
    learner: str = "protonets",
    scaling: str = "unbiased",
    seed: int = 0,
    *,
    draws: int = 30,
    way: int = 5,
    width: int = 8,
    backend: str = "matplotlib",
) -> Exploration:
    """Variance of LITE's gradient against h for one seeded task; the panel's callback.

    Args:
        h: the subset size to highlight; an h larger than N is clamped to N (plain
            back-propagation) and the note says so.
        n: support-set size N (at least ``way``: one image per class).
        image_size: side of the generated images, in pixels: 32 to 512 (the panel's slider
            stops at 128, where a CPU step stays interactive).
        learner: "protonets", "simple_cnaps" or "cnaps".
        scaling: an estimator from `litekit.diagnostics.SCALINGS`.
        seed: picks the task, the initial weights and the subsets.
        draws: LITE gradients per h (more: smoother curves, slower redraws).
        way, width: classes per task and Conv-4 width of the small learner.
        backend: "matplotlib" or "plotly".
    """
    h = check_int("h", h, minimum=1, fix="pass h >= 1 (the support images to back-propagate).")
    n = check_int("n", n, minimum=way, fix=f"pass N >= way={way}, one support image per class.")
    image_size = check_int("image_size", image_size, minimum=32, fix="pass 32 to 512 pixels.")
    check_choice("learner", learner, LEARNERS)
    check_choice("scaling", scaling, tuple(SCALINGS))
    seed = check_int("seed", seed, minimum=0)
    draws = check_int("draws", draws, minimum=4)
    check_choice("backend", backend, BACKENDS)
    clamped = h > n
    h_used = min(h, n)
    model, episode = demo_task(
        learner,
        n_support=n,
        way=way,
        image_size=image_size,
        seed=seed,
        width=width,
        dtype=torch.float32,
    )
    rows = estimator_stats(model, episode, _grid(n, h_used), draws, seed, scalings=[scaling])
    row = next(r for r in rows if r["h"] == h_used)
    note = (
        f"h = {h_used} of N = {n} ({row['learner']}, {scaling}): tr Cov[ĝ] = "
        f"{row['trace_cov']:.3g} (theory {row['theory_trace']:.3g}, {row['theory']}), "
        f"mean cosine {row['mean_cosine']:.3f}, relative bias {row['relative_bias']:.2g} "
        f"(Monte-Carlo noise ~{row['bias_noise'] / row['full_norm']:.2g})."
    )
    if clamped:
        note = (
            f"h = {h} is more than the N = {n} support images: clamped to h = {n} "
            f"(plain back-propagation). " + note
        )
    figure = variance_vs_h(rows, backend=backend, highlight=h_used)
    return Exploration(figure, note, rows, h_used, n, clamped)


def _display(figure: Any) -> None:
    """Display a figure in the current output: a matplotlib figure as a sharp PNG with its
    alt text (`litekit.plots.export.figure_bundle`), whatever the matplotlib backend;
    anything else (a plotly figure) as it displays itself."""
    from IPython.display import display
    from matplotlib.figure import Figure

    if isinstance(figure, Figure):
        data, metadata = figure_bundle(figure)
        display(data, metadata=metadata, raw=True)
    else:
        display(figure)


def variance_panel(
    initial: Exploration | None = None, *, draws: int = 30, backend: str = "matplotlib", **values
) -> Any:
    """Sliders for h, N and image size, choices of learner, scaling and seed; redraws live.

    ``values`` sets the starting controls (keywords of `explore`); ``initial`` is an
    `explore` result for those values, shown without recomputing it. Returns a
    `VariancePanel` (an ipywidgets VBox).
    """
    return VariancePanel(initial, draws=draws, backend=backend, **values)


class VariancePanel(widgets.VBox):
    """The widget: controls, a note and the figure; `refresh` calls `explore`."""

    def __init__(
        self,
        initial: Exploration | None = None,
        *,
        draws: int = 30,
        backend: str = "matplotlib",
        **values: Any,
    ) -> None:
        self.draws, self.backend = draws, backend
        start = {
            "h": 8,
            "n": 20,
            "image_size": 32,
            "learner": "protonets",
            "scaling": "unbiased",
            "seed": 0,
            **values,
        }
        style = {"description_width": "initial"}
        self.controls = {
            "h": widgets.IntSlider(start["h"], 1, MAX_H, description="h", continuous_update=False),
            "n": widgets.IntSlider(start["n"], 5, MAX_N, description="N", continuous_update=False),
            "image_size": widgets.IntSlider(
                start["image_size"],
                32,
                MAX_IMAGE_SIZE,
                16,
                description="image size",
                continuous_update=False,
                style=style,
            ),
            "learner": widgets.Dropdown(
                options=LEARNERS, value=start["learner"], description="learner"
            ),
            "scaling": widgets.Dropdown(
                options=list(SCALINGS),
                value=start["scaling"],
                description="scaling",
                style=style,
            ),
            "seed": widgets.BoundedIntText(start["seed"], min=0, max=10**6, description="seed"),
        }
        self.note = widgets.HTML()
        self.output = widgets.Output()
        self.result: Exploration | None = None
        rows = [
            widgets.HBox([self.controls[k] for k in ("h", "n", "image_size")]),
            widgets.HBox([self.controls[k] for k in ("learner", "scaling", "seed")]),
        ]
        super().__init__(rows + [self.note, self.output])
        for control in self.controls.values():
            control.observe(self.refresh, names="value")
        if initial is not None:
            self.show(initial)
        else:
            self.refresh()

    def values(self) -> dict[str, Any]:
        """The controls' current values, as keywords of `explore`."""
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self, _change: Any = None) -> Exploration:
        """Recompute with the current controls (the callback of every control)."""
        self.note.value = "<i>computing…</i>"
        result = explore(**self.values(), draws=self.draws, backend=self.backend)
        self.show(result)
        return result

    def show(self, result: Exploration) -> None:
        """Put ``result``'s note and figure in the panel."""
        self.result = result
        colour = "#b2182b" if result.clamped else "inherit"
        self.note.value = f'<span style="color:{colour}">{html.escape(result.note)}</span>'
        with self.output:
            self.output.clear_output(wait=True)
            _display(result.figure)


__getattr__ = old_names(__name__, {"grid": ("it was only used here", _grid)})
