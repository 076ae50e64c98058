"""What the diagnostics share: argument checks, the estimators compared, one task gradient.

Every diagnostic computes real LITE gradients through the training step's own code
(`litekit.train.accumulate_task_gradient`), with the no-grad pass over the support set done
once by the caller and reused for every gradient (`task_gradient`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from litekit._checks import bad_argument, check_choice, check_int
from litekit._deprecated import old_names
from litekit.episodes import Episode
from litekit.learners.base import Learner, SupportCache
from litekit.learners.checks import check_labels
from litekit.lite import SCALINGS as LITE_SCALINGS
from litekit.lite import Lite

#: The estimators the diagnostics compare, by scaling: name -> (the `Lite` scaling,
#: independent subsets per support path). The first three are `litekit.lite.SCALINGS`:
#: "unbiased" is litekit's default; "none" is the VTAB+MD code (no N/h); "loss" is the ORBIT
#: code (N/h on the whole loss). "same_subset" is the unbiased scaling with one subset shared
#: by the set encoder and the feature extractor (biased for CNAPs-style models, the same as
#: "unbiased" otherwise).
SCALINGS: dict[str, tuple[str, bool]] = {
    **{name: (name, True) for name in LITE_SCALINGS},
    "same_subset": ("unbiased", False),
}


def check_scaling(scaling: Any, name: str = "scaling") -> str:
    """Return ``scaling`` if it is one of `SCALINGS`."""
    return check_choice(name, scaling, tuple(SCALINGS))


def check_learner_and_episode(learner: Any, episode: Any) -> None:
    """A litekit learner and an Episode whose support labels are 0..way-1."""
    if not isinstance(learner, Learner):
        raise bad_argument(
            "learner",
            type(learner).__name__,
            "pass a litekit learner (ProtoNets, SimpleCNAPs, CNAPs or a Learner subclass).",
        )
    if not isinstance(episode, Episode):
        raise bad_argument("episode", type(episode).__name__, "pass a litekit.Episode.")
    check_labels(episode.support_labels)


def check_h(h: Any, n: int, *, minimum: int = 1) -> int:
    """A subset size h with ``minimum`` <= h <= N."""
    h = check_int("h", h, minimum=minimum, fix=f"pass an integer h with {minimum} <= h <= N={n}.")
    if h > n:
        raise bad_argument("h", h, f"the support set has N={n} images; pass h <= {n}.")
    return h


def check_subset_sizes(hs: Any, n: int) -> list[int]:
    """A non-empty list of subset sizes, each in 1..N."""
    if isinstance(hs, int | np.integer) or not isinstance(hs, Iterable):
        raise bad_argument("hs", hs, "pass a list of subset sizes, e.g. [1, 2, 4, 8].")
    hs = list(hs)
    if not hs:
        raise bad_argument("hs", hs, "pass at least one subset size.")
    return [check_h(h, n) for h in hs]


def _flat_grad(learner: nn.Module) -> torch.Tensor:
    """All parameters' ``.grad`` as one vector, in ``learner.parameters()`` order (0 if None)."""
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
            for p in learner.parameters()
        ]
    )


@contextmanager
def preserved_state(learner: nn.Module) -> Iterator[None]:
    """Leave the learner's ``.grad`` tensors and buffers (e.g. batch-norm statistics) as found."""
    grads = [p.grad for p in learner.parameters()]
    buffers = [b.detach().clone() for b in learner.buffers()]
    try:
        yield
    finally:
        for p, g in zip(learner.parameters(), grads, strict=True):
            p.grad = g
        with torch.no_grad():
            for b, saved in zip(learner.buffers(), buffers, strict=True):
                b.copy_(saved)


def task_gradient(
    learner: Learner,
    episode: Episode,
    lite: Lite | None,
    cache: SupportCache | None,
) -> tuple[torch.Tensor, float]:
    """One (estimated) task gradient as a flat vector, and the task loss L.

    `litekit.train.accumulate_task_gradient` with the whole query set in one batch (L =
    mean cross-entropy; times N/h under ``lite.scaling == "loss"``), on the support
    ``cache`` the caller computed once (None: the step's own pass). ``.grad`` is zeroed
    first.
    """
    from litekit.train import accumulate_task_gradient

    learner.zero_grad(set_to_none=True)
    loss, _ = accumulate_task_gradient(learner, episode, lite, cache=cache)
    return _flat_grad(learner), loss


def fixed_subset_lite(
    subsets: dict[str, Sequence[int]], chunk_size: int, h: int = 0, scaling: str = "none"
) -> Lite:
    """A Lite that back-propagates through the given subset of each path, never a random one."""
    return Lite(h, chunk_size=chunk_size, scaling=scaling, subsets=subsets)


def welford(
    mean: torch.Tensor | None, m2: float, x: torch.Tensor, k: int
) -> tuple[torch.Tensor, float]:
    """One step of Welford's running mean and sum of squared deviations (k = 1, 2, ...)."""
    x = x.detach().double()
    if mean is None:
        return x.clone(), 0.0
    delta = x - mean
    mean = mean + delta / k
    return mean, m2 + float(delta @ (x - mean))


__getattr__ = old_names(__name__, {"flat_grad": ("task_gradient returns it", _flat_grad)})
