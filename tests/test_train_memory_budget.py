"""python -m litekit.train --memory-budget: plans h, query batch and chunk size by measuring
(here a memory model stands in for the measurements), says what it chose, trains with it,
and a resumed run keeps the plan its checkpoint was made with."""

from __future__ import annotations

import json

import pytest
from test_measure_planner import modelled

from litekit import checkpoint as checkpoints
from litekit.measure import planner
from litekit.train import cli

TINY = [
    "--backbone", "conv4", "--width", "4", "--image-size", "32", "--way", "3", "--shot", "4",
    "--query", "2", "--classes", "20", "--images-per-class", "8", "--tasks-per-step", "1",
    "--validation-tasks", "0", "--device", "cpu", "--quiet", "--threads", "1",
]  # fmt: skip
MiB = 2**20


@pytest.fixture
def measured(monkeypatch):
    """The memory model of test_measure_planner as the measurement: 100 MiB at rest, 3 MiB
    per image in the graph (at 64 px; a quarter of that at 32 px)."""
    calls = []

    def fake(config, fresh_process=None):
        calls.append(config)
        return modelled(config)

    monkeypatch.setattr(planner, "measure_training_step", fake)
    return calls


def test_the_trainer_plans_for_its_budget_says_so_and_trains_with_the_plan(
    measured, tmp_path, capsys
):
    # 100 MiB + 0.75 MiB per graph image, 90% of 121 MiB usable: h + query batch <= 11.
    run = [*TINY, "--memory-budget", "121MiB", "--steps", "1", "--checkpoint",
           str(tmp_path / "run.pt")]  # fmt: skip
    assert cli.main(run) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    options = summary["options"]
    assert measured and {c.n_support for c in measured} == {12}
    assert 0 < options["h"] < 12 and options["h"] + options["query_batch"] <= 11
    assert options["memory_budget"] == "121MiB" and options["chunk_size"] >= 1
    assert "--memory-budget 121MiB: chose h=" in err
    saved = checkpoints.read(tmp_path / "run.pt")["metadata"]["options"]
    assert (saved["h"], saved["query_batch"]) == (options["h"], options["query_batch"])
    # Resumed, it keeps the checkpoint's plan and measures nothing.
    measured.clear()
    assert cli.main([*run[:-4], "--steps", "2", "--checkpoint", str(tmp_path / "run.pt")]) == 0
    out, err = capsys.readouterr()
    assert measured == [] and "resuming" in err and "with its plan" in err
    assert json.loads(out)["options"]["h"] == options["h"]


def test_given_options_are_kept_and_not_searched(measured, capsys):
    assert cli.main([*TINY, "--memory-budget", "1GiB", "--h", "2", "--steps", "1"]) == 0
    options = json.loads(capsys.readouterr().out)["options"]
    assert options["h"] == 2 and all(c.h == 2 for c in measured)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--memory-budget", "lots"], r"--memory-budget='lots': pass a positive number of bytes"),
        (["--memory-budget", "1KiB"], r"--memory-budget='1KiB': that is under 1 MiB"),
        (["--memory-budget", "8GiB", "--variable"], r"--memory-budget='8GiB': --variable tasks"),
        (["--memory-budget", "8GiB", "--h", "2", "--query-batch", "2", "--chunk-size", "4"],
         r"--memory-budget='8GiB': --h, --query-batch and --chunk-size are all given"),
    ],
)  # fmt: skip
def test_bad_budgets_are_refused_before_measuring(measured, capsys, options, message):
    import re

    assert cli.main([*TINY, "--steps", "1", *options]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert measured == []


def test_a_budget_smaller_than_any_set_up_says_what_the_smallest_needs(measured, tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    code = cli.main([*TINY, "--steps", "1", "--memory-budget", "101MiB", "--checkpoint",
                     str(checkpoint)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--memory-budget='101MiB': even conv4 32px N=12 LITE h=1" in err
    assert "raise --memory-budget, or lower --image-size, --shot or --query" in err
    assert not checkpoint.exists()
