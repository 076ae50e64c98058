"""Time and memory of one task's LITE gradient, in this process (`measure_task_gradient`).

The computation measured is `litekit.train.accumulate_task_gradient`: the no-grad pass over
the support set, then per query batch the h re-embedded support images and the batch, and
one backward pass each; no optimiser step. It runs on the caller's learner and task, so a
notebook can measure the model it is studying, in any precision and memory layout
(`litekit.precision`). For a configured step with an optimiser, measured alone in a fresh
process, see `litekit.measure.measure_training_step`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from litekit._checks import check_int
from litekit.diagnostics.common import (
    check_learner_and_episode,
    check_subset_sizes,
    preserved_state,
)
from litekit.episodes import Episode
from litekit.learners.base import Learner
from litekit.lite import Lite, with_precision
from litekit.measure.peak import cuda_peak
from litekit.measure.tensors import SavedTensorMemory
from litekit.measure.timing import timed_repeats
from litekit.precision import channels_last_weights, check_precision, grad_scaler


@dataclass(frozen=True)
class TaskGradientCost:
    """Time and memory of one LITE task-gradient computation (no optimiser step).

    Attributes:
        seconds: median wall-clock time over the repeats.
        saved_bytes: the most bytes of activations autograd holds for backward at any one
            time (unique storages, parameters excluded; `SavedTensorMemory`): the memory LITE
            cuts. With query batching, that of one batch. Deterministic on any device.
        peak_bytes: on CUDA, the allocator's peak during the timed runs above the memory
            allocated before them (`cuda_peak`); None on the CPU, where a whole-process peak
            needs a fresh process per measurement, which this in-process helper does not
            start.
        seconds_min, seconds_max: the fastest and the slowest of the timed runs.
    """

    seconds: float
    saved_bytes: int
    peak_bytes: int | None
    seconds_min: float | None = None
    seconds_max: float | None = None


def measure_task_gradient(
    learner: Learner,
    episode: Episode,
    lite: Lite | None,
    *,
    repeats: int = 3,
    query_batch: int | None = None,
    precision: str | None = None,
    channels_last: bool | None = None,
) -> TaskGradientCost:
    """Time and memory of `litekit.train.accumulate_task_gradient` for one task.

    A small in-process measurement for notebooks: one counted run for the bytes autograd
    saves for backward (the activation memory that grows with h), then the median time of
    ``repeats`` runs after a warm-up run, with the CUDA peak over them. The learner's
    ``.grad`` tensors and buffers are left as found.

    ``precision`` and ``channels_last`` (None: ``lite``'s own; fp32 and the default layout
    without one) run the backbone's passes as `litekit.train.fit` would: under autocast,
    float16 with a gradient scaler, and channels-last with the learner's convolution
    kernels converted for the measurement and restored afterwards.
    """
    from litekit.train import accumulate_task_gradient

    check_learner_and_episode(learner, episode)
    repeats = check_int("repeats", repeats, minimum=1)
    lite = with_precision(lite, precision, channels_last)
    device = learner.device
    scaler = grad_scaler(lite.precision if lite is not None else "fp32", device)
    layout = channels_last_weights(learner, lite is not None and lite.channels_last)

    def run() -> None:
        learner.zero_grad(set_to_none=True)
        accumulate_task_gradient(learner, episode, lite, query_batch, scaler=scaler)

    with preserved_state(learner), layout:
        with SavedTensorMemory(learner) as saved:
            run()
        learner.zero_grad(set_to_none=True)
        with cuda_peak(device) as reading:
            timing = timed_repeats(run, device, repeats)
    return TaskGradientCost(timing.median, saved.peak, reading.above_rest, timing.low, timing.high)


def cost_vs_h(
    learner: Learner,
    episode: Episode,
    hs: Sequence[int],
    *,
    repeats: int = 3,
    chunk_size: int = 64,
    seed: int = 0,
    query_batch: int | None = None,
    progress: bool = False,
    precision: str = "fp32",
    channels_last: bool = False,
) -> list[dict[str, Any]]:
    """`measure_task_gradient` for LITE at each h, then for full back-propagation (h = N).

    Rows: ``h, method`` ("lite" or "full"), ``seconds`` (the median of ``repeats`` timed
    runs after a warm-up run), ``seconds_min, seconds_max`` (their range),
    ``saved_bytes, peak_bytes``. Each LITE
    run draws its subsets from a generator seeded with ``seed``. Every run, full
    back-propagation included, is in ``precision`` and memory layout (`litekit.precision`).
    """
    check_learner_and_episode(learner, episode)
    hs = check_subset_sizes(hs, episode.n_support)
    seed = check_int("seed", seed, minimum=0)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    check_precision(precision)
    from tqdm.auto import tqdm

    rows = []
    runs = [(h, "lite") for h in hs] + [(episode.n_support, "full")]
    for h, method in tqdm(runs, desc="cost", disable=not progress):
        lite = None
        if method == "lite":
            lite = Lite(h, chunk_size=chunk_size, generator=torch.Generator().manual_seed(seed))
        cost = measure_task_gradient(
            learner, episode, lite, repeats=repeats, query_batch=query_batch,
            precision=precision, channels_last=channels_last,
        )  # fmt: skip
        rows.append(
            {
                "h": h,
                "method": method,
                "seconds": cost.seconds,
                "seconds_min": cost.seconds_min,
                "seconds_max": cost.seconds_max,
                "saved_bytes": cost.saved_bytes,
                "peak_bytes": cost.peak_bytes,
            }
        )
    return rows
