"""ORBIT's test tasks as the protocols build them, on trees of empty frame files.

Building tasks reads folder and file names only (no image is decoded), so these trees
hold zero-byte ``.jpg`` files named as ORBIT names them, with as many videos and frames
as each invariant needs: caps of 15 videos, the clean split, 8 non-overlapping clips of 8
frames in the first 1000, every target frame up to 1000 with its history, and the 2022
protocol's annotations (dropped frames, videos of too few frames, 200 random frames).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from litekit.data import OrbitFrames, OrbitTaskSampler
from litekit.orbit import OrbitTestTasks, protocol_named
from litekit.orbit.annotations import read_video_annotations
from litekit.orbit.clips import context_clips, history_windows, random_frames, uniform_frames


def video_name(user: str, obj: str, kind: str, v: int) -> str:
    return f"{user}--{obj}--{kind}--v{v:02d}"


def touch_tree(root: Path, users: dict) -> Path:
    """``users[user][object] = {"clean": [frames, ...], "clutter": [frames, ...]}``: empty
    frame files ``<video>-00001.jpg`` ... in ORBIT's layout under ``root``."""
    for user, objects in users.items():
        for obj, kinds in objects.items():
            for kind, lengths in kinds.items():
                for v, n in enumerate(lengths):
                    name = video_name(user, obj, kind, v)
                    folder = root / user / obj / kind / name
                    folder.mkdir(parents=True)
                    for i in range(1, n + 1):
                        (folder / f"{name}-{i:05d}.jpg").touch()
    return root


def annotate(folder: Path, name: str, n: int, absent: set[int], release: str = "2022") -> None:
    """An annotation file for video ``name`` of ``n`` frames, frames ``absent`` (0-based)
    without the object."""
    table = {}
    for i in range(n):
        frame = f"{name}-{i + 1:05d}.jpg"
        if release == "2022":
            box = None if i in absent else {"x": 10, "y": 20, "w": 300, "h": 400}
            table[frame] = {"object_bounding_box": box, "object_not_present_issue": i in absent}
        else:
            box = None if i in absent else [10, 20, 300, 400]
            table[frame] = {"object_bounding_box": box, "object_presence": int(i not in absent)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(table))


def frames_of(tmp_path: Path, users: dict) -> OrbitFrames:
    return OrbitFrames(touch_tree(tmp_path / "orbit" / "test", users), image_size=32)


# --- the frame samplers on their own ------------------------------------------------------


@pytest.mark.parametrize("n", [1100, 1000, 203, 64, 70])
def test_context_clips_are_non_overlapping_windows_of_consecutive_frames(n):
    for seed in range(20):
        drawn = context_clips(np.random.default_rng(seed), n, clips=8, clip_length=8)
        p = drawn.positions
        assert p.shape == (8, 8)
        assert p.max() < min(n, 1000) and p.min() >= 0
        starts = p[:, 0]
        assert np.all(starts % 8 == 0) and len(set(starts)) == 8  # distinct windows
        real = p[p != min(n, 1000) - 1]  # padding repeats the last frame only
        assert len(np.unique(real)) == len(real)
        for clip in p:
            assert np.all(np.diff(clip) >= 0) and np.all(np.diff(clip) <= 1)
        if n % 8 == 0:
            assert not drawn.repeated and np.all(np.diff(p, axis=1) == 1)


def test_a_short_video_repeats_frames_and_says_so():
    drawn = context_clips(np.random.default_rng(0), 20, clips=8, clip_length=8)
    assert drawn.positions.shape == (8, 8) and drawn.repeated
    assert set(np.unique(drawn.positions)) == set(range(20))  # every frame used
    assert np.all(np.diff(drawn.positions.ravel()) >= 0)  # in frame order


def test_uniform_and_random_frames():
    assert uniform_frames(100, stride=30).tolist() == [0, 30, 60, 90]
    assert len(uniform_frames(5000, stride=30)) == 34  # 0 .. 990 of the first 1000
    assert uniform_frames(10, stride=30).tolist() == [0]  # as ORBIT: the stride shrinks to 10
    picked = random_frames(np.random.default_rng(1), 5000, count=200)
    assert len(picked) == 200 == len(set(picked)) and picked.max() < 1000
    assert np.all(np.diff(picked) > 0)
    assert random_frames(np.random.default_rng(1), 120, count=200).tolist() == list(range(120))


