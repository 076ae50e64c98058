"""benchmarks/lite_memory.py: each LITE row carries its floor, timed in the step's process,
with its parts; a step faster than 0.95 × its floor ends the script with status 1, naming
the row."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "lite_memory.py"
TINY = [
    "--device", "cpu", "--backbone", "conv4", "--width", "8", "--image-size", "16",
    "--n", "8", "--h", "2", "--way", "2", "--n-query", "5", "--query-batch", "2",
    "--chunk", "4", "--repeats", "3", "--threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("lite_memory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_a_tiny_cpu_run_reports_the_floor_and_its_parts(tmp_path):
    out = tmp_path / "report.json"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--kinds", "lite", "--precision", "bf16",
         "--channels-last", "--out", str(out)],
        capture_output=True, text=True, env=environment, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert json.loads(out.read_text()) == report
    (row,) = report["rows"]
    assert row["error"] is None, row["error"]
    assert (row["kind"], row["n"], row["h"]) == ("lite", 8, 2)
    assert (row["precision"], row["channels_last"]) == ("bf16", True)
    assert row["floor_repeats"] >= 10 and row["query_batches"] == 3  # 5 queries, batches of 2
    assert row["floor_s"] == pytest.approx(row["no_grad_s"] + row["grad_s"])
    assert row["grad_s"] > 2 * row["grad_pass_s"]  # two full batches and a last one of 1
    assert row["no_grad_images_per_s"] == pytest.approx(8 / row["no_grad_s"])
    assert row["step_over_floor"] == pytest.approx(row["step_s"] / row["floor_s"])
    summary = report["summary"]
    assert summary["floor_violations"] == [] and summary["max_step_over_floor"] >= 0.95
    assert report["config"]["precision"] == "bf16" and "child" not in report["config"]


def lite_row(step_s: float, floor_s: float, n: int = 1000) -> dict:
    return {
        "kind": "lite", "n": n, "h": 8, "precision": "bf16", "channels_last": True,
        "peak_mib": 900.0, "step_mib": 880.0, "step_s": step_s, "error": None,
        "no_grad_s": floor_s / 2, "grad_s": floor_s / 2, "floor_s": floor_s,
        "step_over_floor": step_s / floor_s,
    }  # fmt: skip


def test_a_step_faster_than_its_floor_fails_the_run_and_names_the_row(
    benchmark, monkeypatch, capsys
):
    rows = iter([lite_row(0.09, 0.1, n=100), lite_row(0.2, 0.1)])
    monkeypatch.setattr(benchmark, "measure_row", lambda config, deterministic: next(rows))
    assert benchmark.main([*TINY, "--n", "100", "1000", "--kinds", "lite"]) == 1
    out = capsys.readouterr()
    report = json.loads(out.out)
    (violation,) = report["summary"]["floor_violations"]
    assert violation.startswith("lite N=100 h=8 bf16 channels-last: step 0.0900 s is faster")
    assert f"lite_memory: {violation}" in out.err


def test_a_step_at_or_above_095_of_its_floor_passes(benchmark, monkeypatch, capsys):
    rows = iter([lite_row(0.096, 0.1, n=100), lite_row(0.3, 0.1)])
    monkeypatch.setattr(benchmark, "measure_row", lambda config, deterministic: next(rows))
    assert benchmark.main([*TINY, "--n", "100", "1000", "--kinds", "lite"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["floor_violations"] == []
    assert summary["min_step_over_floor"] == pytest.approx(0.96)
    assert summary["lite_step_s_n1000_over_n100"] == pytest.approx(0.3 / 0.096)


def test_the_floor_tolerance_is_an_option_for_noisy_smoke_runs(benchmark, monkeypatch, capsys):
    rows = iter([lite_row(0.09, 0.1, n=100), lite_row(0.3, 0.1)] * 2)
    monkeypatch.setattr(benchmark, "measure_row", lambda config, deterministic: next(rows))
    options = [*TINY, "--n", "100", "1000", "--kinds", "lite"]
    assert benchmark.main([*options, "--floor-tolerance", "0.5"]) == 0  # 0.9 x its floor
    assert json.loads(capsys.readouterr().out)["summary"]["floor_violations"] == []
    assert benchmark.main(options) == 1  # the default, 0.95, still catches it


def test_a_bad_configuration_stops_before_any_measurement(benchmark, monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "measure_row", lambda *a: pytest.fail("measured"))
    assert benchmark.main([*TINY, "--h", "-1"]) == 2
    assert "lite_memory: error: h=-1" in capsys.readouterr().err
