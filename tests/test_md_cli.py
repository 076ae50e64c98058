"""End to end on a miniature Meta-Dataset tree and a VTAB-style task folder (written by
`md_writer`): train two steps with ``python -m litekit.train --metadataset``, score the
checkpoint with ``python -m litekit.evaluate metadataset`` and ``task``, and recompute the
JSON's aggregates from its per-task records."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from md_writer import write_task_folder, write_tiny_metadataset

from litekit import checkpoint as checkpoints
from litekit.evaluate import cli as evaluate_cli
from litekit.train import cli as train_cli
from litekit.train._cli_checks import check_options
from litekit.train._cli_options import parse_options

TINY = ["--backbone", "conv4", "--width", "4", "--image-size", "32", "--device", "cpu", "--quiet"]


def run(main, argv: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_tiny_metadataset(tmp_path_factory.mktemp("md") / "md")


@pytest.fixture(scope="module")
def trained(tree, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "md.pt"
    code, _, err = run(
        train_cli.main,
        [*TINY, "--metadataset", tree, "--sources", "birds,letters", "--steps", "2",
         "--tasks-per-step", "2", "--h", "4", "--validation-tasks", "2", "--checkpoint", path],
    )  # fmt: skip
    assert code == 0, err
    return path


def test_training_records_the_sources_and_the_normalisation(trained, tree):
    saved = checkpoints.read(trained)
    options = saved["metadata"]["options"]
    assert options["metadataset"] == str(tree.resolve())
    assert options["sources"] == ["birds", "letters"] and saved["step"] == 2
    assert options["md_normalization"] == "metadataset"
    assert saved["metadata"]["model"]["normalization"] == [[0.5] * 3, [0.5] * 3]


def test_evaluate_metadataset_per_source_with_intervals(trained, tree, tmp_path):
    out = tmp_path / "md.json"
    code, text, err = run(
        evaluate_cli.main,
        ["metadataset", "--checkpoint", trained, "--root", tree, "--sources", "birds,letters",
         "--tasks", "4", "--device", "cpu", "--quiet", "--out", out],
    )  # fmt: skip
    assert code == 0, err
    assert "birds" in text and "letters" in text and "95% interval" in text
    document = json.loads(out.read_text())
    assert document["source"] == "metadataset"
    tasks = document["tasks"]
    assert [t["source"] for t in tasks] == ["birds"] * 4 + ["letters"] * 4
    for name in ("birds", "letters"):
        accuracies = [t["accuracy"] for t in tasks if t["source"] == name]
        aggregate = document["aggregates"][name]
        assert aggregate["n"] == 4
        assert math.isclose(aggregate["mean"], np.mean(accuracies), abs_tol=1e-12)
        ci = 1.96 * np.std(accuracies, ddof=1) / math.sqrt(4)
        assert math.isclose(aggregate["ci95"], ci, abs_tol=1e-12)
    assert all(5 <= t["way"] for t in tasks)  # Meta-Dataset's minimum way


def test_evaluate_one_task_with_the_finetuner(trained, tmp_path):
    root = write_task_folder(tmp_path / "task", classes=3, per_class=6, test_per_class=4)
    out = tmp_path / "task.json"
    code, text, err = run(
        evaluate_cli.main,
        ["task", "--checkpoint", trained, "--support", root / "train800val200",
         "--query", root / "test", "--query-batch", "5", "--chunk-size", "4",
         "--finetuner-steps", "3", "--device", "cpu", "--quiet", "--out", out],
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out.read_text())
    records = {r["learner"]: r for r in document["tasks"]}
    assert set(records) == {"learner", "finetuner"}
    for name, record in records.items():
        assert record["total"] == 12 and record["n_support"] == 18
        assert record["correct"] == sum(record["per_class_correct"])
        assert document["aggregates"][name]["top1"] == record["correct"] / 12
    assert "top-1" in text


def test_preset_md_lite_resolves_and_explicit_options_win():
    args = parse_options(["--preset", "md-lite", "--metadataset", ".", "--h", "20"])
    check_options(args)
    assert (args.backbone, args.image_size, args.query_batch, args.h) == (
        "efficientnet_b0", 224, 40, 20,
    )  # fmt: skip
    assert args.preset_report["set"]["query_batch"] == 40
    assert args.preset_report["kept"] == {"h": 20}
    assert args.sources[0] == "ilsvrc_2012" and len(args.sources) == 8
    assert args.md_normalization == "metadataset"


def test_md_normalization_follows_the_weights_unless_named(tmp_path):
    import torchvision

    weights = tmp_path / "w.pt"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    args = parse_options(
        ["--metadataset", ".", "--backbone", "resnet18", "--weights", str(weights)]
    )
    check_options(args)
    assert args.md_normalization == "weights"
    from litekit.train._cli_metadataset import input_normalization

    assert input_normalization(args) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    named = parse_options(["--metadataset", ".", "--md-normalization", "none"])
    check_options(named)
    assert input_normalization(named) is None
