"""Meta-Dataset's episode sampler against its formulas, over many seeded episodes.

Two kinds of check:

- **Per episode, exactly.** `MetaDatasetEpisodeSampler.describe` exposes each episode's
  random draws (way, classes, β, the log-weights, the superclass); the query size, the
  support size and every class's shots are recomputed here from the formulas and must be
  equal, and the drawn episode must have exactly that composition.
- **The draws' distributions.** Frequencies (of each way, each class, each superclass or
  source) are within a Bernstein bound of their exact probabilities, and the empirical CDFs
  of β and the log-weights within the Dvoretzky-Kiefer-Wolfowitz bound of the uniform CDF,
  each at a failure probability of 1e-6 (union-bounded over the values checked). The seeds
  are fixed, so the outcome is deterministic; the bounds say why the tolerance is neither
  loose enough to hide an off-by-one nor tight enough to fail by chance.

Output-only checks, which do not trust ``describe``: with classes of equal size (and no cap
binding), S/way − 1 = ⌊β·r⌋ is uniform on {0, ..., r − 1}, and the mean support size has an
exact value. `VariableEpisodeSampler` passes the same output-only checks.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from litekit import VariableEpisodeSampler
from litekit.md_episodes import MetaDatasetEpisodeSampler, MultiSourceSampler

DELTA = 1e-6


def bernstein(n: int, p: float, delta: float) -> float:
    """t with P(|p̂ - p| >= t) <= delta for a mean of n Bernoulli(p):
    2 exp(-n t² / (2 p (1 - p) + 2 t / 3)) = delta, solved for t."""
    log = math.log(2 / delta)
    a = 2 * log / 3
    return (a + math.sqrt(a * a + 8 * n * p * (1 - p) * log)) / (2 * n)


def dkw(n: int, delta: float) -> float:
    """sup |F̂ - F| <= this with probability 1 - delta (Dvoretzky-Kiefer-Wolfowitz, Massart)."""
    return math.sqrt(math.log(2 / delta) / (2 * n))


def check_frequencies(values: np.ndarray, probabilities: dict[int, float]) -> None:
    n = len(values)
    assert set(np.unique(values).tolist()) <= set(probabilities)
    for value, p in probabilities.items():
        observed = float(np.mean(values == value))
        bound = bernstein(n, p, DELTA / len(probabilities))
        assert abs(observed - p) < bound, (value, observed, p, bound)


def check_uniform(samples: np.ndarray, low: float, high: float) -> None:
    samples = np.sort((samples - low) / (high - low))
    assert samples.min() >= 0 and samples.max() < 1
    n = len(samples)
    cdf = np.arange(1, n + 1) / n
    gap = max(np.max(cdf - samples), np.max(samples - (cdf - 1 / n)))
    assert gap < dkw(n, DELTA), (gap, dkw(n, DELTA))


# Class sizes from 2 to 700: the query formula (⌊n/2⌋ < 10 for small classes), the cap of 100
# per class and the cap of 500 on S all bind in some episodes.
SIZES = np.array([2, 3, 5, 7, 9, 12, 15, 20, 21, 30, 40, 55, 80, 99, 100, 101, 120, 150,
                  200, 250, 300, 350, 400, 450, 500, 520, 600, 650, 700, 64, 33, 19, 8, 4,
                  110])  # fmt: skip
LABELS = np.repeat(np.arange(len(SIZES)) * 3 + 7, SIZES)  # labels need not be 0..C-1
EPISODES = 12000


def recompute(sampler: MetaDatasetEpisodeSampler, d) -> tuple[int, int, np.ndarray]:
    """query, S and shots from the formulas, given the episode's draws."""
    n = sampler.sizes[d.classes]
    query = min(10, int(min(n // 2)))
    remaining = n - query
    total = min(500, sum(math.floor(d.beta * min(100, int(r))) + 1 for r in remaining))
    weights = n * np.exp(d.log_weights)
    p = weights / weights.sum()
    shots = [
        min(int(r), math.floor(pc * (total - len(n))) + 1)
        for pc, r in zip(p, remaining, strict=True)
    ]
    return query, total, np.array(shots)


@pytest.fixture(scope="module")
def sampler() -> MetaDatasetEpisodeSampler:
    return MetaDatasetEpisodeSampler(LABELS, EPISODES, seed=3)


@pytest.fixture(scope="module")
def descriptions(sampler):
    return [sampler.describe(k) for k in range(EPISODES)]


def test_every_episode_follows_the_formulas(sampler, descriptions):
    caps = {"query < 10": 0, "S = 500": 0, "a class at its remaining": 0}
    for d in descriptions:
        query, total, shots = recompute(sampler, d)
        assert 5 <= d.way <= 35 and len(set(d.classes.tolist())) == d.way
        assert d.query == query and np.array_equal(d.shots, shots)
        assert d.shots.min() >= 1 and d.support_size <= 500
        caps["query < 10"] += query < 10
        caps["S = 500"] += total == 500
        caps["a class at its remaining"] += bool(np.any(shots == sampler.sizes[d.classes] - query))
        assert total == min(
            500, int(np.floor(d.beta * np.minimum(100, sampler.sizes[d.classes] - query) + 1).sum())
        )
    assert all(count > 50 for count in caps.values()), caps  # each branch is exercised


def test_episodes_have_the_described_composition(sampler):
    for k in range(0, 300):
        d, e = sampler.describe(k), sampler.episode(k)
        assert np.array_equal(e.class_ids, sampler.class_ids[d.classes])
        assert np.bincount(e.support_labels, minlength=d.way).tolist() == d.shots.tolist()
        assert np.bincount(e.query_labels, minlength=d.way).tolist() == [d.query] * d.way
        assert not set(e.support_indices.tolist()) & set(e.query_indices.tolist())
        assert np.array_equal(LABELS[e.support_indices], e.class_ids[e.support_labels])
        assert np.array_equal(LABELS[e.query_indices], e.class_ids[e.query_labels])


def test_the_draws_have_their_distributions(sampler, descriptions):
    ways = np.array([d.way for d in descriptions])
    check_frequencies(ways, {w: 1 / 31 for w in range(5, 36)})  # U{5..min(50, 35)}
    check_uniform(np.array([d.beta for d in descriptions]), 0.0, 1.0)
    check_uniform(np.concatenate([d.log_weights for d in descriptions]), math.log(0.5), math.log(2))
    # classes uniformly without replacement: P(c in episode) = E[way] / C for every class
    inclusion = np.zeros((EPISODES, len(SIZES)), dtype=bool)
    for k, d in enumerate(descriptions):
        inclusion[k, d.classes] = True
    p = np.mean(np.arange(5, 36)) / len(SIZES)
    for c in range(len(SIZES)):
        assert abs(inclusion[:, c].mean() - p) < bernstein(EPISODES, p, DELTA / len(SIZES))


def test_max_way_50_binds_with_many_classes():
    labels = np.repeat(np.arange(80), 4)
    s = MetaDatasetEpisodeSampler(labels, 4000, seed=1)
    ways = np.array([s.describe(k).way for k in range(4000)])
    check_frequencies(ways, {w: 1 / 46 for w in range(5, 51)})


def test_bilevel_one_superclass_per_episode():
    labels = np.repeat(np.arange(20), 10)
    groups = [list(range(0, 5)), list(range(5, 12)), list(range(12, 20))]
    s = MetaDatasetEpisodeSampler(labels, 6000, seed=2, superclasses=groups)
    picked = []
    for k in range(6000):
        d = s.describe(k)
        members = set(groups[d.superclass])
        assert set(s.class_ids[d.classes].tolist()) <= members
        assert 5 <= d.way <= len(members)
        picked.append((d.superclass, d.way))
    picked = np.array(picked)
    check_frequencies(picked[:, 0], {0: 1 / 3, 1: 1 / 3, 2: 1 / 3})
    for g, group in enumerate(groups):  # way ~ U{5..min(50, classes of the superclass)}
        ways = picked[picked[:, 0] == g, 1]
        check_frequencies(ways, {w: 1 / (len(group) - 4) for w in range(5, len(group) + 1)})


def test_a_source_with_superclasses_is_bilevel_by_default():
    class Source:
        targets = np.repeat(np.arange(12), 4).tolist()
        superclasses = [list(range(6)), list(range(6, 12))]

    s = MetaDatasetEpisodeSampler(Source(), 10, seed=0)
    assert s.superclasses is not None and s.describe(0).superclass is not None
    assert MetaDatasetEpisodeSampler(Source(), 10, bilevel=False).superclasses is None


def test_multi_source_uniform_over_sources_and_offsets():
    class Source:
        def __init__(self, classes: int, per: int, name: str) -> None:
            self.targets = np.repeat(np.arange(classes), per).tolist()
            self.name = name

        def __len__(self) -> int:
            return len(self.targets)

    sources = [Source(6, 4, "a"), Source(9, 3, "b"), Source(7, 5, "c")]
    s = MultiSourceSampler(sources, 6000, seed=4)
    chosen = np.array([s.describe(k).source for k in range(6000)])
    check_frequencies(chosen, {0: 1 / 3, 1: 1 / 3, 2: 1 / 3})
    offsets = [0, 24, 51]
    for k in range(60):
        e, source = s.episode(k), s.describe(k).source
        low, high = offsets[source], offsets[source] + len(sources[source])
        assert all(low <= i < high for i in [*e.support_indices, *e.query_indices])
        assert s.source_of(k) == "abc"[source]
        targets = np.array(sources[source].targets)
        assert np.array_equal(targets[e.support_indices - low], e.class_ids[e.support_labels])
    assert (
        s.episode(17).support_indices.tolist()
        == MultiSourceSampler(sources, 6000, 4).episode(17).support_indices.tolist()
    )


def simulate(
    sizes: list[int], n: int, seed: int, plus_one: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(way, N) of n episodes drawn by the formulas, written out plainly with Python's own
    random module: an implementation independent of the samplers'. ``plus_one=False`` is a
    plausible mistake (⌊β·x⌋ per class, without the + 1), to show the check can fail."""
    rng = random.Random(seed)
    ways, totals = [], []
    for _ in range(n):
        way = rng.randint(5, min(50, len(sizes)))
        chosen = [sizes[c] for c in rng.sample(range(len(sizes)), way)]
        query = min(10, min(c // 2 for c in chosen))
        beta = rng.random()
        support = sum(math.floor(beta * min(100, c - query)) + plus_one for c in chosen)
        support = min(500, max(way, support))
        weights = [c * math.exp(rng.uniform(math.log(0.5), math.log(2))) for c in chosen]
        shots = [
            min(c - query, math.floor(w / sum(weights) * (support - way)) + 1)
            for c, w in zip(chosen, weights, strict=True)
        ]
        ways.append(way)
        totals.append(sum(shots))
    return np.array(ways), np.array(totals)


def two_sample_gap(a: np.ndarray, b: np.ndarray) -> float:
    """sup_x |F_a(x) - F_b(x)| of two empirical CDFs."""
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


SMALL = np.array([6, 6, 7, 6, 8, 6, 9, 6, 6, 7, 6, 6])  # r_c of 3 or so: the + 1 matters


@pytest.mark.parametrize("table", ["mixed", "small"])
@pytest.mark.parametrize("kind", ["exact", "variable"])
def test_output_only_support_sizes_match_a_plain_simulation(kind, table):
    """Not trusting ``describe``: the way and the support size N of the drawn episodes have
    the distributions of the formulas simulated independently. Each empirical CDF is within
    dkw(n, δ/2) of the true one, so the two are within twice that of each other; on the
    small classes, a plausible mistake (no + 1) is further away than that."""
    n = 4000
    sizes = SIZES if table == "mixed" else SMALL
    labels = np.repeat(np.arange(len(sizes)) * 3 + 7, sizes)
    maker = MetaDatasetEpisodeSampler if kind == "exact" else VariableEpisodeSampler
    s = maker(labels, n, seed=5)
    ways, totals = [], []
    for k in range(n):
        e = s.episode(k)
        way = len(e.class_ids)
        query = min(10, int(min(sizes[(e.class_ids - 7) // 3] // 2)))
        assert np.bincount(e.query_labels).tolist() == [query] * way
        ways.append(way)
        totals.append(len(e.support_indices))
    ways, totals = np.array(ways), np.array(totals)
    top = min(50, len(sizes))
    check_frequencies(ways, {w: 1 / (top - 4) for w in range(5, top + 1)})
    plain_ways, plain_totals = simulate(sizes.tolist(), n, seed=6)
    bound = 2 * dkw(n, DELTA / 2)
    assert two_sample_gap(totals, plain_totals) < bound
    assert two_sample_gap(ways, plain_ways) < bound
    if table == "small":
        _, wrong_totals = simulate(sizes.tolist(), n, seed=7, plus_one=False)
        assert two_sample_gap(totals, wrong_totals) > bound  # that mistake would be caught