def test_history_windows_pad_with_the_first_frame():
    windows = history_windows(np.arange(12), 8)
    assert windows[0].tolist() == [0] * 8
    assert windows[3].tolist() == [0, 0, 0, 0, 0, 1, 2, 3]
    assert windows[10].tolist() == list(range(3, 11))
    assert history_windows(np.array([5, 9]), 1).tolist() == [[5], [9]]


# --- neurips21 -------------------------------------------------------------------------------

CAPS = {
    "P1": {
        "keys": {"clean": [10] * 17, "clutter": [9] * 16},
        "mug": {"clean": [12] * 3, "clutter": [8] * 2},
    },
    "P2": {"keys": {"clean": [8] * 2, "clutter": [8]}, "cane": {"clean": [8] * 2, "clutter": [8]}},
}


def test_clutter_setting_caps_videos_at_15_per_object(tmp_path):
    tasks = OrbitTestTasks(frames_of(tmp_path, CAPS), "neurips21", "clutter", seed=3)
    assert len(tasks) == 2 * 5
    p1 = [t for t in tasks if t.user == "P1"]
    assert [t.task for t in p1] == [0, 1, 2, 3, 4]
    for task in p1:
        assert task.objects == ("keys", "mug")  # all the user's objects, sorted
        keys = [c.name for c in task.context if c.label == 0]
        mug = [c.name for c in task.context if c.label == 1]
        assert len(keys) == len(set(keys)) == 15 and all("--clean--" in k for k in keys)
        assert len(mug) == 3
        targets = [v.name for v in task.targets]
        assert sum("keys" in v for v in targets) == 15 and sum("mug" in v for v in targets) == 2
        assert all("--clutter--" in v for v in targets)
    # target videos drawn once per user, shared by its tasks; context clips differ
    assert len({tuple(v.name for v in t.targets) for t in p1}) == 1
    assert p1[0].targets is p1[1].targets
    assert not np.array_equal(p1[0].context[0].positions, p1[1].context[0].positions)


def test_clean_setting_takes_the_first_min_5_n_minus_1_sorted_clean_videos(tmp_path):
    users = {"P1": {
        "a": {"clean": [8] * 7, "clutter": [8]},
        "b": {"clean": [8] * 2},
        "c": {"clean": [8] * 4, "clutter": [8] * 3},
    }}  # fmt: skip
    task = next(iter(OrbitTestTasks(frames_of(tmp_path, users), "neurips21", "clean")))
    context = {(c.label, c.name) for c in task.context}
    assert context == {
        *((0, video_name("P1", "a", "clean", v)) for v in range(5)),
        (1, video_name("P1", "b", "clean", 0)),
        *((2, video_name("P1", "c", "clean", v)) for v in range(3)),
    }
    assert [v.name for v in task.targets] == [
        video_name("P1", "a", "clean", 5), video_name("P1", "a", "clean", 6),
        video_name("P1", "b", "clean", 1), video_name("P1", "c", "clean", 3),
    ]  # fmt: skip


def test_context_clips_and_target_frames_of_a_long_video(tmp_path):
    users = {
        "P1": {"a": {"clean": [1100], "clutter": [1100]}, "b": {"clean": [30], "clutter": [8]}}
    }
    tasks = OrbitTestTasks(frames_of(tmp_path, users), "neurips21", "clutter", seed=1)
    task = next(iter(tasks))
    long, short = task.context
    assert long.positions.shape == (8, 8) and long.positions.max() < 1000 and not long.repeated
    assert short.repeated  # 30 frames cannot fill 64
    target = task.targets[0]
    assert target.positions.tolist() == list(range(1000))  # every frame up to the 1000th
    assert target.windows.shape == (1000, 8)
    # the windows' dataset indices are the frames before each scored frame, in order
    first = target.indices[0]
    assert target.windows[0].tolist() == [first] * 8
    assert target.windows[500].tolist() == [first + i for i in range(493, 501)]
    indices, labels, groups = task.support()
    assert len(indices) == 2 * 64 and labels.tolist() == [0] * 64 + [1] * 64
    assert groups.tolist() == [g for g in range(16) for _ in range(8)]  # one group per clip


