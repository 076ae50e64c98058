"""python -m litekit.data.verify finds what makes an evaluation meaningless before training,
on folders written by python -m litekit.data.example_folders (the embedded dataset)."""

from __future__ import annotations

import json
import shutil

import pytest

from litekit.data import example_folders, verify
from litekit.data.example_folders import write_example_folders


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("example") / "shapes"
    write_example_folders(root, classes=(6, 3, 3), images_per_class=4, image_size=32)
    return root


def _copy(shapes, tmp_path):
    root = tmp_path / "shapes"
    shutil.copytree(shapes, root)
    return root


def _splits(root):
    return ["--data", str(root / "train"), "--validation-data", str(root / "validation"),
            "--test-data", str(root / "test")]  # fmt: skip


TASK = ["--way", "3", "--shot", "2", "--query", "2", "--image-size", "32"]


def test_example_folders_hold_disjoint_classes_of_distinct_images(shapes):
    names = {
        split: sorted(p.name for p in (shapes / split).iterdir())
        for split in example_folders.SPLITS
    }
    assert [len(v) for v in names.values()] == [6, 3, 3]
    every = [name for split in names.values() for name in split]
    assert len(every) == len(set(every))  # no class in two splits
    assert len({p.read_bytes() for p in shapes.rglob("*.png")}) == 12 * 4


def test_a_sound_dataset_passes_and_the_report_says_what_it_holds(shapes, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert verify.main([*_splits(shapes), *TASK, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "--data " in printed
        and ": 6 classes, 24 images (4 to 4 per class), smallest side 32 px" in printed
    )
    assert "ok: every image decodes, the folders share no class and no file" in printed
    report = json.loads(out.read_text())
    assert report["problems"] == [] and [f["images"] for f in report["folders"]] == [24, 12, 12]
    assert any("training classes" in n for n in report["notes"])  # 6 < 20: advice, not a fault
    assert verify.main([*_splits(shapes), *TASK, "--out", str(out)]) == 0  # its own report


def test_shared_classes_duplicate_files_and_broken_images_are_problems(shapes, tmp_path, capsys):
    root = _copy(shapes, tmp_path)
    shutil.copytree(root / "train" / "class_000", root / "test" / "class_000")  # a class leak
    (root / "validation" / "class_006" / "broken.png").write_bytes(b"\x89PNG not really")
    assert verify.main([*_splits(root), *TASK]) == 1
    printed = capsys.readouterr().out
    assert "problem: --data and --test-data share 1 classes (['class_000'])" in printed
    assert "must be disjoint" in printed
    assert "problem: 4 image files are in both --data and --test-data" in printed
    assert "problem: --validation-data: 1 files cannot be read as images" in printed
    assert "broken.png" in printed and "ok:" not in printed


def test_folders_that_cannot_make_the_tasks_are_problems(shapes, capsys):
    assert verify.main([*_splits(shapes), "--way", "4", "--shot", "2", "--query", "2"]) == 1
    printed = capsys.readouterr().out
    assert (
        "problem: --validation-data " in printed
        and "only 3 classes have shot + query = 4" in printed
        and "--way 4" in printed
    )


def test_bad_folders_and_outputs_are_refused_before_anything_is_read(shapes, tmp_path, capsys):
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    assert verify.main(["--data", str(shapes / "train"), "--out", str(notes)]) == 2
    assert "--out=" in capsys.readouterr().err and notes.read_text() == '{"mine": 1}'
    assert verify.main(["--data", str(tmp_path / "absent")]) == 2
    assert "--data=" in capsys.readouterr().err
    assert verify.main(["--data", str(shapes / "train"), "--way", "1"]) == 2
    assert "--way=1: pass an integer >= 2." in capsys.readouterr().err


def test_example_folders_never_overwrite(shapes, capsys):
    assert example_folders.main([str(shapes)]) == 2
    err = capsys.readouterr().err
    assert "error: root=" in err and "already there and not an empty folder" in err
    assert example_folders.main([str(shapes.parent / "new"), "--image-size", "8"]) == 2
    assert "--image-size=8: pass a size from 32 to 512." in capsys.readouterr().err
    assert not (shapes.parent / "new").exists()
