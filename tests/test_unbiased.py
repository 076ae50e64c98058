"""The LITE gradient is exactly unbiased; the public code's conventions are not.

Each expectation is computed exactly, by enumerating every subset (every pair of subsets for
models with a set encoder) on tiny float64 models, so the only error is rounding: a relative
error below 1e-8 leaves eight orders of magnitude between rounding (~1e-16) and any real bias
(the biased conventions below are off by 1e-3 or more).
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import gradient, make_episode, make_learner, relative_error, subsets

from litekit import Lite

N, H = 6, 2
KINDS = ["protonets", "simple_cnaps", "cnaps"]


def exact_mean(learner, episode, subset_pairs, **lite_options) -> torch.Tensor:
    total = None
    for pair in subset_pairs:
        g = gradient(learner, episode, Lite(H, subsets=pair, **lite_options))
        total = g if total is None else total + g
    return total / len(subset_pairs)


def all_subsets(kind: str, independent: bool = True) -> list[dict]:
    if kind == "protonets":
        return [{"features": s} for s in subsets(N, H)]
    if independent:
        return [{"set": s, "features": t} for s in subsets(N, H) for t in subsets(N, H)]
    return [{"set": s, "features": s} for s in subsets(N, H)]


@pytest.fixture(scope="module")
def episode():
    return make_episode(n_support=N, way=3, n_query=5)


@pytest.mark.parametrize("kind", KINDS)
def test_lite_is_exactly_unbiased(kind, episode):
    learner = make_learner(kind)
    full = gradient(learner, episode)
    expected = exact_mean(learner, episode, all_subsets(kind))
    assert len(all_subsets(kind)) == math.comb(N, H) ** (1 if kind == "protonets" else 2)
    assert relative_error(expected, full) < 1e-8


@pytest.mark.parametrize("kind", KINDS)
def test_no_scaling_vtab_md_convention_is_biased(kind, episode):
    """Without N/h the support path is h/N times too small."""
    learner = make_learner(kind)
    full = gradient(learner, episode)
    expected = exact_mean(learner, episode, all_subsets(kind), scaling="none")
    assert relative_error(expected, full) > 1e-3


def test_no_scaling_shrinks_exactly_the_support_path_for_protonets(episode):
    """E[ĝ_none] = g_Q + (h/N) Σ g_n: the bias is (1 - h/N) times the support path."""
    learner = make_learner("protonets")
    full = gradient(learner, episode)
    query_path = gradient(learner, episode, Lite(0, chunk_size=2))
    expected = exact_mean(learner, episode, all_subsets("protonets"), scaling="none")
    predicted = query_path + (H / N) * (full - query_path)
    assert relative_error(expected, predicted) < 1e-8


@pytest.mark.parametrize("kind", KINDS)
def test_whole_loss_orbit_convention_is_biased(kind, episode):
    """N/h on the whole loss: E[ĝ] = (N/h) g_Q + (support path): the query path is inflated."""
    learner = make_learner(kind)
    full = gradient(learner, episode)
    expected = exact_mean(learner, episode, all_subsets(kind), scaling="loss")
    assert relative_error(expected, full) > 1e-3
    if kind == "protonets":
        query_path = gradient(learner, episode, Lite(0))
        predicted = full + (N / H - 1) * query_path
        assert relative_error(expected, predicted) < 1e-8


@pytest.mark.parametrize("kind", ["simple_cnaps", "cnaps"])
def test_one_shared_subset_for_set_encoder_and_features_is_biased(kind, episode):
    learner = make_learner(kind)
    full = gradient(learner, episode)
    shared = exact_mean(learner, episode, all_subsets(kind, independent=False))
    assert relative_error(shared, full) > 1e-3


@pytest.mark.parametrize("kind", ["simple_cnaps", "cnaps"])
def test_random_draws_use_independent_subsets_by_default(kind, episode):
    """Lite's own random draws (not fixed subsets) average to the full gradient."""
    learner = make_learner(kind)
    full = gradient(learner, episode)
    lite = Lite(H, generator=torch.Generator().manual_seed(0))
    draws = torch.stack([gradient(learner, episode, lite) for _ in range(400)])
    spread = draws.std(0).norm() / math.sqrt(len(draws))
    # the Monte-Carlo mean lies within 5 standard errors of the truth
    assert (draws.mean(0) - full).norm() < 5 * spread


@pytest.mark.parametrize("kind", KINDS)
def test_h_equal_n_and_h_zero(kind, episode):
    """h = N is the full gradient exactly; h = 0 leaves only the query path g_Q."""
    learner = make_learner(kind)
    full = gradient(learner, episode)
    everything = {p: list(range(N)) for p in ("set", "features")}
    torch.testing.assert_close(gradient(learner, episode, Lite(N)), full, rtol=1e-12, atol=0)
    torch.testing.assert_close(
        gradient(learner, episode, Lite(N, subsets=everything)), full, rtol=1e-10, atol=1e-14
    )
    query_only = gradient(learner, episode, Lite(0, chunk_size=4))
    nothing = {p: [] for p in ("set", "features")}
    torch.testing.assert_close(
        gradient(learner, episode, Lite(0, subsets=nothing)), query_only, rtol=1e-12, atol=0
    )
    assert relative_error(query_only, full) > 1e-3


VARIANCE_N, VARIANCE_H = 10, 3


@pytest.fixture(scope="module")
def variance_setup():
    """A ProtoNets task, and the theory trace N(N-h)/h · tr S² from its per-image terms."""
    n, h = VARIANCE_N, VARIANCE_H
    learner = make_learner("protonets")
    episode = make_episode(n_support=n, way=5, n_query=5, seed=3)
    query_path = gradient(learner, episode, Lite(0))
    terms = torch.stack(
        [
            gradient(learner, episode, Lite(1, scaling="none", subsets={"features": [i]}))
            - query_path
            for i in range(n)
        ]
    )
    trace_s2 = terms.var(0, unbiased=True).sum()
    return learner, episode, n * (n - h) / h * trace_s2


class TestVariance:
    """Cov[ĝ] = N(N-h)/h · S², S² the sample covariance of the per-image terms g_n."""

    n, h = VARIANCE_N, VARIANCE_H

    @pytest.fixture
    def setup(self, variance_setup):
        return variance_setup

    def test_exact_covariance_trace_by_enumeration(self, setup):
        learner, episode, theory = setup
        draws = torch.stack(
            [
                gradient(learner, episode, Lite(self.h, subsets={"features": s}))
                for s in subsets(self.n, self.h)
            ]
        )
        exact_trace = draws.var(0, unbiased=False).sum()  # population over all C(N, h) subsets
        assert float(abs(exact_trace / theory - 1)) < 1e-8

    def test_monte_carlo_covariance_trace_within_five_percent(self, setup):
        learner, episode, theory = setup
        lite = Lite(self.h, generator=torch.Generator().manual_seed(2024))
        draws = torch.stack([gradient(learner, episode, lite) for _ in range(3000)])
        empirical = draws.var(0, unbiased=True).sum()
        assert float(abs(empirical / theory - 1)) < 0.05
