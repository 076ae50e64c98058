"""Wall time of a piece of work: the one timing helper of litekit's measurements."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from litekit._checks import check_int


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing to wait for elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(
    function: Callable[[], object], device: torch.device, repeats: int, *, warm_up: bool = True
) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls, after one warm-up call.

    CUDA work is synchronised before and after each call, so the time is the work's own.
    ``warm_up=False`` skips the warm-up call, for a caller that made it itself (to read
    memory between the warm-up and the timed calls).
    """
    repeats = check_int("repeats", repeats, minimum=1)
    if warm_up:
        function()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
