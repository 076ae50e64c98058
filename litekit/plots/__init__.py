"""Figures for LITE, each as a static matplotlib or an interactive plotly figure.

Every figure function takes plain data (the row dicts `litekit.diagnostics` returns, a
`GradientDecomposition`, a training `History`, ...) and ``backend="matplotlib"`` (a
`matplotlib.figure.Figure`, built without pyplot so nothing global changes) or
``backend="plotly"`` (a `plotly.graph_objects.Figure`). The same data always gives the same
figure.

Inside, each figure is written once: a ``*_chart`` function in a topic module prepares a
`litekit.plots.chart.Chart` (series, axes, titles, reference lines), and
`litekit.plots.to_matplotlib` or `litekit.plots.to_plotly` draws it.

- the estimator ĝ (`estimators`): `variance_vs_h` (tr Cov[ĝ] against h with the theory
  line), `cosine_vs_h` (alignment with the full gradient), `running_mean` (the mean of
  LITE draws converging, or not, to the full gradient), `scaling_bias` (the bias of each
  scaling);
- the split of the task gradient (`per_image`): `per_image_contributions` (how much
  each g_n and g_Q adds along the full gradient), `contributions` (those numbers);
- cost (`cost`): `step_cost` (memory and time of one step against h), `memory_and_time`
  (against N or image size), `reference_memory` (the H200 reference measurements),
  `accuracy_vs_cost` (accuracy against the cost to personalise, log x);
- training (`training`): `learning_curves` (one `History` or several runs),
  `accuracy_vs_size` (held-out accuracy against image size with the ideal observer);
- pictures (`images`, `episodes`): `image_strip` (images side by side with captions),
  `episode_images` (a task's support and query sets, one row per class);
- memory growth (`growth`): `memory_growth` (full back-propagation's saved activations
  against N and against pixels per image, with straight-line fits);
- ORBIT's metrics on a video (`orbit`): `video_strip` (frames with their predictions, the
  first correct one marked), `recognition_timeline` (every frame's prediction, the first
  correct frame, the vote).

Every drawn figure records what its chart shows, in words (`litekit.plots.chart.describe`):
`litekit.plots.export.alt_text` reads it, and `litekit.plots.export.figure_bundle` makes a
figure one notebook output (a PNG at twice its pixels with that alt text, and the plotly
figure when there is one), which `litekit.notebook.show` displays.
"""

from litekit.plots.backends import BACKENDS, draw
from litekit.plots.chart import Axis, Chart, Panel, Rule, Series
from litekit.plots.cost import (
    COST_AXES,
    accuracy_vs_cost,
    memory_and_time,
    reference_memory,
    step_cost,
)
from litekit.plots.episodes import episode_images
from litekit.plots.estimators import cosine_vs_h, running_mean, scaling_bias, variance_vs_h
from litekit.plots.growth import memory_growth
from litekit.plots.images import image_strip
from litekit.plots.orbit import recognition_timeline, video_strip
from litekit.plots.per_image import contributions, per_image_contributions
from litekit.plots.style import COLOURS, FAMILY_COLOURS, LABELS
from litekit.plots.training import accuracy_vs_size, learning_curves

__all__ = [
    "Axis",
    "BACKENDS",
    "COLOURS",
    "Chart",
    "Panel",
    "Rule",
    "Series",
    "COST_AXES",
    "FAMILY_COLOURS",
    "LABELS",
    "accuracy_vs_cost",
    "accuracy_vs_size",
    "contributions",
    "scaling_bias",
    "cosine_vs_h",
    "draw",
    "episode_images",
    "image_strip",
    "learning_curves",
    "memory_and_time",
    "memory_growth",
    "per_image_contributions",
    "recognition_timeline",
    "reference_memory",
    "running_mean",
    "step_cost",
    "variance_vs_h",
    "video_strip",
]
