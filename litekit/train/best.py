"""The best checkpoint: the run as it was at its best validation score, beside the last.

ORBIT's training keeps the model whose validation score is highest (its per-video frame
accuracy); any run can, with ``fit(..., best_checkpoint="run.best.pt")`` (`Saving`). After
each validation `fit` asks `improved`: the latest score is higher than every earlier one
(the first validation always is; a tie keeps the earlier). Then it writes the whole run
(weights, optimiser, history: a checkpoint like the others, which evaluates and resumes)
to the best file, atomically, with ``metadata["best"] = {"step", "score"}`` (`metadata`).

Nothing needs saving beyond the history: a resumed run finds the best so far in its
validation scores. `check_file` runs before any work: the file can be written, is a litekit
checkpoint if it is there, and a new run (one that resumes nothing) never overwrites it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from litekit import checkpoint as checkpoints
from litekit._checks import bad_argument
from litekit.paths import check_writable_file


def improved(scores: Sequence[float]) -> bool:
    """True when the last score is higher than every earlier one (or is the first)."""
    return bool(scores) and all(scores[-1] > earlier for earlier in scores[:-1])


def best_so_far(steps: Sequence[int], scores: Sequence[float]) -> tuple[int, float] | None:
    """The step and score of the best validation (the first of equal ones), or None."""
    if not scores:
        return None
    index = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return int(steps[index]), float(scores[index])


def metadata(base: Mapping[str, Any] | None, step: int, score: float) -> dict[str, Any]:
    """The run's metadata with where the best checkpoint comes from."""
    return {**(base or {}), "best": {"step": int(step), "score": float(score)}}


def check_file(path: Path, resuming: bool, *, argument: str = "best_checkpoint") -> None:
    """The best file can be written; if one is there, it is a sound litekit checkpoint and
    this run resumes (a new run never overwrites it). Errors name ``argument``."""
    check_writable_file(argument, path)
    if not path.exists() and not path.is_symlink():
        return
    try:
        checkpoints.read(path)
    except checkpoints.CheckpointError as error:
        kept = " litekit will not overwrite it." if error.kind == "foreign" else ""
        raise bad_argument(argument, str(path), error.fix + kept) from None
    if not resuming:
        raise bad_argument(
            argument,
            str(path),
            "a best checkpoint is already there and this run resumes nothing (it would be "
            f"overwritten); pass another {argument}, or resume the run it belongs to.",
        )
