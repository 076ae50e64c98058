"""How the memory of meta-training grows with the task: with N and with the pixels.

Meta-training back-propagates the query loss through every support image, so autograd keeps
the activations of all N support images (and of the query images) until the backward pass.
Those saved activations are the memory that grows: one image's worth per support image, and
each image's worth in proportion to its pixel count. `activation_bytes` counts them for one
task (`SavedTensorMemory`: the most bytes autograd holds at once, parameters excluded,
deterministic on any device); `memory_growth` does it for a range of support-set sizes and a
range of image sizes; `linear_fit` says how straight the resulting lines are.

Weights, optimiser state and the memory Python and torch take before any work do not grow
with the task; `litekit.measure.measure_training_step` measures a whole process's peak.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from litekit._checks import bad_argument, check_int
from litekit.diagnostics.common import check_learner_and_episode, preserved_state
from litekit.episodes import Episode
from litekit.learners.base import Learner
from litekit.lite import Lite
from litekit.measure.tensors import SavedTensorMemory

MIB = 2**20


def activation_bytes(
    learner: Learner, episode: Episode, lite: Lite | None = None, *, query_batch: int | None = None
) -> int:
    """Bytes autograd holds for backward, at most, while computing one task's gradient.

    ``lite=None`` is full back-propagation through all N support images; a `Lite` keeps h of
    them in the graph. The learner's ``.grad`` tensors and buffers are left as found.
    """
    from litekit.train import accumulate_task_gradient

    check_learner_and_episode(learner, episode)
    with preserved_state(learner):
        learner.zero_grad(set_to_none=True)
        with SavedTensorMemory(learner) as saved:
            accumulate_task_gradient(learner, episode, lite, query_batch)
    return int(saved.peak)


def _sizes(name: str, values: Any, minimum: int) -> list[int]:
    fix = f"pass at least two different integers >= {minimum}, e.g. [10, 20, 40]."
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise bad_argument(name, values, fix)
    checked = [check_int(f"{name}[{i}]", v, minimum=minimum, fix=fix) for i, v in enumerate(values)]
    if len(set(checked)) < 2:
        raise bad_argument(name, values, fix)
    return sorted(set(checked))


def memory_growth(
    learner: Learner,
    make_task: Callable[[int, int], Episode],
    *,
    ns: Sequence[int],
    sizes: Sequence[int],
    n_for_sizes: int,
    size_for_ns: int,
) -> list[dict[str, Any]]:
    """Full back-propagation's saved activations against N, then against the image size.

    ``make_task(n, image_size)`` returns a task with ``n`` support images of ``image_size``
    pixels a side (the query set may be anything, but keep it the same size for every
    call). The sweep over ``ns`` uses images of ``size_for_ns`` pixels; the sweep over
    ``sizes`` uses ``n_for_sizes`` support images.

    Returns one row per task: ``vary`` (``"n"`` or ``"size"``: which sweep), ``n``,
    ``image_size``, ``pixels`` (per image, ``image_size²``), ``saved_bytes`` and ``mib``.
    """
    if not callable(make_task):
        raise bad_argument("make_task", make_task, "pass a function (n, image_size) -> Episode.")
    ns = _sizes("ns", ns, 1)
    sizes = _sizes("sizes", sizes, 1)
    n_for_sizes = check_int("n_for_sizes", n_for_sizes, minimum=1)
    size_for_ns = check_int("size_for_ns", size_for_ns, minimum=1)
    plan = [("n", n, size_for_ns) for n in ns] + [("size", n_for_sizes, s) for s in sizes]
    rows = []
    for vary, n, size in plan:
        episode = make_task(n, size)
        if not isinstance(episode, Episode) or episode.n_support != n:
            raise bad_argument(
                "make_task",
                make_task,
                f"make_task({n}, {size}) must return an Episode with {n} support images.",
            )
        saved = activation_bytes(learner, episode)
        rows.append(
            {
                "vary": vary,
                "n": n,
                "image_size": size,
                "pixels": size * size,
                "saved_bytes": saved,
                "mib": saved / MIB,
            }
        )
    return rows


@dataclass(frozen=True)
class LinearFit:
    """A least-squares line ``y = slope · x + intercept`` through some points.

    ``worst`` is the largest distance of a point from the line, as a fraction of that
    point's value: 0.01 means every point is within 1% of the line.
    """

    slope: float
    intercept: float
    worst: float

    def __call__(self, x: float) -> float:
        return self.slope * x + self.intercept


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    """The least-squares line through the points (xs, ys): at least two different xs."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(np.unique(x)) < 2:
        raise bad_argument("xs", xs, "pass at least two different x values, one y for each.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or (y == 0).any():
        raise bad_argument("ys", ys, "pass finite, non-zero values.")
    slope, intercept = np.polyfit(x, y, 1)
    worst = float(np.max(np.abs(slope * x + intercept - y) / np.abs(y)))
    return LinearFit(float(slope), float(intercept), worst)
