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
when h >= N. Over T tasks per step, each task is weighted 1/T. Under torchrun the T tasks
are split over the processes; `litekit.distributed.finish_step` is the one place that
combines them (weights W/T per process, then one gradient average: still the mean over T).

Faults. A task whose loss is not finite (a NaN pixel, an overflow) is caught before the
optimiser steps (its loss is read after its batch's backward pass, and its gradient taken
back out): by default the step stops with an error naming the task and the offending
input, and neither the weights nor the optimiser change (``on_nonfinite="raise"``);
``on_nonfinite="skip"`` leaves such tasks out of the step and averages over the others.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from litekit._checks import bad_argument, check_choice, check_int
from litekit._deprecated import renamed_keywords
from litekit.distributed import (
    CollectiveError,
    StepSums,
    finish_step,
    same_outcome_on_every_rank,
    task_share,
    unwrap,
)
from litekit.episodes import Episode
from litekit.learners.base import Learner, SupportCache
from litekit.learners.checks import nonfinite_inputs
from litekit.lite import Lite, with_precision

NONFINITE_POLICIES = ("raise", "skip")


class NonFiniteLossError(ValueError):
    """A task's loss (or the step's gradient) is NaN or infinite; nothing was applied."""


class CollectiveNonFiniteLossError(NonFiniteLossError, CollectiveError):
    """`NonFiniteLossError` raised by every rank together under torchrun."""


@dataclass(frozen=True)
class StepResult:
    """Mean task loss (unscaled, whatever the convention) and query accuracy of a step, over
    the tasks that counted, and how many tasks were skipped (``on_nonfinite="skip"``).

    Under torchrun all three are over all the step's tasks, on every rank. When every task
    was skipped, no update was made and loss and accuracy are NaN.
    """

    loss: float
    accuracy: float
    skipped: int = 0

    @classmethod
    def of(cls, sums: StepSums) -> StepResult:
        """The means over the tasks that counted (NaN when none did), from the step's sums."""
        if sums.counted == 0:
            return cls(math.nan, math.nan, sums.skipped)
        return cls(sums.loss_sum / sums.counted, sums.accuracy_sum / sums.counted, sums.skipped)


def _as_episodes(episodes: Episode | Sequence[Episode]) -> list[Episode]:
    found = [episodes] if isinstance(episodes, Episode) else list(episodes)
    if not found or not all(isinstance(e, Episode) for e in found):
        raise bad_argument("episodes", episodes, "pass an Episode or a non-empty list of Episodes.")
    return found


def _per_task_lites(
    lite: Lite | Sequence[Lite | None] | None,
    count: int,
    precision: str | None,
    channels_last: bool | None,
) -> list[Lite | None]:
    """One `Lite` (or None) per task, in ``precision`` and ``channels_last`` where given."""
    if lite is None or isinstance(lite, Lite):
        lites = [lite] * count
    elif isinstance(lite, Sequence) and not isinstance(lite, str):
        lites = list(lite)
    else:
        lites = []
    if len(lites) != count or not all(x is None or isinstance(x, Lite) for x in lites):
        raise bad_argument(
            "lite",
            lite,
            f"pass None (full back-propagation), a Lite(h, ...), or a list of {count} of them "
            "(one per task).",
        )
    return [with_precision(x, precision, channels_last) for x in lites]


def _check_step_settings(
    lites: list[Lite | None],
    query_batch: int | None,
    on_nonfinite: str,
    scaler: torch.amp.GradScaler | None,
) -> None:
    if scaler is None and any(x is not None and x.precision == "fp16" for x in lites):
        raise bad_argument(
            "scaler",
            None,
            "float16 gradients need a gradient scaler: pass scaler=torch.amp.GradScaler() "
            "and reuse it every step (fit keeps one for you), or use precision='bf16'.",
        )
    if query_batch is not None:
        check_int("query_batch", query_batch, minimum=1)
    check_choice("on_nonfinite", on_nonfinite, NONFINITE_POLICIES)


