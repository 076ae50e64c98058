"""litekit.measure: the timing helper, the CUDA peak reader, tensor memory, and the two step
measurements (one task's gradient in this process; a configured training step, fresh
process on the CPU)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import make_episode, make_learner

from litekit import Lite
from litekit.measure import (
    CreatedTensorMemory,
    SavedTensorMemory,
    StepConfig,
    build_training_step,
    cost_vs_h,
    cuda_peak,
    measure_task_gradient,
    measure_training_step,
    median_seconds,
    timed_repeats,
)

TINY = StepConfig(
    image_size=16, n_support=6, way=3, n_query=4, width=4, h=2, query_batch=2, chunk_size=3,
    repeats=1, threads=1,
)  # fmt: skip
MIB = 2**20


# --- timing -------------------------------------------------------------------------------------


def test_median_seconds_warms_up_once_unless_told_not_to():
    calls = []
    seconds = median_seconds(lambda: calls.append(1), torch.device("cpu"), 3)
    assert len(calls) == 4 and seconds >= 0
    calls.clear()
    median_seconds(lambda: calls.append(1), torch.device("cpu"), 3, warm_up=False)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="^repeats=0"):
        median_seconds(lambda: None, torch.device("cpu"), 0)


def test_timed_repeats_leave_out_the_slow_first_call_and_keep_the_range(monkeypatch):
    """The warm-up call (slow: allocations, caches) is never timed; the median and the
    range of the timed calls are what a notebook shows."""
    from litekit.measure import timing

    clock = iter([0.0, 1.0, 1.0, 3.0, 3.0, 3.5])  # the timed calls take 1, 2 and 0.5 s
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    result = timed_repeats(lambda: calls.append(1), torch.device("cpu"), 3)
    assert len(calls) == 4, "one warm-up call, then three timed calls"
    assert (result.median, result.low, result.high, result.repeats) == (1.0, 0.5, 2.0, 3)


# --- the CUDA peak reader -----------------------------------------------------------------------


def test_cuda_peak_reads_nothing_off_cuda():
    with cuda_peak(torch.device("cpu")) as reading:
        torch.ones(1000)
    assert reading.rest_bytes is None and reading.peak_bytes is None
    assert reading.above_rest is None


def test_cuda_peak_resets_then_reads_rest_before_and_the_peak_after(monkeypatch):
    """The order that makes the reading right, checked against a recording fake allocator."""
    events = []
    allocated = {"now": 100, "max": 100}

    def work():
        events.append("work")
        allocated["max"] = 700  # the block's peak
        allocated["now"] = 250

    def reset(device):
        events.append("reset")
        allocated["max"] = allocated["now"]

    def read(key, event):
        def reader(device):
            events.append(event)
            return allocated[key]

        return reader

    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: events.append("synchronize"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset)
    monkeypatch.setattr(torch.cuda, "memory_allocated", read("now", "rest"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", read("max", "max"))
    with cuda_peak(torch.device("cuda")) as reading:
        assert reading.peak_bytes is None  # filled in only when the block ends
        work()
    assert events == ["synchronize", "reset", "rest", "work", "synchronize", "max"]
    assert (reading.rest_bytes, reading.peak_bytes, reading.above_rest) == (100, 700, 600)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_sees_a_temporary_allocation():
    device = torch.device("cuda")
    with cuda_peak(device) as reading:
        block = torch.empty(64 * MIB, dtype=torch.uint8, device=device)
        del block
    assert reading.above_rest >= 64 * MIB


# --- tensor memory ------------------------------------------------------------------------------


def test_created_tensor_memory_counts_live_tensors_at_their_peak():
    def work():
        a = torch.empty(MIB, dtype=torch.uint8)
        b = torch.empty(2 * MIB, dtype=torch.uint8)
        view = b[: MIB // 2]  # shares b's storage: nothing new
        b.add_(1)  # in place: nothing new
        del a
        c = torch.empty(MIB // 2, dtype=torch.uint8)  # 2.5 MiB live, below the 3 MiB peak
        return view, c

    with CreatedTensorMemory() as created:
        kept = work()
        assert created.live == int(2.5 * MIB)
    assert created.peak == 3 * MIB
    del kept


def test_created_tensor_memory_sees_backward_and_ignores_what_existed_before():
    weight = torch.randn(100, 50, dtype=torch.float64, requires_grad=True)
    inputs = torch.randn(64, 100, dtype=torch.float64)
    with CreatedTensorMemory() as created:
        (inputs @ weight).relu().sum().backward()
    # At least the product (64 x 50) and the weight's gradient (100 x 50) were alive at once.
    assert created.peak >= (64 * 50 + 100 * 50) * 8
    assert created.live == weight.grad.nbytes  # only the gradient outlives the block


def test_saved_tensor_memory_counts_what_backward_keeps_once_and_no_parameters():
    layer = torch.nn.Linear(100, 50).double()
    inputs = torch.randn(64, 100, dtype=torch.float64)
    with SavedTensorMemory(layer) as saved:
        hidden = layer(inputs).tanh()  # saves the input (linear) and the output (tanh)
        assert saved.live == (64 * 100 + 64 * 50) * 8  # the weight is not counted
        (hidden * hidden).sum().backward()  # saves hidden twice: one storage, counted once
    assert saved.peak == (64 * 100 + 64 * 50) * 8
    assert saved.live == 0  # the graph is freed after its backward pass


# --- one task's gradient, in this process -------------------------------------------------------


def test_memory_kept_for_backward_grows_with_h_and_is_deterministic():
    learner, episode = make_learner("protonets"), make_episode(12)
    rows = cost_vs_h(learner, episode, [1, 2, 4, 8], repeats=1)
    again = cost_vs_h(learner, episode, [1, 2, 4, 8], repeats=1)
    saved = [r["saved_bytes"] for r in rows]
    assert saved == [r["saved_bytes"] for r in again]
    assert saved == sorted(saved) and len(set(saved)) == len(saved)
    assert rows[-1]["method"] == "full" and rows[-1]["h"] == 12
    assert all(r["peak_bytes"] is None and r["seconds"] > 0 for r in rows)
    assert all(0 < r["seconds_min"] <= r["seconds"] <= r["seconds_max"] for r in rows)
    # Each extra support image in the graph keeps the same activations.
    steps = [(b - a) / (hb - ha) for (a, ha), (b, hb) in zip(
        zip(saved[:3], [1, 2, 4], strict=True), zip(saved[1:4], [2, 4, 8], strict=True),
        strict=True,
    )]  # fmt: skip
    assert max(steps) - min(steps) < 0.01 * min(steps)


def test_query_batching_lowers_the_memory_kept_for_backward():
    learner, episode = make_learner("simple_cnaps"), make_episode(8, n_query=6)
    lite = Lite(2, generator=torch.Generator().manual_seed(0))
    whole = measure_task_gradient(learner, episode, lite, repeats=1)
    batched = measure_task_gradient(learner, episode, lite, repeats=1, query_batch=2)
    one_batch = measure_task_gradient(learner, episode, lite, repeats=1, query_batch=6)
    assert batched.saved_bytes < whole.saved_bytes
    assert one_batch.saved_bytes == whole.saved_bytes


def test_task_gradient_measurement_leaves_gradients_as_found():
    learner, episode = make_learner("protonets"), make_episode(6)
    sentinel = [torch.full_like(p, 3.0) for p in learner.parameters()]
    for p, g in zip(learner.parameters(), sentinel, strict=True):
        p.grad = g
    measure_task_gradient(learner, episode, Lite(2), repeats=1)
    assert all(p.grad is g for p, g in zip(learner.parameters(), sentinel, strict=True))


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda lrn, e: measure_task_gradient(lrn, e, None, repeats=0), "repeats"),
        (lambda lrn, e: measure_task_gradient("protonets", e, None), "learner"),
        (lambda lrn, e: cost_vs_h(lrn, e, [0]), "h"),
        (lambda lrn, e: cost_vs_h(lrn, e, 2), "hs"),
        (lambda lrn, e: cost_vs_h(lrn, e, [1], seed=-1), "seed"),
    ],
)
def test_bad_task_gradient_arguments_are_named_before_any_work(monkeypatch, call, argument):
    learner, episode = make_learner("protonets"), make_episode(6)

    def must_not_run(*args, **kwargs):
        raise AssertionError("work was done before the arguments were checked")

    monkeypatch.setattr(learner, "cache_support", must_not_run)
    monkeypatch.setattr(learner, "task_logits", must_not_run)
    with pytest.raises(ValueError, match=rf"^{argument}=.*: "):
        call(learner, episode)


# --- a configured training step -----------------------------------------------------------------


def test_build_training_step_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first, *_ = build_training_step(TINY)
    assert torch.equal(torch.rand(3), expected), "the caller's generator must not be reseeded"
    second, *_ = build_training_step(TINY)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"learner": "maml"}, "^learner='maml'"),
        ({"backbone": "resnet1"}, "^backbone='resnet1'.*resnet18"),
        ({"h": -1}, "^h=-1"),
        ({"chunk_size": 0}, "^chunk_size=0"),
        ({"image_size": 8}, "^image_size=8"),
        ({"way": 7}, "^way=7"),
        ({"device": "tpu"}, "^device='tpu'"),
        ({"query_batch": 0}, "^query_batch=0"),
        ({"norm": "layer"}, "^norm='layer'"),
        ({"backbone": "resnet18", "norm": "batch"}, "^norm='batch': resnet18"),
    ],
)
def test_bad_configurations_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        replace(TINY, **change)


def test_training_step_in_this_process_on_the_cpu():
    m = measure_training_step(TINY, fresh_process=False)
    assert m.error is None and m.device_name == "cpu"
    assert m.peak_bytes >= m.rest_bytes > 0 and m.step_seconds > 0
    assert 0 < m.step_seconds_min <= m.step_seconds <= m.step_seconds_max
    assert 0 <= m.step_bytes <= m.peak_bytes
    assert m.fits(m.peak_bytes) and not m.fits(m.peak_bytes, margin=0.5)
    assert m.used("step_share") == m.step_bytes and m.used() == m.peak_bytes
    with pytest.raises(ValueError, match="^memory='step'"):
        m.used("step")


def test_training_step_runs_a_fresh_process_on_the_cpu():
    m = measure_training_step(TINY)
    assert m.error is None, m.error
    assert m.peak_bytes >= m.rest_bytes > 0 and m.step_seconds > 0
    assert 0 < m.step_seconds_min <= m.step_seconds <= m.step_seconds_max
    assert 0 <= m.step_bytes <= m.peak_bytes - m.rest_bytes + MIB
    assert m.as_dict()["h"] == 2


def test_the_two_step_measurements_agree_on_what_they_share():
    """The same learner, task and LITE set-up (`build_training_step`) measured both ways.

    The training step holds at least what one task's gradient keeps for backward: its
    resident share (fresh process) is no smaller than the bytes autograd saved, and on CUDA
    its allocator peak is no smaller than the task gradient's.
    """
    config = StepConfig(
        image_size=48, n_support=24, way=4, n_query=8, width=16, h=8, chunk_size=8, repeats=1,
        threads=1, optimizer="sgd",
    )  # fmt: skip
    learner, _, episode, lite = build_training_step(config)
    gradient = measure_task_gradient(learner, episode, lite, repeats=1)
    step = measure_training_step(config)
    assert step.error is None, step.error
    assert gradient.saved_bytes > 4 * MIB  # large enough to stand out of the RSS
    assert step.step_bytes >= gradient.saved_bytes
    if torch.cuda.is_available():
        on_cuda = replace(config, device="cuda")
        learner, _, episode, lite = build_training_step(on_cuda)
        gradient = measure_task_gradient(learner, episode, lite, repeats=1)
        assert measure_training_step(on_cuda).step_bytes >= gradient.peak_bytes > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_step_on_cuda_reports_the_allocated_peak():
    m = measure_training_step(replace(TINY, device="cuda"))
    assert m.error is None and m.peak_bytes >= m.rest_bytes >= 0
    assert m.step_bytes == m.peak_bytes - m.rest_bytes
