"""The two command lines speak one language: every default in --help, one vocabulary for a
task's size, the same --norm default, and a plan that prints the trainer's command."""

from __future__ import annotations

import argparse
import json
import re

import pytest
from test_measure_planner import modelled

from litekit.evaluate import cli as evaluate_cli
from litekit.measure import StepConfig, cli, planner
from litekit.measure.train_command import train_command, train_options
from litekit.train import _cli_checks, _cli_options
from litekit.train import cli as train_cli


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parsers = {"train": _cli_options.build_parser(), "measure": cli.build_parser()}
    (sources,) = [
        action
        for action in evaluate_cli.build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    parsers |= {f"evaluate {name}": sub for name, sub in sources.choices.items()}
    return parsers


@pytest.mark.parametrize("which", [*_parsers()])
def test_help_shows_every_default(which):
    """Each option's help gives its default: argparse's ``(default: VALUE)`` or, where the
    value is None and means something, the meaning in words (never ``default: None``). A
    required option has none, and says nothing of one."""
    parser = _parsers()[which]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue  # --help, and the command (measure or plan), which has no default
        if action.required:
            assert "default" not in parser._get_formatter()._get_help_string(action).lower()
            continue
        # argparse prints no help line, and so no default, for an option without help text
        assert action.help and action.help.strip(), action.option_strings
        formatted = parser._get_formatter()._get_help_string(action)
        assert "default" in formatted.lower(), (action.dest, formatted)
        assert "default: None" not in formatted, (action.dest, formatted)
    if which == "measure":
        assert "--shot SHOT support images per class (default: 10)" in text
        assert "--margin MARGIN fraction kept free (default: 0.1)" in text
    elif which.startswith("evaluate"):
        assert "--seed SEED seeds the tasks (default: 0)" in text
        assert "--learner LEARNER default: the checkpoint's" in text
    else:
        assert "--steps STEPS optimiser steps in all (default: 100)" in text
        assert "(default: 0.001)" in text and "(default: 84)" in text  # --lr, --image-size
        assert "--shot SHOT support images per class (default: 5)" in text
        assert "--validation-tasks VALIDATION_TASKS held-out tasks per validation" in text


def _resolved(options: list[str]) -> argparse.Namespace:
    args = _cli_options.parse_options(["--device", "cpu", *options])
    _cli_checks.check_options(args)
    return args


def test_the_trainer_takes_a_task_size_per_class_or_in_all():
    args = _resolved(["--way", "4", "--n-support", "12", "--n-query", "8"])
    assert (args.shot, args.query, args.n_support, args.n_query) == (3, 2, 12, 8)
    args = _resolved(["--way", "4", "--shot", "3"])
    assert (args.shot, args.query, args.n_support, args.n_query) == (3, 10, 12, 40)
    args = _resolved(["--way", "4", "--shot", "3", "--n-support", "12"])  # they agree
    assert args.shot == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--shot", "3", "--n-support", "20"], r"^--n-support=20: with --way 5 and --shot 3 a "
         r"task has 15 support images, not 20; pass one of --shot"),
        (["--query", "2", "--n-query", "12"], r"^--n-query=12: with --way 5 and --query 2"),
        (["--n-support", "12"], r"^--n-support=12: every one of the --way 5 classes takes as "
         r"many support images; pass a multiple of 5"),
        (["--variable", "--n-support", "20"], r"^--n-support=20: --variable tasks vary"),
    ],
)  # fmt: skip
def test_the_trainer_refuses_task_sizes_that_contradict(options, message):
    with pytest.raises(ValueError, match=message):
        _resolved(options)


@pytest.fixture
def measured(monkeypatch):
    calls = []

    def fake(config, fresh_process=None):
        calls.append(config)
        return modelled(config)

    monkeypatch.setattr(planner, "measure_training_step", fake)
    monkeypatch.setattr(cli, "measure_training_step", fake)
    return calls


def test_the_measurer_takes_the_trainers_task_size_and_norm_default(measured, capsys):
    assert (
        cli.main(["measure", "--device", "cpu", "--way", "4", "--shot", "3", "--query", "2"]) == 0
    )
    assert (measured[-1].n_support, measured[-1].n_query, measured[-1].way) == (12, 8, 4)
    # --norm: "model" with --weights, else "group", as the trainer; conv4's is GroupNorm anyway.
    assert measured[-1].norm == "group"
    assert _resolved([]).norm == "group"
    status = cli.main(["measure", "--device", "cpu", "--shot", "3", "--n-support", "20"])
    assert status == 2
    assert "--n-support=20: with --way 5 and --shot 3 a task has 15" in capsys.readouterr().err
    assert len(measured) == 1


def test_a_plan_prints_the_train_command_that_runs_it(measured, capsys):
    """--print-train-command prints one line, the trainer's options for the chosen h, query
    batch and chunk size; the trainer reads them back as that set-up. The JSON holds it too."""
    common = ["plan", "--device", "cpu", "--budget", "400MiB", "--margin", "0"]
    task = ["--way", "5", "--shot", "40", "--query", "8", "--width", "16"]
    status = cli.main([*common, *task, "--print-train-command"])
    out, err = capsys.readouterr()
    assert status == 0 and len(out.strip().splitlines()) == 1, out
    assert err.startswith("python -m litekit.measure: h=")
    assert cli.main([*common, *task]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["train_command"] == out.strip()
    chosen = result["chosen"]
    command = out.split()
    assert command[:3] == ["python", "-m", "litekit.train"]
    args = _resolved([*command[3:], "--images-per-class", "48"])
    assert (args.h, args.query_batch, args.chunk_size) == (
        chosen["h"], chosen["query_batch"], chosen["chunk_size"]
    )  # fmt: skip
    assert (args.way, args.shot, args.query, args.width, args.norm) == (5, 40, 8, 16, "group")
    assert result["train_options"] == command[3:]


def test_train_options_round_trip_through_the_trainers_parser():
    config = StepConfig(
        backbone="resnet18", norm="model", image_size=96, n_support=30, way=3, n_query=9,
        h=4, query_batch=3, chunk_size=10, precision="bf16", channels_last=True,
    )  # fmt: skip
    args = _resolved(train_options(config))
    assert (args.backbone, args.norm, args.image_size) == ("resnet18", "model", 96)
    assert (args.way, args.shot, args.query, args.h) == (3, 10, 3, 4)
    assert (args.query_batch, args.chunk_size, args.precision, args.channels_last) == (
        3, 10, "bf16", True
    )  # fmt: skip
    full = _resolved(train_options(StepConfig(n_support=10, way=5, n_query=10, h=10)))
    assert full.h is None and full.query_batch is None  # full back-propagation, one batch
    assert re.fullmatch(r"python -m litekit\.train( \S+)+", train_command(config))


def test_a_task_the_trainer_cannot_sample_gets_no_train_command(measured, capsys):
    status = cli.main(["plan", "--device", "cpu", "--budget", "1GiB", "--n-support", "21",
                       "--print-train-command"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and "--n-support=21: python -m litekit.train gives each of the 5" in err
    assert measured == []


def test_the_trainer_knows_timm_backbones_and_lists_close_names(capsys):
    code = train_cli.main(["--backbone", "timm:efficientnet_bo", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "--backbone='timm:efficientnet_bo': not a timm model" in err
    assert "timm:efficientnet_b0" in err
