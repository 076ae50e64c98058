"""ORBIT's per-frame annotations: one JSON file per video, keyed by frame file name.

Two releases, both read:

- the extra annotations of December 2022 (``data/orbit_extra_annotations.zip`` in the
  microsoft/ORBIT-Dataset repository), laid out as ``<dataset root>/annotations/<split>/
  <video>.json``. A clutter video's frames carry ``{"object_bounding_box": {"x", "y", "w",
  "h"} or null, "object_not_present_issue": bool}``; a clean video's carry quality flags
  (``object_not_present_issue``, ``framing_issue``, ``viewpoint_issue``, ``blur_issue``,
  ``occlusion_issue``, ``overexposed_issue``, ``underexposed_issue``: true, false or null);
- the clutter bounding boxes of 2021 (``data/orbit_clutter_bounding_boxes.zip`` at the
  tag ``results-neurips21-paper``), unzipped as ``<dataset root>/<split>_annotations/
  <video>.json``, whose frames carry ``{"object_bounding_box": [x, y, w, h],
  "object_presence": 0 or 1}``.

Boxes are in the coordinates of the original 1080 × 1080 frames. `annotation_folder`
finds the folder for a split; `read_video_annotations` reads one file into
`FrameAnnotation`s (``object_presence: 0`` reads as ``not_present=True``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litekit.data.folders import bad_path

DOWNLOAD_FIX = (
    "download ORBIT's annotations (data/orbit_extra_annotations.zip in the "
    "github.com/microsoft/ORBIT-Dataset repository) and unzip them so that "
    "<dataset root>/annotations/<split>/<video>.json exist (see data/README.md), or pass "
    "the folder with --annotations"
)
QUALITY_ISSUES = (
    "framing_issue",
    "viewpoint_issue",
    "blur_issue",
    "occlusion_issue",
    "overexposed_issue",
    "underexposed_issue",
)


@dataclass(frozen=True)
class FrameAnnotation:
    """One frame's annotation.

    ``not_present``: True when the video's object is not in the frame, False when it is,
    None when the file does not say; ``box``: (x, y, w, h) in 1080-px coordinates, or None;
    ``issues``: the quality flags present in the file (clean videos).
    """

    not_present: bool | None = None
    box: tuple[int, int, int, int] | None = None
    issues: dict[str, bool | None] = field(default_factory=dict)


def annotation_folders(split_root: Path) -> list[Path]:
    """Where a split's annotations may be, in the order they are looked for."""
    parent, split = split_root.parent, split_root.name
    return [
        parent / "annotations" / split,
        parent / f"{split}_annotations",
        parent / "annotations" / f"{split}_annotations",
    ]


def annotation_folder(
    split_root: str | os.PathLike, explicit: str | os.PathLike | None = None
) -> Path | None:
    """The folder of the split's per-video annotation files: ``explicit`` (which must
    exist), else the first of `annotation_folders` that exists, else None."""
    if explicit is not None:
        folder = Path(explicit)
        if not folder.is_dir():
            raise bad_path("annotations", folder, f"no such folder; {DOWNLOAD_FIX}.")
        return folder
    for folder in annotation_folders(Path(split_root)):
        if folder.is_dir():
            return folder
    return None


def _box(value: Any, path: Path, frame: str) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    if isinstance(value, Mapping) and all(k in value for k in "xywh"):
        value = [value[k] for k in "xywh"]
    if isinstance(value, list | tuple) and len(value) == 4:
        try:
            return tuple(int(v) for v in value)  # type: ignore[return-value]
        except (TypeError, ValueError):
            pass
    raise bad_path(
        "annotation file",
        path,
        f"frame {frame!r} has object_bounding_box {value!r}; expected {{x, y, w, h}} or "
        "[x, y, w, h] (integers), or null. Replace the file with ORBIT's.",
    )


def _frame(value: Any, path: Path, frame: str) -> FrameAnnotation:
    if not isinstance(value, Mapping):
        raise bad_path(
            "annotation file",
            path,
            f"frame {frame!r} maps to {value!r}, not to a dict of annotations; replace the "
            "file with ORBIT's.",
        )
    not_present = value.get("object_not_present_issue")
    if not_present is None and value.get("object_presence") is not None:
        not_present = not bool(value["object_presence"])
    issues = {k: value[k] for k in QUALITY_ISSUES if k in value}
    present = None if not_present is None else bool(not_present)
    return FrameAnnotation(present, _box(value.get("object_bounding_box"), path, frame), issues)


def read_video_annotations(path: str | os.PathLike) -> dict[str, FrameAnnotation]:
    """The annotations of one video, by frame file name (e.g. ``"P177--bag--clutter--...
    -00001.jpg"``); a file that is not ORBIT's annotation JSON is an error naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad_path("annotation file", path, f"no such file; {DOWNLOAD_FIX}.") from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise bad_path(
            "annotation file",
            path,
            f"cannot be read as JSON ({error}); replace it with ORBIT's annotation file.",
        ) from None
    if not isinstance(data, dict):
        raise bad_path(
            "annotation file",
            path,
            "holds no dict of frames; ORBIT's files map each frame's file name to its "
            "annotations. Replace it with ORBIT's.",
        )
    return {str(frame): _frame(value, path, str(frame)) for frame, value in data.items()}
