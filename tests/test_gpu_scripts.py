"""The scripts a GPU session runs: they parse, the targets are judged from the rows they
name, and the resume check sees any difference between two checkpoints."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import torch
from nbtools import parameter_names

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("script", ["gpu_targets.sh", "scaleout_check.sh"])
def test_the_shell_scripts_parse(script):
    done = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)], capture_output=True)
    assert done.returncode == 0, done.stderr


def report(rows: list[dict], **config) -> dict:
    base = {"backbone": "efficientnet_b0", "learner": "protonets", "image_size": 224,
            "deterministic": False}  # fmt: skip
    return {"benchmark": "lite_memory", "device": "NVIDIA H200", "config": {**base, **config},
            "rows": rows}  # fmt: skip


def row(kind: str, precision: str, channels_last: bool, step_s: float | None, **more) -> dict:
    values = {"kind": kind, "n": 1000, "h": 8 if kind == "lite" else None,
              "precision": precision, "channels_last": channels_last, "peak_mib": 900.0,
              "step_mib": 880.0, "step_s": step_s, "error": None}  # fmt: skip
    return {**values, **more}


def write(folder: Path, name: str, document: dict) -> None:
    (folder / f"gpu-targets-{name}.json").write_text(json.dumps(document))


def test_targets_are_judged_on_the_rows_they_name(tmp_path, capsys):
    summary = load("gpu_targets_summary")
    floor = {"floor_s": 0.1, "no_grad_s": 0.06, "grad_pass_s": 0.01, "query_batches": 4,
             "grad_s": 0.04, "no_grad_images_per_s": 16_000.0}  # fmt: skip
    write(tmp_path, "main", report([row("lite", "bf16", True, 0.12, step_over_floor=1.2, **floor)]))
    write(tmp_path, "det", report([row("lite", "bf16", True, 0.18, step_over_floor=1.8, **floor)],
                                  deterministic=True))  # fmt: skip
    write(tmp_path, "full", report([row("full", "fp32", False, 0.36, n=100),
                                    row("full", "fp32", False, 0.40)]))  # fmt: skip
    write(tmp_path, "other", report([row("lite", "bf16", True, 0.01)], image_size=320))
    write(tmp_path, "a-compiled", report([row("lite", "bf16", True, 0.06, compile="reduce-overhead",
                                              step_over_floor=0.6, **floor)]))  # fmt: skip
    (tmp_path / "resume").mkdir()
    (tmp_path / "resume" / "resume_check.json").write_text('{"largest_difference": 0.0}')
    assert summary.main([str(tmp_path), "--image-size", "224", "--n", "1000"]) == 0
    verdicts = {v["target"]: v for v in json.loads(
        (tmp_path / "gpu-targets-summary.json").read_text())["targets"]}  # fmt: skip
    assert verdicts["LITE bf16+channels-last step (s)"]["verdict"] == "met"  # 0.12, not 0.01
    assert verdicts["its step / its floor"]["value"] == 1.2
    assert verdicts["its peak memory (GiB)"]["value"] == pytest.approx(900 / 1024)
    speedup = verdicts["fp32 full back-propagation step / its step"]
    assert speedup["value"] == pytest.approx(0.40 / 0.12) and speedup["verdict"] == "missed"
    assert verdicts["its no-grad throughput (images/s)"]["verdict"] == "met"
    out = capsys.readouterr().out
    assert "deterministic kernels: step x 1.500" in out and "largest |difference| 0.0" in out
    assert "torch.compile (reduce-overhead) backbone: step x 0.500" in out  # not the main row


def test_a_full_run_out_of_memory_is_said_not_judged(tmp_path):
    summary = load("gpu_targets_summary")
    write(tmp_path, "main", report([row("lite", "bf16", True, 0.12, step_over_floor=1.1,
                                        no_grad_images_per_s=9_000.0)]))  # fmt: skip
    write(tmp_path, "full", report([row("full", "fp32", False, None, error="out of memory",
                                        peak_mib=None)]))  # fmt: skip
    summary.main([str(tmp_path)])
    verdicts = json.loads((tmp_path / "gpu-targets-summary.json").read_text())["targets"]
    speedup, throughput = verdicts[3], verdicts[4]
    assert speedup["verdict"] == "not measured (full back-propagation: out of memory)"
    assert throughput["verdict"] == "missed"
    summary.main([str(tmp_path), "--smoke"])
    verdicts = json.loads((tmp_path / "gpu-targets-summary.json").read_text())["targets"]
    assert verdicts[0]["verdict"].startswith("smoke")


def test_the_resume_check_finds_the_largest_difference_and_where():
    resume = load("resume_check")
    weights = {"w": torch.zeros(3), "b": torch.ones(2)}
    optimizer = {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 0.1}]}
    a = {"learner": weights, "optimizer": optimizer}
    assert resume.largest_difference(a, a) == (0.0, "learner.w")
    moved = {"state": {0: {"exp_avg": torch.tensor([0.0, 2.0**-30, 0.0])}}, "param_groups": []}
    assert resume.largest_difference(a, {"learner": weights, "optimizer": moved}) == (
        2.0**-30, "optimizer.state.0.exp_avg",
    )  # fmt: skip
    worst, where = resume.largest_difference(a, {"learner": {"w": weights["w"]},
                                                 "optimizer": optimizer})  # fmt: skip
    assert worst == float("inf") and "learner.b" in where


@pytest.mark.parametrize("smoke", [False, True], ids=["gpu", "cpu-smoke"])
def test_the_notebook_runs_name_only_parameters_the_notebooks_have(smoke):
    """A renamed notebook parameter would make papermill add a variable nobody reads."""
    runner = load("gpu_notebooks")
    for name in runner.GPU_RUNS:
        notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        given = runner.parameters_for(name, smoke)
        assert set(given) <= parameter_names(notebook), set(given) - parameter_names(notebook)
        if smoke or "05_" in name:  # notebook 04's gpu preset sets its own precision and layout
            assert given["PRECISION"] == "bf16" and given["CHANNELS_LAST"] is True
        assert given["DEVICE"] == ("cpu" if smoke else "cuda")


def test_notebook_04s_gpu_preset_sets_bf16_and_channels_last():
    notebook = nbformat.read(ROOT / "notebooks" / "04_meta_training_large_images.ipynb", 4)
    preset = next(c["source"] for c in notebook["cells"] if 'if SCALE == "gpu"' in c["source"])
    assert 'PRECISION, CHANNELS_LAST = "bf16", True' in preset
