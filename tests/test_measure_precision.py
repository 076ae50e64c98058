"""litekit.measure in a precision and memory layout: the configured step, the task gradient,
the planner and the command line measure what they are asked to; CUDA-event timing; the
floor of a LITE step and its parts."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import replace

import pytest
import torch
from torch import nn

from litekit import Episode, Lite
from litekit.learners import ProtoNets, conv4
from litekit.lite import with_precision
from litekit.measure import (
    Measurement,
    StepConfig,
    build_training_step,
    cost_vs_h,
    measure_floor,
    measure_task_gradient,
    measure_training_step,
    median_seconds,
    plan_budget,
    seconds_of,
)
from litekit.measure import cli as measure_cli
from litekit.measure import floor as floor_module

TINY = StepConfig(
    image_size=16, n_support=6, way=3, n_query=4, width=4, h=2, query_batch=2, chunk_size=3,
    repeats=1, threads=1,
)  # fmt: skip


def float32_task(n_support: int = 8, n_query: int = 4, size: int = 16) -> Episode:
    g = torch.Generator().manual_seed(0)
    return Episode(
        support_images=torch.rand(n_support, 3, size, size, generator=g),
        support_labels=torch.arange(n_support) % 2,
        query_images=torch.rand(n_query, 3, size, size, generator=g),
        query_labels=torch.arange(n_query) % 2,
        class_ids=torch.arange(2),
    )


def conv4_learner(width: int = 8) -> ProtoNets:
    torch.manual_seed(0)
    return ProtoNets(conv4(width=width, depth=2))


class FirstConvSeen:
    """Forward hook on a learner's first convolution: the output dtype and whether input and
    kernel were channels-last, call after call."""

    def __init__(self, learner: nn.Module) -> None:
        self.calls: list[tuple[torch.dtype, bool, bool]] = []
        first = next(m for m in learner.modules() if isinstance(m, nn.Conv2d))
        self.handle = first.register_forward_hook(self.hook)

    def hook(self, module, inputs, output) -> None:
        last = torch.channels_last
        self.calls.append(
            (
                output.dtype,
                inputs[0].is_contiguous(memory_format=last) and inputs[0].shape[0] > 1,
                module.weight.is_contiguous(memory_format=last),
            )
        )


# --- timing --------------------------------------------------------------------------------


def test_cuda_time_is_read_from_events_around_the_call(monkeypatch):
    """The order that makes a CUDA time right, checked against a recording fake."""
    events, clock = [], [10.0]

    class FakeEvent:
        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing
            self.at = None

        def record(self) -> None:
            events.append("record")
            self.at = clock[0]

        def synchronize(self) -> None:
            events.append("wait for the end event")

        def elapsed_time(self, end: FakeEvent) -> float:
            return (end.at - self.at) * 1000.0  # milliseconds

    def work() -> None:
        events.append("work")
        clock[0] += 0.25

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    assert seconds_of(work, torch.device("cuda")) == pytest.approx(0.25)
    assert events == ["sync", "record", "work", "record", "wait for the end event"]
    events.clear()
    assert median_seconds(work, torch.device("cuda"), 3) == pytest.approx(0.25)
    assert events.count("work") == 4 and events.count("record") == 6  # warm-up not timed


def test_cpu_time_is_the_wall_clock():
    seconds = seconds_of(lambda: torch.ones(100).sum(), torch.device("cpu"))
    assert 0 < seconds < 5


# --- the configured step -------------------------------------------------------------------


def test_the_step_is_built_in_its_precision_and_layout():
    learner, _, _, lite = build_training_step(replace(TINY, precision="bf16", channels_last=True))
    assert (lite.precision, lite.channels_last, lite.h) == ("bf16", True, 2)
    assert learner.backbone[0].weight.is_contiguous(memory_format=torch.channels_last)
    _, _, _, full = build_training_step(replace(TINY, h=None, precision="fp16"))
    assert full.is_full(TINY.n_support) and full.precision == "fp16"
    assert build_training_step(replace(TINY, h=None))[3] is None  # plain fp32: as before
    learner, *_ = build_training_step(TINY)
    assert not learner.backbone[0].weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_mixed_precision_step_is_measured(precision):
    """fp16 needs a gradient scaler: the measurement keeps one, as fit does."""
    config = replace(TINY, precision=precision, channels_last=True)
    measured = measure_training_step(config, fresh_process=False)
    assert measured.error is None and measured.step_seconds > 0
    row = measured.as_dict()
    assert (row["precision"], row["channels_last"], row["weights"]) == (precision, True, None)
    assert config.label().endswith(f"LITE h=2 {precision} channels-last")


def test_a_weights_file_reaches_the_measured_step(tmp_path):
    torch.manual_seed(9)
    state = conv4(width=4).state_dict()
    torch.save(state, tmp_path / "conv4.pt")
    config = replace(TINY, weights=tmp_path / "conv4.pt")
    assert config.weights == str(tmp_path / "conv4.pt")  # text: it travels as JSON
    learner, *_ = build_training_step(config)
    assert all(torch.equal(v, state[k]) for k, v in learner.backbone.state_dict().items())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"precision": "fp8"}, "^precision='fp8': choose one of 'fp32', 'bf16', 'fp16'"),
        ({"channels_last": "yes"}, "^channels_last='yes': pass True or False"),
        ({"weights": "absent.pt"}, "^weights='absent.pt': no such file"),
        ({"weights": "DEFAULT"}, "^weights='DEFAULT': named weights come with a torchvision"),
    ],
)
def test_bad_precision_layout_and_weights_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        replace(TINY, **change)


# --- the task gradient and the cost per h ---------------------------------------------------


def test_with_layout_keeps_what_is_not_given():
    lite = Lite(3, chunk_size=5, precision="fp16")
    assert with_precision(lite) is lite and with_precision(None) is None
    assert with_precision(lite, channels_last=True) == replace(lite, channels_last=True)
    full = with_precision(None, "bf16")
    assert full.is_full(10**6) and full.precision == "bf16"
    with pytest.raises(ValueError, match="^precision='half'"):
        with_precision(lite, "half")


def test_task_gradient_in_bf16_keeps_fewer_bytes_for_backward():
    learner, episode = conv4_learner(), float32_task()
    lite = Lite(4, generator=torch.Generator().manual_seed(0))
    fp32 = measure_task_gradient(learner, episode, lite, repeats=1)
    bf16 = measure_task_gradient(learner, episode, lite, repeats=1, precision="bf16")
    assert bf16.saved_bytes < 0.75 * fp32.saved_bytes


def test_task_gradient_runs_channels_last_and_leaves_the_learner_as_found():
    learner, episode = conv4_learner(), float32_task()
    kernel = learner.backbone[0].weight
    before = (kernel.data_ptr(), kernel.detach().clone())
    seen = FirstConvSeen(learner)
    cost = measure_task_gradient(
        learner, episode, Lite(4), repeats=1, precision="fp16", channels_last=True
    )
    assert cost.seconds > 0
    assert seen.calls and all(c == (torch.float16, True, True) for c in seen.calls), seen.calls
    assert kernel.data_ptr() == before[0] and torch.equal(kernel, before[1])
    assert kernel.is_contiguous() and all(p.grad is None for p in learner.parameters())


def test_cost_per_h_runs_every_row_in_the_asked_precision():
    learner, episode = conv4_learner(), float32_task()
    seen = FirstConvSeen(learner)
    rows = cost_vs_h(learner, episode, [2], repeats=1, precision="bf16")
    assert [r["method"] for r in rows] == ["lite", "full"]
    assert {dtype for dtype, _, _ in seen.calls} == {torch.bfloat16}
    fp32 = cost_vs_h(learner, episode, [2], repeats=1)
    assert rows[1]["saved_bytes"] < fp32[1]["saved_bytes"]  # full back-propagation too


# --- the planner and the command line --------------------------------------------------------


def kept_bytes(config: StepConfig) -> Measurement:
    """A stand-in measurement: bytes kept for backward grow with the images in the graph,
    half as many per image in bfloat16."""
    per_image = 2 if config.precision == "bf16" else 4
    h = config.n_support if config.full else config.h
    used = 2**20 * per_image * (h + (config.query_batch or config.n_query))
    return Measurement(config, used, 0, 0.1, "fake", step_bytes=used)


def test_the_planner_measures_in_the_asked_precision():
    config = StepConfig(n_support=200, n_query=40, h=1, query_batch=1)
    fp32 = plan_budget("400MiB", config, margin=0.0, measure=kept_bytes)
    bf16 = plan_budget("400MiB", replace(config, precision="bf16"), margin=0.0, measure=kept_bytes)
    assert all(p.config.precision == "bf16" for p in bf16.probes)
    assert bf16.config.h > fp32.config.h
    assert " in bf16: " in str(bf16) and " in fp32: " in str(fp32)


def test_the_command_line_passes_precision_layout_and_weights_to_the_step(
    tmp_path, monkeypatch, capsys
):
    torch.save(conv4(width=4).state_dict(), tmp_path / "conv4.pt")
    seen = []
    monkeypatch.setattr(measure_cli, "measure_training_step", lambda c: seen.append(c) or
                        Measurement(c, 1, 0, 0.1, "cpu"))  # fmt: skip
    arguments = ["measure", "--width", "4", "--image-size", "16", "--n-support", "6",
                 "--n-query", "4", "--way", "3", "--h", "2", "--device", "cpu",
                 "--precision", "bf16", "--channels-last",
                 "--weights", str(tmp_path / "conv4.pt")]  # fmt: skip
    assert measure_cli.main(arguments) == 0, capsys.readouterr().err
    (config,) = seen
    assert (config.precision, config.channels_last) == ("bf16", True)
    assert config.weights == str(tmp_path / "conv4.pt")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--precision", "fp8"], "argument --precision: invalid choice: 'fp8'"),
        (["--weights", "absent.pt"], "--weights='absent.pt': no such file"),
        (["--weights", "DEFAULT"], "--weights='DEFAULT': named weights come with"),
    ],
)
def test_bad_precision_and_weights_options_stop_before_measuring(
    options, message, monkeypatch, capsys
):
    monkeypatch.setattr(measure_cli, "measure_training_step", lambda c: pytest.fail("measured"))
    try:
        code = measure_cli.main(["measure", "--device", "cpu", *options])
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


# --- the floor of a LITE step -----------------------------------------------------------------


def test_the_floor_is_the_sum_of_its_parts(monkeypatch):
    """No-grad pass 1 s, a gradient pass over h + a full batch 2 s, over h + the last, smaller
    batch 0.5 s: 3 batches of 2, 2, 1 queries make 4.5 s of gradient passes."""
    times = iter([1.0, 2.0, 0.5])
    repeats_asked = []

    def fake_median(function, device, repeats):
        repeats_asked.append(repeats)
        function()
        return next(times)

    monkeypatch.setattr(floor_module, "median_seconds", fake_median)
    floor = measure_floor(replace(TINY, n_query=5), repeats=12)
    assert (floor.no_grad_s, floor.grad_pass_s, floor.query_batches) == (1.0, 2.0, 3)
    assert floor.grad_s == 4.5 and floor.floor_s == 5.5
    assert floor.no_grad_images_per_s == TINY.n_support / 1.0
    assert repeats_asked == [12, 12, 12]
    row = floor.as_dict()
    assert row["floor_s"] == 5.5 and row["no_grad_images_per_s"] == 6.0 and row["repeats"] == 12


def test_the_floor_runs_the_backbone_in_the_steps_precision_and_layout(monkeypatch):
    built = []

    def build(config):
        made = build_training_step(config)
        built.append(FirstConvSeen(made[0]))
        return made

    monkeypatch.setattr(floor_module, "build_training_step", build)
    floor = measure_floor(replace(TINY, precision="bf16", channels_last=True))
    assert floor.repeats == 10 and floor.floor_s == floor.no_grad_s + floor.grad_s
    assert floor.grad_s == pytest.approx(2 * floor.grad_pass_s)  # 4 queries in batches of 2
    calls = built[0].calls
    assert len(calls) > 10 and set(calls) == {(torch.bfloat16, True, True)}


@pytest.mark.parametrize(
    ("config", "repeats", "message"),
    [
        (replace(TINY, h=None), 10, "^config='conv4 16px N=6 full': the floor is that of a LITE"),
        (TINY, 3, "^repeats=3: pass at least 10"),
        ("conv4", 10, "^config='conv4': pass a litekit.measure.StepConfig"),
    ],
)
def test_bad_floor_arguments(config, repeats, message, monkeypatch):
    monkeypatch.setattr(floor_module, "build_training_step", lambda c: pytest.fail("built"))
    with pytest.raises(ValueError, match=message):
        measure_floor(config, repeats)


def test_floor_parts_cover_every_query_batch():
    """Whichever way the queries split into batches, every query is in one gradient pass."""
    for n_query, batch in itertools.product([1, 4, 5], [1, 2, 4, None]):
        config = replace(TINY, n_query=n_query, query_batch=batch)
        size = min(batch or n_query, n_query)
        assert measure_floor_batches(config) == -(-n_query // size)


def measure_floor_batches(config: StepConfig) -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(floor_module, "median_seconds", lambda f, d, r: 1.0)
        return measure_floor(config).query_batches
