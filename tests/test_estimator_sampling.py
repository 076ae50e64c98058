"""The LITE estimator through its real sampling path: subsets, their independence, weights.

LITE estimates the task gradient dL/dθ = g_Q + Σ_n g_n by ĝ = g_Q + (N/h) Σ_{n∈H} g_n, H
drawn uniformly without replacement (|H| = h). CNAPs-style learners use the support set
twice ("set" encoder and "features" extractor), and their set-encoder gradient is a product
of two support sums, so the two paths need two INDEPENDENT subsets. Other tests hand in
fixed subsets; these check what `Lite.draw` really produces, and that the estimator built on
it is exactly unbiased, per task, per query batch and per step:

1. the joint inclusion frequencies of `Lite.draw`'s two subsets (a bound derived below);
2. exact enumeration through `Lite.draw` (the subset source `litekit.lite.draw_subset` is
   scripted to run through every pair of subsets), for h < N;
3. per-task weights 1/T in one `meta_train_step` under LITE;
4. query batching with h < N for Simple CNAPs and CNAPs, by exact enumeration.

Each check is shown to fail on a deliberately broken sampler (a features subset that is a
shifted copy of the set subset, or one shared subset), so none of them passes vacuously.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import pytest
import torch
import torch.nn.functional as F
from helpers import gradient, make_episode, make_learner, relative_error

import litekit.lite
from litekit import Episode, Lite, meta_train_step

PATHS = ("set", "features")
FILM_KINDS = ["simple_cnaps", "cnaps"]
KINDS = ["protonets", *FILM_KINDS]


class ShiftedFeaturesLite(Lite):
    """Deliberately broken: the features subset is the set subset shifted by one, mod N.

    Each subset on its own is uniform, and the two are never equal (for 0 < h < N), but
    they are perfectly correlated: E[A·B] ≠ E[A]·E[B] for the two support sums. It calls
    the subset source as often as the correct `Lite.draw` does, so only the correlation
    differs.
    """

    def draw(self, n: int, paths: Sequence[str]) -> dict[str, torch.Tensor]:
        subsets = super().draw(n, paths)
        if "set" in subsets and "features" in subsets:
            subsets["features"] = ((subsets["set"] + 1) % n).sort().values
        return subsets


def make_lite(sampler: str, h: int, generator: torch.Generator | None = None) -> Lite:
    """The correct `Lite`, or one of the two broken samplers the tests must reject."""
    if sampler == "independent":
        return Lite(h, generator=generator)
    if sampler == "shifted":
        return ShiftedFeaturesLite(h, generator=generator)
    if sampler == "shared":
        return Lite(h, generator=generator, independent_subsets=False)
    raise ValueError(sampler)


# --- 1. the subsets themselves ------------------------------------------------------------

SAMPLING_CASES = [(6, 2), (7, 3), (5, 4)]  # (N, h)
DRAWS = 8000  # T draws of Lite.draw per case
FAILURE_PROBABILITY = 1e-6  # of the whole frequency test, for a correct sampler


def cells_per_case(n: int) -> int:
    """Frequencies checked per (N, h): N² joint, 2N marginals, N(N-1)/2 pairs per path."""
    return n * n + 2 * n + n * (n - 1)


def smallest_variance() -> float:
    """min p(1-p) over every probability p that the frequency test checks."""
    probabilities = [
        p for n, h in SAMPLING_CASES for p in ((h / n) ** 2, h / n, h * (h - 1) / (n * (n - 1)))
    ]
    return min(p * (1 - p) for p in probabilities)


def bonferroni_z() -> float:
    """z such that |p̂ - p| > z·SE in any checked cell has probability < 1e-6 (see below)."""
    cells = sum(cells_per_case(n) for n, _ in SAMPLING_CASES)
    log_term = math.log(2 * cells / FAILURE_PROBABILITY)
    c = 1 / (3 * math.sqrt(DRAWS * smallest_variance()))
    return log_term * c + math.sqrt((log_term * c) ** 2 + 2 * log_term)


Z = bonferroni_z()


def draw_indicators(lite: Lite, n: int, draws: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, N) 0/1 matrices: row t marks H_set and H_features of the t-th `Lite.draw`."""
    pairs = [lite.draw(n, PATHS) for _ in range(draws)]
    result = []
    for path in PATHS:
        index = torch.stack([p[path] for p in pairs])
        assert index.shape == (draws, lite.h), f"every {path} subset must hold h indices"
        rows = torch.zeros(draws, n, dtype=torch.float64).scatter_(1, index, 1.0)
        assert bool((rows.sum(1) == lite.h).all()), f"{path} subsets must hold distinct rows"
        result.append(rows)
    return result[0], result[1]


