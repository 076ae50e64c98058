"""Argument checks shared by the package.

Every check raises ``ValueError`` with the same three parts, so that a user can act on it
without reading the source: the argument's name, the value it got, and what to do instead.
Checks run before any work is done, so a bad call never leaves half-written state behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

#: Longest value an error shows whole: a path or text, or anything else (a tensor, a list).
SHOWN_TEXT, SHOWN_OTHER = 240, 80


def shown_value(value: Any) -> str:
    """``repr(value)``, shortened in the middle when long: the start and the end stay, so a
    long path still shows its folder and its file name."""
    shown = repr(str(value)) if isinstance(value, os.PathLike) else repr(value)
    limit = SHOWN_TEXT if isinstance(value, str | os.PathLike) else SHOWN_OTHER
    if len(shown) <= limit:
        return shown
    head = (limit - 3) // 3
    return shown[:head] + "..." + shown[-(limit - 3 - head) :]


def bad_argument(name: str, value: Any, fix: str) -> ValueError:
    """Build the house-style error: ``name=value: fix``."""
    return ValueError(f"{name}={shown_value(value)}: {fix}")


def check_int(name: str, value: Any, *, minimum: int, fix: str | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise bad_argument(name, value, fix or f"pass an integer >= {minimum}.")
    if value < minimum:
        raise bad_argument(name, value, fix or f"pass an integer >= {minimum}.")
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise name them."""
    if value not in choices:
        raise bad_argument(name, value, f"choose one of {', '.join(map(repr, choices))}.")
    return value


def as_label_array(name: str, labels: Any) -> np.ndarray:
    """Turn a sequence (or tensor, or array) of class labels into a 1-D int64 array.

    Labels must be integers: floats that happen to be whole numbers are accepted, anything
    else (strings, fractional floats, nested lists) is rejected with a fix.
    """
    if isinstance(labels, torch.Tensor):
        array = labels.detach().cpu().numpy()
    else:
        try:
            array = np.asarray(labels)
        except (TypeError, ValueError) as error:
            raise bad_argument(
                name, labels, "pass a flat sequence of integer class ids."
            ) from error
    if array.ndim != 1:
        raise bad_argument(name, labels, "pass a flat (1-D) sequence of integer class ids.")
    if array.size == 0:
        raise bad_argument(name, labels, "pass at least one label.")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise bad_argument(
            name, labels, "labels must be integers; map class names to ids 0..C-1 first."
        )
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise bad_argument(
                name, labels, "labels must be integers; map class names to ids 0..C-1 first."
            )
    return array.astype(np.int64)
