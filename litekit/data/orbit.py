"""ORBIT-layout video frames and per-user tasks, as in the ORBIT benchmark.

ORBIT (Massiceti et al., ICCV 2021; the LITE paper's second benchmark) holds videos that
blind and low-vision users recorded of their own objects. On disk:

    root/<user>/<object>/<video>/<frame>.jpg
    root/<user>/<object>/<clean|clutter>/<video>/<frame>.jpg     (the released layout)

A task belongs to one user and asks which of *their* objects a frame shows: way is up to
the number of that user's objects; the support (context) set is frames of some of each
object's videos, and the query (target) set is frames of *other* videos of the same
objects, so a learner never sees a query video in its support set. Whole videos give many
frames per class, so a task easily holds hundreds of support images, which is what makes
LITE necessary on ORBIT.

`OrbitFrames` indexes every frame (labels and video membership known without loading an
image); `OrbitTaskSampler` draws tasks and plugs into `litekit.episode_loader`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from litekit._checks import bad_argument, check_int
from litekit._deprecated import warn_deprecated
from litekit.data.folders import (
    bad_path,
    check_root,
    has_image_extension,
    image_transform,
    load_image,
)
from litekit.episodes import EpisodeIndices, Sampler
from litekit.seeding import numpy_generator


@dataclass(frozen=True)
class Video:
    """One video: its class (a user's object), kind (``"clean"``, ``"clutter"`` or ``""``),
    folder, and the dataset indices of its frames (in frame order)."""

    label: int
    kind: str
    folder: Path
    frames: np.ndarray


def _frames_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and has_image_extension(f))


def _videos_under(object_folder: Path) -> list[tuple[str, Path]]:
    """(kind, folder) of every video below an object folder: a folder that holds frames.

    A folder directly below the object is a video; one level deeper, the level between
    is the video's kind (the released ORBIT layout's clean/clutter).
    """
    found = []
    for child in sorted(p for p in object_folder.iterdir() if p.is_dir()):
        if _frames_in(child):
            found.append(("", child))
            continue
        grandchildren = sorted(p for p in child.iterdir() if p.is_dir())
        if not grandchildren:
            raise bad_path(
                "video folder", child, "holds no frames (.jpg/.png); add them or remove it."
            )
        for video in grandchildren:
            if not _frames_in(video):
                raise bad_path(
                    "video folder",
                    video,
                    "holds no frames (.jpg/.png); add them or remove it.",
                )
            found.append((child.name, video))
    return found


class OrbitFrames(Dataset):
    """Every frame of an ORBIT-layout folder; ``dataset[i] -> (image, label)``.

    A class is one user's object: ``classes[label] == (user, object)``.

    Args:
        root: the folder holding one folder per user.
        image_size: frames become (3, image_size, image_size) tensors (ORBIT frames are
            1080 × 1080; the LITE paper used 224 px).
        transform: replaces the default resize-crop-to-tensor transform.
        normalization: (mean, std) per channel for the default transform, as pretrained
            weights expect (`litekit.data.normalization`); None keeps [0, 1] pixels.

    ``targets`` (label per frame), ``videos`` (a `Video` per video) and ``users`` are known
    without loading an image. A folder without frames is an error that names it.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        image_size: int = 84,
        *,
        transform: Callable | None = None,
        normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        self.root = check_root(root)
        if transform is None:
            transform = image_transform(image_size, normalization)
        self.transform = transform
        self.paths: list[Path] = []
        targets: list[int] = []
        self.classes: list[tuple[str, str]] = []
        self.videos: list[Video] = []
        self.users = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not self.users:
            raise bad_path(
                "root",
                self.root,
                "holds no user folders; lay frames out as root/<user>/<object>/<video>/<frame>"
                ".jpg (see data/README.md).",
            )
        for user in self.users:
            objects = sorted(p for p in (self.root / user).iterdir() if p.is_dir())
            if not objects:
                raise bad_path("user folder", self.root / user, "holds no object folders.")
            for object_folder in objects:
                videos = _videos_under(object_folder)
                if not videos:
                    raise bad_path("object folder", object_folder, "holds no video folders.")
                label = len(self.classes)
                self.classes.append((user, object_folder.name))
                for kind, folder in videos:
                    frames = _frames_in(folder)
                    start = len(self.paths)
                    self.paths.extend(frames)
                    targets.extend([label] * len(frames))
                    self.videos.append(
                        Video(label, kind, folder, np.arange(start, start + len(frames)))
                    )
        self.targets = targets

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(load_image(self.paths[index])), self.targets[index]

    def user_classes(self, user: str) -> list[int]:
        """Labels of ``user``'s objects."""
        return [label for label, (owner, _) in enumerate(self.classes) if owner == user]

    def class_videos(self, label: int, kind: str | None = None) -> list[Video]:
        """Videos of class ``label`` (of one ``kind`` only, if given)."""
        return [v for v in self.videos if v.label == label and (kind is None or v.kind == kind)]


