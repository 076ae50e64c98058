"""Bitwise-repeatable runs: ask PyTorch for deterministic kernels.

On the CPU a litekit run is already repeatable: the same seed gives the same weights, bit for
bit, and a resumed run equals an unbroken one. On a GPU some kernels are not: cuDNN may pick a
different convolution algorithm from one call to the next (autotuning), and some backward
kernels add with atomics in whatever order threads finish. `use_deterministic_kernels` turns
both off, so that a resumed run on the GPU equals an unbroken one exactly, at some cost in
speed (measure it with ``benchmarks/lite_memory.py --deterministic``).
"""

from __future__ import annotations

import os

import torch

from litekit._deprecated import old_names

#: cuBLAS needs a fixed workspace for repeatable matrix products (PyTorch's reproducibility
#: notes); set before the first product that uses it.
CUBLAS_WORKSPACE = ":4096:8"


def use_deterministic_kernels() -> None:
    """Deterministic algorithms everywhere (an op without one raises a RuntimeError naming
    itself), no cuDNN autotuning, and cuBLAS's fixed workspace."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _deterministic_kernels_in_use() -> bool:
    """True when `use_deterministic_kernels` (or the same settings) is in effect."""
    return torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark


__getattr__ = old_names(
    __name__,
    {
        "deterministic_kernels_in_use": (
            "read torch.are_deterministic_algorithms_enabled()",
            _deterministic_kernels_in_use,
        )
    },
)
