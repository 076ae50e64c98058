"""Checkpoints for `litekit.train.fit`: everything a resumed run needs to equal an unbroken one.

A training run's future depends on more than its weights. A checkpoint holds:

- the learner's and the optimiser's state (Adam's moment estimates), and a scheduler's;
- the random state: the LITE subset generator's (``Lite.generator``), and torch's global
  generators (CPU and, where initialised, CUDA), which LITE uses when it has no generator;
- the position in the episode stream (``step``: episodes are numbered, so the next step
  knows which ones to load) and the history so far;
- a fingerprint of the run's set-up, so a checkpoint is never resumed into a different run;
- optional ``metadata`` (the command line stores its options there).

The file. A checkpoint is a header and a payload:

    LITEKIT-CHECKPOINT\\n                                  (the magic line)
    {"version": 2, "bytes": <n>, "sha256": "<hex>"}\\n     (one line of JSON)
    <n bytes: the payload, torch.save of a dict of tensors, numbers and strings>

Reading checks the magic, the length and the SHA-256 of the payload before anything is
decoded, so a truncated file, appended bytes or flipped bits are reported and never loaded.
`restore` applies a checkpoint all or nothing: if any part fails to apply, the learner,
optimiser, scheduler and random state are put back as they were.

Writes are atomic: the checkpoint goes to a temporary file in the same folder, is flushed to
disk, then renamed over the old one, so a crash leaves either the old or the new checkpoint,
never half of one. A file that is not a litekit checkpoint, or a damaged one, is never
overwritten.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from litekit._checks import bad_argument
from litekit._deprecated import old_names

FORMAT = "litekit-checkpoint"
VERSION = 2
MAGIC = b"LITEKIT-CHECKPOINT\n"
_HEADER_LIMIT = 1024  # bytes of the JSON header line, at most
REQUIRED = ("format", "version", "step", "fingerprint", "learner", "optimizer", "random")


class CheckpointError(ValueError):
    """A file at a checkpoint path that cannot be used: ``kind`` is ``"foreign"`` (not a
    litekit checkpoint) or ``"damaged"`` (a litekit checkpoint that fails its checks)."""

    def __init__(self, path: Path, kind: str, fix: str) -> None:
        super().__init__(f"checkpoint={str(path)!r}: {fix}")
        self.path, self.kind, self.fix = path, kind, fix


def _path_error(path: Path, fix: str) -> ValueError:
    return ValueError(f"checkpoint={str(path)!r}: {fix}")


def encode(payload: Mapping[str, Any]) -> bytes:
    """The bytes of a checkpoint file: magic, header with length and SHA-256, payload."""
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    body = buffer.getvalue()
    header = {"version": VERSION, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return MAGIC + json.dumps(header).encode("ascii") + b"\n" + body


def decode(data: bytes, path: str | os.PathLike = "<bytes>") -> dict:
    """Verify and decode the bytes of a checkpoint file; `CheckpointError` if they fail.

    Nothing is decoded before the length and the checksum of the payload are verified.
    """
    path = Path(path)
    damaged = (
        "restore it from a copy, or pass another checkpoint path to start afresh (litekit "
        "neither loads nor overwrites a damaged checkpoint)."
    )
    if not data.startswith(MAGIC):
        raise CheckpointError(
            path,
            "foreign",
            "this file is not a litekit checkpoint (no LITEKIT-CHECKPOINT header); pass "
            "another path.",
        )
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + _HEADER_LIMIT)
    try:
        header = json.loads(data[len(MAGIC) : end].decode("ascii")) if end > 0 else None
        expected, digest = int(header["bytes"]), str(header["sha256"])
        version = header["version"]
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise CheckpointError(path, "damaged", f"its header is damaged; {damaged}") from None
    if version != VERSION:
        raise CheckpointError(
            path,
            "foreign",
            f"written in checkpoint format {version!r}; this litekit reads format {VERSION}. "
            "Pass another path to start afresh.",
        )
    body = data[end + 1 :]
    if len(body) != expected:
        what = "truncated" if len(body) < expected else "longer than written"
        raise CheckpointError(
            path,
            "damaged",
            f"{what}: the payload has {len(body)} bytes, the header says {expected}; {damaged}",
        )
    if hashlib.sha256(body).hexdigest() != digest:
        raise CheckpointError(
            path,
            "damaged",
            f"its SHA-256 does not match the one written with it (bytes changed since it was "
            f"saved); {damaged}",
        )
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - verified bytes that still do not decode
        raise CheckpointError(
            path, "damaged", f"its payload does not decode ({error}); {damaged}"
        ) from error
    missing = [key for key in REQUIRED if not isinstance(payload, dict) or key not in payload]
    if missing or payload.get("format") != FORMAT:
        raise CheckpointError(path, "damaged", f"entries {missing} are missing; {damaged}")
    return payload


def read(path: str | os.PathLike) -> dict:
    """Read and verify the checkpoint at ``path`` (see `decode`)."""
    path = Path(path)
    if path.is_dir():
        raise _path_error(path, "this is a folder; pass a file path.")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _path_error(path, "no such file; check the path.") from None
    return decode(data, path)


def _is_checkpoint(path: str | os.PathLike) -> bool:
    """True if ``path`` holds a litekit checkpoint that passes its checks."""
    try:
        read(path)
    except (ValueError, OSError):
        return False
    return True


def _file_mode(path: Path) -> int:
    """The permissions a plain ``open(path, "w")`` would give: an existing file's own, else
    0o666 less the process's umask (a temporary file is created 0o600)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and a rename.

    The folder is created if needed; the file gets the permissions a plain write would give
    it. On any error the temporary file is removed and an existing file at ``path`` is left as
    it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def save_atomic(payload: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``payload`` as a checksummed checkpoint to ``path`` (`write_atomic`)."""
    return write_atomic(encode(payload), path)


def fingerprint(
    learner: torch.nn.Module,
    lite: Any,
    query_batch: int | None,
    tasks_per_step: int,
    episodes: int | None,
    subset_seed: int | None,
) -> dict:
    """What must match for a checkpoint to continue a run: the learner's class and parameter
    shapes, LITE's settings, the query batch, tasks per step, the number of training episodes
    (None for a plain iterable) and the subset seed."""
    return {
        "learner": type(learner).__name__,
        "parameters": [[name, list(p.shape)] for name, p in learner.named_parameters()],
        "lite": None
        if lite is None
        else [
            lite.h,
            lite.chunk_size,
            lite.scaling,
            lite.independent_subsets,
            lite.precision,
            lite.channels_last,
        ],
        "query_batch": query_batch,
        "tasks_per_step": tasks_per_step,
        "episodes": episodes,
        "subset_seed": subset_seed,
    }


def payload(
    step: int,
    fingerprint: Mapping[str, Any],
    learner: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator | None,
    history: Mapping[str, list],
    metadata: Mapping[str, Any] | None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict:
    """Everything a resumed run needs after ``step`` whole steps (see the module docstring).

    Refuses (ValueError) when a weight is not finite: a checkpoint never holds NaN or
    infinite weights, so a good earlier one is never replaced by a broken run.
    """
    broken = [name for name, p in learner.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise bad_argument(
            "checkpoint",
            f"step {step}",
            f"the weights are not finite ({broken[0]}, {len(broken)} in all), so they are not "
            "saved and the last checkpoint is kept; lower the learning rate, or check the "
            "data for NaN values.",
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "fingerprint": dict(fingerprint),
        "learner": learner.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "random": random_state(generator),
        "history": dict(history),
        "metadata": None if metadata is None else dict(metadata),
        "scaler": None if scaler is None else scaler.state_dict(),
    }


def load(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by `save_atomic`, verified (tensors, numbers, strings)."""
    return read(path)


def prepare(path: str | os.PathLike, resume: bool) -> dict | None:
    """Check a checkpoint path before any work; return the checkpoint to resume, or None.

    - a missing file is fine (it will be created): None;
    - a folder, a file that is not a litekit checkpoint, or a damaged checkpoint: an error
      (none of them is ever overwritten);
    - a sound checkpoint: returned when ``resume`` is True, else an error.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    try:
        saved = read(path)
    except CheckpointError as error:
        if error.kind == "foreign":
            raise _path_error(path, f"{error.fix} litekit will not overwrite this file.") from None
        raise
    if not resume:
        raise _path_error(
            path,
            "a checkpoint is already there; pass resume=True to continue it, or another "
            "path to start afresh (litekit never overwrites a run unasked).",
        )
    return saved


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
    if state.get("lite") is not None and generator is None:
        raise bad_argument(
            "lite",
            None,
            "the checkpoint was made with a seeded Lite generator; pass "
            "Lite(..., generator=torch.Generator()) so its state can be restored.",
        )
    torch.set_rng_state(state["torch"])
    if state.get("lite") is not None:
        generator.set_state(state["lite"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def restore(
    saved: Mapping[str, Any],
    learner: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    generator: torch.Generator | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Apply a checkpoint to a run, all or nothing.

    Loads the learner's and optimiser's state (and the scheduler's and the float16 gradient
    scaler's, when both exist), then the random state. If any of it fails (a state that does
    not fit), everything is put back as it was before the call and a ValueError says what
    failed.
    """
    before = {
        "learner": {k: v.detach().clone() for k, v in learner.state_dict().items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "scheduler": None if scheduler is None else copy.deepcopy(scheduler.state_dict()),
        "scaler": None if scaler is None else copy.deepcopy(scaler.state_dict()),
        "random": copy.deepcopy(random_state(generator)),
    }
    try:
        learner.load_state_dict(saved["learner"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler") is not None:
            scheduler.load_state_dict(saved["scheduler"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        restore_random_state(saved["random"], generator)
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        learner.load_state_dict(before["learner"])
        optimizer.load_state_dict(before["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(before["scheduler"])
        if scaler is not None:
            scaler.load_state_dict(before["scaler"])
        restore_random_state(before["random"], generator)
        if isinstance(error, ValueError) and str(error).startswith("lite="):
            raise
        raise bad_argument(
            "checkpoint",
            f"step {saved.get('step')}",
            f"could not be applied ({type(error).__name__}: {error}); the learner and "
            "optimiser are unchanged. Use the set-up the checkpoint was made with, or another "
            "checkpoint path.",
        ) from error


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


__getattr__ = old_names(
    __name__, {"is_checkpoint": ("call read(path), which says what is wrong", _is_checkpoint)}
)
