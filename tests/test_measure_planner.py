"""litekit.memory: measurements on the CPU (fresh process), and the budget planner."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from litekit.memory import (
    Measurement,
    StepConfig,
    build_step,
    format_bytes,
    load_reference,
    measure_here,
    measure_step,
    parse_bytes,
    plan_budget,
    plot_reference,
    reference_curve,
)

REFERENCE = Path(__file__).resolve().parents[1] / "benchmarks" / "reference"

TINY = StepConfig(
    image_size=16, n_support=6, way=3, n_query=4, width=4, h=2, query_batch=2, chunk_size=3,
    repeats=1, threads=1,
)  # fmt: skip


def test_build_step_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first, *_ = build_step(TINY)
    assert torch.equal(torch.rand(3), expected), "build_step must not reseed the caller's RNG"
    second, *_ = build_step(TINY)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_parse_and_format_bytes():
    assert parse_bytes("6GiB") == 6 * 2**30
    assert parse_bytes("500 MB") == 500 * 10**6
    assert parse_bytes("1.5kib") == 1536
    assert parse_bytes(1000) == 1000
    for bad in ("lots", "-1GiB", 0, "GiB", True):
        with pytest.raises(ValueError, match="^budget="):
            parse_bytes(bad)
    assert format_bytes(3 * 2**30) == "3.00 GiB" and format_bytes(5 * 2**20) == "5 MiB"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"learner": "maml"}, "^learner='maml'"),
        ({"h": -1}, "^h=-1"),
        ({"chunk_size": 0}, "^chunk_size=0"),
        ({"way": 7}, "^way=7"),
        ({"device": "tpu"}, "^device='tpu'"),
        ({"query_batch": 0}, "^query_batch=0"),
    ],
)
def test_bad_configurations_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        replace(TINY, **change)


def test_measure_here_on_the_cpu():
    m = measure_here(TINY)
    assert m.error is None and m.device_name == "cpu"
    assert m.peak_bytes >= m.rest_bytes > 0 and m.step_seconds > 0
    assert 0 <= m.step_bytes <= m.peak_bytes
    assert m.fits(m.peak_bytes) and not m.fits(m.peak_bytes, margin=0.5)


def test_measure_step_runs_a_fresh_process_on_the_cpu():
    m = measure_step(TINY)
    assert m.error is None, m.error
    assert m.peak_bytes >= m.rest_bytes > 0 and m.step_seconds > 0
    assert 0 <= m.step_bytes <= m.peak_bytes - m.rest_bytes + 2**20
    assert m.as_dict()["h"] == 2


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
    with pytest.raises(ValueError, match=r"^budget='100 MiB'.*needs 108 MiB"):
        plan_budget(100 * MiB, config, margin=0, measure=modelled)


def test_planner_rejects_bad_arguments_before_measuring():
    calls = []

    def recording(config):
        calls.append(config)
        return modelled(config)

    for kwargs, message in [
        ({"margin": 1.0}, "^margin=1.0"),
        ({"search": ["width"]}, "^search='width'"),
        ({"image_sizes": [8]}, "^image_sizes=8"),
    ]:
        with pytest.raises(ValueError, match=message):
            plan_budget("1GiB", TINY, measure=recording, **kwargs)
    with pytest.raises(ValueError, match="^budget="):
        plan_budget("a lot", TINY, measure=recording)
    assert calls == []


def test_a_real_cpu_plan_fits_its_budget():
    """End to end, in this process: the chosen set-up's own measurement is under the limit."""
    config = replace(TINY, h=None, query_batch=None, n_support=12)
    budget = measure_here(replace(config, h=None)).peak_bytes * 1.5
    plan = plan_budget(budget, config, margin=0.1, search=["h"], fresh_process=False)
    assert plan.measurement.peak_bytes <= 0.9 * budget
    assert 1 <= plan.config.h <= 12


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_measure_on_cuda_reports_allocated_peak():
    m = measure_step(replace(TINY, device="cuda"))
    assert m.error is None and m.peak_bytes >= m.rest_bytes >= 0


def test_planner_can_bound_the_steps_own_share():
    """count="step" compares peak minus rest: the 100 MiB at rest is left out."""
    config = StepConfig(image_size=64, n_support=200, n_query=40)
    by_step = plan_budget(300 * MiB, config, margin=0, count="step", measure=modelled)
    by_peak = plan_budget(400 * MiB, config, margin=0, measure=modelled)
    assert by_step.config == by_peak.config
    assert by_step.measurement.step_bytes <= 300 * MiB < by_step.measurement.peak_bytes
    with pytest.raises(ValueError, match="^count='rss'"):
        plan_budget(300 * MiB, config, count="rss", measure=modelled)


def test_reference_copy_reads_back_the_design_highlights():
    header, rows = load_reference(REFERENCE / "h200-protonets-step.jsonl")
    assert header["gpu"] == "NVIDIA H200"
    full = {n: peak for n, peak, _ in reference_curve(rows, "full", "efficientnet_b0", 224)}
    lite = {n: peak for n, peak, _ in reference_curve(rows, "lite", "efficientnet_b0", 224)}
    assert full == {100: 11.485, 500: 44.132, 1000: 84.901}
    assert lite == {100: 6.598, 500: 6.6, 1000: 6.608}
    assert reference_curve(rows, "full", "efficientnet_b0", 320)[-1] == (1000, None, None)
    assert [n for n, *_ in reference_curve(rows, "lite", "efficientnet_b0", 224, h=8)] == [500]


def test_plot_reference_draws_both_kinds_and_marks_out_of_memory():
    import matplotlib

    matplotlib.use("Agg")
    _, rows = load_reference(REFERENCE / "h200-protonets-step.jsonl")
    ax = plot_reference(rows, "efficientnet_b0", 320)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "full back-propagation" in labels and "minimal LITE, h=40" in labels
    assert "full back-propagation: out of memory" in labels


def test_group_norm_backbone_embeds_each_image_on_its_own():
    """StepConfig(norm="group") swaps BatchNorm for GroupNorm: per-image, in any mode."""
    from litekit.learners import group_norm, torchvision_backbone

    torch.manual_seed(0)
    model = group_norm(torchvision_backbone("resnet18")).train()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        together, alone = model(images), model(images[:1])
    assert torch.allclose(together[:1], alone, atol=1e-5)
    with pytest.raises(ValueError, match="^norm='layer'"):
        replace(TINY, norm="layer")
