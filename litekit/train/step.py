"""The meta-training step: LITE on each task, query batching, one optimiser step.

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

Several processes (torchrun). The T tasks of a step are split over the W ranks; rank r holds
T_r of them (Σ_r T_r = T). Each rank weights its tasks by W/T and the ranks average their
gradients (`litekit.distributed.average_gradients`), so every rank gets
(1/W) Σ_r (W/T) Σ_{t on r} g_t = (1/T) Σ_t g_t: the mean over all T tasks, exactly as one
process stepping on all of them, whether or not W divides T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from litekit._checks import bad_argument, check_int
from litekit.distributed import average_gradients, is_distributed, rank_and_world, unwrap
from litekit.episodes import Episode
from litekit.learners.base import Learner, check_labels
from litekit.lite import Lite


@dataclass(frozen=True)
class StepResult:
    """Mean task loss (unscaled, whatever the convention) and query accuracy of a step.

    Under torchrun both are means over all the step's tasks, on every rank.
    """

    loss: float
    accuracy: float


def _as_episodes(episode: Episode | Sequence[Episode]) -> list[Episode]:
    episodes = [episode] if isinstance(episode, Episode) else list(episode)
    if not episodes or not all(isinstance(e, Episode) for e in episodes):
        raise bad_argument("episode", episode, "pass an Episode or a non-empty list of Episodes.")
    return episodes


def _per_task_lites(lite: Lite | Sequence[Lite | None] | None, count: int) -> list[Lite | None]:
    if lite is None or isinstance(lite, Lite):
        return [lite] * count
    if isinstance(lite, Sequence) and not isinstance(lite, str):
        lites = list(lite)
        if len(lites) == count and all(x is None or isinstance(x, Lite) for x in lites):
            return lites
    raise bad_argument(
        "lite",
        lite,
        f"pass None (full back-propagation), a Lite(h, ...), or a list of {count} of them "
        "(one per task).",
    )


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
    lite: Lite | Sequence[Lite | None] | None = None,
    query_batch: int | None = None,
    *,
    total_tasks: int | None = None,
) -> StepResult:
    """One optimiser step on one task (or the mean over a list of tasks).

    Args:
        learner: a `Learner` (or one wrapped in DistributedDataParallel: it is unwrapped,
            see `litekit.distributed`); it is put in train mode (its backbone stays in eval
            mode unless the learner was built with ``backbone_mode="train"``).
        episode: an `Episode`, or a list of them (the paper uses 16 tasks per step). Under
            torchrun, each rank passes its own share of the step's tasks.
        optimizer: steps once, after the whole task gradient is accumulated.
        lite: ``None`` back-propagates through every support image; ``Lite(h, ...)``
            through h of them, with a fresh subset per query batch; or one of those per task
            (`fit` gives each task its own seeded subset generator this way).
        query_batch: query images per backward pass (gradient accumulation); ``None``
            processes the whole query set at once.
        total_tasks: the number of tasks in this step over all ranks. Default: this rank's
            count times the world size (equal shares; the count alone in one process).
            Pass it when the ranks hold different numbers of tasks; the step checks that the
            counts add up to it before the optimiser steps.

    Under torchrun the gradient, loss and accuracy are means over all ``total_tasks`` tasks
    and every rank applies the same update (see the module docstring).
    """
    episodes = _as_episodes(episode)
    lites = _per_task_lites(lite, len(episodes))
    if query_batch is not None:
        check_int("query_batch", query_batch, minimum=1)
    _, world = rank_and_world()
    total = len(episodes) * world if total_tasks is None else total_tasks
    total = check_int(
        "total_tasks",
        total,
        minimum=len(episodes),
        fix=f"this process holds {len(episodes)} task(s); pass the step's task count over all "
        "processes (at least that).",
    )
    if not is_distributed() and total != len(episodes):
        raise bad_argument(
            "total_tasks",
            total_tasks,
            f"one process holds all {len(episodes)} task(s) of the step; pass "
            f"total_tasks={len(episodes)} or leave it out.",
        )
    for task in episodes:  # every task's labels, before any gradient is touched
        check_labels(task.support_labels)
    learner = unwrap(learner)
    learner.train()
    optimizer.zero_grad(set_to_none=True)
    weight = world / total
    losses, accuracies = 0.0, 0.0
    for task, task_lite in zip(episodes, lites, strict=True):
        loss, accuracy = accumulate_task_gradient(learner, task, task_lite, query_batch, weight)
        losses += loss
        accuracies += accuracy
    if is_distributed():
        sums = torch.tensor(
            [losses, accuracies, float(len(episodes))], dtype=torch.float64, device=learner.device
        )
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
        losses, accuracies, count = sums.tolist()
        if round(count) != total:
            optimizer.zero_grad(set_to_none=True)  # nothing of this step is applied
            raise bad_argument(
                "total_tasks",
                total,
                f"the processes hold {round(count)} tasks in all; pass that number, or give "
                "every process the same number of tasks and leave total_tasks out.",
            )
    average_gradients(learner.parameters())  # mean over ranks under torchrun; else nothing
    optimizer.step()
    return StepResult(losses / total, accuracies / total)
