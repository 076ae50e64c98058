"""Which frames of one video a task uses: positions in the video's frame list.

Pure functions of a video's length (and a numpy Generator where they draw), so each
invariant can be tested on its own. A *position* is an index into the video's frames in
order (after any dropped frames are removed); the caller maps positions to files.

- `context_clips`: ORBIT's context clips (``neurips21``). The first ``frame_cap`` positions
  are cut into consecutive windows of ``clip_length`` (the last one padded with the last
  frame), and ``clips`` windows are drawn without replacement: the clips never overlap and
  each is ``clip_length`` consecutive frames. A video with fewer than ``clips ·
  clip_length`` frames first gets random frames repeated (without replacement while there
  are enough, as ORBIT's loader does) and re-sorted, so its clips repeat frames; the
  result says so.
- `uniform_frames`: every ``stride``-th frame of the first ``frame_cap``, at most ``count``
  (``orbit2022``'s context).
- `all_frames` and `random_frames`: the target frames (every frame up to ``frame_cap``,
  or ``count`` random ones among them, sorted).
- `history_windows`: for each scored position p, the positions p - h + 1 .. p, with
  positions before the first frame replaced by the first frame (ORBIT pads the start of a
  video with its first frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from litekit._checks import check_int


@dataclass(frozen=True)
class Clips:
    """Context clips of one video: ``positions`` (clips, clip_length), and whether any frame
    repeats (a short video, or a last window padded with its last frame)."""

    positions: np.ndarray
    repeated: bool


def _padded_positions(n_frames: int, clip_length: int, frame_cap: int) -> np.ndarray:
    usable = np.arange(min(n_frames, frame_cap))
    spare = len(usable) % clip_length
    if spare:
        usable = np.concatenate([usable, np.full(clip_length - spare, usable[-1])])
    return usable


def context_clips(
    rng: np.random.Generator,
    n_frames: int,
    clips: int = 8,
    clip_length: int = 8,
    frame_cap: int = 1000,
) -> Clips:
    """``clips`` random non-overlapping windows of ``clip_length`` consecutive positions
    among the first ``frame_cap`` of a video of ``n_frames`` frames (see the module)."""
    n_frames = check_int("n_frames", n_frames, minimum=1)
    clips = check_int("clips", clips, minimum=1)
    clip_length = check_int("clip_length", clip_length, minimum=1)
    frame_cap = check_int("frame_cap", frame_cap, minimum=1)
    positions = _padded_positions(n_frames, clip_length, frame_cap)
    usable = min(n_frames, frame_cap)
    missing = clips * clip_length - len(positions)
    if missing > 0:
        extra = rng.choice(usable, size=missing, replace=missing > usable)
        positions = np.sort(np.concatenate([positions, extra]))
    windows = positions.reshape(-1, clip_length)
    chosen = np.sort(rng.choice(len(windows), size=clips, replace=False))
    picked = windows[chosen]
    return Clips(picked, bool(len(np.unique(picked)) < picked.size))


def uniform_frames(
    n_frames: int, stride: int = 30, count: int = 200, frame_cap: int = 1000
) -> np.ndarray:
    """Positions 0, stride, 2·stride, ... below min(n_frames, frame_cap), at most ``count``;
    the stride shrinks to the number of frames for a video shorter than one stride."""
    usable = min(
        check_int("n_frames", n_frames, minimum=1), check_int("frame_cap", frame_cap, minimum=1)
    )
    step = min(check_int("stride", stride, minimum=1), usable)
    return np.arange(0, usable, step)[: check_int("count", count, minimum=1)]


def all_frames(n_frames: int, frame_cap: int = 1000) -> np.ndarray:
    """Positions 0 .. min(n_frames, frame_cap) - 1."""
    return np.arange(min(check_int("n_frames", n_frames, minimum=1), frame_cap))


def random_frames(
    rng: np.random.Generator, n_frames: int, count: int = 200, frame_cap: int = 1000
) -> np.ndarray:
    """``count`` positions drawn without replacement among the first ``frame_cap`` (all of
    them when there are fewer), sorted."""
    usable = min(
        check_int("n_frames", n_frames, minimum=1), check_int("frame_cap", frame_cap, minimum=1)
    )
    count = check_int("count", count, minimum=1)
    if usable <= count:
        return np.arange(usable)
    return np.sort(rng.choice(usable, size=count, replace=False))


def history_windows(positions: np.ndarray, history: int) -> np.ndarray:
    """(len(positions), history): row i holds positions[i] - history + 1 .. positions[i],
    each clipped at 0 (the first frame stands in for frames before the start)."""
    history = check_int("history", history, minimum=1)
    offsets = np.arange(history - 1, -1, -1)
    return np.maximum(np.asarray(positions, dtype=np.int64)[:, None] - offsets[None, :], 0)