def accumulate_task_gradient(
    learner: Learner,
    episode: Episode,
    lite: Lite | None = None,
    query_batch: int | None = None,
    weight: float = 1.0,
    scaler: torch.amp.GradScaler | None = None,
    cache: SupportCache | None = None,
) -> tuple[float, float]:
    """Add ``weight`` × (LITE estimate of ∇L) to the parameters' ``.grad``.

    Returns the task's loss L (its true value: LITE changes gradients, never values) and its
    query accuracy. Under ``lite.scaling == "loss"`` the back-propagated loss is L · N/h.
    With a float16 ``scaler`` the loss is scaled before its backward pass. ``cache``: the
    support pass (`Learner.cache_support`) when the caller made it already (the diagnostics
    reuse one pass for thousands of gradients); None runs it here. Raises
    `NonFiniteLossError` after the backward pass of a non-finite batch loss: the caller
    clears or restores ``.grad`` (`meta_train_step` does).
    """
    n_query = episode.n_query
    batch = n_query if query_batch is None else check_int("query_batch", query_batch, minimum=1)
    support_images, support_labels = episode.support_images, episode.support_labels
    if cache is None:  # the no-grad pass, once for every query batch
        cache = learner.cache_support(support_images, lite)
    # the task's weight in the step, times LITE's loss factor (N/h under "loss", else 1)
    scale = weight * (lite.loss_scale(episode.n_support) if lite is not None else 1.0)
    total, correct = 0.0, 0
    for start in range(0, n_query, batch):
        query_images = episode.query_images[start : start + batch]
        targets = episode.query_labels[start : start + batch].to(learner.device)
        logits = learner.task_logits(support_images, support_labels, query_images, lite, cache)
        # the batch's share of the task's mean loss: the batches' shares sum to it
        loss = F.cross_entropy(logits, targets, reduction="sum") / n_query
        scaled = loss * scale
        (scaled if scaler is None else scaler.scale(scaled)).backward()
        value = loss.item()  # after the backward is queued: no wait between the two
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the loss of query images {start}..{start + len(targets) - 1}"
            )
        total += value
        correct += int((logits.argmax(1) == targets).sum())
    return total, correct / n_query


@renamed_keywords(episode="episodes")
def meta_train_step(
    learner: Learner,
    episodes: Episode | Sequence[Episode],
    optimizer: torch.optim.Optimizer,
    lite: Lite | Sequence[Lite | None] | None = None,
    query_batch: int | None = None,
    *,
    total_tasks: int | None = None,
    on_nonfinite: str = "raise",
    precision: str | None = None,
    channels_last: bool | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> StepResult:
    """One optimiser step on one task (or the mean over a list of tasks).

    Args:
        learner: a `Learner` (or one wrapped in DistributedDataParallel: it is unwrapped,
            see `litekit.distributed`); it is put in train mode (its image encoders stay in
            eval mode unless the learner was built with ``backbone_mode="train"``).
        episodes: an `Episode`, or a list of them (the paper uses 16 tasks per step). Under
            torchrun, each rank passes its own share of the step's tasks. The old keyword
            ``episode=`` still works, with a warning.
        optimizer: steps once, after the whole task gradient is accumulated.
        lite: ``None`` back-propagates through every support image; ``Lite(h, ...)``
            through h of them, with a fresh subset per query batch; or one of those per task
            (`fit` gives each task its own seeded subset generator this way).
        query_batch: query images per backward pass (gradient accumulation); ``None``
            processes the whole query set at once.
        total_tasks: the number of tasks in this step over all ranks. Default: this rank's
            count times the world size (equal shares; the count alone in one process).
        on_nonfinite: ``"raise"`` (default) stops on a task whose loss is not finite, or on a
            non-finite gradient, with nothing changed; ``"skip"`` leaves such tasks (or
            such a step) out and reports how many in `StepResult.skipped`.
        precision, channels_last: run every task's backbone passes in this precision
            (``"fp32"``, ``"bf16"``, ``"fp16"``) and memory layout, overriding the Lite's
            own settings (`litekit.precision`); None keeps them.
        scaler: a `torch.amp.GradScaler`, required for ``"fp16"`` and kept across steps
            (`litekit.train.fit` keeps one); it scales the loss and steps the optimiser,
            skipping a step whose float16 gradient overflowed.

    Every task is checked (shapes, labels, channels, layers that would bias LITE) before any
    gradient is touched. Under torchrun the gradient, loss and accuracy are means over all
    ``total_tasks`` tasks and every rank applies the same update.
    """
    episodes = _as_episodes(episodes)
    lites = _per_task_lites(lite, len(episodes), precision, channels_last)
    _check_step_settings(lites, query_batch, on_nonfinite, scaler)
    share = task_share(len(episodes), total_tasks)
    learner = unwrap(learner)
    # Every task before any gradient is touched; under torchrun every rank raises together.
    same_outcome_on_every_rank(lambda: _check_tasks(learner, episodes, lites))
    _warn_if_query_path_only(lites, episodes)

    learner.train()
    optimizer.zero_grad(set_to_none=True)
    sums = StepSums()
    for index, (task, task_lite) in enumerate(zip(episodes, lites, strict=True)):
        # "skip" keeps the gradient so far, to take a non-finite task's share back out.
        saved = _gradients(learner) if on_nonfinite == "skip" else None
        try:  # weighted W/T, so that after finish_step the update is the mean over T tasks
            loss, accuracy = accumulate_task_gradient(
                learner, task, task_lite, query_batch, share.weight, scaler
            )
        except NonFiniteLossError as error:
            if saved is None:  # "raise": stop, and let finish_step tell every rank
                sums.fail(_describe_nonfinite(learner, index, task, error), len(episodes) - index)
                break
            _restore_gradients(learner, saved)
            sums.skipped += 1
        else:
            sums.add(loss, accuracy)
    sums = finish_step(learner.parameters(), share, sums)  # sums and gradients over ranks
    if sums.failed:  # every rank raises the same error; nothing is applied
        optimizer.zero_grad(set_to_none=True)
        _raise_on_every_rank(sums.failure)
    if scaler is None and not _gradients_finite(learner):  # an overflow, with finite losses
        optimizer.zero_grad(set_to_none=True)
        return _nonfinite_gradient(on_nonfinite, share.total)
    if sums.counted and scaler is None:  # (none counted: every task skipped, no update)
        optimizer.step()
    elif sums.counted:  # unscales, and skips the update if the float16 gradient overflowed
        scaler.step(optimizer)
        scaler.update()
    return StepResult.of(sums)


def _check_tasks(learner: Learner, episodes: list[Episode], lites: list[Lite | None]) -> None:
    for task, lite in zip(episodes, lites, strict=True):
        learner.check_task(
            task.support_images, task.support_labels, task.query_images, task.query_labels, lite
        )


def _warn_if_query_path_only(lites: list[Lite | None], episodes: list[Episode]) -> None:
    if any(
        lite is not None and lite.h == 0 and lite.subsets is None and task.n_support > 0
        for lite, task in zip(lites, episodes, strict=True)
    ):
        warnings.warn(
            "lite.h=0: no support image carries gradient, so only the query path trains (the "
            "backbone learns from the query images alone); pass h >= 1 for LITE, or lite=None "
            "for full back-propagation.",
            UserWarning,
            stacklevel=4,  # _warn..., meta_train_step, its keyword wrapper, the caller
        )


def _gradients(learner: Learner) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in learner.parameters()]


