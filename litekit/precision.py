"""Mixed precision and memory layout for the backbone's passes.

A LITE step spends its time in the backbone: the no-grad pass over all N support images and
the gradient passes over h sampled images and a query batch. Both can run under
``torch.autocast`` in bfloat16 or float16 (``precision="bf16"`` / ``"fp16"``) and on
channels-last images (``channels_last=True``), which is where a GPU's tensor cores are fast.

What stays in float32: the parameters and the optimiser state (autocast casts copies of the
weights for each operation), and everything after the backbone: embeddings come back as
float32, so prototypes, covariances, logits and the loss are computed as before. LITE's
value trick is untouched: the sampled rows add ``(e - stop_gradient(e)) · s``, which is zero
in any precision. float16 has a narrow range, so its gradients need a `torch.amp.GradScaler`
(`grad_scaler` makes one; `litekit.train.fit` keeps one for the run); bfloat16 does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import nn

from litekit._checks import bad_argument, check_choice

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, argument: str = "precision") -> str:
    """``precision`` if it is one of `PRECISIONS`, else the house-style error (reported under
    ``argument``)."""
    return check_choice(argument, precision, PRECISIONS)


def check_precision_on(
    precision: str, device: torch.device | str, argument: str = "precision"
) -> str:
    """`check_precision`, and that ``device`` computes in it: CUDA autocast to bfloat16 on a
    GPU without bfloat16 arithmetic (before Ampere) would quietly run in float32 instead, so
    a measurement labelled bf16 would not be one."""
    check_precision(precision, argument)
    device = torch.device(device)
    if precision == "bf16" and device.type == "cuda" and torch.cuda.is_available():
        if not torch.cuda.is_bf16_supported(including_emulation=False):
            name = torch.cuda.get_device_name(device)
            raise bad_argument(
                argument,
                precision,
                f"{name} has no bfloat16 arithmetic; pass fp16 (with its gradient scaler) or fp32.",
            )
    return precision


def autocast(precision: str, device: torch.device | str) -> AbstractContextManager:
    """``torch.autocast`` to ``precision`` on ``device``'s type; nothing for ``"fp32"``."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_AUTOCAST_DTYPES[precision])


def grad_scaler(precision: str, device: torch.device | str) -> torch.amp.GradScaler | None:
    """A fresh gradient scaler for float16 (keep it for the whole run); None otherwise."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


def memory_layout(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """Images (B, C, H, W) in channels-last layout when asked (same values, other strides)."""
    if channels_last and images.ndim == 4:
        return images.contiguous(memory_format=torch.channels_last)
    return images


@contextmanager
def channels_last_weights(module: nn.Module, enabled: bool = True) -> Iterator[None]:
    """``module``'s 4-D parameters (convolution kernels) in channels-last layout for the
    block, and back to the tensors they were afterwards (the values never change).

    What `litekit.train.fit` does for a whole run (``channels_last=True``), for a
    measurement on a caller's learner that must be left as found.
    """
    if not enabled:
        yield
        return
    saved = [(p, p.data) for p in module.parameters() if p.dim() == 4]
    for parameter, data in saved:
        parameter.data = data.contiguous(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for parameter, data in saved:
            parameter.data = data
