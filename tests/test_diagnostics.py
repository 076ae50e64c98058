"""The diagnostics agree with the theory of LITE's estimator, exactly where it is exact.

Tiny float64 learners (tests/helpers.py): identities are checked to round-off, Monte-Carlo
statements within a few standard errors of seeded draws.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import gradient, make_episode, make_learner, relative_error
from torch import nn

import litekit.diagnostics.monte_carlo as monte_carlo
from litekit import Lite, ProtoNets
from litekit.diagnostics import (
    SCALINGS,
    demo_task,
    estimator_stats,
    exact_expectation,
    format_table,
    per_image_gradients,
    running_mean_error,
    theory_kind,
    vmap_supported,
)
from litekit.diagnostics.common import task_gradient

KINDS = ("protonets", "simple_cnaps", "cnaps")
FILM = ("simple_cnaps", "cnaps")
N = 6


@pytest.fixture(scope="module")
def decompositions():
    """One decomposition per (learner kind, method), shared by the tests that read them."""
    out = {}
    for kind in KINDS:
        learner, episode = make_learner(kind), make_episode(N)
        for method in ("vmap", "loop"):
            out[kind, method] = per_image_gradients(learner, episode, method=method)
    return out


# --- the split itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["vmap", "loop"])
def test_query_term_plus_per_image_terms_is_the_full_gradient(decompositions, kind, method):
    d = decompositions[kind, method]
    assert d.method == method
    assert d.residual() < 1e-12
    # `full` is plain back-propagation through the training step's own code path.
    assert relative_error(d.full, gradient(make_learner(kind), make_episode(N))) < 1e-14


@pytest.mark.parametrize("kind", KINDS)
def test_vmap_and_loop_give_the_same_terms(decompositions, kind):
    vmapped, looped = decompositions[kind, "vmap"], decompositions[kind, "loop"]
    assert relative_error(vmapped.query, looped.query) < 1e-14
    for path in vmapped.paths:
        assert relative_error(vmapped.paths[path], looped.paths[path]) < 1e-10, path
        assert torch.equal(vmapped.cotangents[path], looped.cotangents[path])


@pytest.mark.parametrize("kind", KINDS)
def test_terms_are_lite_gradients_with_fixed_one_image_subsets(decompositions, kind):
    """Cross-check through `accumulate_task_gradient`: g_Q is h = 0, g_n the subset {n}."""

    def fixed(subsets):
        return Lite(0, scaling="none", subsets=subsets)

    learner, episode = make_learner(kind), make_episode(N)
    d = decompositions[kind, "vmap"]
    assert relative_error(gradient(learner, episode, Lite(0)), d.query) < 1e-14
    everything = list(range(N))
    for n in (0, 3):
        if kind == "protonets":
            subsets = {"features": [n]}
            g_n = gradient(learner, episode, fixed(subsets)) - d.query
            assert relative_error(g_n, d.paths["features"][n]) < 1e-10
            continue
        features = gradient(learner, episode, fixed({"set": [], "features": [n]}))
        assert relative_error(features - d.query, d.paths["features"][n]) < 1e-10
        with_set = gradient(learner, episode, fixed({"set": [n], "features": everything}))
        without = gradient(learner, episode, fixed({"set": [], "features": everything}))
        assert relative_error(with_set - without, d.paths["set"][n]) < 1e-10


@pytest.mark.parametrize("kind", FILM)
def test_each_path_reaches_only_its_own_parameters(decompositions, kind):
    d = decompositions[kind, "vmap"]
    set_encoder = d.parameter_mask("set_encoder.")
    assert set_encoder.any() and not set_encoder.all()
    assert d.paths["set"][:, ~set_encoder].abs().max() == 0
    assert d.paths["set"][:, set_encoder].abs().max() > 0
    assert d.paths["features"][:, set_encoder].abs().max() == 0
    assert d.query[set_encoder].abs().max() == 0  # z is a constant on the query path


def test_protonets_cotangents_are_shared_within_a_class(decompositions):
    """∂L/∂e_n = (1/n_k) ∂L/∂μ_k: images of one class get the same cotangent."""
    d = decompositions["protonets", "vmap"]
    cotangents, labels = d.cotangents["features"], d.support_labels
    for k in labels.unique():
        members = cotangents[labels == k]
        assert relative_error(members, members[:1].expand_as(members)) < 1e-14
    assert relative_error(cotangents[0], cotangents[1]) > 1e-3  # classes 0 and 1 differ


def test_decomposition_leaves_the_learner_as_it_found_it():
    learner, episode = make_learner("simple_cnaps"), make_episode(N)
    parameters = dict(learner.named_parameters())
    sentinel = [torch.full_like(p, 7.0) for p in learner.parameters()]
    for p, g in zip(learner.parameters(), sentinel, strict=True):
        p.grad = g
    per_image_gradients(learner, episode, method="vmap")
    for name, p in learner.named_parameters():
        assert p is parameters[name], name  # still the same nn.Parameter objects
    assert all(p.grad is g for p, g in zip(learner.parameters(), sentinel, strict=True))


def _batch_norm_learner(mode: str) -> ProtoNets:
    torch.manual_seed(0)
    backbone = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    learner = ProtoNets(backbone, backbone_mode=mode).double()
    learner.train()
    return learner


def test_batch_statistics_break_the_split_and_fixed_statistics_do_not():
    episode = make_episode(N)
    batch_stats = _batch_norm_learner("train")
    supported, reason = vmap_supported(batch_stats)
    assert not supported and "batch norm" in reason
    running = [b.clone() for b in batch_stats.buffers()]
    broken = per_image_gradients(batch_stats, episode, chunk_size=N)
    assert broken.method == "loop"
    assert broken.residual() > 1e-3
    assert all(torch.equal(a, b) for a, b in zip(running, batch_stats.buffers(), strict=True))
    with pytest.raises(ValueError, match="method='vmap'.*batch norm"):
        per_image_gradients(batch_stats, episode, method="vmap")

    fixed = per_image_gradients(_batch_norm_learner("eval"), episode)
    assert fixed.method == "vmap"
    assert fixed.residual() < 1e-12


# --- exact enumeration ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("h", [1, 2])
def test_exact_mean_of_the_default_estimator_is_the_full_gradient(decompositions, kind, h):
    moments = exact_expectation(make_learner(kind), make_episode(N), h)
    paths = 1 if kind == "protonets" else 2
    assert moments.count == math.comb(N, h) ** paths
    assert relative_error(moments.mean, decompositions[kind, "vmap"].full) < 1e-10


@pytest.mark.parametrize("scaling", ["unbiased", "none", "loss"])
@pytest.mark.parametrize("h", [1, 2, 3, 5])
def test_protonets_moments_match_the_closed_forms(decompositions, scaling, h):
    """E ĝ and tr Cov ĝ by enumeration equal the formulas, for every scaling."""
    d = decompositions["protonets", "vmap"]
    moments = exact_expectation(make_learner("protonets"), make_episode(N), h, scaling=scaling)
    assert moments.scaling == scaling
    assert relative_error(moments.mean, d.expected(h, scaling)) < 1e-10
    assert moments.trace_covariance == pytest.approx(d.theory_trace(h, scaling), rel=1e-9)
    bias = relative_error(moments.mean, d.full)
    assert bias < 1e-10 if scaling == "unbiased" else bias > 1e-2


@pytest.mark.parametrize("kind", FILM)
def test_same_subset_bias_is_exactly_proportional_to_n_minus_h_over_h(decompositions, kind):
    full = decompositions[kind, "vmap"].full
    scaled = {}
    for h in (1, 2, 4):
        moments = exact_expectation(make_learner(kind), make_episode(N), h, scaling="same_subset")
        assert relative_error(moments.mean, full) > 1e-4  # biased ...
        scaled[h] = (moments.mean - full) * h / (N - h)
    assert relative_error(scaled[2], scaled[1]) < 1e-9  # ... by (N-h)/h times one vector
    assert relative_error(scaled[4], scaled[1]) < 1e-9


@pytest.mark.parametrize("kind", FILM)
@pytest.mark.parametrize("h", [1, 3])
def test_film_theory_trace_is_a_strict_lower_bound(decompositions, kind, h):
    d = decompositions[kind, "vmap"]
    moments = exact_expectation(make_learner(kind), make_episode(N), h)
    assert theory_kind(make_learner(kind), "unbiased") == "lower bound"
    assert moments.trace_covariance > d.theory_trace(h) * (1 + 1e-6)


def test_enumeration_refuses_too_many_subsets_before_any_work(monkeypatch):
    learner, episode = make_learner("simple_cnaps"), make_episode(N)
    monkeypatch.setattr(learner, "cache_support", _must_not_run)
    with pytest.raises(ValueError, match=r"h=3.*400 LITE gradients.*C\(6, 3\) = 20.*Monte Carlo"):
        exact_expectation(learner, episode, 3, limit=100)


def _must_not_run(*args, **kwargs):
    raise AssertionError("work was done before the arguments were checked")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda lrn, e: per_image_gradients(lrn, e, method="fast"), "method"),
        (lambda lrn, e: per_image_gradients(lrn, e, chunk_size=0), "chunk_size"),
        (lambda lrn, e: per_image_gradients("protonets", e), "learner"),
        (lambda lrn, e: exact_expectation(lrn, e, N + 1), "h"),
        (lambda lrn, e: exact_expectation(lrn, e, -1), "h"),
        (lambda lrn, e: exact_expectation(lrn, e, 2, scaling="orbit"), "scaling"),
        (lambda lrn, e: estimator_stats(lrn, e, [1, N + 1], 10, 0), "h"),
        (lambda lrn, e: estimator_stats(lrn, e, [], 10, 0), "hs"),
        (lambda lrn, e: estimator_stats(lrn, e, 3, 10, 0), "hs"),
        (lambda lrn, e: estimator_stats(lrn, e, [1], 1, 0), "draws"),
        (lambda lrn, e: estimator_stats(lrn, e, [1], 10, -1), "seed"),
        (lambda lrn, e: estimator_stats(lrn, e, [1], 10, 0, scalings="unbiased"), "scalings"),
        (lambda lrn, e: estimator_stats(lrn, e, [1], 10, 0, scalings=["orbit"]), "scalings"),
        (lambda lrn, e: running_mean_error(lrn, e, 0, 10, 0), "h"),
    ],
)
def test_bad_arguments_are_named_before_any_work(monkeypatch, call, argument):
    learner, episode = make_learner("protonets"), make_episode(N)
    monkeypatch.setattr(learner, "cache_support", _must_not_run)
    monkeypatch.setattr(learner, "task_logits", _must_not_run)
    with pytest.raises(ValueError, match=rf"^{argument}=.*: "):
        call(learner, episode)


# --- Monte Carlo ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def protonets_stats(decompositions):
    d = decompositions["protonets", "vmap"]
    return estimator_stats(
        make_learner("protonets"), make_episode(N), [1, 2, 3, N], 300, 0, decomposition=d
    )


def test_monte_carlo_variance_matches_the_theory_for_protonets(protonets_stats):
    for row in protonets_stats:
        if row["h"] == N:
            continue
        assert row["theory"] == "exact"
        gap = abs(row["trace_cov"] - row["theory_trace"])
        assert gap < 4 * row["trace_stderr"], row
        assert gap < 0.2 * row["theory_trace"], row


def test_monte_carlo_bias_matches_the_exact_bias(protonets_stats, decompositions):
    d = decompositions["protonets", "vmap"]
    for row in protonets_stats:
        exact = relative_error(d.expected(row["h"], row["scaling"]), d.full)
        noise = row["bias_noise"] / row["full_norm"]
        # ||mean - E|| is about noise; the triangle inequality bounds the measured bias.
        assert abs(row["relative_bias"] - exact) < 4 * noise + 1e-12, row


def test_variance_falls_and_alignment_rises_with_h(protonets_stats):
    unbiased = [r for r in protonets_stats if r["scaling"] == "unbiased"]
    traces = [r["trace_cov"] for r in unbiased]
    cosines = [r["mean_cosine"] for r in unbiased]
    assert traces == sorted(traces, reverse=True) and traces[-1] == 0
    assert cosines == sorted(cosines) and cosines[-1] == pytest.approx(1.0, abs=1e-12)
    last = unbiased[-1]
    assert last["h"] == N and last["relative_bias"] < 1e-12 and math.isinf(last["snr"])


def test_estimator_stats_rows_depend_only_on_seed_h_and_scaling():
    learner, episode = make_learner("cnaps"), make_episode(N)
    d = per_image_gradients(learner, episode)
    both = estimator_stats(learner, episode, [1, 2], 6, 3, ["none", "unbiased"], decomposition=d)
    alone = estimator_stats(learner, episode, [2], 6, 3, ["unbiased"], decomposition=d)
    again = estimator_stats(learner, episode, [1, 2], 6, 3, ["none", "unbiased"], decomposition=d)
    other = estimator_stats(learner, episode, [2], 6, 4, ["unbiased"], decomposition=d)
    assert both == again
    assert [r for r in both if (r["h"], r["scaling"]) == (2, "unbiased")] == alone
    assert other[0]["trace_cov"] != alone[0]["trace_cov"]
    assert {r["theory"] for r in both} == {"lower bound", "linearised"}


@pytest.mark.parametrize("kind", ["protonets", "simple_cnaps"])
def test_estimator_stats_columns_equal_torch_statistics_of_the_same_draws(kind, monkeypatch):
    """Every draw `estimator_stats` makes is recorded (its gradient function wrapped), and
    its columns are recomputed from them with torch and numpy: ``trace_cov`` is
    Σ_coordinates torch.var(draws, correction=1) (1/(D-1), not 1/D: with D = 10 the two
    differ by 10%), ``bias_norm``, ``bias_noise`` = sqrt(trace/D), ``mean_cosine``, ``snr``
    and ``trace_stderr`` (std, ddof 1, of the traces of B = min(10, D // 2) consecutive
    batches of draws, over sqrt(B)). Welford's running sums against two-pass formulas in
    float64: 1e-10 relative."""
    recorded = []
    original = monte_carlo.task_gradient

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        recorded.append(out[0].detach().double().clone())
        return out

    monkeypatch.setattr(monte_carlo, "task_gradient", recording)
    learner, episode = make_learner(kind), make_episode(N)
    d = per_image_gradients(learner, episode)
    draws, hs, scalings = 10, [1, 3], ["unbiased", "loss"]
    rows = estimator_stats(learner, episode, hs, draws, 7, scalings, decomposition=d)
    assert len(recorded) == len(rows) * draws
    g = d.full.double()
    for k, row in enumerate(rows):
        assert (row["h"], row["scaling"]) == (hs[k // 2], scalings[k % 2])
        x = torch.stack(recorded[k * draws : (k + 1) * draws])
        trace = float(torch.var(x, dim=0, correction=1).sum())
        assert row["trace_cov"] == pytest.approx(trace, rel=1e-10)
        assert row["trace_cov"] != pytest.approx(float(torch.var(x, dim=0, correction=0).sum()))
        mean = x.mean(0)
        assert row["bias_norm"] == pytest.approx(float((mean - g).norm()), rel=1e-10)
        assert row["bias_noise"] == pytest.approx(math.sqrt(trace / draws), rel=1e-10)
        cosines = torch.nn.functional.cosine_similarity(x, g.expand_as(x), dim=1)
        assert row["mean_cosine"] == pytest.approx(float(cosines.mean()), rel=1e-10)
        assert row["snr"] == pytest.approx(float(mean.norm()) / math.sqrt(trace), rel=1e-10)
        batches = min(10, draws // 2)
        traces = [float(torch.var(b, dim=0, correction=1).sum()) for b in x.chunk(batches)]
        stderr = np.std(traces, ddof=1) / math.sqrt(batches)
        assert row["trace_stderr"] == pytest.approx(stderr, rel=1e-10)


def test_running_mean_ends_at_the_stats_mean():
    learner, episode = make_learner("protonets"), make_episode(N)
    rows = running_mean_error(learner, episode, 2, 12, 5, ["unbiased", "loss"])
    stats = estimator_stats(learner, episode, [2], 12, 5, ["unbiased", "loss"])
    for row in stats:
        last = [r for r in rows if r["scaling"] == row["scaling"]][-1]
        assert last["k"] == 12
        assert last["relative_error"] == pytest.approx(row["relative_bias"], rel=1e-12)


@pytest.mark.parametrize("scaling", list(SCALINGS))
def test_internal_gradient_is_the_training_steps_gradient(scaling):
    """The diagnostics' gradient on a support pass done once equals the training step's."""
    lite_scaling, independent = SCALINGS[scaling]
    learner, episode = make_learner("simple_cnaps"), make_episode(N)
    subsets = {"set": [1, 4], "features": [0, 4]}
    lite = Lite(2, scaling=lite_scaling, independent_subsets=independent, subsets=subsets)
    cache = learner.cache_support(episode.support_images, lite)
    mine, loss = task_gradient(learner, episode, lite, cache)
    assert relative_error(mine, gradient(learner, episode, lite)) < 1e-14
    assert "cache_support" not in vars(learner)  # the reused pass is gone after the call
    passes = []

    def own_pass(images, lite):
        passes.append(1)

    learner.cache_support = own_pass  # shadowed by the reused pass, then back in place
    task_gradient(learner, episode, lite, cache)
    assert passes == [] and vars(learner)["cache_support"] is own_pass


# --- the small task and the tables ------------------------------------------------------------


def test_demo_task_is_a_function_of_its_seed():
    state = torch.random.get_rng_state()
    first_learner, first = demo_task("cnaps", n_support=7, way=3, n_query=4, seed=2)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    second_learner, second = demo_task("cnaps", n_support=7, way=3, n_query=4, seed=2)
    _, other = demo_task("cnaps", n_support=7, way=3, n_query=4, seed=3)
    assert torch.equal(first.support_images, second.support_images)
    assert torch.equal(first.query_images, second.query_images)
    assert not torch.equal(first.support_images, other.support_images)
    for a, b in zip(first_learner.parameters(), second_learner.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first.support_labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert first.support_images.dtype == torch.float64
    # No image is both a support and a query image.
    flat_support, flat_query = first.support_images.flatten(1), first.query_images.flatten(1)
    assert torch.cdist(flat_support, flat_query).min() > 0


def test_format_table_prints_rows_without_pandas():
    rows = [
        {"h": 1, "trace": 4.25123, "theory": "exact"},
        {"h": 16, "trace": 0.0163, "theory": "-"},
    ]
    assert format_table(rows, digits=2).splitlines() == [
        " h  trace  theory",
        " 1    4.3   exact",
        "16  0.016       -",
    ]
    with pytest.raises(ValueError, match="^rows="):
        format_table([])
