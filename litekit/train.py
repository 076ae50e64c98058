"""Meta-training step, training loop with checkpoints, and evaluation.

`fit` runs `meta_train_step` for a number of steps with a progress bar, periodic validation,
a `History` for plotting, and checkpoints from which a resumed run equals an unbroken one
(see `litekit.checkpoint`). `evaluate` scores fixed tasks with a 95% confidence interval.

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
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from litekit import checkpoint as checkpoints
from litekit._checks import bad_argument, check_int
from litekit.distributed import average_gradients, unwrap
from litekit.episodes import Episode, EpisodeDataset
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
    sampler: the same seed gives the same tasks) so that every model is scored on the same
    tasks. The confidence interval is the normal approximation mean ± 1.96 · s / √n over the
    n tasks, s their sample standard deviation (see `Evaluation`).
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
                # h = 0 with a private generator: evaluating draws nothing from torch's
                # global random stream, so validation inside `fit` never changes training.
                lite=Lite(0, chunk_size=chunk, generator=torch.Generator()),
            )
            targets = task.query_labels.to(logits.device)
            accuracies.append(float((logits.argmax(1) == targets).float().mean()))
    finally:
        learner.train(was_training)
    mean, ci95 = confidence_interval(accuracies)
    return Evaluation(accuracies, mean, ci95)


# --- the training loop ----------------------------------------------------------------------


@dataclass
class History:
    """What `fit` saw, step by step, for plotting: training and validation curves.

    ``step``, ``loss``, ``accuracy`` and ``seconds`` (wall time since the run began, summed
    over resumed sessions) have one entry per optimiser step; ``val_step``,
    ``val_accuracy`` and ``val_ci95`` one per validation.
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    val_step: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_ci95: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        """Plain lists, for JSON or a checkpoint."""
        return {name: list(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, values: dict[str, list]) -> History:
        return cls(**{name: list(values[name]) for name in cls.__dataclass_fields__})

    def plot(self, ax=None, *, label: str | None = None, smooth: int = 10):
        """Training accuracy (running mean over ``smooth`` steps) and validation accuracy
        with its 95% interval, against the step, on a matplotlib axis."""
        import matplotlib.pyplot as plt
        import numpy as np

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        name = f"{label}: " if label else ""
        if self.step:
            window = max(1, min(smooth, len(self.accuracy)))
            running = np.convolve(self.accuracy, np.ones(window) / window, mode="valid")
            (line,) = ax.plot(
                self.step[window - 1 :], running, alpha=0.5, label=f"{name}training tasks"
            )
            colour = line.get_color()
        else:
            colour = None
        if self.val_step:
            ax.errorbar(
                self.val_step,
                self.val_accuracy,
                yerr=self.val_ci95,
                marker="o",
                capsize=3,
                color=colour,
                label=f"{name}validation (95% CI)",
            )
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("query accuracy")
        ax.legend(loc="lower right", fontsize="small")
        return ax


class _EpisodeStream:
    """Episodes by position: step s uses positions s·T .. s·T + T - 1 (T tasks per step).

    A resumed run restarts at the saved position without replaying earlier steps. Sources:
    - a loader from `episode_loader`: rebuilt to start at the position, with the same
      workers, so episode k is the one the sampler defines for k, as in an unbroken run;
    - a sequence (a list of Episodes, or anything with ``len`` and indexing);
    - any other iterable: read in order, skipping the positions already used.
    Indexable sources wrap around (position p is element p mod len); a plain iterable that
    runs out is an error.
    """

    def __init__(self, episodes: Any) -> None:
        self.episodes = episodes
        self.loader = isinstance(episodes, DataLoader) and isinstance(
            episodes.dataset, EpisodeDataset
        )
        self.indexable = not self.loader and hasattr(episodes, "__getitem__")
        if self.loader or self.indexable:
            size = len(list(episodes.sampler)) if self.loader else len(episodes)
            if size == 0:
                raise bad_argument("episodes", episodes, "pass at least one episode.")
            self.size: int | None = size
        elif isinstance(episodes, Iterable):
            self.size = None
        else:
            raise bad_argument(
                "episodes",
                type(episodes).__name__,
                "pass an episode_loader(...), a list of Episodes, or an iterable of Episodes.",
            )

    def from_position(self, start: int, stop: int) -> Iterator[Episode]:
        if self.loader:
            order = list(self.episodes.sampler)
            ids = [order[p % len(order)] for p in range(start, stop)]
            loader = self.episodes
            yield from DataLoader(
                loader.dataset,
                batch_size=None,
                sampler=ids,
                num_workers=loader.num_workers,
                collate_fn=loader.collate_fn,
                pin_memory=loader.pin_memory,
                prefetch_factor=loader.prefetch_factor if loader.num_workers > 0 else None,
            )
        elif self.indexable:
            for p in range(start, stop):
                yield self.episodes[p % self.size]
        else:
            iterator = iter(self.episodes)
            for p in range(stop):
                try:
                    episode = next(iterator)
                except StopIteration:
                    raise bad_argument(
                        "episodes",
                        f"{p} episodes",
                        f"the episodes ran out before step {p}; pass at least steps × "
                        "tasks_per_step of them (e.g. a sampler with more episodes), or a list "
                        "or episode_loader, which fit cycles through.",
                    ) from None
                if p >= start:
                    yield episode


def _fingerprint(
    learner: Learner,
    lite: Lite | None,
    query_batch: int | None,
    tasks_per_step: int,
    stream: _EpisodeStream,
) -> dict:
    """What must match for a checkpoint to continue this run."""
    return {
        "learner": type(learner).__name__,
        "parameters": [[name, list(p.shape)] for name, p in learner.named_parameters()],
        "lite": None
        if lite is None
        else [lite.h, lite.chunk_size, lite.scaling, lite.independent_subsets],
        "query_batch": query_batch,
        "tasks_per_step": tasks_per_step,
        "episodes": stream.size,
    }


def fit(
    learner: Learner,
    episodes: Any,
    optimizer: torch.optim.Optimizer,
    steps: int,
    lite: Lite | None = None,
    *,
    query_batch: int | None = None,
    tasks_per_step: int = 1,
    validation: Iterable[Episode] | None = None,
    validate_every: int | None = None,
    scheduler: Any = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    progress: bool = True,
    description: str = "meta-training",
) -> History:
    """Meta-train ``learner`` for ``steps`` optimiser steps; return the `History`.

    Args:
        learner: a `Learner` (ProtoNets, SimpleCNAPs, CNAPs).
        episodes: training tasks: an `episode_loader`, a list of Episodes, or an iterable.
            Step s uses tasks s·T .. s·T + T - 1, with T = ``tasks_per_step``; loaders and
            lists are cycled through when ``steps · T`` exceeds their length.
        optimizer: steps once per step (see `meta_train_step`).
        steps: total optimiser steps of the run (a resumed run continues up to it).
        lite: ``None`` for full back-propagation, or ``Lite(h, ...)``; seed its generator
            for reproducible subsets.
        query_batch: query images per backward pass (see `meta_train_step`).
        tasks_per_step: tasks whose gradients are averaged per step (the paper uses 16).
        validation: fixed evaluation tasks, scored with `evaluate` before the first step,
            every ``validate_every`` steps and after the last one.
        validate_every: default: ``steps // 10`` (at least 1).
        scheduler: an optional learning-rate scheduler, stepped after every step and saved
            in checkpoints.
        checkpoint: a file path. If a litekit checkpoint is there and ``resume`` is True,
            the run continues from it; the run is saved there every ``checkpoint_every``
            steps and at the end, atomically (temporary file, then rename). A resumed run
            ends with exactly the weights, optimiser state and history of an unbroken run.
        checkpoint_every: default: ``validate_every``.
        resume: False refuses to start when a checkpoint is already at ``checkpoint``
            (nothing is ever overwritten unasked).
        progress: show a tqdm progress bar with the loss and accuracy.

    Validation draws nothing from torch's random stream, so it never changes training.
    Arguments are checked before any work, and an interrupted step is never saved: a
    checkpoint always sits between two whole steps.
    """
    steps = check_int("steps", steps, minimum=1)
    tasks_per_step = check_int("tasks_per_step", tasks_per_step, minimum=1)
    if query_batch is not None:
        check_int("query_batch", query_batch, minimum=1)
    if lite is not None and not isinstance(lite, Lite):
        raise bad_argument("lite", lite, "pass None (full back-propagation) or Lite(h, ...).")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise bad_argument("optimizer", optimizer, "pass a torch.optim optimiser.")
    every = max(1, steps // 10) if validate_every is None else validate_every
    every = check_int("validate_every", every, minimum=1)
    save_every = check_int(
        "checkpoint_every", every if checkpoint_every is None else checkpoint_every, minimum=1
    )
    stream = _EpisodeStream(episodes)
    fingerprint = _fingerprint(learner, lite, query_batch, tasks_per_step, stream)
    generator = lite.generator if lite is not None else None
    path = None if checkpoint is None else checkpoints.check_writable(checkpoint, resume)

    history, start = History(), 0
    if path is not None and path.exists():
        saved = checkpoints.load(path)
        checkpoints.compare_fingerprints(saved["fingerprint"], fingerprint)
        learner.load_state_dict(saved["learner"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler") is not None:
            scheduler.load_state_dict(saved["scheduler"])
        checkpoints.restore_random_state(saved["random"], generator)
        history, start = History.from_dict(saved["history"]), int(saved["step"])

    def validate(step: int) -> None:
        result = evaluate(learner, validation, lite)
        history.val_step.append(step)
        history.val_accuracy.append(result.mean)
        history.val_ci95.append(result.ci95)

    def save(step: int) -> None:
        payload = {
            "format": checkpoints.FORMAT,
            "version": checkpoints.VERSION,
            "step": step,
            "fingerprint": fingerprint,
            "learner": learner.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "random": checkpoints.random_state(generator),
            "history": history.as_dict(),
        }
        checkpoints.save_atomic(payload, path)

    if validation is not None and start == 0 and not history.val_step:
        validate(0)
    elapsed = history.seconds[-1] if history.seconds else 0.0
    began = time.perf_counter()
    bar = tqdm(total=steps, initial=min(start, steps), desc=description, disable=not progress)
    tasks = stream.from_position(start * tasks_per_step, steps * tasks_per_step)
    try:
        for step in range(start + 1, steps + 1):
            batch = [next(tasks) for _ in range(tasks_per_step)]
            result = meta_train_step(learner, batch, optimizer, lite=lite, query_batch=query_batch)
            if scheduler is not None:
                scheduler.step()
            history.step.append(step)
            history.loss.append(result.loss)
            history.accuracy.append(result.accuracy)
            history.seconds.append(elapsed + time.perf_counter() - began)
            if validation is not None and (step % every == 0 or step == steps):
                validate(step)
            if path is not None and (step % save_every == 0 or step == steps):
                save(step)
            postfix = {"loss": f"{result.loss:.3f}", "accuracy": f"{result.accuracy:.2f}"}
            if history.val_accuracy:
                postfix["validation"] = f"{history.val_accuracy[-1]:.3f}"
            bar.set_postfix(postfix)
            bar.update(1)
    finally:
        bar.close()
    return history
