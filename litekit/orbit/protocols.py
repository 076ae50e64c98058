"""ORBIT's two test protocols, as settings: the 2021 paper's and the 2022 challenge's.

The numbers were read from the ORBIT benchmark's reference code (microsoft/ORBIT-Dataset:
the tag ``results-neurips21-paper`` for ``neurips21``, the master branch of December 2022
for ``orbit2022``). A protocol says how a user's test tasks are built and scored; the code
that builds them is `litekit.orbit.tasks`, the metrics `litekit.orbit.metrics`.

``neurips21`` (what the LITE paper reported):
- 5 tasks per user, way = all of the user's objects;
- context: every context video (at most 15 per object), 8 random non-overlapping clips of
  8 consecutive frames within its first 1000 frames; a context clip's embedding is the mean
  of its frames' (``context_pooling="clip"``);
- target: every frame of every target video (at most 15 per object), up to its 1000th,
  each scored with its previous frames (8 in all, the first frame repeated before the
  start), features mean-pooled (``history=8``); the target videos are drawn once per user
  and shared by that user's tasks, which differ in their context clips;
- metrics: frame accuracy, frames-to-recognition and video accuracy.

One difference, on purpose: ORBIT's loader cuts a target video into clips of 8 frames and
pads the last clip with copies of the last frame, so up to 7 copies of it are scored too;
litekit scores every frame once.

``orbit2022`` (the benchmark's protocol since the 2022 challenge):
- 50 tasks per user;
- context: every 30th frame of each context video's first 1000 (clips of one frame);
- target: frames annotated ``object_not_present_issue`` are dropped first; a video with
  fewer than 50 frames left is left out (and an object with no target video left, with
  it); 200 random frames among the first 1000 left (all of them if fewer), drawn afresh
  for every task; no history;
- metric: frame accuracy only.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from litekit._checks import bad_argument, check_int

#: The per-video metrics, in the order tables show them.
METRICS = ("frame_accuracy", "frames_to_recognition", "video_accuracy")
SETTINGS = ("clutter", "clean")


@dataclass(frozen=True)
class Protocol:
    """How ORBIT test tasks are built and scored.

    Attributes:
        name: ``"neurips21"`` or ``"orbit2022"`` (or a name of your own for a variant).
        tasks_per_user: tasks drawn for each user.
        video_cap: at most this many context videos, and as many target videos, per object
            (a random sample when an object has more).
        frame_cap: only a video's first ``frame_cap`` frames are used.
        context_sampling: ``"clips"`` (``context_clips`` random non-overlapping clips of
            ``clip_length`` consecutive frames) or ``"uniform"`` (every ``context_stride``-th
            frame, at most ``context_max_frames``).
        context_pooling: ``"clip"`` embeds a context clip as the mean of its frames'
            embeddings; ``"frame"`` keeps every frame as a support image.
        target_frames: frames scored per target video: None for all (up to ``frame_cap``),
            or a random sample of this many.
        history: each scored frame's features are the mean over it and its previous
            ``history - 1`` frames (1: the frame alone).
        drop_not_present: drop target frames annotated ``object_not_present_issue`` (needs
            the annotations).
        min_valid_frames: a target video with fewer frames (after dropping) is left out.
        targets_once_per_user: the target frames are drawn once per user and shared by the
            user's tasks (``neurips21``), or drawn afresh for each task.
        metrics: the per-video metrics reported (a subset of `METRICS`).
    """

    name: str
    tasks_per_user: int
    video_cap: int = 15
    frame_cap: int = 1000
    context_sampling: str = "clips"
    context_clips: int = 8
    clip_length: int = 8
    context_stride: int = 30
    context_max_frames: int = 200
    context_pooling: str = "clip"
    target_frames: int | None = None
    history: int = 8
    drop_not_present: bool = False
    min_valid_frames: int = 1
    targets_once_per_user: bool = True
    metrics: tuple[str, ...] = METRICS

    def __post_init__(self) -> None:
        for name in ("tasks_per_user", "video_cap", "frame_cap", "context_clips", "clip_length"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("context_stride", "context_max_frames", "history", "min_valid_frames"):
            check_int(name, getattr(self, name), minimum=1)
        if self.target_frames is not None:
            check_int("target_frames", self.target_frames, minimum=1)
        if self.context_sampling not in ("clips", "uniform"):
            raise bad_argument(
                "context_sampling", self.context_sampling, "choose 'clips' or 'uniform'."
            )
        if self.context_pooling not in ("clip", "frame"):
            raise bad_argument("context_pooling", self.context_pooling, "choose 'clip' or 'frame'.")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise bad_argument(
                "metrics", self.metrics, f"choose one or more of {', '.join(METRICS)}."
            )

    @property
    def needs_annotations(self) -> bool:
        """True when scoring reads the annotations (to drop frames)."""
        return self.drop_not_present

    @property
    def context_frames_per_video(self) -> int:
        """Frames per context video when the video is long enough."""
        if self.context_sampling == "clips":
            return self.context_clips * self.clip_length
        return min(self.context_max_frames, -(-self.frame_cap // self.context_stride))

    @property
    def shortest_video(self) -> int:
        """The fewest frames a video may have, one clip (``clip_length`` frames)."""
        return self.clip_length if self.context_sampling == "clips" else 1

    def with_changes(self, **changes) -> Protocol:
        """A copy with some settings changed (checked), e.g. ``tasks_per_user=2``."""
        return replace(self, **changes)


NEURIPS21 = Protocol(name="neurips21", tasks_per_user=5)

ORBIT2022 = Protocol(
    name="orbit2022",
    tasks_per_user=50,
    context_sampling="uniform",
    clip_length=1,
    context_pooling="frame",
    target_frames=200,
    history=1,
    drop_not_present=True,
    min_valid_frames=50,
    targets_once_per_user=False,
    metrics=("frame_accuracy",),
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (NEURIPS21, ORBIT2022)}


def protocol_named(name: object, *, argument: str = "protocol") -> Protocol:
    """The protocol called ``name``; a misspelt name gets the closest one in the error."""
    if isinstance(name, Protocol):
        return name
    if name in PROTOCOLS:
        return PROTOCOLS[name]  # type: ignore[index]
    close = difflib.get_close_matches(str(name), list(PROTOCOLS), n=1, cutoff=0.3)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise bad_argument(
        argument,
        name,
        f"{hint}ORBIT's protocols are {', '.join(map(repr, PROTOCOLS))} (the LITE paper's, "
        "and the 2022 challenge's).",
    )


def check_setting(setting: object, *, argument: str = "setting") -> str:
    """``"clutter"`` (context: clean videos, target: clutter videos; ORBIT's CLU-VE) or
    ``"clean"`` (both from the clean videos; CLE-VE)."""
    if setting not in SETTINGS:
        raise bad_argument(
            argument,
            setting,
            "choose 'clutter' (clean context, clutter target: CLU-VE) or 'clean' (clean "
            "context and target: CLE-VE).",
        )
    return str(setting)
