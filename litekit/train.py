"""Meta-training step and evaluation.

`meta_train_step` is the LITE training step of the paper, plus query batching:
1. one no-grad pass over the support set per task, cached;
2. the query set in batches of ``query_batch``; for each batch a fresh LITE subset is
   re-embedded with gradient and the batch's share of the task loss is back-propagated;
3. one optimiser step for the accumulated gradient.

Weights. The task loss is the mean cross-entropy over the M query images,
L = (1/M) Σ_j ℓ_j. Batch b back-propagates L_b = (1/M) Σ_{j∈B_b} ℓ_j, so Σ_b L_b = L. Each
batch's LITE gradient is an unbiased estimate of ∇L_b (its subset is independent of the
others), hence the accumulated gradient is an unbiased estimate of ∇L, and equals it exactly
when h >= N. Over T tasks per step, each task is weighted 1/T.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from litekit._checks import bad_argument, check_int
from litekit.distributed import average_gradients, unwrap
from litekit.episodes import Episode
from litekit.learners.base import Learner, check_labels
from litekit.lite import Lite


@dataclass(frozen=True)
class StepResult:
    """Mean task loss (unscaled, whatever the convention) and query accuracy of a step."""

    loss: float
    accuracy: float


def _as_episodes(episode: Episode | Sequence[Episode]) -> list[Episode]:
    episodes = [episode] if isinstance(episode, Episode) else list(episode)
    if not episodes or not all(isinstance(e, Episode) for e in episodes):
        raise bad_argument("episode", episode, "pass an Episode or a non-empty list of Episodes.")
    return episodes


def accumulate_task_gradient(
    learner: Learner,
    episode: Episode,
    lite: Lite | None = None,
    query_batch: int | None = None,
    weight: float = 1.0,
) -> tuple[float, float]:
    """Add ``weight`` × (LITE estimate of ∇L) to the parameters' ``.grad``.

    Returns the task's loss L (its true value: LITE changes gradients, never values) and its
    query accuracy. Under ``lite.scaling == "loss"`` the back-propagated loss is L · N/h.
    """
    n_query = episode.n_query
    batch = n_query if query_batch is None else check_int("query_batch", query_batch, minimum=1)
    check_labels(episode.support_labels)
    support, labels = episode.support_images, episode.support_labels
    scale = weight * (lite.loss_scale(episode.n_support) if lite is not None else 1.0)
    cache = learner.cache_support(support, lite)
    total, correct = 0.0, 0
    for start in range(0, n_query, batch):
        queries = episode.query_images[start : start + batch]
        targets = episode.query_labels[start : start + batch].to(learner.device)
        logits = learner.task_logits(support, labels, queries, lite, cache)
        loss = F.cross_entropy(logits, targets, reduction="sum") / n_query
        (loss * scale).backward()
        total += loss.item()
        correct += int((logits.argmax(1) == targets).sum())
    return total, correct / n_query


def meta_train_step(
    learner: Learner,
    episode: Episode | Sequence[Episode],
    optimizer: torch.optim.Optimizer,
    lite: Lite | None = None,
    query_batch: int | None = None,
) -> StepResult:
    """One optimiser step on one task (or the mean over a list of tasks).

    Args:
        learner: a `Learner`; it is put in train mode (its backbone stays in eval mode
            unless the learner was built with ``backbone_mode="train"``).
        episode: an `Episode`, or a list of them (the paper uses 16 tasks per step). Under
            torchrun, each rank passes its own share of the step's tasks and the gradients
            are averaged over ranks (`litekit.distributed`).
        optimizer: steps once, after the whole task gradient is accumulated.
        lite: ``None`` back-propagates through every support image; ``Lite(h, ...)``
            through h of them, with a fresh subset per query batch.
        query_batch: query images per backward pass (gradient accumulation); ``None``
            processes the whole query set at once.
    """
    episodes = _as_episodes(episode)
    if query_batch is not None:
        check_int("query_batch", query_batch, minimum=1)
    learner = unwrap(learner)
    learner.train()
    optimizer.zero_grad(set_to_none=True)
    losses, accuracies = [], []
    for task in episodes:
        loss, accuracy = accumulate_task_gradient(
            learner, task, lite, query_batch, weight=1.0 / len(episodes)
        )
        losses.append(loss)
        accuracies.append(accuracy)
    average_gradients(learner.parameters())  # mean over ranks under torchrun; else nothing
    optimizer.step()
    return StepResult(sum(losses) / len(losses), sum(accuracies) / len(accuracies))


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


@torch.no_grad()
def evaluate(learner: Learner, episodes: Iterable[Episode], lite: Lite | None = None) -> Evaluation:
    """Query accuracy on each task, its mean and 95% confidence interval.

    Evaluation needs no gradient, so ``lite`` only sets the chunk size of the support pass
    (values are the same for any h). Pass a fixed list of episodes (or a loader from a seeded
    sampler) so that every model is scored on the same tasks.
    """
    was_training = learner.training
    learner.eval()
    try:
        accuracies = []
        for task in episodes:
            chunk = lite.chunk_size if lite is not None else 64
            logits = learner(
                task.support_images,
                task.support_labels,
                task.query_images,
                lite=Lite(0, chunk_size=chunk),
            )
            targets = task.query_labels.to(logits.device)
            accuracies.append(float((logits.argmax(1) == targets).float().mean()))
    finally:
        learner.train(was_training)
    mean, ci95 = confidence_interval(accuracies)
    return Evaluation(accuracies, mean, ci95)
