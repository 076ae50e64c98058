"""Score a learner on ORBIT test tasks: per-video records, aggregates, a summary.

For each task (`litekit.orbit.tasks.OrbitTask`): load its context frames, personalise the
learner once (`litekit.orbit.personalise`), then for each target video embed the frames
its scored frames need (each scored frame and its history), average each scored frame's
history window, classify, and take the arg-max per frame. The per-video metrics
(`litekit.orbit.metrics`) and the per-user and per-video averages
(`litekit.orbit.aggregate`) follow from those predictions alone, and every prediction is
kept in the per-video records, so anyone can recompute both.

Nothing here draws from torch's random stream; the frames scored are fixed by the tasks.
A learner whose encoder does not depend on the task (ProtoNets) embeds a user's shared
target videos once and reuses the features in the user's other tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from litekit._checks import check_int
from litekit.orbit.aggregate import INTERVAL_NOTE, aggregate
from litekit.orbit.metrics import video_metrics
from litekit.orbit.personalise import Compute, Personalised, personalise
from litekit.orbit.protocols import METRICS
from litekit.orbit.tasks import OrbitTask, OrbitTestTasks, TargetVideo

SHOWN_VIDEOS = 6  # video names a note lists (the summary lists them all)
LABELS = {
    "frame_accuracy": "frame accuracy",
    "frames_to_recognition": "frames to recognition (lower is better)",
    "video_accuracy": "video accuracy",
}


@dataclass
class OrbitEvaluation:
    """What `evaluate_orbit` found.

    ``videos``: one record per scored target video per task (user, object, video, task,
    label, ``frames``: the positions of the scored frames among the video's frame files,
    ``predictions``: the predicted class of each, ``not_present``: the scored positions
    annotated as not showing the object, or None without annotations, and the protocol's
    metrics);
    ``tasks``: one record per task (its context clips); ``aggregates``: per-user and
    per-video means with 95% intervals (`litekit.orbit.aggregate`); ``summary``: counts,
    what was left out or repeated, and how the intervals are computed.
    """

    protocol: str
    setting: str
    metrics: tuple[str, ...]
    videos: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    aggregates: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    @property
    def frame_accuracy(self) -> tuple[float, float]:
        """Per-video frame accuracy and its 95% half-width, the headline number."""
        cell = self.aggregates["per_video"]["frame_accuracy"]
        return cell["mean"], cell["ci95"]

    def rows(self) -> list[dict[str, str]]:
        """One table row per metric, in percent as ORBIT reports them."""

        def cell(values: dict) -> str:
            return f"{100 * values['mean']:.2f} ± {100 * values['ci95']:.2f} (n={values['n']})"

        return [
            {
                "metric": LABELS[metric],
                "per user": cell(self.aggregates["per_user"][metric]),
                "per video": cell(self.aggregates["per_video"][metric]),
            }
            for metric in self.metrics
        ]

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for JSON."""
        return {
            "protocol": self.protocol,
            "setting": self.setting,
            "metrics": list(self.metrics),
            "aggregates": self.aggregates,
            "summary": self.summary,
            "tasks": self.tasks,
            "videos": self.videos,
        }


class _FrameLoader:
    """Images of an `OrbitFrames` by dataset index, stacked; decoded by ``workers`` threads
    (JPEG decoding and resizing release the GIL), or in this thread when 0."""

    def __init__(self, frames: Any, workers: int = 0) -> None:
        self.frames = frames
        self.pool = ThreadPoolExecutor(workers) if workers > 0 else None

    def image(self, index: int) -> torch.Tensor:
        return self.frames[int(index)][0]

    def __call__(self, indices: Iterable[int]) -> torch.Tensor:
        if self.pool is None:
            return torch.stack([self.image(i) for i in indices])
        return torch.stack(list(self.pool.map(self.image, indices)))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _embed_frames(
    personalised: Personalised, load: _FrameLoader, indices: np.ndarray, chunk: int
) -> torch.Tensor:
    parts = [
        personalised.encode(load(indices[i : i + chunk])) for i in range(0, len(indices), chunk)
    ]
    return torch.cat(parts)


def _predict(
    personalised: Personalised,
    video: TargetVideo,
    load: _FrameLoader,
    compute: Compute,
    cache: dict | None,
) -> np.ndarray:
    """The predicted class of each scored frame of ``video``."""
    needed = np.unique(video.windows)
    key = (video.name, needed.tobytes())
    reuse = personalised.shared_encoder and cache is not None
    if reuse and key in cache:
        features = cache[key]
    else:
        features = _embed_frames(personalised, load, needed, compute.chunk_size)
        if reuse:
            cache[key] = features
    rows = torch.from_numpy(np.searchsorted(needed, video.windows)).to(features.device)
    if personalised.poolable:
        pooled = features[rows].mean(1)  # (frames, history, D) -> (frames, D)
    else:
        pooled = features[rows[:, -1]]  # the frame itself
    predictions = []
    for i in range(0, len(pooled), compute.chunk_size):
        predictions.append(personalised.classify(pooled[i : i + compute.chunk_size]).argmax(1))
    return torch.cat(predictions).cpu().numpy()


def _task_record(task: OrbitTask) -> dict:
    return {
        "user": task.user,
        "task": task.task,
        "way": task.way,
        "objects": list(task.objects),
        "context": [
            {
                "video": v.name,
                "label": v.label,
                "frames": v.positions.tolist(),
                "repeated": v.repeated,
            }
            for v in task.context
        ],
        "target_videos": [v.name for v in task.targets],
    }


