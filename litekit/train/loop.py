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

import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from litekit import checkpoint as checkpoints
from litekit._checks import bad_argument, check_choice, check_int
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
from litekit.train.evaluation import evaluate
from litekit.train.step import NONFINITE_POLICIES, StepResult, meta_train_step
from litekit.train.stream import EpisodeStream


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

    def plot(self, ax=None, *, label: str | None = None, smooth: int = 10):
        """Training accuracy (running mean over ``smooth`` steps) and validation accuracy
        with its 95% interval, against the step, on a matplotlib axis
        (`litekit.plots.learning_curves`, which also draws plotly and several runs)."""
        import matplotlib.pyplot as plt

        from litekit import plots

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        plots.learning_curves(self if label is None else {label: self}, smooth=smooth, ax=ax)
        return ax


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


def _check_arguments(
    steps: int,
    tasks_per_step: int,
    query_batch: int | None,
    lite: Any,
    optimizer: Any,
    subset_seed: int | None,
    metadata: Any,
    on_nonfinite: str,
    validate_every: int | None,
    checkpoint_every: int | None,
) -> tuple[int, int]:
    """Check `fit`'s arguments; return the validation and checkpoint cadences in steps."""
    check_int("steps", steps, minimum=1)
    check_int("tasks_per_step", tasks_per_step, minimum=1)
    if query_batch is not None:
        check_int("query_batch", query_batch, minimum=1)
    if lite is not None and not isinstance(lite, Lite):
        raise bad_argument("lite", lite, "pass None (full back-propagation) or Lite(h, ...).")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise bad_argument("optimizer", optimizer, "pass a torch.optim optimiser.")
    if subset_seed is not None:
        check_int("subset_seed", subset_seed, minimum=0)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise bad_argument("metadata", metadata, "pass a dict of plain values, or None.")
    check_choice("on_nonfinite", on_nonfinite, NONFINITE_POLICIES)
    every = max(1, steps // 10) if validate_every is None else validate_every
    every = check_int("validate_every", every, minimum=1)
    save_every = every if checkpoint_every is None else checkpoint_every
    return every, check_int("checkpoint_every", save_every, minimum=1)


@dataclass
class _Run:
    """What a checkpoint of this run holds, and where it goes (rank 0 writes it)."""

    learner: Learner
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator | None
    fingerprint: dict
    metadata: Mapping[str, Any] | None
    path: Path | None
    scaler: torch.amp.GradScaler | None = None
    history: History = field(default_factory=History)

    def save(self, step: int) -> None:
        """Write the checkpoint of the run after ``step`` whole steps (rank 0). A failure,
        refused weights or a disk error, is raised on every rank together."""
        same_outcome_on_every_rank(lambda: self._write(step), rank_zero_only=True)

    def _write(self, step: int) -> None:
        payload = checkpoints.payload(
            step,
            self.fingerprint,
            self.learner,
            self.optimizer,
            self.scheduler,
            self.generator,
            self.history.as_dict(),
            self.metadata,
            self.scaler,
        )
        try:
            checkpoints.save_atomic(payload, self.path)
        except OSError as error:
            raise bad_argument(
                "checkpoint",
                str(self.path),
                f"could not be written ({error}); the last checkpoint is kept. Free space or "
                "pass another path, and resume.",
            ) from error

    def prepare(self, resume: bool, deterministic: bool, channels_last: bool) -> int:
        """Kernels and memory layout as asked, the checkpoint path checked writable (before
        any work: a run must not fail at its first save), and the checkpoint resumed if there
        is one; returns the number of steps done (0 for a new run)."""
        if self.path is not None:
            path = self.path
            same_outcome_on_every_rank(
                lambda: check_writable_file("checkpoint", path), rank_zero_only=True
            )
        start = self.resume(resume)
        if deterministic:  # stays on for the process, as torch.use_deterministic_algorithms
            use_deterministic_kernels()
        if channels_last:
            self.learner.to(memory_format=torch.channels_last)
        return start

    def resume(self, resume: bool) -> int:
        """Apply the checkpoint at ``path`` if there is one (checked on rank 0, sent to every
        rank), and return the number of steps it holds (0 without one)."""
        path = self.path
        saved = same_outcome_on_every_rank(
            lambda: None if path is None else checkpoints.prepare(path, resume),
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


def _validate(learner: Learner, validation: Any, lite: Lite | None, history: History, step: int):
    """Score the validation tasks (split over the ranks) and record it in ``history``."""
    result = evaluate(learner, validation, lite, across_ranks=True)
    history.val_step.append(step)
    history.val_accuracy.append(result.mean)
    history.val_ci95.append(result.ci95)


def _positions(step: int, tasks_per_step: int, rank: int, world: int) -> list[int]:
    """This rank's global task positions in step ``step`` (counted from 1)."""
    return shard(range((step - 1) * tasks_per_step, step * tasks_per_step), rank, world)


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


def _stop(run: _Run, step: int, saved_step: int, rank: int) -> None:
    """After an interrupt: checkpoint step ``step`` if it is not saved yet, say where, and
    raise KeyboardInterrupt."""
    if run.path is not None and step > saved_step:
        run.save(step)
    if rank == 0:
        where = (
            f"step {step} is saved in {str(run.path)!r}; call fit again to resume"
            if run.path is not None and step > 0
            else "no checkpoint path was given, so nothing is saved"
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
    subset_seed: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    on_nonfinite: str = "raise",
    precision: str | None = None,
    channels_last: bool = False,
    deterministic: bool = False,
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
        query_batch: query images per backward pass (see `meta_train_step`).
        tasks_per_step: tasks whose gradients are averaged per step (the paper uses 16);
            under torchrun, over all processes together (at least one per process).
        validation: fixed evaluation tasks, scored with `evaluate` before the first step,
            every ``validate_every`` steps and after the last one (split over the ranks
            under torchrun).
        validate_every: default: ``steps // 10`` (at least 1).
        scheduler: an optional learning-rate scheduler, stepped after every step and saved
            in checkpoints.
        checkpoint: a file path. If a litekit checkpoint is there and ``resume`` is True,
            the run continues from it; the run is saved there every ``checkpoint_every``
            steps, at the end, and when the run is interrupted (Ctrl-C, or SIGTERM from
            torchrun: the current step finishes first), atomically, with a checksum that is
            verified before a checkpoint is applied. A resumed run ends with exactly the
            weights, optimiser state and history of an unbroken run. Non-finite weights are
            never saved. Under torchrun only rank 0's path is used.
        checkpoint_every: default: ``validate_every``.
        resume: False refuses to start when a checkpoint is already at ``checkpoint``
            (nothing is ever overwritten unasked).
        progress: show a tqdm progress bar with the loss and accuracy (rank 0 only).
        subset_seed: ``None`` draws the LITE subsets from ``lite.generator`` (or torch's
            global stream), task after task. An int draws the subsets of the task at global
            position p from `subset_generator(subset_seed, p)`, so that they do not depend
            on the number of processes; required under torchrun when ``lite`` samples.
        metadata: plain values (strings, numbers, lists, dicts) saved in the checkpoint as
            ``metadata``; the command line stores its options there.
        on_nonfinite: what a task with a non-finite loss does (see `meta_train_step`):
            ``"raise"`` stops the run with nothing changed; ``"skip"`` leaves the task out.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` for the backbone's passes in
            training and validation (`litekit.precision`); None keeps ``lite``'s (fp32 by
            default). float16 gets a gradient scaler, kept in the checkpoints.
        channels_last: convert the learner and the images to channels-last memory layout.
        deterministic: use deterministic kernels (`litekit.determinism`), so that on a GPU
            too a resumed run equals an unbroken one bit for bit.

    Validation draws nothing from torch's random stream, so it never changes training.
    Arguments are checked before any work, and an interrupted step is never saved: a
    checkpoint always sits between two whole steps.

    (About 70 lines on purpose: the set-up and the whole loop read top to bottom in one
    place; each part it calls is a named function above.)
    """
    every, save_every = _check_arguments(
        steps,
        tasks_per_step,
        query_batch,
        lite,
        optimizer,
        subset_seed,
        metadata,
        on_nonfinite,
        validate_every,
        checkpoint_every,
    )
    rank, world = rank_and_world()
    same_outcome_on_every_rank(lambda: _check_distributed(world, tasks_per_step, lite, subset_seed))
    learner = unwrap(learner)
    lite = with_precision(lite, precision, channels_last or None)
    stream = EpisodeStream(episodes)
    if validation is not None:  # its type and size, before a checkpoint is read
        EpisodeStream(validation, name="validation")
    run = _Run(
        learner,
        optimizer,
        scheduler,
        lite.generator if lite is not None and subset_seed is None else None,
        checkpoints.fingerprint(
            learner, lite, query_batch, tasks_per_step, stream.size, subset_seed
        ),
        metadata,
        None if checkpoint is None else Path(checkpoint),
        grad_scaler(lite.precision if lite is not None else "fp32", learner.device),
    )
    start = run.prepare(resume, deterministic, channels_last)
    broadcast_module(learner)  # every rank starts from rank 0's weights (as DDP would)
    history = run.history
    if validation is not None and start == 0 and not history.val_step:
        _validate(learner, validation, lite, history, 0)

    elapsed, began = (history.seconds[-1] if history.seconds else 0.0), time.perf_counter()
    bar = tqdm(
        total=steps, initial=min(start, steps), desc=description, disable=not progress or rank
    )
    tasks = stream.at(
        [p for s in range(start + 1, steps + 1) for p in _positions(s, tasks_per_step, rank, world)]
    )
    saved_step = start
    with _DeferredInterrupts() as interrupts:
        try:
            for step in range(start + 1, steps + 1):
                mine = _positions(step, tasks_per_step, rank, world)
                result = meta_train_step(
                    learner,
                    [next(tasks) for _ in mine],
                    optimizer,
                    lite=_task_lites(lite, subset_seed, mine),
                    query_batch=query_batch,
                    total_tasks=tasks_per_step,
                    on_nonfinite=on_nonfinite,
                    scaler=run.scaler,
                )
                if scheduler is not None:
                    scheduler.step()
                history.record(step, result, elapsed + time.perf_counter() - began)
                if validation is not None and (step % every == 0 or step == steps):
                    _validate(learner, validation, lite, history, step)
                if run.path is not None and (step % save_every == 0 or step == steps):
                    run.save(step)
                    saved_step = step
                bar.set_postfix(history.postfix())
                bar.update(1)
                # every rank stops after the same step, whichever of them got the signal
                if on_any_rank(interrupts.requested is not None, learner.device):
                    _stop(run, step, saved_step, rank)
        finally:
            bar.close()
    return history
