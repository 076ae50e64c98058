"""Learning-rate schedules with warm-up, as a pure function of the step (`Schedule`).

A schedule multiplies each parameter group's initial learning rate by a factor that depends
on the step alone, so that a resumed run sets exactly the learning rate an unbroken run
would: nothing but the step number needs saving (the initial rates travel in the
optimiser's state, as ``initial_lr``, the key torch's own schedulers use).

- ``warmup_steps`` W: the factor rises linearly, (s + 1) / (W + 1) at step s = 0 .. W - 1,
  so the first update is already small rather than zero;
- then ``"constant"``: 1; ``"cosine"``: ½ (1 + cos(π t)) with t the fraction of the steps
  after warm-up done, from 1 down to 0 at the last step; ``"step"``: ``gamma`` (0.1) times
  less at each of ``milestones`` (half and three quarters of the steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from litekit._checks import bad_argument, check_choice, check_int

#: The schedules `Schedule` knows.
SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class Schedule:
    """How the learning rate changes over a run of ``steps`` optimiser steps.

    Args:
        kind: one of `SCHEDULES`.
        warmup_steps: steps of linear warm-up first (0: none).
        milestones: for ``"step"``, the fractions of the run after which the rate drops.
        gamma: for ``"step"``, the factor of each drop.
    """

    kind: str = "constant"
    warmup_steps: int = 0
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_choice("schedule", self.kind, SCHEDULES)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        if not all(0 < m < 1 for m in self.milestones) or list(self.milestones) != sorted(
            self.milestones
        ):
            raise bad_argument(
                "milestones", self.milestones, "pass increasing fractions in (0, 1)."
            )
        if not 0 < self.gamma <= 1:
            raise bad_argument("gamma", self.gamma, "pass a factor in (0, 1].")

    def check_steps(self, steps: int, *, argument: str = "steps", prefix: str = "") -> None:
        """The run of ``steps`` steps leaves room for this schedule: a cosine or step
        schedule has steps to decay over, after its warm-up. (A constant schedule's warm-up
        may outlast a run that is to be resumed with more steps.)"""
        if self.kind != "constant" and steps < 1:
            raise bad_argument(
                argument,
                steps,
                f"a {self.kind} schedule decays over the run's steps; pass {argument} >= 1, "
                f"or {prefix}schedule constant.",
            )
        if self.kind != "constant" and self.warmup_steps >= steps:
            raise bad_argument(
                prefix + ("warmup-steps" if prefix else "warmup_steps"),
                self.warmup_steps,
                f"the warm-up must end before the run's {steps} steps do; pass fewer.",
            )

    def factor(self, step: int, steps: int) -> float:
        """The multiplier of the initial learning rate at step ``step`` (0-based) of
        ``steps``."""
        warmup = self.warmup_steps
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if self.kind == "constant":
            return 1.0
        span = max(steps - 1 - warmup, 1)
        done = min(max(step - warmup, 0) / span, 1.0)
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * done))
        drops = sum(done >= m for m in self.milestones)
        return self.gamma**drops

    def apply(self, optimizer: torch.optim.Optimizer, step: int, steps: int) -> float:
        """Set every parameter group's rate for step ``step``: its ``initial_lr`` (recorded
        from ``lr`` the first time) times `factor`. Returns the factor."""
        factor = self.factor(step, steps)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
        return factor

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "warmup_steps": self.warmup_steps,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
        }
