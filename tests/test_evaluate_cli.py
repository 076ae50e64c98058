"""End to end on a miniature ORBIT tree: train two steps with python -m litekit.train,
score the checkpoint with python -m litekit.evaluate, and recompute every metric and
aggregate of its JSON from the per-video records with ORBIT's definitions (written here
again, independently of litekit.orbit)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litekit import checkpoint as checkpoints
from litekit.data import ProceduralImages
from litekit.evaluate import cli as evaluate_cli
from litekit.orbit import write_orbit_tree
from litekit.train import cli as train_cli

TINY = ["--backbone", "conv4", "--width", "4", "--image-size", "32", "--device", "cpu", "--quiet"]


def run(main, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def orbit(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("orbit") / "orbit"
    write_orbit_tree(
        root, users={"train": 2, "validation": 1, "test": 2}, objects=2, clean_videos=2,
        clutter_videos=1, clean_frames=8, clutter_frames=56, not_present=4, image_size=32,
    )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def trained(orbit, tmp_path_factory) -> Path:
    """A ProtoNets checkpoint after two steps of ORBIT training, validated on the
    validation users after each step; the best of those is kept beside it."""
    path = tmp_path_factory.mktemp("run") / "orbit.pt"
    code, printed, err = run(
        train_cli.main,
        [*TINY, "--orbit", orbit, "--orbit-validation-tasks", "1", "--validate-every", "1",
         "--orbit-clips", "1", "--steps", "2", "--tasks-per-step", "1", "--h", "4",
         "--checkpoint", path],
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(printed)
    assert summary["validation"]["step"] == [0, 1, 2]
    assert summary["validation"]["score"] == "per-video frame accuracy (ORBIT)"
    scores = summary["validation"]["accuracy"]
    assert summary["best"]["score"] == max(scores)
    assert summary["best"]["step"] == scores.index(max(scores))
    best = path.with_name("orbit.best.pt")
    assert summary["best"]["path"] == str(best) and best.exists()
    assert checkpoints.read(best)["metadata"]["best"]["step"] == summary["best"]["step"]
    return path


# ORBIT's definitions, again (utils/eval_metrics.py of the ORBIT benchmark's code).
def frame_acc(p, y):
    return float(np.mean(np.asarray(p) == y))


def ftr(p, y):
    hits = np.flatnonzero(np.asarray(p) == y)
    return float(hits[0] / len(p)) if len(hits) else 1.0


def video_acc(p, y):
    return float(np.bincount(np.asarray(p)).argmax() == y)


def ci(values):
    values = np.asarray(values, dtype=float)
    return 1.96 * np.std(values) / math.sqrt(len(values))


def check_aggregates(document: dict, metrics: dict) -> None:
    videos = document["videos"]
    for name, metric in metrics.items():
        scores = [metric(r["predictions"], r["label"]) for r in videos]
        assert scores == pytest.approx([r[name] for r in videos])
        per_video = document["aggregates"]["per_video"][name]
        assert per_video["mean"] == pytest.approx(np.mean(scores))
        assert per_video["ci95"] == pytest.approx(ci(scores))
        assert per_video["n"] == len(videos)
        users = sorted({r["user"] for r in videos})
        pairs = list(zip(scores, videos, strict=True))
        means = [np.mean([s for s, r in pairs if r["user"] == u]) for u in users]
        per_user = document["aggregates"]["per_user"][name]
        assert per_user["mean"] == pytest.approx(np.mean(means))
        assert per_user["ci95"] == pytest.approx(ci(means))
        assert per_user["n"] == len(users)


def test_train_then_evaluate_orbit_neurips21(orbit, trained, tmp_path):
    out = tmp_path / "neurips21.json"
    code, printed, err = run(
        evaluate_cli.main,
        ["orbit", "--checkpoint", trained, "--root", orbit, "--tasks-per-user", "2",
         "--out", out, "--quiet", "--learner", "protonets"],
    )  # fmt: skip
    assert code == 0, err
    assert "frame accuracy" in printed and "per video" in printed and "ddof=0" in printed
    document = json.loads(out.read_text())
    assert document["format"] == "litekit-evaluation" and document["source"] == "orbit"
    assert document["checkpoint"]["model"]["learner"] == "protonets"
    assert document["checkpoint"]["step"] == 2
    videos = document["videos"]
    assert len(videos) == 2 * 2 * 2  # users x tasks x (2 objects x 1 clutter video)
    for record in videos:
        assert record["frames"] == list(range(56))  # every frame
        assert len(record["predictions"]) == 56
        assert set(record) >= {"user", "object", "video", "task", "label"}
        # the annotations are read where present: which scored frames lack the object
        notes = json.loads((orbit / "annotations" / "test" / f"{record['video']}.json").read_text())
        absent = [i for i, n in enumerate(sorted(notes)) if notes[n]["object_not_present_issue"]]
        assert record["not_present"] == absent and len(absent) == 4
    check_aggregates(
        document,
        {"frame_accuracy": frame_acc, "frames_to_recognition": ftr, "video_accuracy": video_acc},
    )
    summary = document["summary"]
    assert (
        summary["protocol"] == "neurips21" and summary["protocol_settings"]["tasks_per_user"] == 2
    )
    # 8-frame clean videos cannot fill 8 clips of 8 frames: the summary says so
    assert summary["context_draws_with_repeated_frames"] == summary["context_video_draws"] > 0
    assert any("repeated frames" in note for note in summary["notes"])
    for task in document["tasks"]:
        for context in task["context"]:
            assert np.asarray(context["frames"]).shape == (8, 8)


def test_evaluate_orbit2022_drops_absent_frames(orbit, trained, tmp_path):
    out = tmp_path / "orbit2022.json"
    code, _, err = run(
        evaluate_cli.main,
        ["orbit", "--checkpoint", trained, "--root", orbit, "--protocol", "orbit2022",
         "--tasks-per-user", "2", "--out", out, "--quiet"],
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out.read_text())
    assert set(document["aggregates"]["per_video"]) == {"frame_accuracy"}
    for record in document["videos"]:
        annotations = json.loads(
            (orbit / "annotations" / "test" / f"{record['video']}.json").read_text()
        )
        absent = {
            i for i, name in enumerate(sorted(annotations))
            if annotations[name]["object_not_present_issue"]
        }  # fmt: skip
        assert len(absent) == 4 and not absent & set(record["frames"])
        assert len(record["frames"]) == 52  # fewer than 200 valid frames: all of them
        assert "frames_to_recognition" not in record
    check_aggregates(document, {"frame_accuracy": frame_acc})


def test_evaluate_folders(trained, tmp_path):
    data = ProceduralImages(num_classes=4, images_per_class=6, image_size=32, seed=1)
    for index in range(len(data)):
        image, label = data[index]
        folder = tmp_path / "images" / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")
    out = tmp_path / "folders.json"
    code, printed, err = run(
        evaluate_cli.main,
        ["folders", "--checkpoint", trained, "--data", tmp_path / "images", "--way", "3",
         "--shot", "2", "--query", "2", "--episodes", "4", "--out", out, "--quiet"],
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out.read_text())
    accuracies = [t["accuracy"] for t in document["tasks"]]
    assert len(accuracies) == 4 and all(t["way"] == 3 for t in document["tasks"])
    got = document["aggregates"]["accuracy"]
    assert got["mean"] == pytest.approx(np.mean(accuracies))
    assert got["ci95"] == pytest.approx(1.96 * np.std(accuracies, ddof=1) / 2)
    # the same command again replaces its own results; the same seed, the same tasks
    code, _, err = run(
        evaluate_cli.main,
        ["folders", "--checkpoint", trained, "--data", tmp_path / "images", "--way", "3",
         "--shot", "2", "--query", "2", "--episodes", "4", "--out", out, "--quiet"],
    )  # fmt: skip
    assert code == 0 and json.loads(out.read_text())["tasks"] == document["tasks"]


def test_a_checkpoint_from_before_the_model_record_still_loads(orbit, trained, tmp_path):
    saved = checkpoints.read(trained)
    saved["metadata"] = {"options": dict(saved["metadata"]["options"])}  # no "model"
    for key in ("backbone_lr_scale", "orbit", "precision", "channels_last", "weights"):
        saved["metadata"]["options"].pop(key)  # options that came later
    old = tmp_path / "old.pt"
    checkpoints.save_atomic(saved, old)
    code, printed, err = run(
        evaluate_cli.main,
        ["orbit", "--checkpoint", old, "--root", orbit, "--tasks-per-user", "1", "--quiet"],
    )  # fmt: skip
    assert code == 0, err
    assert "protonets / conv4 at 32 px" in printed


def test_a_checkpoint_of_fit_in_python_is_refused(orbit, trained, tmp_path):
    saved = checkpoints.read(trained)
    saved["metadata"] = None
    bare = tmp_path / "bare.pt"
    checkpoints.save_atomic(saved, bare)
    code, _, err = run(evaluate_cli.main, ["orbit", "--checkpoint", bare, "--root", orbit])
    assert code == 2
    assert "--checkpoint=" in err and "does not record its model" in err


def test_the_rebuilt_learner_has_the_trained_weights(trained):
    from litekit.evaluate.model import build_learner, read_model

    model = read_model(str(trained))
    learner = build_learner(model, torch.device("cpu"))
    for name, value in learner.state_dict().items():
        assert torch.equal(value, model.state[name])
    assert model.record["normalization"] is None and model.record["precision"] == "fp32"


def test_the_help_points_to_a_readme_section_and_files_that_exist():
    root = Path(__file__).resolve().parents[1]
    text = " ".join(evaluate_cli.build_parser().format_help().split())
    sections = re.findall(r"the README's '([^']+)' section", text)
    headings = re.findall(r"^#+ (.+)$", (root / "README.md").read_text(), flags=re.M)
    assert sections and set(sections) <= set(headings), (sections, headings)
    files = set(re.findall(r"\b[\w/]+\.(?:md|py)\b", text))
    assert files and all((root / name).is_file() for name in files), files


def test_every_option_names_itself_in_its_errors():
    parser = evaluate_cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        checked = [a for a in sub._actions if a.option_strings and a.type is not None]
        assert len(checked) > 8, name
        for action in checked:
            with pytest.raises(argparse.ArgumentTypeError) as error:
                action.type("not-a-value")
            assert str(error.value).startswith(f"{action.option_strings[0]}='not-a-value': ")


def test_the_best_checkpoint_evaluates(orbit, trained, tmp_path):
    best = trained.with_name("orbit.best.pt")
    out = tmp_path / "best.json"
    code, _, err = run(
        evaluate_cli.main,
        ["orbit", "--checkpoint", best, "--root", orbit, "--tasks-per-user", "1", "--out", out,
         "--quiet"],
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out.read_text())
    assert document["checkpoint"]["step"] == checkpoints.read(best)["metadata"]["best"]["step"]


def test_the_package_does_not_hide_the_function():
    """python -m litekit.evaluate is a package; litekit.evaluate stays the function."""
    import litekit
    from litekit.evaluate import sources  # noqa: F401  (imports below the package)
    from litekit.train.evaluation import evaluate

    assert litekit.evaluate is evaluate and callable(litekit.evaluate)