def frequencies(
    in_set: torch.Tensor, in_features: torch.Tensor
) -> dict[str, tuple[torch.Tensor, float]]:
    """Observed inclusion frequencies, each with the probability a correct sampler gives.

    Counting is three matrix products: (S^T F)[n, m] counts draws with n ∈ H_set and
    m ∈ H_features; the off-diagonal of S^T S counts draws holding both n and m.
    """
    draws, n = in_set.shape
    h = int(in_set[0].sum())
    upper = torch.triu_indices(n, n, offset=1)
    within = h * (h - 1) / (n * (n - 1))
    return {
        "joint (n in H_set, m in H_features)": ((in_set.T @ in_features / draws), (h / n) ** 2),
        "marginal n in H_set": (in_set.mean(0), h / n),
        "marginal n in H_features": (in_features.mean(0), h / n),
        "pair n, m in H_set": ((in_set.T @ in_set / draws)[upper[0], upper[1]], within),
        "pair n, m in H_features": (
            (in_features.T @ in_features / draws)[upper[0], upper[1]],
            within,
        ),
    }


def standard_scores(observed: torch.Tensor, p: float, draws: int) -> torch.Tensor:
    """|p̂ - p| in standard errors sqrt(p(1-p)/T) of a binomial proportion."""
    return (observed - p).abs() / math.sqrt(p * (1 - p) / draws)


@pytest.mark.parametrize(("n", "h"), SAMPLING_CASES)
def test_draw_gives_two_independent_uniform_subsets(n, h):
    """Over T = 8000 seeded draws, every inclusion frequency of `Lite.draw(N, paths)` is
    within z standard errors of a correct sampler's probability: P(n ∈ H_set, m ∈ H_features)
    = (h/N)² for EVERY pair (n = m included: independence), P(n ∈ H) = h/N per path, and
    P(n, m ∈ H) = h(h-1)/(N(N-1)) within a path (uniform without replacement).

    Tolerance. Each frequency p̂ is a binomial proportion over T i.i.d. draws, SE =
    sqrt(p(1-p)/T). The test checks K = Σ_cases (N² + 2N + N(N-1)) = 238 cells; by
    Bonferroni, a correct sampler fails with probability ≤ K · max_cell P(|p̂-p| > z·SE), so
    each cell needs P(|p̂-p| > z·SE) < α/K, α = 1e-6. The normal approximation would give
    z = Φ⁻¹(1 - α/(2K)) ≈ 5.9; to need no approximation at 6 SE we use Bernstein's
    inequality, P(|p̂-p| ≥ z·SE) ≤ 2 exp(-z² / (2(1 + c z))), c = 1/(3 sqrt(T p(1-p))), which
    holds for every T. Setting it to α/K with L = ln(2K/α) gives z² - 2Lc·z - 2L = 0, so
    z = Lc + sqrt((Lc)² + 2L); the smallest T p(1-p) (p = h(h-1)/(N(N-1)) = 1/15 at
    (6, 2): 498) makes c largest, hence z = 6.63 covers every cell.

    Power (T). A shifted copy H_features = H_set + 1 (mod N) has P(n ∈ H_set, n+1 ∈
    H_features) = P(n ∈ H_set) = h/N instead of (h/N)², a deviation (h/N)(1 - h/N) = 0.222,
    0.245, 0.160 for (6,2), (7,3), (5,4): 63, 57 and 30 standard errors at T = 8000 (its own
    diagonal, P(n ∈ H_set, n ∈ H_features) = P(n, n-1 ∈ H_set) = h(h-1)/(N(N-1)), is off
    too). One shared subset has P(n ∈ H_set, n ∈ H_features) = h/N: the same deviation on the
    diagonal. Both are ≥ 23 SE beyond the tolerance, which the companion test checks.
    The draws are seeded, so the outcome is deterministic.
    """
    lite = Lite(h, generator=torch.Generator().manual_seed(1000 * n + h))
    in_set, in_features = draw_indicators(lite, n, DRAWS)
    for name, (observed, p) in frequencies(in_set, in_features).items():
        scores = standard_scores(observed, p, DRAWS)
        worst = int(scores.argmax())
        assert float(scores.max()) < Z, (
            f"{name}: cell {worst} has frequency {float(observed.flatten()[worst]):.4f}, "
            f"{float(scores.max()):.1f} standard errors from {p:.4f} (tolerance {Z:.2f})"
        )


