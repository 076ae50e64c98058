"""`fit`'s options in three groups: how to step, what to report, where to save.

``fit(learner, episodes, optimizer, steps, lite)`` says what to train. Everything else is
a field of one of three settings objects, each checked when it is made:

- `Stepping`: how each optimiser step runs (query batches, tasks per step, subset streams,
  non-finite losses, precision and memory layout, deterministic kernels, the learning-rate
  scheduler or schedule with its warm-up, gradient clipping, augmentation of the tasks).
  Options that change the update go here (a learning-rate scale for the backbone too).
- `Reporting`: what the run shows and measures: validation (episodes, or a `Scorer` such
  as ORBIT's) and its cadence, the progress bar. None of it changes the weights
  (validation draws nothing from torch's random stream).
- `Saving`: where and how often the run is checkpointed, whether to resume, what to store
  with it, and where to keep the checkpoint of the best validation score.

``fit(..., stepping=Stepping(query_batch=10), saving=Saving("run.pt"))`` and the plain
keywords ``fit(..., query_batch=10, checkpoint="run.pt")`` are the same call: each plain
keyword is the field of that name (`with_plain_keywords`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from litekit._checks import bad_argument, check_choice, check_int
from litekit.data.augment import Augment
from litekit.episodes import Episode
from litekit.precision import check_precision
from litekit.train.clipping import check_max_norm
from litekit.train.schedule import Schedule
from litekit.train.step import NONFINITE_POLICIES


@dataclass(frozen=True)
class Stepping:
    """How each optimiser step of `fit` runs.

    Args:
        query_batch: query images per backward pass (see `meta_train_step`).
        tasks_per_step: tasks whose gradients are averaged per step (the paper uses 16);
            under torchrun, over all processes together (at least one per process).
        subset_seed: ``None`` draws the LITE subsets from ``lite.generator`` (or torch's
            global stream), task after task. An int draws the subsets of the task at global
            position p from `litekit.seeding.subset_generator` ``(subset_seed, p)``, so
            that they do not depend on the number of processes; required under torchrun
            when ``lite`` samples.
        on_nonfinite: what a task with a non-finite loss does (see `meta_train_step`):
            ``"raise"`` stops the run with nothing changed; ``"skip"`` leaves the task out.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` for the backbone's passes in
            training and validation (`litekit.precision`); None keeps ``lite``'s (fp32 by
            default). float16 gets a gradient scaler, kept in the checkpoints.
        channels_last: convert the learner and the images to channels-last memory layout.
        deterministic: use deterministic kernels (`litekit.determinism`), so that on a GPU
            too a resumed run equals an unbroken one bit for bit.
        scheduler: an optional learning-rate scheduler, stepped after every step and saved
            in checkpoints.
        schedule: a `litekit.train.schedule.Schedule` (warm-up, then constant, cosine or
            step), set before every step from the step alone; recorded in the checkpoint,
            with ``steps`` when it decays over them. Not with ``scheduler``.
        clip_grad_norm: cap the total gradient norm at this before each optimiser step
            (`litekit.train.clipping`); None: no cap.
        augment: a `litekit.data.augment.Augment`: the task at global position p is
            augmented (crops and flips of its support and query images) with the stream
            (``augment.seed``, p), so that it does not depend on processes or resuming.
            Validation tasks are not augmented.
    """

    query_batch: int | None = None
    tasks_per_step: int = 1
    subset_seed: int | None = None
    on_nonfinite: str = "raise"
    precision: str | None = None
    channels_last: bool = False
    deterministic: bool = False
    scheduler: Any = None
    schedule: Schedule | None = None
    clip_grad_norm: float | None = None
    augment: Augment | None = None

    def __post_init__(self) -> None:
        check_int("tasks_per_step", self.tasks_per_step, minimum=1)
        if self.query_batch is not None:
            check_int("query_batch", self.query_batch, minimum=1)
        if self.subset_seed is not None:
            check_int("subset_seed", self.subset_seed, minimum=0)
        check_choice("on_nonfinite", self.on_nonfinite, NONFINITE_POLICIES)
        if self.precision is not None:
            check_precision(self.precision)
        if self.schedule is not None:
            if not isinstance(self.schedule, Schedule):
                raise bad_argument(
                    "schedule", self.schedule, "pass a litekit.train.schedule.Schedule(...)."
                )
            if self.scheduler is not None:
                raise bad_argument(
                    "schedule",
                    self.schedule,
                    "a scheduler is given too, and both would set the learning rate; pass one.",
                )
        if self.clip_grad_norm is not None:
            check_max_norm(self.clip_grad_norm)
        if self.augment is not None and not isinstance(self.augment, Augment):
            raise bad_argument("augment", self.augment, "pass a litekit.data.augment.Augment().")

    def update_fingerprint(self, steps: int) -> dict:
        """What these options add to a checkpoint's fingerprint (only those set, so that
        checkpoints made without them still resume)."""
        added: dict = {}
        if self.schedule is not None:
            added["schedule"] = self.schedule.as_dict()
            if self.schedule.kind != "constant":
                added["schedule"]["steps"] = steps
        if self.clip_grad_norm is not None:
            added["clip_grad_norm"] = float(self.clip_grad_norm)
        if self.augment is not None:
            added["augment"] = self.augment.as_dict()
        return added


@runtime_checkable
class Scorer(Protocol):
    """Validation that scores the learner itself, in place of episodes scored by
    `evaluate`: ``score(learner, lite)`` returns a mean and its 95% half-width, higher is
    better (`litekit.orbit.OrbitValidation`: ORBIT's per-video frame accuracy). Under
    torchrun rank 0 scores and shares the two numbers."""

    def score(self, learner: Any, lite: Any) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Reporting:
    """What `fit` shows and measures; none of it changes the weights.

    Args:
        validation: fixed evaluation tasks, scored with `evaluate` before the first step,
            every ``validate_every`` steps and after the last one (split over the ranks
            under torchrun); or a `Scorer`, which scores the learner itself then.
        validate_every: default: ``steps // 10`` (at least 1).
        progress: show a tqdm progress bar with the loss and accuracy (rank 0 only).
        description: the progress bar's label.
    """

    validation: Iterable[Episode] | Scorer | None = None
    validate_every: int | None = None
    progress: bool = True
    description: str = "meta-training"

    def __post_init__(self) -> None:
        if self.validate_every is not None:
            check_int("validate_every", self.validate_every, minimum=1)

    def cadence(self, steps: int) -> int:
        """Steps between validations: ``validate_every``, or ``steps // 10`` (at least 1)."""
        return max(1, steps // 10) if self.validate_every is None else self.validate_every


@dataclass(frozen=True)
class Saving:
    """Where and how often `fit` checkpoints the run.

    Args:
        checkpoint: the checkpoint file. If a litekit checkpoint is there and ``resume`` is True,
            the run continues from it; the run is saved there every ``checkpoint_every``
            steps, at the end, and when the run is interrupted (Ctrl-C, or SIGTERM from
            torchrun: the current step finishes first), atomically, with a checksum that is
            verified before a checkpoint is applied. A resumed run ends with exactly the
            weights, optimiser state and history of an unbroken run. Non-finite weights are
            never saved. Under torchrun only rank 0's file is used.
        checkpoint_every: default: the validation cadence (`Reporting.cadence`).
        resume: False refuses to start when a checkpoint is already at ``checkpoint``
            (nothing is ever overwritten unasked).
        metadata: plain values (strings, numbers, lists, dicts) saved in the checkpoint as
            ``metadata``; the command line stores its options there.
        best_checkpoint: a second file, where the run as it was at its best validation
            score so far is kept (`litekit.train.best`): written whenever a validation
            scores higher than every earlier one (a tie keeps the earlier), a checkpoint
            like the others, with ``metadata["best"] = {"step", "score"}``. Needs
            validation. A resumed run compares with the best of its history; a new run
            never overwrites a file that is already there.
    """

    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int | None = None
    resume: bool = True
    metadata: Mapping[str, Any] | None = None
    best_checkpoint: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        if self.metadata is not None and not isinstance(self.metadata, Mapping):
            raise bad_argument("metadata", self.metadata, "pass a dict of plain values, or None.")
        if self.checkpoint_every is not None:
            check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        if self.best_checkpoint is not None and self.checkpoint is not None:
            if Path(self.best_checkpoint).absolute() == Path(self.checkpoint).absolute():
                raise bad_argument(
                    "best_checkpoint",
                    str(self.best_checkpoint),
                    "this is the checkpoint file too; pass another file (e.g. run.best.pt).",
                )

    def cadence(self, validation_cadence: int) -> int:
        """Steps between checkpoints: ``checkpoint_every``, or the validation cadence."""
        return validation_cadence if self.checkpoint_every is None else self.checkpoint_every


SETTINGS = (Stepping, Reporting, Saving)


def with_plain_keywords(
    stepping: Stepping | None,
    reporting: Reporting | None,
    saving: Saving | None,
    keywords: Mapping[str, Any],
) -> tuple[Stepping, Reporting, Saving]:
    """The three settings objects (defaults where None), with each plain keyword of `fit`
    (``query_batch=...``, ``checkpoint=...``) set as the field of that name."""
    given = (stepping, reporting, saving)
    unknown = set(keywords)
    groups = []
    for kind, group in zip(SETTINGS, given, strict=True):
        name = kind.__name__.lower()
        if group is not None and not isinstance(group, kind):
            raise bad_argument(name, group, f"pass a litekit.train.{kind.__name__}(...), or None.")
        own = {f.name: keywords[f.name] for f in fields(kind) if f.name in keywords}
        unknown -= set(own)
        groups.append(replace(kind() if group is None else group, **own))
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    stepping, reporting, saving = groups
    return stepping, reporting, saving
