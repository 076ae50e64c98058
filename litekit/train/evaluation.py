"""Evaluation on fixed tasks: per-task accuracy, mean and a 95% confidence interval."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from litekit._checks import bad_argument
from litekit.distributed import (
    gather_objects,
    is_distributed,
    rank_and_world,
    same_outcome_on_every_rank,
    unwrap,
)
from litekit.episodes import Episode
from litekit.learners.base import Learner
from litekit.learners.checks import check_labels, check_query_labels, check_task_tensors
from litekit.lite import Lite
from litekit.precision import check_precision
from litekit.train.stream import EpisodeStream


@dataclass(frozen=True)
class Evaluation:
    """Accuracy over evaluation tasks: per task, mean, and a 95% confidence interval.

    ``ci95`` is the half-width 1.96 · s / √n, with s the sample standard deviation of the
    per-task accuracies and n the number of tasks (a normal approximation to the mean).
    """

    accuracies: list[float]
    mean: float
    ci95: float

    def __str__(self) -> str:
        return (
            f"{100 * self.mean:.1f}% ± {100 * self.ci95:.1f} (95% CI, {len(self.accuracies)} tasks)"
        )


# What `confidence_interval` computes, in words, for the notes of an evaluation's results
INTERVAL_NOTE = (
    "95% interval: 1.96 * s / sqrt(n), s the sample standard deviation (ddof=1), n = tasks"
)


def confidence_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% half-width 1.96 · s / √n (s with n - 1 in the denominator)."""
    n = len(values)
    if n == 0:
        raise bad_argument("values", values, "pass at least one value.")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(variance / n)


def _check(learner: Any, task: Episode) -> None:
    """The task's shapes and labels, query labels included (a label outside the support
    set's classes would otherwise be scored as simply wrong)."""
    if isinstance(learner, Learner):
        learner.check_task(
            task.support_images, task.support_labels, task.query_images, task.query_labels
        )
        return
    check_task_tensors(task.support_images, task.support_labels, task.query_images)
    check_query_labels(task.query_labels, check_labels(task.support_labels), task.n_query)


def _accuracy(learner: Any, task: Episode, settings: dict[str, Any]) -> float:
    _check(learner, task)
    # The support pass in chunks (h = 0, a private generator: evaluating draws nothing from
    # torch's global random stream, so validation inside `fit` never changes training),
    # except where batch statistics make chunks change the values: then all at once.
    coupled = isinstance(learner, Learner) and learner.batch_coupled_layers()
    if coupled:
        lite = Lite.full(**settings)
    else:
        lite = Lite(0, generator=torch.Generator(), **settings)
    logits = learner(task.support_images, task.support_labels, task.query_images, lite=lite)
    targets = task.query_labels.to(logits.device)
    return float((logits.argmax(1) == targets).float().mean())


@torch.no_grad()
def evaluate(
    learner: Learner,
    episodes: Iterable[Episode],
    lite: Lite | None = None,
    *,
    across_ranks: bool = False,
    precision: str | None = None,
    channels_last: bool | None = None,
) -> Evaluation:
    """Query accuracy on each task, its mean and 95% confidence interval.

    Evaluation needs no gradient, so ``lite`` only sets the chunk size, precision and memory
    layout of the support pass (values are the same for any h); ``precision`` and
    ``channels_last``, when given, override its own (`litekit.precision`). Pass a fixed
    list of episodes (or a loader from a seeded sampler: the same seed gives the same
    tasks) so that every model is scored on the same tasks. The confidence interval is the
    normal approximation mean ± 1.96 · s / √n over the n tasks, s their sample standard
    deviation (see `Evaluation`).

    ``across_ranks=True`` under torchrun: every rank must call it with the same tasks; rank
    r scores tasks r, r + W, r + 2W, ... (a loader loads only those), the per-task accuracies
    are gathered in task order, and every rank returns the same `Evaluation` that one
    process scoring all the tasks would. Outside a process group it changes nothing. The
    default (False) scores every task in this process, so it is safe to call on one rank.
    """
    learner = unwrap(learner)
    settings = {
        "chunk_size": 64 if lite is None else lite.chunk_size,
        "precision": check_precision(precision or (lite.precision if lite is not None else "fp32")),
        "channels_last": bool(
            channels_last if channels_last is not None else lite is not None and lite.channels_last
        ),
    }
    was_training = learner.training
    learner.eval()
    try:
        if across_ranks and is_distributed():
            rank, world = rank_and_world()
            stream = EpisodeStream(episodes, name="validation")
            # A bad task on one rank raises on every rank, rather than leaving the others
            # waiting in the gather.
            mine = same_outcome_on_every_rank(
                lambda: [
                    (p, _accuracy(learner, task, settings))
                    for p, task in stream.all_with_positions(lambda p: p % world == rank)
                ]
            )
            scored = sorted(pair for part in gather_objects(mine) for pair in part)
            accuracies = [accuracy for _, accuracy in scored]
        else:
            accuracies = [_accuracy(learner, task, settings) for task in episodes]
    finally:
        learner.train(was_training)
    if not accuracies:
        raise bad_argument("episodes", episodes, "pass at least one episode to score.")
    mean, ci95 = confidence_interval(accuracies)
    return Evaluation(accuracies, mean, ci95)