def correlated_joint(sampler: str, n: int, h: int) -> torch.Tensor:
    """Exact P(n ∈ H_set, m ∈ H_features) under a broken sampler (derived in the docstring
    above): h/N where the features subset surely holds m given n ∈ H_set, else the pair
    probability within one subset."""
    within = h * (h - 1) / (n * (n - 1))
    joint = torch.full((n, n), within, dtype=torch.float64)
    shift = 1 if sampler == "shifted" else 0
    for row in range(n):
        joint[row, (row + shift) % n] = h / n
    return joint


@pytest.mark.parametrize("sampler", ["shifted", "shared"])
@pytest.mark.parametrize(("n", "h"), SAMPLING_CASES)
def test_frequency_check_rejects_correlated_subsets(sampler, n, h):
    """The frequency test can fail: for the shifted copy and the shared subset, the exact
    joint probabilities sit at least 20 standard errors beyond the tolerance z (so T is
    large enough), and their seeded draws indeed exceed it."""
    p = (h / n) ** 2
    exact_scores = standard_scores(correlated_joint(sampler, n, h), p, DRAWS)
    assert float(exact_scores.max()) > Z + 20
    lite = make_lite(sampler, h, torch.Generator().manual_seed(1000 * n + h))
    in_set, in_features = draw_indicators(lite, n, DRAWS)
    observed, p = frequencies(in_set, in_features)["joint (n in H_set, m in H_features)"]
    assert float(standard_scores(observed, p, DRAWS).max()) > Z + 20


@pytest.mark.parametrize(("n", "h"), SAMPLING_CASES)
def test_shared_subset_when_not_independent(n, h):
    """``independent_subsets=False``: every draw gives both paths the same subset, so the
    joint frequency of (n ∈ H_set, m ∈ H_features) IS the within-path frequency of (n, m ∈ H)
    exactly (on the diagonal: the marginal), and each path stays uniform (z as above)."""
    lite = Lite(h, generator=torch.Generator().manual_seed(n + h), independent_subsets=False)
    in_set, in_features = draw_indicators(lite, n, DRAWS // 4)
    assert torch.equal(in_set, in_features)
    observed = frequencies(in_set, in_features)
    joint = observed["joint (n in H_set, m in H_features)"][0]
    assert torch.equal(joint, in_set.T @ in_set / len(in_set))
    assert torch.equal(joint.diagonal(), observed["marginal n in H_set"][0])
    marginal, p = observed["marginal n in H_set"]
    assert float(standard_scores(marginal, p, len(in_set)).max()) < Z


# --- 2. exact enumeration through Lite.draw -----------------------------------------------


class ScriptedSubsets:
    """A stand-in for `litekit.lite.draw_subset` that returns, call after call, the subsets
    of every configuration in ``itertools.product(combinations(N, h), repeat=per_config)``.

    Configurations are consumed ``per_config`` calls at a time, in order; the product is
    symmetric in its factors, so the enumeration is exact whichever path (or query batch)
    draws first. Calling with another (N, h), or after the script is spent, fails.
    """

    def __init__(self, n: int, h: int, per_config: int) -> None:
        self.n, self.h = n, h
        combos = [torch.tensor(c) for c in itertools.combinations(range(n), h)]
        self.configs = len(combos) ** per_config
        self.script = [s for config in itertools.product(combos, repeat=per_config) for s in config]
        self.used = 0

    def __call__(self, n: int, h: int, generator: torch.Generator | None = None) -> torch.Tensor:
        assert (n, h) == (self.n, self.h), f"draw_subset({n}, {h}), expected ({self.n}, {self.h})"
        assert self.used < len(self.script), "the draws asked for more subsets than scripted"
        self.used += 1
        return self.script[self.used - 1].clone()

    @property
    def remaining(self) -> int:
        return len(self.script) - self.used


def forward_gradient(learner: torch.nn.Module, episode: Episode, lite: Lite) -> torch.Tensor:
    """The gradient of the mean query cross-entropy through ``learner(..., lite=lite)``."""
    learner.zero_grad(set_to_none=True)
    learner.train()
    logits = learner(episode.support_images, episode.support_labels, episode.query_images, lite)
    F.cross_entropy(logits, episode.query_labels).backward()
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
            for p in learner.parameters()
        ]
    )


def enumerate_draws(
    monkeypatch: pytest.MonkeyPatch,
    source: ScriptedSubsets,
    estimate: Callable[[], torch.Tensor],
) -> tuple[torch.Tensor, int]:
    """Mean of ``estimate()`` over calls until ``source`` is spent, and the number of calls.

    With `Lite.draw` correct, each call consumes one configuration, so the calls number
    ``source.configs`` and the mean is the exact expectation over independent uniform
    subsets. A call that consumes nothing fails (it would loop forever).
    """
    monkeypatch.setattr(litekit.lite, "draw_subset", source)
    total, calls = None, 0
    while source.remaining:
        before = source.used
        g = estimate()
        assert source.used > before, "an estimate drew no subset from litekit.lite.draw_subset"
        total = g if total is None else total + g
        calls += 1
    return total / calls, calls


