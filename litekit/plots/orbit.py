"""ORBIT's per-video metrics, shown on the video: frames, predictions, the first correct one.

- `video_strip`: a few frames of a target video side by side, each framed green when the
  prediction is the video's object and red when not, captioned with the prediction; the
  first correctly predicted frame is always shown, with a thick frame and its caption
  saying so (its index over the number of frames is the frames-to-recognition).
- `recognition_timeline`: every frame's prediction along the video (right or wrong),
  with the first correct frame marked by a vertical line and the frame accuracy and the
  majority vote in the title.

Both take what `litekit.orbit.evaluate_orbit` records for a video: its predictions and
its label (and the images, for the strip).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litekit._checks import bad_argument, check_int
from litekit.orbit.metrics import (
    frame_accuracy,
    frames_to_recognition,
    video_prediction,
)
from litekit.plots.backends import check_backend, draw
from litekit.plots.chart import Axis, Chart, Panel, Rule, Series
from litekit.plots.images import _picture

RIGHT, WRONG = "#2ca02c", "#d62728"


def _bordered(picture: np.ndarray, colour: str, width: int) -> np.ndarray:
    rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    out = picture.copy()
    out[:width], out[-width:], out[:, :width], out[:, -width:] = rgb, rgb, rgb, rgb
    return out


def _names(class_names: Sequence[str] | None, count: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(count)]
    return [str(n) for n in class_names]


def _first_correct(predictions: np.ndarray, label: int) -> int | None:
    hits = np.flatnonzero(predictions == label)
    return int(hits[0]) if hits.size else None


def video_strip_chart(
    frames: Sequence[Any],
    predictions: Sequence[int],
    label: int,
    *,
    class_names: Sequence[str] | None = None,
    shown: int = 8,
    title: str = "",
    columns: int | None = 4,
) -> Chart:
    """The panels of `video_strip`: ``shown`` frames evenly spaced along the video, with
    the first correct frame in place of the nearest one (not the first or last), in rows
    of ``columns`` (None: one row)."""
    predictions = np.asarray(predictions)
    if len(frames) != len(predictions) or not len(frames):
        raise bad_argument(
            "frames", len(frames), f"pass one frame per prediction ({len(predictions)})."
        )
    shown = min(check_int("shown", shown, minimum=1), len(frames))
    picked = np.unique(np.linspace(0, len(frames) - 1, shown).round().astype(int)).tolist()
    first = _first_correct(predictions, label)
    if first is not None and first not in picked:
        # in place of the nearest frame, keeping the video's first and last when possible
        inner = range(1, len(picked) - 1) if len(picked) >= 3 else range(len(picked))
        nearest = min(inner, key=lambda i: abs(picked[i] - first))
        picked[nearest] = first
        picked = sorted(set(picked))
    names = _names(class_names, int(max(predictions.max(), label)) + 1)
    panels = []
    for i in picked:
        right = int(predictions[i]) == label
        picture = _picture(f"frames[{i}]", frames[i])
        side = min(picture.shape[:2])
        width = max(3, side // 8) if i == first else max(1, side // 24)
        picture = _bordered(picture, RIGHT if right else WRONG, width)
        caption = f"frame {i}: {names[int(predictions[i])]}"
        if i == first:
            caption = f"first correct, frame {i}: {names[int(predictions[i])]}"
        panels.append(Panel(image=picture, title=caption))
    if not title:
        ftr = frames_to_recognition(predictions, label)
        title = (
            f"object: {names[label]}; frame accuracy {frame_accuracy(predictions, label):.2f}, "
            f"frames to recognition {ftr:.2f}"
        )
    if columns is not None:
        columns = check_int("columns", columns, minimum=1)
    return Chart(tuple(panels), title=title, legend="none", panel_size=(1.9, 2.2), columns=columns)


def video_strip(
    frames: Sequence[Any],
    predictions: Sequence[int],
    label: int,
    *,
    class_names: Sequence[str] | None = None,
    shown: int = 8,
    title: str = "",
    columns: int | None = 4,
    backend: str = "matplotlib",
) -> Any:
    """Frames of one target video with their predictions; the first correct one marked.

    ``frames`` are the scored frames as (C, H, W) images in [0, 1], ``predictions`` the
    predicted class of each, ``label`` the video's object; ``class_names`` name the
    classes (default: their ids). The frames come in rows of ``columns`` (None: one row),
    so that their captions stay readable in a page's width.
    """
    backend = check_backend(backend)
    chart = video_strip_chart(
        frames,
        predictions,
        label,
        class_names=class_names,
        shown=shown,
        title=title,
        columns=columns,
    )
    return draw(chart, backend)


def recognition_timeline_chart(
    predictions: Sequence[int],
    label: int,
    *,
    class_names: Sequence[str] | None = None,
    frames: Sequence[int] | None = None,
    title: str = "",
) -> Chart:
    """The panel of `recognition_timeline`."""
    predictions = np.asarray(predictions)
    if predictions.ndim != 1 or not predictions.size:
        raise bad_argument("predictions", predictions, "pass the predicted class of each frame.")
    x = np.arange(len(predictions)) if frames is None else np.asarray(frames)
    if len(x) != len(predictions):
        raise bad_argument("frames", len(x), "pass one frame number per prediction.")
    names = _names(class_names, int(max(predictions.max(), label)) + 1)
    right = predictions == label
    series = []
    for mask, colour, text in ((right, RIGHT, "right"), (~right, WRONG, "wrong")):
        if mask.any():
            series.append(
                Series(tuple(x[mask].tolist()), tuple(float(p) for p in predictions[mask]),
                       label=text, kind="points", colour=colour, marker="circle",
                       hover=tuple(f"frame {f}: {names[int(p)]}" for f, p in
                                   zip(x[mask], predictions[mask], strict=True)))
            )  # fmt: skip
    rules = [Rule(float(label), label=f"the object: {names[label]}", colour=RIGHT)]
    first = _first_correct(predictions, label)
    if first is not None:
        ftr = frames_to_recognition(predictions, label)
        rules.append(Rule(float(x[first]), horizontal=False, colour="black",
                          label=f"first correct: frames to recognition {ftr:.2f}"))  # fmt: skip
    vote = names[video_prediction(predictions)]
    if not title:
        title = (
            f"frame accuracy {frame_accuracy(predictions, label):.2f}; the vote says {vote} "
            f"({'right' if vote == names[label] else 'wrong'})"
        )
    panel = Panel(
        tuple(series),
        x=Axis("frame"),
        # room under class 0 for the note naming the classes, which sits at the bottom
        y=Axis(
            "predicted class",
            ticks=tuple(float(i) for i in range(len(names))),
            limits=(-max(0.9, 0.15 * len(names)), len(names) - 0.5),
        ),
        rules=tuple(rules),
        note="classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(names)),
    )
    return Chart((panel,), title=title, panel_size=(8.0, 3.0), legend_place="upper right")


def recognition_timeline(
    predictions: Sequence[int],
    label: int,
    *,
    class_names: Sequence[str] | None = None,
    frames: Sequence[int] | None = None,
    title: str = "",
    backend: str = "matplotlib",
) -> Any:
    """Every frame's prediction along a video, right in green and wrong in red, the first
    correct frame marked; ``frames`` are the frame numbers (default 0, 1, ...)."""
    backend = check_backend(backend)
    chart = recognition_timeline_chart(
        predictions, label, class_names=class_names, frames=frames, title=title
    )
    return draw(chart, backend)
