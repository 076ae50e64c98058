"""A miniature ORBIT dataset on disk, in the real layout, from the embedded images.

`write_orbit_tree` writes what the ORBIT benchmark's download unzips to, at a size a CPU
handles in seconds: for each split, users; for each user, objects (each one a class of the
embedded dataset, `litekit.data.ProceduralImages`, never shared between users or splits);
for each object, clean and clutter videos of JPEG frames; and the per-frame annotation
files of the 2022 release (or of 2021, or none)::

    root/train/P100/keys/clean/P100--keys--clean--v0/P100--keys--clean--v0-00001.jpg
    root/train/P100/keys/clutter/P100--keys--clutter--v0/...
    root/annotations/train/P100--keys--clutter--v0.json       (2022 release)
    root/train_annotations/P100--keys--clutter--v0.json       (2021 release)

A clean video shows its object filling the frame; a clutter video shows it smaller, at a
random place on a background of other objects' images, and, for a run of consecutive
frames, not at all (those frames are annotated ``object_not_present_issue: true``, with no
bounding box). The tests, notebook 07 and the documentation's examples use it; nothing in
it is needed to read the real dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from litekit._checks import bad_argument, check_int
from litekit.data.procedural import ProceduralImages
from litekit.seeding import numpy_generator

OBJECT_NAMES = (
    "keys", "wallet", "mug", "remote", "phone", "glasses", "headphones", "bag", "bottle",
    "watch", "charger", "hairbrush", "facemask", "watering-can", "cane", "book",
)  # fmt: skip
ORIGINAL_SIZE = 1080  # ORBIT's frames and boxes are 1080 x 1080
SPLITS = ("train", "validation", "test")
CLUTTER_CLASSES = 64  # the embedded classes after the objects' that clutter backgrounds show


@dataclass(frozen=True)
class TreeSpec:
    """The shape of a miniature ORBIT tree (see `write_orbit_tree`)."""

    users: dict[str, int]
    objects: tuple[int, ...]
    clean_videos: int
    clutter_videos: int
    clean_frames: int
    clutter_frames: int
    image_size: int
    not_present: int
    seed: int


def _to_jpeg(image: torch.Tensor, path: Path) -> None:
    pixels = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=92)


def _clutter_frame(
    objects: ProceduralImages, clutter: ProceduralImages, label: int, instance: int, rng
) -> tuple[torch.Tensor, tuple[int, int, int, int] | None]:
    """A frame of clutter: a background of another image, the object pasted smaller at a
    random place; and its box (x, y, w, h) in frame pixels."""
    size = objects.image_size
    background = clutter.render(int(rng.integers(clutter.num_classes)), instance)
    side = int(rng.integers(size // 2, 3 * size // 4 + 1))
    thing = torch.nn.functional.interpolate(
        objects.render(label, instance)[None],
        size=(side, side),
        mode="bilinear",
        align_corners=False,
    )[0]
    x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
    frame = background.clone()
    frame[:, y : y + side, x : x + side] = thing
    return frame, (x, y, side, side)


def _box_1080(box: tuple[int, int, int, int], size: int) -> dict[str, int]:
    scale = ORIGINAL_SIZE / size
    return dict(zip("xywh", (int(round(v * scale)) for v in box), strict=True))


def _write_video(
    folder: Path,
    video: str,
    frames: list[tuple[torch.Tensor, tuple | None, bool]],
    clean: bool,
) -> dict[str, dict]:
    """Write a video's frames; return its annotations in the 2022 format, by frame name."""
    target = folder / video
    target.mkdir(parents=True)
    annotations = {}
    for i, (image, box, present) in enumerate(frames, start=1):
        name = f"{video}-{i:05d}.jpg"
        _to_jpeg(image, target / name)
        if clean:
            annotations[name] = {"object_not_present_issue": False} | {
                issue: False for issue in ("framing_issue", "viewpoint_issue", "blur_issue",
                                           "occlusion_issue", "overexposed_issue",
                                           "underexposed_issue")
            }  # fmt: skip
        else:
            annotations[name] = {
                "object_bounding_box": box,
                "object_not_present_issue": not present,
            }
    return annotations


