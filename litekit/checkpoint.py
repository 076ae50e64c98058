"""Checkpoints for `litekit.train.fit`: everything a resumed run needs to equal an unbroken one.

A training run's future depends on more than its weights. A checkpoint holds:
- the learner's and the optimiser's state (Adam's moment estimates), and a scheduler's;
- the random state: the LITE subset generator's (``Lite.generator``), and torch's global
  generators (CPU and, where initialised, CUDA), which LITE uses when it has no generator;
- the position in the episode stream (``step``: episodes are numbered, so the next step
  knows which ones to load) and the history so far;
- a fingerprint of the run's set-up, so a checkpoint is never resumed into a different run.

Writes are atomic: the checkpoint goes to a temporary file in the same folder, is flushed to
disk, then renamed over the old one, so a crash leaves either the old or the new checkpoint,
never half of one. A file that is not a litekit checkpoint is never overwritten.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from litekit._checks import bad_argument

FORMAT = "litekit-checkpoint"
VERSION = 1


def is_checkpoint(path: str | os.PathLike) -> bool:
    """True if ``path`` holds a litekit checkpoint (any file that torch cannot read: False)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file is "not a checkpoint"
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def save_atomic(payload: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save(payload)`` to ``path`` through a temporary file and a rename.

    The folder is created if needed. On any error the temporary file is removed and an
    existing checkpoint at ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(dict(payload), file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by `save_atomic` (tensors, numbers and strings only)."""
    path = Path(path)
    if not is_checkpoint(path):
        raise bad_argument(
            "checkpoint", str(path), "this file is not a litekit checkpoint; pass another path."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def check_writable(path: str | os.PathLike, resume: bool) -> Path:
    """Validate a checkpoint path before any work: never clobber a user's file.

    - a missing file is fine (it will be created);
    - an existing litekit checkpoint is resumed when ``resume`` is True, else an error;
    - any other existing file, or a folder, is an error.
    """
    path = Path(path)
    if path.is_dir():
        raise bad_argument("checkpoint", str(path), "this is a folder; pass a file path.")
    if path.exists():
        if not is_checkpoint(path):
            raise bad_argument(
                "checkpoint",
                str(path),
                "a file that is not a litekit checkpoint is there; litekit will not overwrite "
                "it. Pass another path.",
            )
        if not resume:
            raise bad_argument(
                "checkpoint",
                str(path),
                "a checkpoint is already there; pass resume=True to continue it, or another "
                "path to start afresh (litekit never overwrites a run unasked).",
            )
    return path


def random_state(generator: torch.Generator | None) -> dict:
    """The random state a training step consumes: a LITE generator's and torch's global ones."""
    state = {"torch": torch.get_rng_state(), "lite": None, "cuda": None}
    if generator is not None:
        state["lite"] = generator.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: Mapping[str, Any], generator: torch.Generator | None) -> None:
    """Put back what `random_state` captured."""
    torch.set_rng_state(state["torch"])
    if state.get("lite") is not None:
        if generator is None:
            raise bad_argument(
                "lite",
                None,
                "the checkpoint was made with a seeded Lite generator; pass "
                "Lite(..., generator=torch.Generator()) so its state can be restored.",
            )
        generator.set_state(state["lite"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def compare_fingerprints(saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Raise if a checkpoint was made by a run set up differently from this one."""
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise bad_argument(
                "checkpoint",
                f"{key}: saved {saved.get(key)!r}, now {current.get(key)!r}",
                "the checkpoint belongs to a run set up differently; use the same set-up, or "
                "pass another checkpoint path to start afresh.",
            )