ENUM_N, ENUM_H = 5, 2
ENTRY_POINTS = {"learner": forward_gradient, "step": gradient}


@pytest.fixture(scope="module")
def enum_episode() -> Episode:
    return make_episode(n_support=ENUM_N, way=3, n_query=4, seed=5)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("kind", FILM_KINDS)
def test_real_draws_are_exactly_unbiased(kind, entry, enum_episode, monkeypatch):
    """`Lite(h)`'s own draws, over every (H_set, H_features) pair, average to the full
    gradient, through the learner's forward and through the training step's path.

    The subset source is scripted through all C(5,2)² = 100 pairs, so the mean is the exact
    expectation: the only error left is float64 rounding (~1e-16 per operation), and 1e-9
    leaves six orders of magnitude below the 1e-3 a correlated sampler shows (next test).
    Two subsets per draw are consumed (2 × 100 calls), or the check fails.
    """
    learner = make_learner(kind)
    estimate = ENTRY_POINTS[entry]
    full = estimate(learner, enum_episode, None)
    source = ScriptedSubsets(ENUM_N, ENUM_H, per_config=len(PATHS))
    mean, calls = enumerate_draws(
        monkeypatch, source, lambda: estimate(learner, enum_episode, Lite(ENUM_H))
    )
    assert calls == source.configs == math.comb(ENUM_N, ENUM_H) ** 2
    assert source.used == 2 * source.configs
    assert relative_error(mean, full) < 1e-9


@pytest.mark.parametrize("sampler", ["shifted", "shared"])
@pytest.mark.parametrize("kind", FILM_KINDS)
def test_enumeration_through_draw_catches_correlated_subsets(
    kind, sampler, enum_episode, monkeypatch
):
    """The enumeration above fails for a broken `Lite.draw`.

    The shifted copy consumes the script at the right rate, so only its bias shows: > 1e-3
    relative. One shared subset consumes one subset per draw: the enumeration then runs
    over 200 draws (each of the 10 subsets 20 times, shared by both paths), which the call
    count rejects, and the mean is the exact shared-subset expectation, also > 1e-3 off.
    """
    learner = make_learner(kind)
    full = gradient(learner, enum_episode)
    source = ScriptedSubsets(ENUM_N, ENUM_H, per_config=len(PATHS))
    mean, calls = enumerate_draws(
        monkeypatch, source, lambda: gradient(learner, enum_episode, make_lite(sampler, ENUM_H))
    )
    assert relative_error(mean, full) > 1e-3
    assert (calls == source.configs) == (sampler == "shifted")


# --- 3. per-task weights under LITE in one process -----------------------------------------


def step_update(
    learner: torch.nn.Module,
    tasks: list[Episode],
    lites: list[Lite],
    query_batch: int | None = None,
) -> torch.Tensor:
    """θ_before - θ_after of one `meta_train_step` with SGD(lr=1): the step's gradient.

    The parameters are restored afterwards, so repeated calls see the same θ.
    """
    before = [p.detach().clone() for p in learner.parameters()]
    optimizer = torch.optim.SGD(learner.parameters(), lr=1.0)
    meta_train_step(learner, tasks, optimizer, lite=lites, query_batch=query_batch)
    update = torch.cat(
        [(b - p.detach()).flatten() for b, p in zip(before, learner.parameters(), strict=True)]
    )
    with torch.no_grad():
        for b, p in zip(before, learner.parameters(), strict=True):
            p.copy_(b)
    return update


def fixed_subsets(kind: str, n: int, h: int, seed: int) -> dict[str, list[int]]:
    """A fixed subset of h of N rows per support path of ``kind``, different per path."""
    paths = ("features",) if kind == "protonets" else PATHS
    g = torch.Generator().manual_seed(seed)
    return {p: torch.randperm(n, generator=g)[:h].sort().values.tolist() for p in paths}


WEIGHT_TASKS = [(4, 2), (5, 3), (3, 1)]  # (N, h) of each task in the step