def _as_2021(annotations: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for name, value in annotations.items():
        box = value.get("object_bounding_box")
        out[name] = {
            "object_bounding_box": None if box is None else [box[k] for k in "xywh"],
            "object_presence": 0 if value["object_not_present_issue"] else 1,
        }
    return out


def write_orbit_tree(
    root: str | os.PathLike,
    *,
    users: Sequence[int] | dict[str, int] = (3, 2, 2),
    objects: int | Sequence[int] = 3,
    clean_videos: int = 2,
    clutter_videos: int = 1,
    clean_frames: int = 16,
    clutter_frames: int = 60,
    image_size: int = 64,
    not_present: int = 6,
    annotations: str | None = "2022",
    seed: int = 0,
) -> TreeSpec:
    """Write a miniature ORBIT dataset under ``root`` (which must not exist yet).

    Args:
        users: users per split, for ``train``, ``validation`` and ``test`` (a dict names
            the splits: ``{"test": 2}``).
        objects: objects per user, or a list of counts given to the users in turn (users
            with more objects film more videos, as in ORBIT).
        clean_videos, clutter_videos: videos per object of each kind.
        clean_frames, clutter_frames: frames per video of each kind.
        image_size: side of the frames in pixels (32 to 512).
        not_present: frames of each clutter video, a run at a random place, that do not
            show the object.
        annotations: ``"2022"`` (``root/annotations/<split>/``), ``"2021"``
            (``root/<split>_annotations/``) or None.
        seed: everything drawn is a function of it.

    Frames are ``<video>-00001.jpg`` onwards, videos ``<user>--<object>--<kind>--v<i>``,
    users ``P100`` onwards (numbered across splits), as ORBIT names them.
    """
    root = Path(root)
    if root.exists():
        raise bad_argument(
            "root", str(root), "exists already; pass a new folder (nothing is overwritten)."
        )
    if annotations not in ("2022", "2021", None):
        raise bad_argument("annotations", annotations, "choose '2022', '2021' or None.")
    counts = dict(zip(SPLITS, users, strict=True)) if not isinstance(users, dict) else dict(users)
    for split, n in counts.items():
        if split not in SPLITS:
            raise bad_argument("users", split, f"splits are {', '.join(SPLITS)}.")
        check_int(f"users[{split!r}]", n, minimum=1)
    counts_of_objects = (objects,) if isinstance(objects, int) else tuple(objects)
    if not counts_of_objects:
        raise bad_argument("objects", objects, "pass a count of objects per user, or a list.")
    for count in counts_of_objects:
        check_int("objects", count, minimum=1)
    sizes = {"clean_videos": clean_videos, "clean_frames": clean_frames}
    for name, value in {**sizes, "clutter_frames": clutter_frames}.items():
        check_int(name, value, minimum=1)
    check_int("clutter_videos", clutter_videos, minimum=0)
    check_int("not_present", not_present, minimum=0)
    if not_present >= clutter_frames:
        raise bad_argument(
            "not_present", not_present, f"must be below clutter_frames={clutter_frames}."
        )
    per_user = [counts_of_objects[u % len(counts_of_objects)] for u in range(sum(counts.values()))]
    total = sum(per_user)
    # Frames are rendered by (class, instance); images_per_class does not bound instances.
    things = ProceduralImages(total, 1, image_size, seed)
    clutter = ProceduralImages(CLUTTER_CLASSES, 1, image_size, seed, first_class=total)
    spec = TreeSpec(counts, counts_of_objects, clean_videos, clutter_videos, clean_frames,
                    clutter_frames, image_size, not_present, seed)  # fmt: skip
    label, person = 0, 100
    for split, n_users in counts.items():
        for _ in range(n_users):
            user = f"P{person}"
            for o in range(per_user[person - 100]):
                name = OBJECT_NAMES[o % len(OBJECT_NAMES)] + (
                    "" if o < len(OBJECT_NAMES) else f"-{o}"
                )
                _write_object(root, split, user, name, label, things, clutter, spec, annotations)
                label += 1
            person += 1
    return spec


def _write_object(
    root: Path,
    split: str,
    user: str,
    name: str,
    label: int,
    things: ProceduralImages,
    clutter: ProceduralImages,
    spec: TreeSpec,
    annotations: str | None,
) -> None:
    rng = numpy_generator(spec.seed, label, 0x0B17)
    folder = root / split / user / name
    instance = 0
    written: dict[str, dict] = {}
    for v in range(spec.clean_videos):
        video = f"{user}--{name}--clean--v{v}"
        frames = []
        for _ in range(spec.clean_frames):
            frames.append((things.render(label, instance), None, True))
            instance += 1
        written[video] = _write_video(folder / "clean", video, frames, clean=True)
    for v in range(spec.clutter_videos):
        video = f"{user}--{name}--clutter--v{v}"
        start = int(rng.integers(0, spec.clutter_frames - spec.not_present + 1))
        absent = set(range(start, start + spec.not_present))
        frames = []
        for t in range(spec.clutter_frames):
            if t in absent:
                image = clutter.render(int(rng.integers(clutter.num_classes)), instance)
                frames.append((image, None, False))
            else:
                image, box = _clutter_frame(things, clutter, label, instance, rng)
                frames.append((image, _box_1080(box, spec.image_size), True))
            instance += 1
        written[video] = _write_video(folder / "clutter", video, frames, clean=False)
    if annotations is None:
        return
    for video, table in written.items():
        if annotations == "2022":
            path = root / "annotations" / split / f"{video}.json"
        else:
            if "--clean--" in video:
                continue  # the 2021 release annotated clutter videos only
            path, table = root / f"{split}_annotations" / f"{video}.json", _as_2021(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table))
