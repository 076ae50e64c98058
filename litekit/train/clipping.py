"""Gradient clipping: the gradient's total norm capped before each optimiser step.

A rare task with a huge gradient (early in training, or a batch of odd images) can undo many
steps of progress in one. `clip_before_step` registers a hook that runs just before
``optimizer.step()``: after every task's gradient of the step is accumulated, after the
average over processes (`litekit.distributed.finish_step`) and after a float16 gradient
scaler has unscaled the gradients, so the cap applies to the true averaged gradient. It
scales all gradients of the optimiser's parameters together by min(1, max_norm / ‖g‖),
which keeps the direction of the step.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from litekit._checks import bad_argument


def check_max_norm(value: object, argument: str = "clip_grad_norm") -> float:
    """Return ``value`` as a float if it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_argument(argument, value, "pass a positive number, e.g. 1.0.")
    if not (value > 0 and math.isfinite(value)):
        raise bad_argument(argument, value, "pass a positive number, e.g. 1.0.")
    return float(value)


def clip_before_step(optimizer: torch.optim.Optimizer, max_norm: float) -> Any:
    """Cap the total gradient norm of ``optimizer``'s parameters at ``max_norm`` before each
    of its steps; returns the hook's handle (``handle.remove()`` undoes it)."""
    max_norm = check_max_norm(max_norm)

    def clip(opt: torch.optim.Optimizer, _args: tuple, _kwargs: dict) -> None:
        parameters = [p for group in opt.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    return optimizer.register_step_pre_hook(clip)
