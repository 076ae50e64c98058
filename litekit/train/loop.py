"""The training loop: `fit`, with validation, a `History`, checkpoints and torchrun support.

`fit` runs `meta_train_step` for a number of steps with a progress bar, periodic validation,
a `History` for plotting, and checkpoints from which a resumed run equals an unbroken one
(see `litekit.checkpoint`).

Under torchrun (several processes, one per GPU or CPU worker), `fit` is called by every
rank with the same arguments, and:
- ``tasks_per_step`` T counts the tasks of a step over all ranks (the paper's 16 tasks per
  step stay 16 on any number of GPUs). Step s (from 1) uses the global task positions
  (s-1)·T .. s·T - 1 of the episode source; rank r takes positions r, r + W, ... of those
  (`litekit.distributed.shard`), and a loader loads only its own. T need not be a multiple
  of W (T >= W): `meta_train_step` weights tasks so that the update is the mean over all T.
- the LITE subsets of the task at global position p come from a generator seeded by
  ``(subset_seed, p)`` (`subset_generator`), so they do not depend on which rank runs the
  task: with the same seed, a run on W processes makes the same updates as one process
  (to floating-point summation order);
- gradients are averaged in the step (`litekit.distributed.finish_step`); losses,
  accuracies and validation results are gathered, so every rank holds the same `History`;
- only rank 0 reads and writes the checkpoint and shows progress; it sends the checkpoint
  to the other ranks, so a run can resume on another number of processes, and a node without
  the file (no shared file system) still resumes;
- validation splits its tasks over the ranks and gathers the accuracies in task order
  (`evaluate(..., across_ranks=True)`): the same numbers as one process scoring them all.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from litekit import checkpoint as checkpoints
from litekit._checks import bad_argument, check_int
from litekit.data.augment import Augment, augment_episode
from litekit.determinism import use_deterministic_kernels
from litekit.distributed import (
    broadcast_module,
    on_any_rank,
    rank_and_world,
    same_outcome_on_every_rank,
    shard,
    unwrap,
)
from litekit.episodes import Episode
from litekit.learners.base import Learner
from litekit.lite import Lite, with_precision
from litekit.paths import check_writable_file
from litekit.precision import grad_scaler
from litekit.seeding import subset_generator
from litekit.train import best
from litekit.train.clipping import clip_before_step
from litekit.train.evaluation import evaluate
from litekit.train.settings import Reporting, Saving, Scorer, Stepping, with_plain_keywords
from litekit.train.step import StepResult, meta_train_step
from litekit.train.stream import EpisodeStream


@dataclass
class History:
    """What `fit` saw, step by step: training and validation curves
    (`litekit.plots.learning_curves` draws them).

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

    def record(self, step: int, result: StepResult, seconds: float) -> None:
        """Append one step's loss, accuracy and elapsed wall time."""
        self.step.append(step)
        self.loss.append(result.loss)
        self.accuracy.append(result.accuracy)
        self.seconds.append(seconds)

    def postfix(self) -> dict[str, str]:
        """The latest loss, accuracy and validation accuracy, for a progress bar."""
        shown = {"loss": f"{self.loss[-1]:.3f}", "accuracy": f"{self.accuracy[-1]:.2f}"}
        if self.val_accuracy:
            shown["validation"] = f"{self.val_accuracy[-1]:.3f}"
        return shown

    def as_dict(self) -> dict[str, list]:
        """Plain lists, for JSON or a checkpoint."""
        return {name: list(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, values: dict[str, list]) -> History:
        return cls(**{name: list(values[name]) for name in cls.__dataclass_fields__})


def _check_distributed(world: int, tasks_per_step: int, lite: Lite | None, subset_seed) -> None:
    if world > 1 and tasks_per_step < world:
        raise bad_argument(
            "tasks_per_step",
            tasks_per_step,
            f"{world} processes share each step's tasks, so a step needs at least {world} "
            f"tasks; pass tasks_per_step >= {world} (a multiple of {world} balances the work).",
        )
    if world > 1 and lite is not None and lite.subsets is None and subset_seed is None:
        raise bad_argument(
            "subset_seed",
            None,
            "under torchrun each task needs its own LITE subset stream, the same on any rank; "
            "pass subset_seed=<int> (see litekit.seeding.subset_generator).",
        )


def _check_lite_and_optimizer(lite: Any, optimizer: Any) -> None:
    if lite is not None and not isinstance(lite, Lite):
        raise bad_argument("lite", lite, "pass None (full back-propagation) or Lite(h, ...).")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise bad_argument("optimizer", optimizer, "pass a torch.optim optimiser.")


@dataclass
class _RunState:
    """Everything a checkpoint of this run holds, and the file it goes to (rank 0 writes
    it): weights, optimiser, scheduler, subset generator, gradient scaler and history."""

    learner: Learner
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator | None
    fingerprint: dict
    metadata: Mapping[str, Any] | None
    checkpoint_file: Path | None
    scaler: torch.amp.GradScaler | None = None
    history: History = field(default_factory=History)
    best_file: Path | None = None  # where the best validation's state goes (`best`)

    @classmethod
    def of(
        cls,
        learner: Learner,
        optimizer: torch.optim.Optimizer,
        lite: Lite | None,
        stepping: Stepping,
        saving: Saving,
        episodes: int | None,
        steps: int,
    ) -> _RunState:
        """A new run's state: the generator a checkpoint must carry (the Lite's, unless
        each task seeds its own), the run's fingerprint and a float16 gradient scaler."""
        seed = stepping.subset_seed
        fingerprint = checkpoints.fingerprint(
            learner, lite, stepping.query_batch, stepping.tasks_per_step, episodes, seed
        )
        fingerprint.update(stepping.update_fingerprint(steps))
        return cls(
            learner,
            optimizer,
            stepping.scheduler,
            lite.generator if lite is not None and seed is None else None,
            fingerprint,
            saving.metadata,
            None if saving.checkpoint is None else Path(saving.checkpoint),
            grad_scaler(lite.precision if lite is not None else "fp32", learner.device),
            best_file=None if saving.best_checkpoint is None else Path(saving.best_checkpoint),
        )

    def save(self, step: int) -> None:
        """Write the checkpoint of the run after ``step`` whole steps (rank 0). A failure,
        refused weights or a disk error, is raised on every rank together."""
        same_outcome_on_every_rank(lambda: self._write(step), rank_zero_only=True)

    def keep_best(self, step: int) -> None:
        """After a validation at ``step``: if it scored higher than every earlier one, write
        the run to the best file (rank 0; `litekit.train.best`)."""
        scores = self.history.val_accuracy
        if self.best_file is None or not best.improved(scores):
            return
        extra = best.metadata(self.metadata, step, scores[-1])
        same_outcome_on_every_rank(
            lambda: self._write(step, self.best_file, extra, "best_checkpoint"),
            rank_zero_only=True,
        )

    def _write(
        self,
        step: int,
        file: Path | None = None,
        metadata: Mapping[str, Any] | None = None,
        name: str = "checkpoint",
    ) -> None:
        file = self.checkpoint_file if file is None else file
        payload = checkpoints.payload(
            step,
            self.fingerprint,
            self.learner,
            self.optimizer,
            self.scheduler,
            self.generator,
            self.history.as_dict(),
            self.metadata if metadata is None else metadata,
            self.scaler,
        )
        try:
            checkpoints.save_atomic(payload, file)
        except OSError as error:
            raise bad_argument(
                name,
                str(file),
                f"could not be written ({error}); the last checkpoint is kept. Free space or "
                "pass another checkpoint file, and resume.",
            ) from error

    def prepare(self, resume: bool, deterministic: bool, channels_last: bool) -> int:
        """Kernels and memory layout as asked, the checkpoint file checked writable (before
        any work: a run must not fail at its first save), and the checkpoint resumed if there
        is one; returns the number of steps done (0 for a new run)."""
        file = self.checkpoint_file
        if file is not None:
            same_outcome_on_every_rank(
                lambda: check_writable_file("checkpoint", file), rank_zero_only=True
            )
        start = self.resume(resume)
        if self.best_file is not None:  # a new run never overwrites a best file
            best_file = self.best_file
            same_outcome_on_every_rank(
                lambda: best.check_file(best_file, resuming=start > 0), rank_zero_only=True
            )
        if deterministic:  # stays on for the process, as torch.use_deterministic_algorithms
            use_deterministic_kernels()
        if channels_last:
            self.learner.to(memory_format=torch.channels_last)
        return start

    def resume(self, resume: bool) -> int:
        """Apply the checkpoint in ``checkpoint_file`` if there is one (checked on rank 0,
        sent to every rank), and return the number of steps it holds (0 without one)."""
        file = self.checkpoint_file
        saved = same_outcome_on_every_rank(
            lambda: None if file is None else checkpoints.prepare(file, resume),
            rank_zero_only=True,
        )
        if saved is None:
            return 0
        same_outcome_on_every_rank(
            lambda: checkpoints.compare_fingerprints(saved["fingerprint"], self.fingerprint)
        )
        checkpoints.restore(
            saved, self.learner, self.optimizer, self.scheduler, self.generator, self.scaler
        )
        self.history = History.from_dict(saved["history"])
        return int(saved["step"])


def _validate(run: _RunState, validation: Any, lite: Lite | None, step: int) -> None:
    """Score the validation tasks (split over the ranks; a `Scorer` on rank 0), record it
    in the history, and keep the best checkpoint if it improved."""
    if isinstance(validation, Scorer):
        learner = run.learner
        mean, ci95 = same_outcome_on_every_rank(
            lambda: validation.score(learner, lite), rank_zero_only=True
        )
    else:
        result = evaluate(run.learner, validation, lite, across_ranks=True)
        mean, ci95 = result.mean, result.ci95
    run.history.val_step.append(step)
    run.history.val_accuracy.append(float(mean))
    run.history.val_ci95.append(float(ci95))
    run.keep_best(step)


def _positions(step: int, tasks_per_step: int, rank: int, world: int) -> list[int]:
    """This rank's global task positions in step ``step`` (counted from 1)."""
    return shard(range((step - 1) * tasks_per_step, step * tasks_per_step), rank, world)


def _augmented(episodes: list[Episode], positions: list[int], augment: Augment | None):
    """Each task augmented with the stream of its global position (or as it is)."""
    if augment is None:
        return episodes
    return [
        augment_episode(episode, augment, augment.generator(p))
        for episode, p in zip(episodes, positions, strict=True)
    ]


def _task_lites(lite: Lite | None, subset_seed: int | None, positions: list[int]):
    """``lite`` itself, or one copy per task with the subset stream of its position."""
    if lite is None or subset_seed is None:
        return lite
    return [replace(lite, generator=subset_generator(subset_seed, p)) for p in positions]


class _DeferredInterrupts:
    """Hold Ctrl-C (SIGINT) and SIGTERM (what torchrun sends) until the current step ends.

    `fit` can then checkpoint its last completed step before it stops. A second signal
    interrupts at once. Signal handlers can only be set from the main thread; elsewhere
    nothing is deferred.
    """

    def __enter__(self) -> _DeferredInterrupts:
        self.requested: int | None = None
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._hold)
        return self

    def _hold(self, number: int, _frame: Any) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = number

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def _stop(run: _RunState, step: int, saved_step: int, rank: int) -> None:
    """After an interrupt: checkpoint step ``step`` if it is not saved yet, say where, and
    raise KeyboardInterrupt."""
    if run.checkpoint_file is not None and step > saved_step:
        run.save(step)
    if rank == 0:
        where = (
            f"step {step} is saved in {str(run.checkpoint_file)!r}; call fit again to resume"
            if run.checkpoint_file is not None and step > 0
            else "no checkpoint file was given, so nothing is saved"
        )
        print(f"fit: interrupted after step {step}: {where}.", file=sys.stderr)
    raise KeyboardInterrupt


