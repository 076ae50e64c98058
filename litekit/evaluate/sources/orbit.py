"""Source ``orbit``: ORBIT's user-centric test tasks, scored as the benchmark scores them.

    python -m litekit.evaluate orbit --checkpoint runs/orbit.pt --root data/orbit \\
        --protocol neurips21 --setting clutter --out runs/orbit-test.json

``--root`` is the folder that holds ORBIT's ``train/``, ``validation/`` and ``test/``
(``--split`` picks one; test by default), or one split's folder itself. The frames are read
at the checkpoint's image size and normalisation. ``--protocol`` is ``neurips21`` (the LITE
paper's) or ``orbit2022`` (which needs the annotations: found next to the split, see
data/README.md, or given with ``--annotations``); ``--setting`` is ``clutter`` (CLU-VE) or
``clean`` (CLE-VE). `litekit.orbit` has the protocols, the metrics and the aggregates.

``--tasks-per-user`` and ``--history`` change the protocol (for a quick look, or to study
history); the JSON's summary then records the changes next to the protocol's name.

The JSON holds ``videos``: one record per scored target video per task (user, object,
video, task, label, the positions of the scored frames among the video's frame files,
the predicted class of each, and the protocol's metrics), and ``tasks``: the context
frames of every task. ``aggregates`` are ORBIT's per-user and per-video means with the
interval 1.96 · σ / √n, σ with ddof = 0 (`litekit.orbit.aggregate`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from litekit._cli_types import _choice, _folder, _integer, _invalid
from litekit.data import OrbitFrames
from litekit.data.folders import bad_path
from litekit.evaluate.model import Model
from litekit.evaluate.sources import Run, Scored
from litekit.orbit.protocols import SETTINGS, protocol_named
from litekit.orbit.scoring import evaluate_orbit
from litekit.orbit.tasks import OrbitTestTasks

HELP = "ORBIT's per-user video tasks (--root, --protocol neurips21|orbit2022)"
SPLITS = ("test", "validation", "train")


def _protocol(text: str) -> str:
    try:
        return protocol_named(text, argument="--protocol").name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_options(group: Any) -> None:
    group.add_argument(
        "--root",
        type=_folder("--root"),
        required=True,
        help="the folder holding ORBIT's train/, validation/ and test/ (see data/README.md)",
    )
    group.add_argument(
        "--split", type=_choice("--split", SPLITS), default="test", help="the users to score"
    )
    group.add_argument(
        "--protocol", type=_protocol, default="neurips21", help="neurips21 or orbit2022"
    )
    group.add_argument(
        "--setting",
        type=_choice("--setting", SETTINGS),
        default="clutter",
        help="clutter (clean context, clutter target) or clean",
    )
    group.add_argument(
        "--annotations",
        type=_folder("--annotations"),
        default=None,
        help="the split's annotation folder (default: <root>/annotations/<split>)",
    )
    group.add_argument(
        "--tasks-per-user",
        type=_integer("--tasks-per-user", 1),
        default=None,
        help="tasks per user (default: the protocol's, 5 in neurips21 and 50 in orbit2022)",
    )
    group.add_argument(
        "--history",
        type=_integer("--history", 1),
        default=None,
        help="frames averaged per scored frame (default: the protocol's, 8 in neurips21 and 1 "
        "in orbit2022)",
    )
    group.add_argument(
        "--users", nargs="+", default=None, help="score only these users (default: every user)"
    )


def split_folder(root: str, split: str) -> Path:
    """``root/<split>``, or ``root`` itself when it is that split's folder."""
    folder = Path(root)
    if (folder / split).is_dir():
        return folder / split
    if folder.name == split:
        return folder
    if folder.name in SPLITS:
        raise bad_path(
            "--root",
            folder,
            f"this is ORBIT's {folder.name} split and --split is {split}; pass --split "
            f"{folder.name}, or the folder that holds ORBIT's splits.",
        )
    raise bad_path(
        "--root",
        folder,
        f"holds no {split}/ folder; pass the folder that holds ORBIT's train/, validation/ and "
        "test/ (see data/README.md).",
    )


def _changes(args: argparse.Namespace) -> dict[str, int]:
    changes = {}
    if args.tasks_per_user is not None:
        changes["tasks_per_user"] = args.tasks_per_user
    if args.history is not None:
        changes["history"] = args.history
    return changes


def prepare(args: argparse.Namespace, model: Model) -> OrbitTestTasks:
    """The split read at the checkpoint's image size and normalisation, and its tasks,
    checked (every error names the folder or file)."""
    folder = split_folder(args.root, args.split)
    frames = OrbitFrames(folder, model.record["image_size"], normalization=model.normalization)
    protocol = protocol_named(args.protocol).with_changes(**_changes(args))
    try:
        return OrbitTestTasks(
            frames, protocol, args.setting, args.seed, users=args.users,
            annotations=args.annotations,
        )  # fmt: skip
    except ValueError as error:
        if str(error).startswith("users="):
            raise _invalid("--users", args.users, str(error).split(": ", 1)[1]) from None
        raise


def score(tasks: OrbitTestTasks, learner: Any, run: Run) -> Scored:
    """Every task of every user; ORBIT's aggregates."""
    result = evaluate_orbit(
        learner, tasks, compute=run.compute, workers=run.workers, progress=run.progress
    )
    summary = {
        "protocol": tasks.protocol.name,
        "protocol_settings": dataclasses.asdict(tasks.protocol),
        "setting": tasks.setting,
        **result.summary,
    }
    records = {"videos": result.videos, "tasks": result.tasks}
    return Scored(result.aggregates, result.rows(), summary, records)
