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

from contextlib import AbstractContextManager, nullcontext

import torch

from litekit._checks import check_choice

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    """``precision`` if it is one of `PRECISIONS`, else the house-style error."""
    return check_choice("precision", precision, PRECISIONS)


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
