"""benchmarks/record_throughput.py runs and reports both readers (tiny sizes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "record_throughput.py"


def test_record_throughput_reports_both_readers(tmp_path):
    spec = importlib.util.spec_from_file_location("record_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "r.json"
    result = module.main(
        ["--size", "32", "--source-size", "64", "--classes", "2", "--per-class", "6",
         "--workers", "0", "--batch", "4", "--repeats", "1", "--out", str(out)]
    )  # fmt: skip
    assert out.is_file() and result["images"] == 12
    assert {(r["reader"], r["workers"]) for r in result["rows"]} == {("records", 0), ("folder", 0)}
    assert all(r["images_per_s"] > 0 for r in result["rows"])
