"""Time of a piece of work: the one timing helper of litekit's measurements.

On CUDA each call is timed by CUDA events recorded on the device's stream around it, after
waiting for the work queued before it: the time the GPU took from the call's first kernel
to its last, with no host-side wait in it. Elsewhere by the wall clock. Every measurement
(a training step, its floor, a task gradient, the cost to personalise) times this way, so
their times compare.

The first call of a piece of work is slower (memory to allocate, kernels to choose, caches
to fill) and is never timed: `timed_repeats` makes one warm-up call, then times ``repeats``
calls and keeps their median and their range. On a busy machine the range is what shows a
time to be noise rather than a finding.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from litekit._checks import check_int


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing to wait for elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_of(function: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of ``function()`` takes on ``device`` (see the module docstring)."""
    if device.type != "cuda":
        start = time.perf_counter()
        function()
        return time.perf_counter() - start
    synchronize(device)
    with torch.cuda.device(device):
        begin = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        begin.record()
        function()
        end.record()
    end.synchronize()
    return begin.elapsed_time(end) / 1000.0  # milliseconds


@dataclass(frozen=True)
class Timing:
    """Seconds of repeated calls, a warm-up call excluded: the median, the fastest and the
    slowest call, and how many were timed."""

    median: float
    low: float
    high: float
    repeats: int


def timed_repeats(
    function: Callable[[], object], device: torch.device, repeats: int, *, warm_up: bool = True
) -> Timing:
    """`Timing` of ``repeats`` calls of ``function()`` (`seconds_of`), after one warm-up call.

    ``warm_up=False`` skips the warm-up call, for a caller that made it itself (to read
    memory between the warm-up and the timed calls).
    """
    repeats = check_int("repeats", repeats, minimum=1)
    if warm_up:
        function()
    times = [seconds_of(function, device) for _ in range(repeats)]
    return Timing(statistics.median(times), min(times), max(times), repeats)


def median_seconds(
    function: Callable[[], object], device: torch.device, repeats: int, *, warm_up: bool = True
) -> float:
    """Median time of ``function()`` over ``repeats`` calls, after one warm-up call (the
    median of `timed_repeats`)."""
    return timed_repeats(function, device, repeats, warm_up=warm_up).median
