"""ORBIT's user-centric test tasks, built as a protocol says (`litekit.orbit.protocols`).

A test task belongs to one user. Its way is all of the user's objects, labelled 0..K-1 in
the sorted order of their folder names (a tie in a video's vote goes to the object first
in that order). Per object:

- setting ``clutter`` (CLU-VE): context videos are the object's clean videos, target
  videos its clutter videos;
- setting ``clean`` (CLE-VE): the object's clean videos, sorted by name; the first
  min(5, n - 1) are context videos and the rest target videos;

each capped at ``protocol.video_cap`` (a random sample of that many when there are more).
Frames within a video are chosen by `litekit.orbit.clips`.

Randomness: task k of user u draws from ``numpy_generator(seed, name_key(u), k, ...)``, and the
target videos shared by a user's tasks (``neurips21``) from ``numpy_generator(seed,
name_key(u), ...)``; a task is therefore a pure function of the seed, the user's folder
name and k, whatever other users the folder holds.

`OrbitTestTasks` checks the whole split when it is built, before any image is loaded or any
model runs: a user with one object, an object without context videos, a user without
target videos, a video shorter than one clip, a layout without ``clean``/``clutter``
folders, and (``orbit2022``) annotations that are missing. Each error names the folder or
file and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litekit._checks import bad_argument, check_int
from litekit.data.folders import bad_path
from litekit.data.orbit import OrbitFrames, Video
from litekit.orbit import clips as sampling
from litekit.orbit.annotations import (
    DOWNLOAD_FIX,
    annotation_folder,
    annotation_folders,
    read_video_annotations,
)
from litekit.orbit.protocols import Protocol, check_setting, protocol_named
from litekit.seeding import name_key, numpy_generator

_TARGET_STREAM, _TASK_STREAM = 0x7A46, 0x7A47  # keep these streams apart from others
CLEAN_CONTEXT_VIDEOS = 5  # clean setting: the first min(5, n - 1) clean videos are context


@dataclass(frozen=True)
class VideoFrames:
    """One video as the protocol sees it: its usable frames (dataset indices, in order),
    their positions among the video's frame files (0-based), and the positions annotated
    ``object_not_present_issue`` (None when no annotation was read)."""

    name: str
    folder: Path
    indices: np.ndarray
    positions: np.ndarray
    total: int  # frame files on disk
    absent: frozenset[int] | None = None

    @classmethod
    def whole(cls, video: Video, absent: frozenset[int] | None = None) -> VideoFrames:
        n = len(video.frames)
        return cls(video.folder.name, video.folder, video.frames, np.arange(n), n, absent)


@dataclass(frozen=True)
class ContextVideo:
    """The context frames one task takes from a video: ``positions`` and dataset
    ``indices``, both (clips, frames per clip); ``repeated`` if a frame occurs twice."""

    label: int
    name: str
    positions: np.ndarray
    indices: np.ndarray
    repeated: bool


@dataclass(frozen=True)
class TargetVideo:
    """One scored target video: the positions (0-based, among its frame files) and dataset
    indices of its scored frames, in order, and ``windows`` (frames, history): the dataset
    indices whose features are averaged for each scored frame."""

    label: int
    object: str
    name: str
    positions: np.ndarray
    indices: np.ndarray
    windows: np.ndarray
    absent: np.ndarray | None = None  # scored positions annotated as not showing the object


@dataclass(frozen=True)
class OrbitTask:
    """One test task: a user's objects, context clips and target videos."""

    user: str
    task: int
    objects: tuple[str, ...]
    context: tuple[ContextVideo, ...]
    targets: tuple[TargetVideo, ...]

    @property
    def way(self) -> int:
        return len(self.objects)

    def support(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The context frames flat: dataset indices, labels, and a group id per frame (one
        group per clip, the unit ``context_pooling="clip"`` averages over)."""
        indices, labels, groups = [], [], []
        group = 0
        for video in self.context:
            for clip in video.indices:
                indices.append(clip)
                labels.append(np.full(len(clip), video.label))
                groups.append(np.full(len(clip), group))
                group += 1
        return np.concatenate(indices), np.concatenate(labels), np.concatenate(groups)


@dataclass
class _User:
    name: str
    objects: list[str]
    context: list[list[VideoFrames]]
    target: list[list[VideoFrames]]


@dataclass
class Exclusions:
    """What the protocol left out, for the run's summary."""

    videos: list[dict] = field(default_factory=list)  # target videos with too few valid frames
    objects: list[dict] = field(default_factory=list)  # objects left without a target video
    users: list[str] = field(default_factory=list)  # users left with fewer than 2 objects

    def as_dict(self) -> dict:
        return {"videos": self.videos, "objects": self.objects, "users": self.users}


def _check_kinds(videos: list[Video], object_folder: Path) -> None:
    for video in videos:
        if video.kind not in ("clean", "clutter"):
            raise bad_path(
                "video folder",
                video.folder,
                "ORBIT's protocol needs each object's videos under clean/ and clutter/ "
                f"(root/<user>/<object>/clean/<video>/<frame>.jpg); move it into "
                f"{object_folder}/clean or {object_folder}/clutter (see data/README.md).",
            )


def _split(videos: list[Video], setting: str, folder: Path) -> tuple[list[Video], list[Video]]:
    """The candidate context and target videos of one object, sorted by name."""
    clean = sorted((v for v in videos if v.kind == "clean"), key=lambda v: v.folder.name)
    clutter = sorted((v for v in videos if v.kind == "clutter"), key=lambda v: v.folder.name)
    if setting == "clutter":
        if not clean:
            raise bad_path(
                "object folder",
                folder,
                "has no clean videos, and ORBIT's context set comes from them; add a video "
                "under clean/, or remove the object.",
            )
        return clean, clutter
    if len(clean) < 2:
        raise bad_path(
            "object folder",
            folder,
            f"has {len(clean)} clean video(s); the clean setting takes context and target "
            "videos from them and needs at least 2. Add clean videos, or use --setting "
            "clutter.",
        )
    split = min(CLEAN_CONTEXT_VIDEOS, len(clean) - 1)
    return clean[:split], clean[split:]


def _choose(rng: np.random.Generator, videos: Sequence, cap: int) -> list:
    """All of ``videos`` when there are at most ``cap``, else ``cap`` of them at random (in
    their sorted order)."""
    if len(videos) <= cap:
        return list(videos)
    return [videos[i] for i in np.sort(rng.choice(len(videos), size=cap, replace=False))]


class OrbitTestTasks:
    """The test tasks of one ORBIT split under a protocol; checked when built.

    Args:
        frames: the split's `OrbitFrames` (e.g. of ``data/orbit/test``).
        protocol: ``"neurips21"``, ``"orbit2022"`` or a `Protocol`.
        setting: ``"clutter"`` or ``"clean"``.
        seed: tasks are a function of the seed, the user and the task number.
        users: only these users (default: all of the split's).
        annotations: the folder of the split's annotation files (default: found next to
            the split, see `litekit.orbit.annotations`); needed by ``orbit2022``.

    Iterating gives every user's tasks, user by user (`OrbitTask`); ``exclusions`` lists
    what the protocol left out.
    """

    def __init__(
        self,
        frames: OrbitFrames,
        protocol: str | Protocol = "neurips21",
        setting: str = "clutter",
        seed: int = 0,
        *,
        users: Sequence[str] | None = None,
        annotations: str | os.PathLike | None = None,
    ) -> None:
        if not isinstance(frames, OrbitFrames):
            raise bad_argument("frames", type(frames).__name__, "pass an OrbitFrames dataset.")
        self.frames = frames
        self.protocol = protocol_named(protocol)
        self.setting = check_setting(setting)
        self.seed = check_int("seed", seed, minimum=0)
        chosen = frames.users if users is None else list(users)
        unknown = sorted(set(chosen) - set(frames.users))
        if unknown:
            raise bad_argument("users", unknown, f"not in the split; its users are {frames.users}.")
        self.annotations = self._annotation_folder(annotations)
        self.exclusions = Exclusions()
        self._users = [u for u in (self._user(name) for name in chosen) if u is not None]
        if not self._users:
            excluded = self.exclusions.as_dict()
            raise bad_path(
                "root",
                frames.root,
                f"no user is left to test: protocol {self.protocol.name!r} leaves out target "
                f"videos with fewer than {self.protocol.min_valid_frames} frames that show the "
                f"object, and then objects without a target video and users with fewer than 2 "
                f"objects ({len(excluded['videos'])} video(s), {len(excluded['objects'])} "
                f"object(s), {len(excluded['users'])} user(s) left out); check the annotations, "
                "or use protocol 'neurips21'.",
            )

    # --- checks and the per-user video lists, when built ---------------------------------

    def _annotation_folder(self, explicit: str | os.PathLike | None) -> Path | None:
        folder = annotation_folder(self.frames.root, explicit)
        if not self.protocol.needs_annotations:
            return folder  # read where present: the records say which frames lack the object
        if folder is None:
            expected = annotation_folders(self.frames.root)[0]
            raise bad_path(
                "annotations",
                expected,
                f"no such folder, and protocol {self.protocol.name!r} drops the frames "
                f"annotated object_not_present_issue; {DOWNLOAD_FIX}.",
            )
        return folder

    def _usable(self, video: Video) -> VideoFrames:
        """The video's frames after the protocol's drops (target videos), with the frames
        annotated as not showing the object, where annotations are present."""
        path = None if self.annotations is None else self.annotations / f"{video.folder.name}.json"
        if not self.protocol.drop_not_present:
            if path is None or not path.is_file():
                return VideoFrames.whole(video)
            table = read_video_annotations(path)
            names = [self.frames.paths[i].name for i in video.frames]
            absent = frozenset(
                p for p, n in enumerate(names) if n in table and table[n].not_present
            )
            return VideoFrames.whole(video, absent)
        if not path.is_file():
            raise bad_path(
                "annotation file",
                path,
                f"missing (the annotations of video {str(video.folder)!r}), and protocol "
                f"{self.protocol.name!r} drops the frames annotated object_not_present_issue; "
                f"{DOWNLOAD_FIX}.",
            )
        table = read_video_annotations(path)
        keep = []
        for position, index in enumerate(video.frames):
            name = self.frames.paths[index].name
            if name not in table:
                raise bad_path(
                    "annotation file",
                    path,
                    f"has no entry for frame {name!r} of {str(video.folder)!r}; use the "
                    "annotation file released with these frames (or frames named as ORBIT "
                    "names them).",
                )
            if not table[name].not_present:
                keep.append(position)
        kept = np.asarray(keep, dtype=np.int64)
        return VideoFrames(
            video.folder.name, video.folder, video.frames[kept], kept, len(video.frames),
            frozenset(),  # none of the kept frames lacks the object
        )  # fmt: skip

    def _check_length(self, video: Video) -> None:
        shortest = self.protocol.shortest_video
        if len(video.frames) < shortest:
            raise bad_path(
                "video folder",
                video.folder,
                f"has {len(video.frames)} frame(s), fewer than one clip ({shortest} "
                f"consecutive frames, protocol {self.protocol.name!r}); remove the video (or "
                "its object's folder), or add its frames.",
            )

    def _user(self, user: str) -> _User | None:
        frames, root = self.frames, self.frames.root / user
        labels = frames.user_classes(user)
        if len(labels) < 2:
            raise bad_path(
                "user folder",
                root,
                f"holds {len(labels)} object folder; an ORBIT task tells a user's objects "
                "apart and needs at least 2. Add object folders, or remove the user.",
            )
        split = {}
        for label in labels:
            folder = root / frames.classes[label][1]
            videos = frames.class_videos(label)
            _check_kinds(videos, folder)
            for video in videos:
                self._check_length(video)
            split[frames.classes[label][1]] = _split(videos, self.setting, folder)
        if not any(targets for _, targets in split.values()):
            kind = "clutter" if self.setting == "clutter" else "clean"
            raise bad_path(
                "user folder",
                root,
                f"has no {kind} target videos, and the {self.setting} setting scores them; "
                f"add videos under <object>/{kind}/, remove the user, or use another "
                "--setting.",
            )
        objects, context, target = [], [], []
        for name, (candidates, targets) in split.items():
            usable = [self._usable(v) for v in targets]
            kept = [v for v in usable if len(v.indices) >= self.protocol.min_valid_frames]
            self.exclusions.videos.extend(
                {"user": user, "object": name, "video": v.name, "valid_frames": len(v.indices)}
                for v in usable
                if len(v.indices) < self.protocol.min_valid_frames
            )
            if self.protocol.drop_not_present and not kept:
                self.exclusions.objects.append({"user": user, "object": name})
                continue  # as ORBIT's 2022 loader: an object needs a valid target video
            objects.append(name)
            context.append([VideoFrames.whole(v) for v in candidates])
            target.append(kept)
        if len(objects) < 2 or not any(target):
            self.exclusions.users.append(user)
            return None
        return _User(user, objects, context, target)

    # --- the tasks --------------------------------------------------------------------------

    @property
    def users(self) -> list[str]:
        """The users tested (after exclusions)."""
        return [u.name for u in self._users]

    def __len__(self) -> int:
        return len(self._users) * self.protocol.tasks_per_user

    def __iter__(self) -> Iterator[OrbitTask]:
        for user in self._users:
            shared = self._shared_targets(user)
            for k in range(self.protocol.tasks_per_user):
                yield self._task(user, k, shared)

    def task(self, user: str, k: int) -> OrbitTask:
        """Task ``k`` of ``user``."""
        found = [u for u in self._users if u.name == user]
        if not found:
            raise bad_argument("user", user, f"not tested; the users are {self.users}.")
        check_int("k", k, minimum=0)
        return self._task(found[0], k, self._shared_targets(found[0]))

    def _shared_targets(self, user: _User) -> tuple[TargetVideo, ...] | None:
        if not self.protocol.targets_once_per_user:
            return None
        return self._targets(user, numpy_generator(self.seed, name_key(user.name), _TARGET_STREAM))

    def _task(self, user: _User, k: int, shared: tuple[TargetVideo, ...] | None) -> OrbitTask:
        rng = numpy_generator(self.seed, name_key(user.name), k, _TASK_STREAM)
        context = tuple(
            self._context_video(rng, label, video)
            for label, videos in enumerate(user.context)
            for video in _choose(rng, videos, self.protocol.video_cap)
        )
        targets = shared if shared is not None else self._targets(user, rng)
        return OrbitTask(user.name, k, tuple(user.objects), context, targets)

    def _context_video(
        self, rng: np.random.Generator, label: int, video: VideoFrames
    ) -> ContextVideo:
        p = self.protocol
        n = len(video.indices)
        if p.context_sampling == "clips":
            drawn = sampling.context_clips(rng, n, p.context_clips, p.clip_length, p.frame_cap)
            positions, repeated = drawn.positions, drawn.repeated
        else:
            positions = sampling.uniform_frames(
                n, p.context_stride, p.context_max_frames, p.frame_cap
            )
            positions, repeated = positions[:, None], False
        return ContextVideo(
            label, video.name, video.positions[positions], video.indices[positions], repeated
        )

    def _targets(self, user: _User, rng: np.random.Generator) -> tuple[TargetVideo, ...]:
        p = self.protocol
        chosen = []
        for label, videos in enumerate(user.target):
            for video in _choose(rng, videos, p.video_cap):
                n = len(video.indices)
                if p.target_frames is None:
                    scored = sampling.all_frames(n, p.frame_cap)
                else:
                    scored = sampling.random_frames(rng, n, p.target_frames, p.frame_cap)
                windows = sampling.history_windows(scored, p.history)
                positions = video.positions[scored]
                absent = None
                if video.absent is not None:
                    absent = np.asarray([q for q in positions if int(q) in video.absent], int)
                chosen.append(
                    TargetVideo(
                        label,
                        user.objects[label],
                        video.name,
                        positions,
                        video.indices[scored],
                        video.indices[windows],
                        absent,
                    )
                )
        return tuple(chosen)