def test_tasks_depend_on_the_seed_and_the_user_alone(tmp_path):
    frames = frames_of(tmp_path, CAPS)
    one = OrbitTestTasks(frames, "neurips21", seed=5)
    two = OrbitTestTasks(frames, "neurips21", seed=5)
    alone = OrbitTestTasks(frames, "neurips21", seed=5, users=["P2"])
    other = OrbitTestTasks(frames, "neurips21", seed=6)

    def key(task):
        return [(c.name, c.positions.tolist()) for c in task.context]

    assert [key(t) for t in one] == [key(t) for t in two]
    assert [key(t) for t in one if t.user == "P2"] == [key(t) for t in alone]
    assert [key(t) for t in one] != [key(t) for t in other]
    assert key(one.task("P1", 3)) == key([t for t in two if t.user == "P1"][3])


# --- orbit2022 --------------------------------------------------------------------------------


def test_orbit2022_drops_absent_frames_and_short_videos(tmp_path):
    users = {"P1": {
        "a": {"clean": [100], "clutter": [300, 60, 120]},
        "b": {"clean": [40], "clutter": [1200]},
        "c": {"clean": [20], "clutter": [55]},
    }}  # fmt: skip
    frames = frames_of(tmp_path, users)
    notes = tmp_path / "orbit" / "annotations" / "test"
    annotate(notes, video_name("P1", "a", "clutter", 0), 300, set(range(10, 60)))  # 250 valid
    annotate(notes, video_name("P1", "a", "clutter", 1), 60, set(range(20)))  # 40: left out
    annotate(notes, video_name("P1", "a", "clutter", 2), 120, set(range(110, 120)))  # 110
    annotate(notes, video_name("P1", "b", "clutter", 0), 1200, {0, 1, 2})
    annotate(notes, video_name("P1", "c", "clutter", 0), 55, set(range(10)))  # 45: left out
    tasks = OrbitTestTasks(frames, "orbit2022", "clutter", seed=0)
    assert len(tasks) == 50
    left_out = [("a", video_name("P1", "a", "clutter", 1), 40)]
    left_out.append(("c", video_name("P1", "c", "clutter", 0), 45))
    assert tasks.exclusions.as_dict() == {
        "videos": [
            {"user": "P1", "object": o, "video": name, "valid_frames": n}
            for o, name, n in left_out
        ],
        "objects": [{"user": "P1", "object": "c"}],  # no valid target video: not in the way
        "users": [],
    }  # fmt: skip
    first, second = tasks.task("P1", 0), tasks.task("P1", 1)
    assert first.objects == ("a", "b")
    by_name = {v.name: v for v in first.targets}
    v0 = by_name[video_name("P1", "a", "clutter", 0)]
    assert len(v0.positions) == 200 == len(set(v0.positions))
    assert not set(v0.positions) & set(range(10, 60)) and v0.positions.max() < 300
    assert v0.windows.shape == (200, 1)  # no history
    assert by_name[video_name("P1", "a", "clutter", 2)].positions.tolist() == list(range(110))
    v_long = by_name[video_name("P1", "b", "clutter", 0)]
    assert v_long.positions.min() >= 3 and v_long.positions.max() <= 1002  # first 1000 valid
    # drawn afresh for every task
    again = {v.name: v for v in second.targets}[v0.name]
    assert not np.array_equal(again.positions, v0.positions)
    # context: every 30th frame of the clean videos, one frame per clip
    assert [c.positions.ravel().tolist() for c in first.context] == [[0, 30, 60, 90], [0, 30]]


def test_orbit2022_reads_the_2021_release_too(tmp_path):
    users = {"P1": {"a": {"clean": [10], "clutter": [80]}, "b": {"clean": [10], "clutter": [70]}}}
    frames = frames_of(tmp_path, users)
    notes = tmp_path / "orbit" / "test_annotations"
    annotate(notes, video_name("P1", "a", "clutter", 0), 80, {0, 1}, release="2021")
    annotate(notes, video_name("P1", "b", "clutter", 0), 70, set(), release="2021")
    task = next(iter(OrbitTestTasks(frames, "orbit2022")))
    assert [len(v.positions) for v in task.targets] == [78, 70]
    assert task.targets[0].positions.min() == 2


