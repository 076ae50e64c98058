"""litekit.measure.reference: the H200 reference measurements read back."""

from __future__ import annotations

from pathlib import Path

from litekit.measure import load_reference, reference_curve

REFERENCE = Path(__file__).resolve().parents[1] / "benchmarks" / "reference"


def test_reference_copy_reads_back_the_design_highlights():
    header, rows = load_reference(REFERENCE / "h200-protonets-step.jsonl")
    assert header["gpu"] == "NVIDIA H200"
    full = {n: peak for n, peak, _ in reference_curve(rows, "full", "efficientnet_b0", 224)}
    lite = {n: peak for n, peak, _ in reference_curve(rows, "lite", "efficientnet_b0", 224)}
    assert full == {100: 11.485, 500: 44.132, 1000: 84.901}
    assert lite == {100: 6.598, 500: 6.6, 1000: 6.608}
    assert reference_curve(rows, "full", "efficientnet_b0", 320)[-1] == (1000, None, None)
    assert [n for n, *_ in reference_curve(rows, "lite", "efficientnet_b0", 224, h=8)] == [500]