@pytest.mark.parametrize("kind", KINDS)
def test_step_applies_the_mean_of_per_task_lite_gradients(kind):
    """Three tasks of different N and h, each with its own `Lite` (fixed subsets, so the
    estimate is deterministic): the update of one SGD(lr=1) step is the MEAN of the tasks'
    LITE gradients computed one by one, to 1e-12 relative (float64 rounding of θ - (θ - g)
    is ~1e-16 |θ|/|g|). Without the 1/T weight the step would apply their sum, which is
    T = 3 times larger: the update is exactly 1/3 of the sum, a relative error of 2/3.
    Different N, h and subsets per task also catch a step that gives every task one Lite.
    """
    learner = make_learner(kind)
    tasks = [
        make_episode(n_support=n, way=3, n_query=4, seed=10 + i)
        for i, (n, _) in enumerate(WEIGHT_TASKS)
    ]
    lites = [
        Lite(h, subsets=fixed_subsets(kind, n, h, seed=i)) for i, (n, h) in enumerate(WEIGHT_TASKS)
    ]
    per_task = [gradient(learner, t, lite) for t, lite in zip(tasks, lites, strict=True)]
    summed = sum(per_task)
    mean = summed / len(tasks)
    update = step_update(learner, tasks, lites)
    assert relative_error(update, mean) < 1e-12
    assert relative_error(update, summed) == pytest.approx(1 - 1 / len(tasks), rel=1e-9)
    full = gradient(learner, tasks[0])
    assert relative_error(per_task[0], full) > 1e-3, "the fixed subsets must change something"


def all_pairs(kind: str, n: int, h: int) -> list[dict[str, list[int]]]:
    """Every fixed-subset assignment for one task: C(N,h) or C(N,h)² (one per path)."""
    combos = [list(c) for c in itertools.combinations(range(n), h)]
    if kind == "protonets":
        return [{"features": c} for c in combos]
    return [{"set": a, "features": b} for a in combos for b in combos]


ENUM_TASKS = [(3, 1), (3, 2)]  # (N, h): two tasks, h < N in both


@pytest.mark.parametrize("kind", KINDS)
def test_expected_step_gradient_is_the_mean_of_full_task_gradients(kind):
    """Enumerating every task's subsets jointly (the product of the two tasks' assignments:
    9 for ProtoNets, 81 for the FiLM learners), the mean update of a two-task step equals the
    mean of the tasks' FULL gradients to 1e-9 (exact expectation, float64 rounding only), and
    is half their sum (the 1/T weight)."""
    learner = make_learner(kind)
    tasks = [
        make_episode(n_support=n, way=2, n_query=3, seed=20 + i)
        for i, (n, _) in enumerate(ENUM_TASKS)
    ]
    options = [all_pairs(kind, n, h) for n, h in ENUM_TASKS]
    updates = [
        step_update(
            learner,
            tasks,
            [Lite(h, subsets=s) for (_, h), s in zip(ENUM_TASKS, chosen, strict=True)],
        )
        for chosen in itertools.product(*options)
    ]
    expected = torch.stack(updates).mean(0)
    summed = sum(gradient(learner, t) for t in tasks)
    assert relative_error(expected, summed / len(tasks)) < 1e-9
    assert relative_error(expected, summed) == pytest.approx(1 - 1 / len(tasks), rel=1e-6)


# --- 4. query batching with h < N, for the FiLM learners -----------------------------------

BATCH_N, BATCH_H, QUERIES, QUERY_BATCH = 3, 2, 4, 2


@pytest.mark.parametrize("sampler", ["independent", "shifted"])
@pytest.mark.parametrize("kind", FILM_KINDS)
def test_query_batched_lite_is_unbiased_by_enumeration(kind, sampler, monkeypatch):
    """N = 3, h = 2, two query batches, each drawing fresh subsets for both paths: the
    subset source runs through all C(3,2)^(2·2) = 81 configurations (4 subsets per step
    gradient), and the mean of the training step's gradient equals the full gradient to 1e-9
    (exact expectation; float64 rounding only). The same enumeration with the shifted-copy
    sampler is > 1e-3 off, so the check can fail; a step that drew once per task instead of
    once per batch would consume 2 subsets per gradient and fail the call count.
    """
    learner = make_learner(kind)
    episode = make_episode(n_support=BATCH_N, way=2, n_query=QUERIES, seed=7)
    full = gradient(learner, episode)
    batches = math.ceil(QUERIES / QUERY_BATCH)
    source = ScriptedSubsets(BATCH_N, BATCH_H, per_config=batches * len(PATHS))
    mean, calls = enumerate_draws(
        monkeypatch,
        source,
        lambda: gradient(learner, episode, make_lite(sampler, BATCH_H), query_batch=QUERY_BATCH),
    )
    assert calls == source.configs == 81
    if sampler == "independent":
        assert relative_error(mean, full) < 1e-9
    else:
        assert relative_error(mean, full) > 1e-3
