"""LITE's gradient averaged over every subset: its exact mean and covariance trace.

Every subset H of size h is equally likely, so E_H[ĝ] is the plain average of the LITE
gradient over all C(N, h) subsets (all C(N, h)² pairs with independent subsets on two
support paths). Small N only; `litekit.diagnostics.estimator_stats` samples instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from litekit._checks import bad_argument, check_int
from litekit.diagnostics.common import (
    SCALINGS,
    check_h,
    check_learner_and_episode,
    check_scaling,
    fixed_subset_lite,
    preserved_state,
    task_gradient,
    welford,
)
from litekit.episodes import Episode
from litekit.learners.base import Learner
from litekit.lite import Lite


@dataclass(frozen=True)
class ExactMoments:
    """E_H[ĝ] and tr Cov[ĝ] over every equally likely subset (or pair of subsets).

    Attributes:
        mean: the exact mean LITE gradient E_H[ĝ], shape (P,).
        trace_covariance: the exact tr Cov[ĝ] (population variance over the subsets).
        count: how many subset configurations were enumerated.
        h, n: subset size and support size; scaling: the estimator (see `SCALINGS`).
    """

    mean: torch.Tensor
    trace_covariance: float
    count: int
    h: int
    n: int
    scaling: str


def subset_configurations(n: int, h: int, paths: int, independent: bool) -> int:
    """How many equally likely subset configurations LITE draws from: C(N, h) per path."""
    return math.comb(n, h) ** (paths if independent else 1)


def exact_expectation(
    learner: Learner,
    episode: Episode,
    h: int,
    *,
    scaling: str = "unbiased",
    limit: int = 5000,
    chunk_size: int = 64,
    progress: bool = False,
) -> ExactMoments:
    """The exact mean (and covariance trace) of LITE's gradient, by enumerating all subsets.

    Every subset H of size h is equally likely, so E_H[ĝ] is the plain average over all
    C(N, h) of them; with independent subsets per support path (CNAPs-style learners, the
    default) the average runs over all C(N, h)² pairs. ``scaling`` picks the estimator
    (see `SCALINGS`). Refuses, before any work, when there are more than ``limit``
    configurations: use `estimator_stats` (Monte Carlo) for those.
    """
    lite_scaling, independent = SCALINGS[check_scaling(scaling)]
    check_learner_and_episode(learner, episode)
    n, paths = episode.n_support, learner.support_paths
    h = check_h(h, n, minimum=0)
    limit = check_int("limit", limit, minimum=1)
    count = subset_configurations(n, h, len(paths), independent and len(paths) > 1)
    if count > limit:
        raise bad_argument(
            "h",
            h,
            f"enumerating every subset needs {count:,} LITE gradients (C({n}, {h}) = "
            f"{math.comb(n, h):,} per path) but limit={limit:,}; use estimator_stats "
            "(Monte Carlo) instead, a smaller N, or raise limit.",
        )
    per_path = list(itertools.combinations(range(n), h))
    if independent and len(paths) > 1:
        configurations: Iterable = itertools.product(per_path, repeat=len(paths))
    else:
        configurations = ((subset,) * len(paths) for subset in per_path)

    from tqdm.auto import tqdm

    mean, m2 = None, 0.0
    with preserved_state(learner):
        cache = learner.cache_support(episode.support_images, Lite(0, chunk_size=chunk_size))
        for k, chosen in enumerate(
            tqdm(configurations, total=count, desc="subsets", disable=not progress), start=1
        ):
            subsets = dict(zip(paths, chosen, strict=True))
            lite = fixed_subset_lite(subsets, chunk_size, h, lite_scaling)
            mean, m2 = welford(mean, m2, task_gradient(learner, episode, lite, cache)[0], k)
    return ExactMoments(mean.detach(), m2 / count, count, h, n, scaling)
