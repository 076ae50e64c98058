"""Monte-Carlo statistics of LITE's gradient estimator against h, next to the theory.

`estimator_stats` draws real LITE gradients ĝ (the training step's computation, random
subsets) and compares them with the full gradient g = dL/dθ: bias, covariance trace,
cosine, signal-to-noise; `running_mean_error` follows the mean of k draws as k grows. The
subsets of each (h, scaling) come from their own seeded stream, so a row does not depend on
which other rows are asked for. `theory_kind` says what the theory column means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from litekit._checks import bad_argument, check_int
from litekit.diagnostics.common import (
    SCALINGS,
    check_learner_and_episode,
    check_scaling,
    check_subset_sizes,
    preserved_state,
    task_gradient,
    welford,
)
from litekit.diagnostics.decomposition import GradientDecomposition, per_image_gradients
from litekit.episodes import Episode
from litekit.learners.base import Learner
from litekit.lite import Lite
from litekit.seeding import seeded_generator


def _subset_stream(seed: int, h: int, scaling: str) -> torch.Generator:
    """The subsets of one (h, scaling) cell: a function of (seed, h, scaling) alone."""
    return seeded_generator(seed, h, list(SCALINGS).index(scaling))


def theory_kind(learner: Learner, scaling: str) -> str:
    """What the theory column means for this learner and scaling.

    ``"exact"``: single-path learners (ProtoNets), where ĝ is linear in the g_n.
    ``"lower bound"``: CNAPs-style learners with the unbiased, independent-subset estimator:
    tr Cov[ĝ] = N(N-h)/h tr S² + E||Â δB||² + E||δA δB||² (both extra terms ≥ 0), where the
    extra terms come from the set path's dL/dz being itself estimated from a subset.
    ``"linearised"``: CNAPs-style learners under the biased scalings; the formula is a
    reference line only.
    """
    if len(learner.support_paths) == 1:
        return "exact"
    return "lower bound" if scaling == "unbiased" else "linearised"


def _check_draw_args(hs: Any, draws: Any, seed: Any, scalings: Any, n: int) -> tuple:
    hs = check_subset_sizes(hs, n)
    draws = check_int("draws", draws, minimum=4, fix="pass draws >= 4 (e.g. 100).")
    seed = check_int("seed", seed, minimum=0)
    if isinstance(scalings, str) or not isinstance(scalings, Iterable) or not list(scalings):
        raise bad_argument(
            "scalings", scalings, f"pass a non-empty list drawn from {list(SCALINGS)}."
        )
    scalings = [check_scaling(s, "scalings") for s in scalings]
    return hs, draws, seed, scalings


def _draws(
    learner: Learner,
    episode: Episode,
    h: int,
    scaling: str,
    draws: int,
    seed: int,
    chunk_size: int,
    cache: dict[str, torch.Tensor] | None,
) -> Iterator[torch.Tensor]:
    """``draws`` LITE gradients with fresh random subsets, seeded by (seed, h, scaling)."""
    lite_scaling, independent = SCALINGS[scaling]
    lite = Lite(
        h,
        chunk_size=chunk_size,
        generator=_subset_stream(seed, h, scaling),
        scaling=lite_scaling,
        independent_subsets=independent,
    )
    for _ in range(draws):
        yield task_gradient(learner, episode, lite, cache)[0]


def estimator_stats(
    learner: Learner,
    episode: Episode,
    hs: Sequence[int],
    draws: int,
    seed: int,
    scalings: Sequence[str] = ("unbiased", "none", "loss"),
    *,
    chunk_size: int = 64,
    decomposition: GradientDecomposition | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Monte-Carlo bias, variance, cosine and signal-to-noise of LITE's gradient against h.

    For each h in ``hs`` and each scaling in ``scalings`` (see `SCALINGS`), draws
    ``draws`` real LITE gradients ĝ_1..ĝ_D (the training step's computation, random subsets
    seeded by (seed, h, scaling), so a row does not depend on which other rows are asked
    for) and compares them with the full gradient g = dL/dθ.

    Returns one dict per (h, scaling), a table ``pandas.DataFrame(rows)`` reads, with:
    ``learner, n, h, scaling, draws``; ``bias_norm`` ||ḡ - g|| and ``relative_bias``
    ||ḡ - g||/||g|| with ḡ the mean of the draws; ``bias_noise`` sqrt(tr Cov/D), the size of
    ||ḡ - E ĝ|| expected from Monte-Carlo noise alone; ``trace_cov`` the sample tr Cov[ĝ]
    (1/(D-1) Σ ||ĝ_i - ḡ||²); ``trace_stderr`` its standard error by batch means (the draws
    split into B = min(10, D // 2) batches: std of the B batch traces / √B); ``theory_trace`` from
    `GradientDecomposition.theory_trace` and ``theory`` (`theory_kind`: "exact", "lower
    bound" or "linearised"); ``mean_cosine`` the mean of cos(ĝ_i, g); ``snr`` ||ḡ|| / sqrt(tr
    Cov) (inf when the estimate is exact); ``full_norm`` ||g||.
    """
    check_learner_and_episode(learner, episode)
    n = episode.n_support
    hs, draws, seed, scalings = _check_draw_args(hs, draws, seed, scalings, n)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    if decomposition is None:
        decomposition = per_image_gradients(learner, episode, chunk_size=chunk_size)
    g = decomposition.full.double()
    from tqdm.auto import tqdm

    rows = []
    cells = [(h, c) for h in hs for c in scalings]
    with preserved_state(learner):
        cache = learner.cache_support(episode.support_images, Lite(0, chunk_size=chunk_size))
        for h, scaling in tqdm(cells, desc="estimator_stats", disable=not progress):
            mean, m2, cosines = None, 0.0, []
            batches = min(10, draws // 2)  # >= 2 batches of >= 2 draws each
            batch_stats: list[tuple[torch.Tensor | None, float, int]] = [(None, 0.0, 0)] * batches
            draw_iter = _draws(learner, episode, h, scaling, draws, seed, chunk_size, cache)
            for k, estimate in enumerate(draw_iter, start=1):
                estimate = estimate.double()
                mean, m2 = welford(mean, m2, estimate, k)
                b = (k - 1) * batches // draws
                b_mean, b_m2, b_k = batch_stats[b]
                batch_stats[b] = (*welford(b_mean, b_m2, estimate, b_k + 1), b_k + 1)
                cosines.append(float(F.cosine_similarity(estimate, g, dim=0)))
            batch_traces = [b_m2 / (b_k - 1) for _, b_m2, b_k in batch_stats]
            stderr = float(np.std(batch_traces, ddof=1) / math.sqrt(batches))
            rows.append(
                _row(learner, decomposition, h, scaling, draws, mean, m2, cosines, stderr, g)
            )
    return rows


def _row(learner, decomposition, h, scaling, draws, mean, m2, cosines, stderr, g) -> dict:
    trace = m2 / (draws - 1)
    bias = float((mean - g).norm())
    full_norm = float(g.norm())
    return {
        "learner": type(learner).__name__,
        "n": decomposition.n,
        "h": h,
        "scaling": scaling,
        "draws": draws,
        "bias_norm": bias,
        "relative_bias": bias / full_norm,
        "bias_noise": math.sqrt(trace / draws),
        "trace_cov": trace,
        "trace_stderr": stderr,
        "theory_trace": decomposition.theory_trace(h, scaling),
        "theory": theory_kind(learner, scaling),
        "mean_cosine": float(np.mean(cosines)),
        "snr": float(mean.norm()) / math.sqrt(trace) if trace > 0 else math.inf,
        "full_norm": full_norm,
    }


def running_mean_error(
    learner: Learner,
    episode: Episode,
    h: int,
    draws: int,
    seed: int,
    scalings: Sequence[str] = ("unbiased", "none", "loss"),
    *,
    chunk_size: int = 64,
    full: torch.Tensor | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """How the running mean of k LITE draws approaches the full gradient, k = 1..draws.

    Rows: ``scaling, h, k, relative_error`` ||mean_k - g|| / ||g|| and ``cosine``
    cos(mean_k, g). For an unbiased estimator relative_error falls like 1/√k towards 0; a
    biased one levels off at its relative bias. Uses the same subsets as `estimator_stats`
    with the same seed, so its last row per scaling is that table's ``relative_bias``.
    """
    check_learner_and_episode(learner, episode)
    n = episode.n_support
    (h,), draws, seed, scalings = _check_draw_args([h], draws, seed, scalings, n)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    with preserved_state(learner):
        g = (full if full is not None else task_gradient(learner, episode, None, None)[0]).double()
        cache = learner.cache_support(episode.support_images, Lite(0, chunk_size=chunk_size))
        from tqdm.auto import tqdm

        rows = []
        for scaling in tqdm(scalings, desc="running mean", disable=not progress):
            mean = None
            draw_iter = _draws(learner, episode, h, scaling, draws, seed, chunk_size, cache)
            for k, estimate in enumerate(draw_iter, start=1):
                mean, _ = welford(mean, 0.0, estimate, k)
                rows.append(
                    {
                        "scaling": scaling,
                        "h": h,
                        "k": k,
                        "relative_error": float((mean - g).norm() / g.norm()),
                        "cosine": float(F.cosine_similarity(mean, g, dim=0)),
                    }
                )
    return rows
