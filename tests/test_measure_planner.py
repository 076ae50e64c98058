"""litekit.measure's budget planner, on a memory model whose answers are known, on the CPU
for real, and its command line (``python -m litekit.measure plan``)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from dataclasses import replace

import pytest

from litekit.measure import (
    Measurement,
    NothingFits,
    StepConfig,
    cli,
    format_bytes,
    measure_training_step,
    parse_bytes,
    plan_budget,
    planner,
)

TINY = StepConfig(
    image_size=16, n_support=6, way=3, n_query=4, width=4, h=2, query_batch=2, chunk_size=3,
    repeats=1, threads=1,
)  # fmt: skip


def test_parse_and_format_bytes():
    assert parse_bytes("6GiB") == 6 * 2**30
    assert parse_bytes("500 MB") == 500 * 10**6
    assert parse_bytes("1.5kib") == 1536
    assert parse_bytes(1000) == 1000
    for bad in ("lots", "-1GiB", 0, "GiB", True):
        with pytest.raises(ValueError, match="^budget="):
            parse_bytes(bad)
    assert format_bytes(3 * 2**30) == "3.00 GiB" and format_bytes(5 * 2**20) == "5 MiB"
    assert format_bytes(1024) == "1 KiB" and format_bytes(100) == "100 B"  # not "0 MiB"


# --- the planner, on a memory model whose answer is known ------------------------------------

MiB = 2**20


def modelled(config: StepConfig) -> Measurement:
    """Peak = rest + 3 MiB per image in the graph + 1 MiB per image in a no-grad chunk."""
    n = config.n_support
    graph = n + config.n_query if config.full else config.h + (config.query_batch or n)
    chunk = 0 if config.full else min(config.chunk_size, n)
    peak = 100 * MiB + max(3 * graph, chunk) * MiB * (config.image_size / 64) ** 2
    return Measurement(config, int(peak), 100 * MiB, 0.1, "model", step_bytes=int(peak) - 100 * MiB)


def brute_force_largest_h(budget: float, config: StepConfig) -> int:
    fitting = [
        h
        for h in range(1, config.n_support + 1)
        if modelled(replace(config, h=h, query_batch=min(h, config.n_query))).peak_bytes <= budget
    ]
    return max(fitting)


@pytest.mark.parametrize(
    ("budget_mib", "margin"), list(itertools.product([200, 400, 900], [0, 0.1]))
)
def test_planner_finds_the_largest_fitting_h_query_batch_and_chunk(budget_mib, margin):
    config = StepConfig(image_size=64, n_support=200, n_query=40, chunk_size=64)
    plan = plan_budget(budget_mib * MiB, config, margin=margin, measure=modelled)
    limit = (1 - margin) * budget_mib * MiB
    assert plan.measurement.peak_bytes <= limit
    assert plan.config.h == brute_force_largest_h(limit, config)
    for bigger in (
        {"h": plan.config.h + 1},
        {"query_batch": (plan.config.query_batch or 0) + 1},
        {"chunk_size": plan.config.chunk_size + 1},
    ):
        grown = replace(plan.config, **bigger)
        if "chunk_size" in bigger and plan.config.full:
            continue  # full back-propagation has no no-grad pass
        if grown.h <= 200 and (grown.query_batch or 0) <= 40 and grown.chunk_size <= 200:
            assert modelled(grown).peak_bytes > limit, bigger
    assert plan.probes[-1].config == plan.config or plan.config in [p.config for p in plan.probes]
    assert len(plan.probes) < 30  # bisection, not a scan


def test_planner_with_room_for_everything_chooses_full_back_propagation():
    config = StepConfig(image_size=64, n_support=20, n_query=10)
    plan = plan_budget("10GiB", config, measure=modelled)
    assert plan.config.h == 20 and plan.config.full


def test_planner_keeps_what_is_not_searched():
    config = StepConfig(image_size=64, n_support=200, n_query=40, query_batch=5, chunk_size=16)
    plan = plan_budget(400 * MiB, config, margin=0, search=["h"], measure=modelled)
    assert plan.config.query_batch == 5 and plan.config.chunk_size == 16
    assert modelled(plan.config).peak_bytes <= 400 * MiB
    assert modelled(replace(plan.config, h=plan.config.h + 1)).peak_bytes > 400 * MiB


def test_planner_finds_the_largest_image_size_for_a_given_h():
    config = StepConfig(n_support=200, n_query=40, h=20, query_batch=10, chunk_size=16)
    sizes = range(32, 513, 32)
    plan = plan_budget(300 * MiB, config, margin=0, image_sizes=sizes, measure=modelled)
    fitting = [s for s in sizes if modelled(replace(config, image_size=s)).peak_bytes <= 300 * MiB]
    assert plan.config.image_size == max(fitting)
    assert plan.config.h == 20


def test_planner_says_what_the_smallest_set_up_needs_when_nothing_fits():
    config = StepConfig(image_size=64, n_support=200, n_query=40)
    with pytest.raises(NothingFits, match=r"^budget='100 MiB'.*needs 108 MiB") as caught:
        plan_budget(100 * MiB, config, margin=0, measure=modelled)
    assert caught.value.config.h == 1 and caught.value.measurement.peak_bytes == 108 * MiB


def test_planner_rejects_bad_arguments_before_measuring():
    calls = []

    def recording(config):
        calls.append(config)
        return modelled(config)

    for kwargs, message in [
        ({"margin": 1.0}, "^margin=1.0"),
        ({"search": ["width"]}, "^search='width'"),
        ({"image_sizes": [8]}, "^image_sizes=8"),
        ({"memory": "step"}, "^memory='step'"),
    ]:
        with pytest.raises(ValueError, match=message):
            plan_budget("1GiB", TINY, measure=recording, **kwargs)
    for budget in ("a lot", "1KiB", 1000):
        with pytest.raises(ValueError, match="^budget="):
            plan_budget(budget, TINY, measure=recording)
    assert calls == []


def test_a_real_cpu_plan_fits_its_budget():
    """End to end, in this process: the chosen set-up's own measurement is under the limit."""
    config = replace(TINY, h=None, query_batch=None, n_support=12)
    budget = measure_training_step(config, fresh_process=False).peak_bytes * 1.5
    plan = plan_budget(budget, config, margin=0.1, search=["h"], fresh_process=False)
    assert plan.measurement.peak_bytes <= 0.9 * budget
    assert 1 <= plan.config.h <= 12