def test_annotation_files_of_both_releases(tmp_path):
    annotate(tmp_path / "new", "v", 3, {1})
    annotate(tmp_path / "old", "v", 3, {1}, release="2021")
    for folder in ("new", "old"):
        table = read_video_annotations(tmp_path / folder / "v.json")
        assert [table[f"v-0000{i}.jpg"].not_present for i in (1, 2, 3)] == [False, True, False]
        assert table["v-00001.jpg"].box == (10, 20, 300, 400)
        assert table["v-00002.jpg"].box is None


def test_protocol_settings():
    neurips, challenge = protocol_named("neurips21"), protocol_named("orbit2022")
    assert (neurips.tasks_per_user, neurips.video_cap, neurips.frame_cap) == (5, 15, 1000)
    assert (neurips.context_clips, neurips.clip_length, neurips.history) == (8, 8, 8)
    assert neurips.metrics == ("frame_accuracy", "frames_to_recognition", "video_accuracy")
    assert (challenge.tasks_per_user, challenge.target_frames) == (50, 200)
    assert (challenge.min_valid_frames, challenge.metrics) == (50, ("frame_accuracy",))
    assert neurips.with_changes(tasks_per_user=2).tasks_per_user == 2
    with pytest.raises(ValueError, match="did you mean 'orbit2022'"):
        protocol_named("orbit2020")


# --- training tasks: OrbitTaskSampler with ORBIT's clean split, clips and a random way ----------


def test_training_tasks_clean_split_clips_and_random_way(tmp_path):
    users = {"P1": {o: {"clean": [40] * 7, "clutter": [40]} for o in ("a", "b", "c", "d")}}
    frames = frames_of(tmp_path, users)
    sampler = OrbitTaskSampler(
        frames, episodes=40, seed=2, context_kind="clean", target_kind="clean",
        context_frames=16, target_frames=16, clip_length=8, random_way=True,
    )  # fmt: skip
    video_of = {int(i): v for v in frames.videos for i in v.frames}
    ways = set()
    for k in range(40):
        task = sampler.episode(k)
        ways.add(len(task.class_ids))
        context = {video_of[int(i)].folder.name for i in task.support_indices}
        target = {video_of[int(i)].folder.name for i in task.query_indices}
        assert all(name[-2:] in {"00", "01", "02", "03", "04"} for name in context)
        assert all(name[-2:] in {"05", "06"} and "--clean--" in name for name in target)
        # two clips of 8 consecutive frames per video
        for video in {video_of[int(i)].folder for i in task.support_indices}:
            first = next(v for v in frames.videos if v.folder == video).frames[0]
            positions = np.sort(
                [int(i) - first for i in task.support_indices if video_of[int(i)].folder == video]
            )
            clips = positions.reshape(2, 8)
            assert np.all(np.diff(clips, axis=1) == 1) and clips[0, 0] % 8 == clips[1, 0] % 8 == 0
    assert ways == {2, 3, 4}


# --- the miniature tree ------------------------------------------------------------------------


@pytest.mark.parametrize("release", ["2022", "2021"])
def test_the_miniature_tree_has_orbit_s_layout_and_annotations(tmp_path, release):
    from litekit.orbit import write_orbit_tree

    root = tmp_path / "orbit"
    write_orbit_tree(root, users={"test": 3}, objects=[2, 3], clean_videos=1, clutter_videos=1,
                     clean_frames=2, clutter_frames=5, not_present=2, image_size=32,
                     annotations=release)  # fmt: skip
    frames = OrbitFrames(root / "test", 32)
    assert frames.users == ["P100", "P101", "P102"]
    assert [len(frames.user_classes(u)) for u in frames.users] == [2, 3, 2]
    video = next(v for v in frames.videos if v.kind == "clutter")
    assert video.folder.name == "P100--keys--clutter--v0"
    assert frames.paths[video.frames[0]].name == "P100--keys--clutter--v0-00001.jpg"
    where = {"2022": root / "annotations" / "test", "2021": root / "test_annotations"}[release]
    table = read_video_annotations(where / f"{video.folder.name}.json")
    absent = [name for name, a in table.items() if a.not_present]
    assert len(table) == 5 and len(absent) == 2
    assert all(table[n].box is None for n in absent)
    assert all(table[n].box is not None for n in table if n not in absent)
    clean = where / "P100--keys--clean--v0.json"
    assert clean.exists() == (release == "2022")  # 2021 annotated clutter videos only