def _restore_gradients(learner: Learner, saved: list[torch.Tensor | None]) -> None:
    for p, grad in zip(learner.parameters(), saved, strict=True):
        p.grad = grad


def _gradients_finite(learner: Learner) -> bool:
    """One norm over every gradient (a handful of kernels, one device sync): NaN or inf in
    any entry makes it non-finite."""
    grads = [p.grad for p in learner.parameters() if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))


def _describe_nonfinite(learner: Learner, index: int, task: Episode, where: object) -> str:
    """What made task ``index``'s loss non-finite, and what to do, in the house style."""
    found = nonfinite_inputs(support_images=task.support_images, query_images=task.query_images)
    if found is None:
        bad = [name for name, p in learner.named_parameters() if not torch.isfinite(p).all()]
        found = (
            f"the learner's weights are not finite ({bad[0]}, {len(bad)} in all)"
            if bad
            else "inputs and weights are finite (an overflow: lower the learning rate)"
        )
    return (
        f"episodes[{index}]={found}: {where} is not finite. Fix or drop that input, or pass "
        "on_nonfinite='skip' to leave such tasks out of a step; nothing was changed."
    )


def _raise_on_every_rank(failure: str | None) -> None:
    """Raise the step's `NonFiniteLossError` on every rank together (this rank's message,
    or the lowest failing rank's)."""

    def raise_if_failed() -> None:
        if failure is not None:
            raise NonFiniteLossError(failure)

    try:
        same_outcome_on_every_rank(raise_if_failed)
    except CollectiveError as error:  # still a NonFiniteLossError for the caller
        raise CollectiveNonFiniteLossError(str(error)) from None


def _nonfinite_gradient(on_nonfinite: str, tasks: int) -> StepResult:
    """A step whose gradient overflowed although every task's loss is finite: raise, or
    report the whole step skipped."""
    if on_nonfinite == "raise":
        raise NonFiniteLossError(
            "the step's gradient is not finite although every task's loss is (an "
            "overflow); lower the learning rate or use fp32, or pass on_nonfinite='skip' "
            "to skip such steps; nothing was changed."
        )
    return StepResult(math.nan, math.nan, tasks)