def fit(
    learner: Learner,
    episodes: Any,
    optimizer: torch.optim.Optimizer,
    steps: int,
    lite: Lite | None = None,
    *,
    stepping: Stepping | None = None,
    reporting: Reporting | None = None,
    saving: Saving | None = None,
    **plain_keywords: Any,
) -> History:
    """Meta-train ``learner`` for ``steps`` optimiser steps; return the `History`.

    Args:
        learner: a `Learner` (ProtoNets, SimpleCNAPs, CNAPs), or one wrapped in
            DistributedDataParallel (it is unwrapped: see `litekit.distributed`).
        episodes: training tasks: an `episode_loader`, a list of Episodes, or an iterable.
            Step s uses tasks (s-1)·T .. s·T - 1, with T = ``tasks_per_step``; loaders and
            lists are cycled through when ``steps · T`` exceeds their length. Under torchrun
            pass the same, whole source on every rank: `fit` splits it.
        optimizer: steps once per step (see `meta_train_step`).
        steps: total optimiser steps of the run (a resumed run continues up to it).
        lite: ``None`` for full back-propagation, or ``Lite(h, ...)``; seed its generator
            (or pass ``subset_seed``) for reproducible subsets.
        stepping: how each step runs (`Stepping`: ``query_batch``, ``tasks_per_step``,
            ``subset_seed``, ``on_nonfinite``, ``precision``, ``channels_last``,
            ``deterministic``, ``scheduler``).
        reporting: what the run reports (`Reporting`: ``validation`` (episodes or a
            `Scorer`), ``validate_every``, ``progress``, ``description``).
        saving: where the run is saved (`Saving`: ``checkpoint``, ``checkpoint_every``,
            ``resume``, ``metadata``, ``best_checkpoint``).
        plain_keywords: any of those fields by name, e.g. ``fit(..., query_batch=10,
            checkpoint="run.pt")``; each sets that field of its group.

    Validation draws nothing from torch's random stream, so it never changes training.
    Arguments are checked before any work, and an interrupted step is never saved: a
    checkpoint always sits between two whole steps.
    """
    stepping, reporting, saving = with_plain_keywords(stepping, reporting, saving, plain_keywords)
    check_int("steps", steps, minimum=1)
    _check_lite_and_optimizer(lite, optimizer)
    every = reporting.cadence(steps)
    save_every = saving.cadence(every)
    rank, world = rank_and_world()
    tasks_per_step, subset_seed = stepping.tasks_per_step, stepping.subset_seed
    same_outcome_on_every_rank(lambda: _check_distributed(world, tasks_per_step, lite, subset_seed))
    learner = unwrap(learner)
    lite = with_precision(lite, stepping.precision, stepping.channels_last or None)
    stream = EpisodeStream(episodes)
    validation = reporting.validation
    if validation is not None and not isinstance(validation, Scorer):
        EpisodeStream(validation, name="validation")  # its type and size, before any work
    if saving.best_checkpoint is not None and validation is None:
        raise bad_argument(
            "best_checkpoint",
            str(saving.best_checkpoint),
            "the best checkpoint is the one of the best validation score; pass validation "
            "too, or leave best_checkpoint out.",
        )
    if stepping.schedule is not None:
        stepping.schedule.check_steps(steps)
    run = _RunState.of(learner, optimizer, lite, stepping, saving, stream.size, steps)
    start = run.prepare(saving.resume, stepping.deterministic, stepping.channels_last)
    broadcast_module(learner)  # every rank starts from rank 0's weights (as DDP would)
    history = run.history
    if validation is not None and start == 0 and not history.val_step:
        _validate(run, validation, lite, 0)

    elapsed, began = (history.seconds[-1] if history.seconds else 0.0), time.perf_counter()
    bar = tqdm(
        total=steps,
        initial=min(start, steps),
        desc=reporting.description,
        disable=not reporting.progress or rank,
    )
    tasks = stream.at(
        [p for s in range(start + 1, steps + 1) for p in _positions(s, tasks_per_step, rank, world)]
    )
    saved_step = start
    clipping = None
    if stepping.clip_grad_norm is not None:  # before each optimiser step, removed at the end
        clipping = clip_before_step(optimizer, stepping.clip_grad_norm)
    with _DeferredInterrupts() as interrupts:
        try:
            for step in range(start + 1, steps + 1):
                # This rank's share of the step's tasks, each with its position's subsets.
                mine = _positions(step, tasks_per_step, rank, world)
                if stepping.schedule is not None:  # a function of the step alone
                    stepping.schedule.apply(optimizer, step - 1, steps)
                result = meta_train_step(
                    learner,
                    _augmented([next(tasks) for _ in mine], mine, stepping.augment),
                    optimizer,
                    lite=_task_lites(lite, subset_seed, mine),
                    query_batch=stepping.query_batch,
                    total_tasks=tasks_per_step,
                    on_nonfinite=stepping.on_nonfinite,
                    scaler=run.scaler,
                )
                if stepping.scheduler is not None:
                    stepping.scheduler.step()
                history.record(step, result, elapsed + time.perf_counter() - began)
                if validation is not None and (step % every == 0 or step == steps):
                    _validate(run, validation, lite, step)
                if run.checkpoint_file is not None and (step % save_every == 0 or step == steps):
                    run.save(step)
                    saved_step = step
                bar.set_postfix(history.postfix())
                bar.update(1)
                # every rank stops after the same step, whichever of them got the signal
                if on_any_rank(interrupts.requested is not None, learner.device):
                    _stop(run, step, saved_step, rank)
        finally:
            bar.close()
            if clipping is not None:
                clipping.remove()
    return history
