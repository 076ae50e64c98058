"""``python -m litekit.train --orbit ROOT``: ORBIT's train users for tasks, its validation
users for validation.

Training tasks (`litekit.data.OrbitTaskSampler`, as ORBIT trains): one train user's objects,
a random way from 2 to min(15, their objects); context videos clean, target videos
clutter (``--orbit-setting clutter``) or the clean split (``clean``); ``--orbit-clips``
clips of ``--clip-length`` consecutive frames per video, for context and target alike.
Validation (`litekit.orbit.validation.OrbitValidation`): ORBIT's ``neurips21`` test
protocol on the validation users, ``--orbit-validation-tasks`` tasks per user, scored by
per-video frame accuracy.

Training embeds each frame as a support or query image of its own; ORBIT's models average
a training clip's 8 frames into one (at test time litekit pools clips and histories as
ORBIT does, `litekit.orbit`).

Both splits are checked before training as the test protocol checks them (a user with
one object, a video shorter than one clip, a user without target videos: each names the
folder); a missing ``validation/`` folder names the option that turns validation off.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litekit._checks import bad_argument
from litekit.data import OrbitFrames, OrbitTaskSampler
from litekit.data.folders import bad_path
from litekit.learners.pretrained import normalization
from litekit.orbit.protocols import NEURIPS21
from litekit.orbit.tasks import OrbitTestTasks
from litekit.orbit.validation import OrbitValidation

#: ORBIT's cap on the objects of a training task (``train_object_cap``).
MAX_TRAINING_WAY = 15


@dataclass
class OrbitData:
    frames: OrbitFrames
    sampler: OrbitTaskSampler
    validation: OrbitValidation | None


def check_orbit_options(args: argparse.Namespace) -> None:
    """``--orbit`` makes its own tasks: no folder data, no Meta-Dataset-style tasks."""
    for option, clash in (("--data", args.data), ("--variable", args.variable)):
        if clash:
            raise bad_argument(
                "--orbit",
                args.orbit,
                f"ORBIT's tasks come from its users' videos; pass --orbit or {option}, not both.",
            )


def _split(args: argparse.Namespace, name: str, fix: str) -> OrbitFrames:
    folder = Path(args.orbit) / name
    if not folder.is_dir():
        raise bad_path(
            "--orbit",
            args.orbit,
            f"holds no {name}/ folder; pass the folder that holds ORBIT's train/, validation/ "
            f"and test/ (see data/README.md){fix}.",
        )
    return OrbitFrames(folder, args.image_size, normalization=normalization(args.weights))


def _tasks(args: argparse.Namespace, frames: OrbitFrames, tasks_per_user: int) -> OrbitTestTasks:
    protocol = NEURIPS21.with_changes(tasks_per_user=tasks_per_user, clip_length=args.clip_length)
    return OrbitTestTasks(frames, protocol, args.orbit_setting, args.seed)


def orbit_data(args: argparse.Namespace, episodes: int) -> OrbitData:
    """The training frames and tasks, and the validation, checked."""
    train = _split(args, "train", "")
    _tasks(args, train, 1)  # the checks of the test protocol, on the train users
    kinds = ("clean", "clutter") if args.orbit_setting == "clutter" else ("clean", "clean")
    per_video = args.orbit_clips * args.clip_length
    try:
        sampler = OrbitTaskSampler(
            train, episodes, args.seed, min_way=2, max_way=MAX_TRAINING_WAY,
            context_frames=per_video, target_frames=per_video, context_kind=kinds[0],
            target_kind=kinds[1], clip_length=args.clip_length, random_way=True,
        )  # fmt: skip
    except ValueError as error:
        if not str(error).startswith("min_way="):
            raise
        raise bad_path(
            "--orbit",
            args.orbit,
            f"no train user has 2 objects with both a context video ({kinds[0]}) and a target "
            f"video ({kinds[1]}{', the clean split' if kinds[0] == kinds[1] else ''}); ORBIT's "
            "training tasks need them. Add videos, or check --orbit-setting.",
        ) from None
    validation: Any = None
    if args.orbit_validation_tasks > 0:
        held_out = _split(args, "validation", ", or --orbit-validation-tasks 0 for no validation")
        validation = OrbitValidation(_tasks(args, held_out, args.orbit_validation_tasks))
    return OrbitData(train, sampler, validation)
