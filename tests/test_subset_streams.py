"""Each task of a run gets its own LITE subset stream, independent of the others.

`fit(..., subset_seed=s)` (what every command-line and torchrun run does) gives the task at
global position p a copy of its `Lite` whose generator is ``subset_generator(s, p)``. If the
streams did not depend on p, every task of a step would draw the same subsets: each task's
gradient would be a fixed function of the seed instead of a fresh random estimate, and the
overlap of a FiLM learner's two subsets would be the same in every task. These tests check
the streams themselves and the copies `fit` hands to the training step:

1. the streams of different positions differ, and the subsets two positions draw side by
   side are independent (joint inclusion frequencies against (h/N)², with a tolerance from
   Bernstein's inequality, as tests/test_estimator_sampling.py derives);
2. the same holds for the per-task `Lite` copies that `fit` passes to `meta_train_step`,
   and a real `fit` run draws each task's subsets from a stream of its own.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from helpers import make_episode, make_learner

import litekit.lite
import litekit.train.loop
from litekit import Lite
from litekit.train import fit
from litekit.train.loop import subset_generator
from litekit.train.step import StepResult

N, H = 6, 2
DRAWS = 4000  # subsets drawn from each stream of a checked pair
FAILURE_PROBABILITY = 1e-6  # of a whole frequency check, for independent uniform streams


def bernstein_z(cells: int, draws: int, p: float, alpha: float = FAILURE_PROBABILITY) -> float:
    """z such that any of ``cells`` binomial frequencies of probability p over ``draws``
    draws lies more than z standard errors from p with probability below ``alpha``.

    Bernstein: P(|p̂ - p| >= z·SE) <= 2 exp(-z² / (2(1 + c z))), c = 1/(3 sqrt(T p(1-p))),
    for every T. With a union bound over the cells, set it to alpha/cells, L = ln(2·cells/alpha):
    z = Lc + sqrt((Lc)² + 2L). (For the 3 pairs × (N² + 2N) = 144 cells at N = 6, h = 2,
    T = 4000: z = 6.6.)
    """
    log_term = math.log(2 * cells / alpha)
    c = 1 / (3 * math.sqrt(draws * p * (1 - p)))
    return log_term * c + math.sqrt((log_term * c) ** 2 + 2 * log_term)


def indicators(generator: torch.Generator, draws: int) -> torch.Tensor:
    """(T, N) 0/1 rows: the subsets ``draw_subset(N, h, generator)`` gives, one per row."""
    rows = torch.zeros(draws, N, dtype=torch.float64)
    for t in range(draws):
        rows[t, litekit.lite.draw_subset(N, H, generator)] = 1.0
    return rows


def worst_scores(first: torch.Tensor, second: torch.Tensor) -> dict[str, float]:
    """The largest |p̂ - p| / SE over the N² joint frequencies P(n ∈ H_t, m ∈ H'_t) (draw t
    of each stream, side by side; p = (h/N)² when the streams are independent) and the 2N
    marginals P(n ∈ H) (p = h/N, uniform subsets)."""
    draws = first.shape[0]
    scores = {}
    for name, observed, p in (
        ("joint", first.T @ second / draws, (H / N) ** 2),
        ("marginal", torch.cat([first.mean(0), second.mean(0)]), H / N),
    ):
        scores[name] = float(((observed - p).abs() / math.sqrt(p * (1 - p) / draws)).max())
    return scores


def check_independent(pairs: list[tuple[torch.Generator, torch.Generator]]) -> None:
    """Every pair of streams draws independent uniform subsets, side by side (see
    `bernstein_z`; the smallest checked probability, (h/N)² = 1/9, sets the tolerance).

    Power: two streams that are one and the same draw H_t = H'_t, so P(n ∈ H_t, n ∈ H'_t) =
    h/N = 1/3 instead of 1/9, 45 standard errors at T = 4000, against z = 6.6.
    """
    z = bernstein_z(len(pairs) * (N * N + 2 * N), DRAWS, (H / N) ** 2)
    assert 6 < z < 7
    for k, (a, b) in enumerate(pairs):
        scores = worst_scores(indicators(a, DRAWS), indicators(b, DRAWS))
        assert scores["marginal"] < z, f"pair {k}: subsets not uniform ({scores})"
        assert scores["joint"] < z, f"pair {k}: the two streams are not independent ({scores})"


def opening(generator: torch.Generator, length: int = 32) -> list[int]:
    """The first values of a stream (consumes them)."""
    return torch.randint(0, 2**30, (length,), generator=generator).tolist()


# --- 1. subset_generator itself ----------------------------------------------------------------


def test_streams_of_different_positions_differ():
    """Positions 0..7 of two seeds give 16 different streams (32 values of 30 bits each:
    equal openings by chance have probability ~2^-960); the same (seed, position) gives the
    same stream again."""
    openings = {
        (seed, position): opening(subset_generator(seed, position))
        for seed in (0, 11)
        for position in range(8)
    }
    distinct = {tuple(values) for values in openings.values()}
    assert len(distinct) == len(openings), "two positions (or seeds) share a subset stream"
    assert opening(subset_generator(11, 5)) == openings[11, 5]


def test_two_positions_draw_independent_subsets():
    """Side by side, the t-th subsets of positions p and q are independent: joint
    inclusion frequencies at (h/N)², for neighbouring and distant positions and two seeds."""
    check_independent(
        [
            (subset_generator(0, 0), subset_generator(0, 1)),
            (subset_generator(11, 3), subset_generator(11, 17)),
            (subset_generator(11, 1), subset_generator(11, 2)),
        ]
    )


def test_the_independence_check_rejects_one_shared_stream():
    """The check above fails for two copies of one stream (what a subset_generator that
    ignored the position would give), so it cannot pass vacuously."""
    with pytest.raises(AssertionError, match="not independent"):
        check_independent([(subset_generator(0, 4), subset_generator(0, 4))])


# --- 2. the per-task copies fit makes, and a real fit run -----------------------------------------


STEPS, TASKS_PER_STEP, SEED = 2, 3, 7


def lites_fit_hands_out(monkeypatch: pytest.MonkeyPatch, lite: Lite) -> list[Lite]:
    """The per-task `Lite` of every task of a 2-step, 3-task-per-step `fit` with a subset
    seed, as `fit` passes them to `meta_train_step` (recorded, not run), in position order."""
    seen: list[Lite] = []

    def record(learner, tasks, optimizer, *, lite, **_):
        assert isinstance(lite, list) and len(lite) == len(tasks)
        seen.extend(lite)
        return StepResult(1.0, 0.5)

    monkeypatch.setattr(litekit.train.loop, "meta_train_step", record)
    learner = make_learner("protonets")
    tasks = [make_episode(n_support=N, seed=s) for s in range(STEPS * TASKS_PER_STEP)]
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    fit(
        learner,
        tasks,
        optimizer,
        STEPS,
        lite,
        tasks_per_step=TASKS_PER_STEP,
        subset_seed=SEED,
        progress=False,
    )
    assert len(seen) == STEPS * TASKS_PER_STEP
    return seen


def test_fit_gives_every_task_its_own_independent_subset_stream(monkeypatch):
    """The copies `fit` hands to the training step keep the caller's settings, each has a
    generator of its own, their streams all differ (within a step and across steps), and
    side by side they draw independent subsets."""
    given = Lite(H, chunk_size=5, scaling="none")
    lites = lites_fit_hands_out(monkeypatch, given)
    assert all((x.h, x.chunk_size, x.scaling) == (H, 5, "none") for x in lites)
    generators = [x.generator for x in lites]
    assert all(isinstance(g, torch.Generator) for g in generators)
    assert len({id(g) for g in generators}) == len(generators)
    streams = [tuple(opening(g)) for g in generators]
    assert len(set(streams)) == len(streams), "two tasks of the run share a subset stream"
    fresh = lites_fit_hands_out(monkeypatch, given)  # the streams again, unconsumed
    check_independent(
        [(fresh[0].generator, fresh[1].generator), (fresh[2].generator, fresh[4].generator)]
    )


def test_a_fit_run_draws_each_tasks_subsets_from_its_own_stream(monkeypatch):
    """A real `fit` run (Simple CNAPs, two subsets per task and query batch): every subset
    comes from a generator, the tasks of the run use as many different streams as there are
    tasks, and the subsets of the tasks of a step are not all the same."""
    drawn: list[tuple[int, list[int]]] = []
    draw = litekit.lite.draw_subset

    def record(n, h, generator=None):
        assert generator is not None, "a fit run with a subset seed drew from the global stream"
        subset = draw(n, h, generator)
        drawn.append((generator.initial_seed(), subset.tolist()))
        return subset

    monkeypatch.setattr(litekit.lite, "draw_subset", record)
    learner = make_learner("simple_cnaps")
    n_support = 12
    tasks = [make_episode(n_support=n_support, seed=s) for s in range(STEPS * TASKS_PER_STEP)]
    fit(
        learner,
        tasks,
        torch.optim.SGD(learner.parameters(), lr=0.01),
        STEPS,
        Lite(3),
        tasks_per_step=TASKS_PER_STEP,
        query_batch=3,
        subset_seed=SEED,
        progress=False,
    )
    batches = math.ceil(tasks[0].n_query / 3)
    per_task = 2 * batches  # "set" and "features", per query batch
    assert len(drawn) == STEPS * TASKS_PER_STEP * per_task
    by_task = [drawn[k : k + per_task] for k in range(0, len(drawn), per_task)]
    seeds = [{seed for seed, _ in task} for task in by_task]
    assert all(len(s) == 1 for s in seeds), "one task drew from several streams"
    assert len(set().union(*seeds)) == len(by_task), "two tasks drew from the same stream"
    for first, second in itertools.combinations(by_task, 2):
        assert [s for _, s in first] != [s for _, s in second]