def _optional_count(name: str, value: int | None) -> int | None:
    return None if value is None else check_int(name, value, minimum=1)


def _check_kinds(context_kind: str | None, target_kind: str | None) -> tuple:
    """Both kinds or neither. Two equal kinds split that kind's videos as ORBIT's clean
    setting does (see `OrbitTaskSampler`)."""
    if (context_kind is None) != (target_kind is None):
        raise bad_argument(
            "context_kind",
            context_kind,
            f"give both context_kind and target_kind (target_kind={target_kind!r}), or "
            "neither for a random split of each object's videos.",
        )
    return context_kind, target_kind


#: Equal kinds: the first min(5, n - 1) of an object's n videos of that kind (sorted by
#: name) are context videos, the rest target videos (ORBIT's clean setting, CLE-VE).
SAME_KIND_CONTEXT_VIDEOS = 5


class OrbitTaskSampler(Sampler):
    """Per-user tasks: a user's objects, context frames from some videos, target frames
    from others (the ORBIT benchmark's task structure).

    Episode k (a pure function of ``(seed, k)``):

    1. a user, uniformly among those with at least ``min_way`` usable objects (an object is
       usable if it has a context video and a different target video);
    2. way = min(max_way, the user's usable objects) of their objects, in random order
       (episode label j is the j-th);
    3. per object, its videos are split: with ``context_kind``/``target_kind`` (e.g.
       ``"clean"``/``"clutter"``, ORBIT's clutter protocol) by kind; with two equal kinds
       (``"clean"``/``"clean"``, ORBIT's clean protocol) the first min(5, n - 1) of the
       object's n videos of that kind, sorted by name, give the context and the rest the
       target; otherwise at random, ``target_videos`` for the target set and up to
       ``context_videos`` of the rest for the context set;
    4. per video, ``context_frames`` (or ``target_frames``) frames uniformly without
       replacement, or every frame when None. With ``clip_length`` L > 1 the frames come
       as ``frames // L`` random non-overlapping clips of L consecutive frames within the
       video's first 1000 (`litekit.orbit.clips.context_clips`, as ORBIT trains).

    ``random_way=True`` draws the way uniformly from ``min_way`` to min(``max_way``, the
    user's usable objects) instead of taking the largest (ORBIT's training tasks).

    Args:
        frames: an `OrbitFrames`.
        episodes: how many tasks one pass yields.
        seed: task k depends only on (seed, k).
        users: restrict to these users (default: all).
        min_way, max_way: bounds on the way (max_way None: all the user's objects).
        context_videos: videos per object in the context set (None: all not used as
            targets).
        target_videos: videos per object in the target set (random split only).
        context_frames, target_frames: frames per video (None: all of them).
        context_kind, target_kind: split videos by kind instead of at random.
        clip_length: frames per clip (1: frames drawn one by one).
        random_way: a random way per task instead of the largest.
    """

    def __init__(
        self,
        frames: OrbitFrames,
        episodes: int,
        seed: int = 0,
        *,
        users: Sequence[str] | None = None,
        min_way: int = 2,
        max_way: int | None = None,
        context_videos: int | None = None,
        target_videos: int = 1,
        context_frames: int | None = None,
        target_frames: int | None = None,
        context_kind: str | None = None,
        target_kind: str | None = None,
        clip_length: int = 1,
        random_way: bool = False,
    ) -> None:
        if not isinstance(frames, OrbitFrames):
            raise bad_argument("frames", type(frames).__name__, "pass an OrbitFrames dataset.")
        self.frames = frames
        self.episodes = check_int("episodes", episodes, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        self.min_way = check_int("min_way", min_way, minimum=1)
        self.max_way = None if max_way is None else check_int("max_way", max_way, minimum=min_way)
        self.context_videos = _optional_count("context_videos", context_videos)
        self.target_videos = check_int("target_videos", target_videos, minimum=1)
        self.context_frames = _optional_count("context_frames", context_frames)
        self.target_frames = _optional_count("target_frames", target_frames)
        self.context_kind, self.target_kind = _check_kinds(context_kind, target_kind)
        self.clip_length = check_int("clip_length", clip_length, minimum=1)
        self.random_way = bool(random_way)
        for name, frames_per_video in (("context_frames", self.context_frames),
                                       ("target_frames", self.target_frames)):  # fmt: skip
            if frames_per_video is not None and frames_per_video % self.clip_length:
                raise bad_argument(
                    name,
                    frames_per_video,
                    f"frames come in clips of clip_length={clip_length}; pass a multiple of it.",
                )
        chosen_users = frames.users if users is None else list(users)
        unknown = sorted(set(chosen_users) - set(frames.users))
        if unknown:
            raise bad_argument(
                "users", unknown, f"not in the dataset; its users are {frames.users}."
            )
        self._usable = {}
        for user in chosen_users:
            objects = [c for c in frames.user_classes(user) if self._usable_class(c)]
            if len(objects) >= self.min_way:
                self._usable[user] = objects
        if not self._usable:
            raise bad_argument(
                "min_way",
                min_way,
                "no user has that many objects with both a context and a target video; lower "
                "min_way, or check the video kinds (context_kind/target_kind).",
            )
        self._users = sorted(self._usable)

    def _kind_split(self, label: int) -> tuple[list[Video], list[Video]]:
        """Context and target videos of class ``label`` by kind (sorted by folder name)."""

        def kind(name: str) -> list[Video]:
            found = self.frames.class_videos(label, name)
            return sorted(found, key=lambda v: v.folder.name)

        if self.context_kind != self.target_kind:
            return kind(self.context_kind), kind(self.target_kind)
        videos = kind(self.context_kind)
        split = min(SAME_KIND_CONTEXT_VIDEOS, len(videos) - 1)
        return videos[: max(split, 0)], videos[max(split, 0) :] if split > 0 else []

    def _usable_class(self, label: int) -> bool:
        if self.context_kind is not None:
            context, target = self._kind_split(label)
            return bool(context) and bool(target)
        return len(self.frames.class_videos(label)) > self.target_videos

    @property
    def usable_users(self) -> list[str]:
        """The users that tasks are drawn from. Deprecated, as only the tests used it."""
        warn_deprecated("OrbitTaskSampler.usable_users", "it was only used by tests")
        return list(self._users)

    def _split(self, rng: np.random.Generator, label: int) -> tuple[list[Video], list[Video]]:
        if self.context_kind is not None:
            context, target = self._kind_split(label)
            context = [context[i] for i in rng.permutation(len(context))]
        else:
            videos = self.frames.class_videos(label)
            order = [videos[i] for i in rng.permutation(len(videos))]
            target, context = order[: self.target_videos], order[self.target_videos :]
        if self.context_videos is not None:
            context = context[: self.context_videos]
        return context, target

    def _sample(
        self, rng: np.random.Generator, videos: list[Video], per_video: int | None
    ) -> np.ndarray:
        parts = []
        for video in videos:
            if per_video is None or per_video >= len(video.frames) and self.clip_length == 1:
                parts.append(video.frames)
            elif self.clip_length > 1:
                # here, not at the top: the litekit.orbit package imports the learners,
                # which import this module through litekit.data
                from litekit.orbit.clips import context_clips

                clips = per_video // self.clip_length
                drawn = context_clips(rng, len(video.frames), clips, self.clip_length)
                parts.append(video.frames[drawn.positions.ravel()])
            else:
                parts.append(np.sort(rng.choice(video.frames, size=per_video, replace=False)))
        return np.concatenate(parts)

    def episode(self, index: int) -> EpisodeIndices:
        """The frames of task ``index`` (a pure function of ``(seed, index)``)."""
        rng = numpy_generator(self.seed, index)
        user = self._users[int(rng.integers(len(self._users)))]
        objects = self._usable[user]
        way = len(objects) if self.max_way is None else min(self.max_way, len(objects))
        if self.random_way:
            way = int(rng.integers(min(self.min_way, way), way + 1))
        chosen = rng.choice(objects, size=way, replace=False)
        support, support_labels, query, query_labels = [], [], [], []
        for episode_label, label in enumerate(chosen):
            context, target = self._split(rng, int(label))
            picked_context = self._sample(rng, context, self.context_frames)
            picked_target = self._sample(rng, target, self.target_frames)
            support.append(picked_context)
            query.append(picked_target)
            support_labels.append(np.full(len(picked_context), episode_label))
            query_labels.append(np.full(len(picked_target), episode_label))
        support_order = rng.permutation(sum(len(s) for s in support))
        query_order = rng.permutation(sum(len(q) for q in query))
        return EpisodeIndices(
            support_indices=np.concatenate(support)[support_order],
            support_labels=np.concatenate(support_labels)[support_order].astype(np.int64),
            query_indices=np.concatenate(query)[query_order],
            query_labels=np.concatenate(query_labels)[query_order].astype(np.int64),
            class_ids=np.asarray(chosen, dtype=np.int64),
        )