def test_planner_can_bound_the_steps_own_share():
    """memory="step_share" compares peak minus rest: the 100 MiB at rest is left out."""
    config = StepConfig(image_size=64, n_support=200, n_query=40)
    by_step = plan_budget(300 * MiB, config, margin=0, memory="step_share", measure=modelled)
    by_peak = plan_budget(400 * MiB, config, margin=0, measure=modelled)
    assert by_step.config == by_peak.config
    assert by_step.measurement.step_bytes <= 300 * MiB < by_step.measurement.peak_bytes
    assert by_step.as_dict()["memory"] == "step_share" and "step share" in str(by_step)


# --- the command line -------------------------------------------------------------------------


@pytest.fixture
def measured(monkeypatch):
    """The configurations the command line measures, with the memory model as measurement."""
    calls = []

    def fake(config, fresh_process=None):
        calls.append(config)
        return modelled(config)

    monkeypatch.setattr(planner, "measure_training_step", fake)
    monkeypatch.setattr(cli, "measure_training_step", fake)
    return calls


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--budget", "banana"], r"--budget='banana': pass a positive number of bytes or a size"),
        (["--budget", "1KiB"], r"--budget='1KiB': that is under 1 MiB"),
        (["--budget=-2GiB"], r"--budget=.-2GiB.: "),
        ([], r"--budget=None: plan needs a budget, e.g. --budget 8GiB"),
        (["--budget", "1GiB", "--h", "-1"], r"--h=-1: pass an integer >= 0"),
        (["--budget", "1GiB", "--image-size", "8"], r"--image-size=8: pass an integer >= 16"),
        (["--budget", "1GiB", "--way", "9", "--n-support", "4"], r"--way=9: .*--way <= 4"),
        (["--budget", "1GiB", "--device", "tpu"], r"--device='tpu': "),
        (["--budget", "1GiB", "--backbone", "resnet1"], r"--backbone='resnet1': .*resnet18"),
        (["--budget", "1GiB", "--backbone", "resnet18", "--norm", "batch"], r"--norm='batch': "),
        (["--budget", "1GiB", "--margin", "1.5"], r"--margin=1.5: pass a fraction in \[0, 1\)"),
        (["--budget", "1GiB", "--image-sizes", "64", "8"], r"--image-sizes=8: "),
        (
            ["--budget", "1GiB", "--backbone", "alexnet", "--image-size", "32"],
            r"--image-size=32: alexnet cannot embed 32x32 images .*smallest size is \d+ px",
        ),
        (["--budget", "1GiB", "--memory", "step"], r"argument --memory: invalid choice: 'step'"),
        (["--budget", "1GiB", "--n-query", "x"], r"argument --n-query: invalid int value: 'x'"),
    ],
)
def test_bad_plan_options_give_one_line_and_status_2_before_any_measurement(
    measured, capsys, options, message
):
    with pytest.raises(SystemExit) as exited:  # argparse's own errors exit from parsing
        raise SystemExit(cli.main(["plan", "--device", "cpu", *options]))
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("python -m litekit.measure: error: ")
    assert re.search(message, err), err
    assert measured == []


def test_a_plan_that_cannot_fit_says_what_the_smallest_set_up_needs(measured, capsys):
    status = cli.main(["plan", "--device", "cpu", "--budget", "100MiB", "--margin", "0",
                       "--n-support", "200", "--n-query", "40"])  # fmt: skip
    out, err = capsys.readouterr()
    assert status == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "--budget='100MiB': even conv4 64px N=200 LITE h=1" in err
    assert "needs 108 MiB" in err and "raise --budget" in err and " budget=" not in err
    assert measured  # it did measure: the budget was plausible


def test_a_plan_on_the_command_line_prints_the_plan(measured, capsys):
    options = ["--budget", "400MiB", "--margin", "0", "--n-support", "200", "--n-query", "40"]
    status = cli.main(["plan", "--device", "cpu", *options, "--memory", "step_share"])
    result = json.loads(capsys.readouterr().out)
    assert status == 0 and result["memory"] == "step_share"
    assert result["chosen"]["step_bytes"] <= 400 * MiB
    assert result["plan"].startswith("h=")


def test_the_module_refuses_a_bad_budget_without_a_traceback():
    """End to end, the installed entry point: ``python -m litekit.measure plan``."""
    for budget in ("banana", "1KiB"):
        out = subprocess.run(
            [sys.executable, "-m", "litekit.measure", "plan", "--device", "cpu", "--budget",
             budget],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert out.returncode == 2 and out.stdout == "", out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert f"--budget={budget!r}: " in out.stderr
