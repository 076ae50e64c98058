"""The CUDA allocator's peak over a block of work, above what was allocated before it.

Read the same way by every measurement (a training step, a task gradient, the cost to
personalise): wait for queued work, reset the allocator's peak statistics, read the memory
allocated at rest, run the block, wait again, read the largest allocation reached. The peak
counts what the block holds at once (activations, gradients, optimiser state it creates) on
top of what was there before (weights, inputs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from litekit.measure.timing import synchronize


@dataclass
class PeakReading:
    """Bytes allocated on the device before a block (``rest_bytes``) and at most during it
    (``peak_bytes``); both None off CUDA, where the allocator keeps no such statistics."""

    rest_bytes: int | None = None
    peak_bytes: int | None = None

    @property
    def above_rest(self) -> int | None:
        """``peak_bytes - rest_bytes``: what the block added at its peak (None off CUDA)."""
        if self.peak_bytes is None or self.rest_bytes is None:
            return None
        return self.peak_bytes - self.rest_bytes


@contextmanager
def cuda_peak(device: torch.device) -> Iterator[PeakReading]:
    """``with cuda_peak(device) as reading: work()``, then ``reading.above_rest``.

    On CUDA the reading is filled in when the block ends normally; on any other device it
    stays empty (None), so callers need no branch of their own to run the block.
    """
    reading = PeakReading()
    if device.type != "cuda":
        yield reading
        return
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    reading.rest_bytes = int(torch.cuda.memory_allocated(device))
    yield reading
    synchronize(device)
    reading.peak_bytes = int(torch.cuda.max_memory_allocated(device))