def _score_task(
    learner: nn.Module,
    task: OrbitTask,
    tasks: OrbitTestTasks,
    compute: Compute,
    cache: dict | None,
    load: _FrameLoader,
) -> list[dict]:
    indices, labels, groups = task.support()
    pool = tasks.protocol.context_pooling == "clip" and tasks.protocol.clip_length > 1
    personalised = personalise(
        learner,
        load(indices),
        torch.from_numpy(labels),
        torch.from_numpy(groups) if pool else None,
        compute,
    )
    if tasks.protocol.history > 1 and not personalised.poolable:
        raise ValueError(
            f"learner={type(learner).__name__!r}: it scores images, not features, so frames "
            "cannot be averaged over their history; pass a protocol with history=1 "
            "(protocol.with_changes(history=1, context_pooling='frame'))."
        )
    records = []
    for video in task.targets:
        predictions = _predict(personalised, video, load, compute, cache)
        record = {
            "user": task.user,
            "object": video.object,
            "video": video.name,
            "task": task.task,
            "label": video.label,
            "frames": video.positions.tolist(),
            "predictions": predictions.tolist(),
            "not_present": None if video.absent is None else video.absent.tolist(),
        }
        record.update(video_metrics(predictions, video.label, tasks.protocol.metrics))
        records.append(record)
    return records


def _summary(tasks: OrbitTestTasks, result: OrbitEvaluation) -> dict:
    draws = [c for t in result.tasks for c in t["context"]]
    repeated = sorted({c["video"] for c in draws if c["repeated"]})
    p = tasks.protocol
    notes = [INTERVAL_NOTE]
    if repeated:
        shown = ", ".join(repeated[:SHOWN_VIDEOS])
        more = f" and {len(repeated) - SHOWN_VIDEOS} more" if len(repeated) > SHOWN_VIDEOS else ""
        notes.append(
            f"{sum(c['repeated'] for c in draws)} of {len(draws)} context clip draws repeated "
            f"frames (a video shorter than {p.context_frames_per_video} frames of its first "
            f"{p.frame_cap}, or a last clip padded with the last frame), from "
            f"{len(repeated)} video(s): {shown}{more}"
        )
    annotated = [r for r in result.videos if r["not_present"] is not None]
    if annotated and not p.drop_not_present:
        absent = sum(len(r["not_present"]) for r in annotated)
        scored = sum(len(r["frames"]) for r in annotated)
        notes.append(
            f"annotations read for {len(annotated)} of {len(result.videos)} scored videos: "
            f"{absent} of their {scored} scored frames are annotated object_not_present_issue "
            f"(scored all the same, as protocol {p.name!r} does; 'not_present' in each record "
            "lists them)"
        )
    excluded = tasks.exclusions.as_dict()
    if any(excluded.values()):
        notes.append(
            f"left out by the protocol: {len(excluded['videos'])} target video(s) with fewer "
            f"than {p.min_valid_frames} valid frames, {len(excluded['objects'])} object(s) left "
            f"without a target video, {len(excluded['users'])} user(s) left with fewer than 2 "
            "objects"
        )
    return {
        "users": len(tasks.users),
        "tasks": len(result.tasks),
        "scored_videos": len(result.videos),
        "distinct_target_videos": len({(r["user"], r["video"]) for r in result.videos}),
        "scored_frames": sum(len(r["predictions"]) for r in result.videos),
        "context_video_draws": len(draws),
        "context_draws_with_repeated_frames": sum(c["repeated"] for c in draws),
        "repeated_context_videos": repeated,
        "excluded": excluded,
        "annotations": None if tasks.annotations is None else str(tasks.annotations),
        "seed": tasks.seed,
        "notes": notes,
    }


@torch.no_grad()
def evaluate_orbit(
    learner: nn.Module,
    tasks: OrbitTestTasks,
    *,
    compute: Compute | None = None,
    workers: int = 0,
    progress: bool = False,
) -> OrbitEvaluation:
    """Score ``learner`` on every task of ``tasks``; see the module docstring.

    The learner is put in eval mode for the run (and back after). ``compute`` sets the
    chunk size, precision and memory layout of the no-grad passes; ``workers`` threads
    decode the frames (0: this thread).
    """
    check_int("workers", workers, minimum=0)
    compute = compute or Compute()
    metrics = tuple(m for m in METRICS if m in tasks.protocol.metrics)
    result = OrbitEvaluation(tasks.protocol.name, tasks.setting, metrics)
    was_training = learner.training
    learner.eval()
    # Target features reused across a user's tasks: only when the tasks share them.
    cache: dict | None = {} if tasks.protocol.targets_once_per_user else None
    user = None
    load = _FrameLoader(tasks.frames, workers)
    try:
        for task in tqdm(tasks, total=len(tasks), desc="ORBIT tasks", disable=not progress):
            if task.user != user and cache is not None:
                cache.clear()
            user = task.user
            result.videos.extend(_score_task(learner, task, tasks, compute, cache, load))
            result.tasks.append(_task_record(task))
    finally:
        learner.train(was_training)
        load.close()
    result.aggregates = aggregate(result.videos, metrics)
    result.summary = _summary(tasks, result)
    return result
