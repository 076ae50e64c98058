"""Peak memory and time of one configured meta-training step (`measure_training_step`).

A `StepConfig` names a learner, a task size and a LITE set-up; the step is
`litekit.train.meta_train_step` with an optimiser, on a seeded random task.

- On CUDA, the peak is the allocator's over the steps (`litekit.measure.peak.cuda_peak`):
  it counts the tensors the step holds at once (weights, optimiser state, activations kept
  for back-propagation, one chunk of the no-grad pass).
- On the CPU, the peak is the peak resident set size (RSS) of a *fresh* Python process that
  builds the learner and one task and runs the steps: the whole process, Python and torch
  included, because that is what a machine's memory must hold. The resident size just
  before the timed steps is reported too (``rest_bytes``), and the step's own share is
  measured over the timed steps after a warm-up step (which makes one-time allocations:
  thread pools, kernel caches): their peak RSS minus the RSS just before them (see
  `litekit.measure.rss`). One process per configuration keeps one configuration's
  allocations out of another's peak. In-process CPU measurements (``fresh_process=False``)
  are quicker but approximate: memory the allocator kept from earlier work can hide part of
  a step.

Step time is the median over ``repeats`` steps after one warm-up step
(`litekit.measure.timing.median_seconds`: CUDA events on CUDA).

The step runs in the configured precision and memory layout (``precision``,
``channels_last``; `litekit.precision`): the backbone's passes under autocast, the learner's
convolution kernels and the images channels-last, and float16 with a gradient scaler, as
`litekit.train.fit` runs them.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

import torch

from litekit._checks import bad_argument, check_choice, check_int
from litekit.learners.build import (
    LEARNERS,
    OPTIMIZERS,
    backbone_from_name,
    check_backbone_name,
    check_norm,
    check_weights,
    learner_from_name,
    optimizer_from_name,
)
from litekit.measure.peak import cuda_peak
from litekit.measure.rss import current_rss, peak_rss, reset_peak_rss, trim_heap
from litekit.measure.timing import timed_repeats
from litekit.precision import check_precision, grad_scaler

#: What a memory budget can bound: the whole measured peak, or the step's own share of it
#: (the peak minus the memory in use before the step; see `Measurement`).
MEMORY_KINDS = ("peak", "step_share")
#: The smallest value of each integer field of `StepConfig` (the optional ones when set).
INT_MINIMUMS = {
    "image_size": 16,
    "n_support": 1,
    "way": 1,
    "n_query": 1,
    "h": 0,
    "query_batch": 1,
    "chunk_size": 1,
    "width": 1,
    "repeats": 1,
    "threads": 1,
}
_OPTIONAL = ("h", "query_batch", "threads")
#: ``torch.compile`` modes a measurement may run the backbone in (`StepConfig.compile`).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_device(value: object, *, argument: str = "device") -> str:
    """Return ``value`` if it names a CPU or CUDA device (``"cpu"``, ``"cuda"``,
    ``"cuda:1"``); ``argument`` is the name an error is reported under."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as error:
        raise bad_argument(argument, value, "pass 'cpu', 'cuda' or 'cuda:0'.") from error
    if device.type not in ("cpu", "cuda"):
        raise bad_argument(argument, value, "litekit.measure measures 'cpu' or 'cuda'.")
    return value


@dataclass(frozen=True)
class StepConfig:
    """One meta-training step to measure: a learner, a task size and a LITE set-up.

    Args:
        backbone: ``"conv4"`` or a torchvision model name (random weights, eval mode).
        learner: ``"protonets"``, ``"simple_cnaps"`` or ``"cnaps"``.
        image_size: side of the square images.
        n_support: N, support images in the task.
        way: classes in the task.
        n_query: query images in the task.
        h: support images back-propagated through; ``None`` (or h >= N) is full
            back-propagation.
        query_batch: query images per backward pass; ``None`` is the whole query set.
        chunk_size: images per call of the no-grad pass.
        width: channels of ``"conv4"`` (ignored for other backbones).
        norm: ``"model"`` keeps a torchvision model's own normalisation (BatchNorm, eval
            mode); ``"group"`` replaces it by GroupNorm (`litekit.learners.group_norm`), as
            for training a randomly initialised model from scratch; ``"batch"`` gives Conv-4
            BatchNorm (see `litekit.learners.backbone_from_name`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        optimizer: ``"adam"`` (its state is part of the peak) or ``"sgd"``.
        repeats: timed steps after one warm-up step.
        threads: torch CPU threads in the measuring process (``None``: torch's default).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` for the backbone's passes (fp16 steps
            with a gradient scaler); see `litekit.precision`.
        channels_last: the learner's convolution kernels and the images in channels-last
            memory layout.
        weights: pretrained backbone weights (a torchvision weights name, or a state-dict
            file; `litekit.learners.backbone_from_name`); None for random ones. Time and
            memory do not depend on the values, except through numbers such as denormals.
        compile: a ``torch.compile`` mode (``"default"``, ``"reduce-overhead"``,
            ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``) for the backbone, in the
            step and its floor; None runs it eagerly. An experiment for the benchmarks: the
            warm-up step pays the compilation, and only ProtoNets is measured (CNAPs' FiLM
            hooks change the backbone's forward per task).
    """

    backbone: str = "conv4"
    learner: str = "protonets"
    image_size: int = 64
    n_support: int = 50
    way: int = 5
    n_query: int = 50
    h: int | None = None
    query_batch: int | None = None
    chunk_size: int = 64
    width: int = 64
    norm: str = "model"
    device: str = "cpu"
    optimizer: str = "adam"
    repeats: int = 2
    threads: int | None = None
    precision: str = "fp32"
    channels_last: bool = False
    weights: str | None = None
    compile: str | None = None

    def __post_init__(self) -> None:
        check_backbone_name(self.backbone)
        check_choice("learner", self.learner, LEARNERS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_norm(self.backbone, self.norm)
        check_precision(self.precision)
        if not isinstance(self.channels_last, bool):
            raise bad_argument("channels_last", self.channels_last, "pass True or False.")
        check_weights(self.backbone, self.weights, norm=self.norm)
        if self.weights is not None:  # a path as text: the configuration travels as JSON
            object.__setattr__(self, "weights", str(self.weights))
        for name, minimum in INT_MINIMUMS.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            fix = "pass None for full back-propagation or h >= 0." if name == "h" else None
            check_int(name, value, minimum=minimum, fix=fix)
        if self.way > self.n_support:
            raise bad_argument(
                "way", self.way, f"every class needs a support image; use way <= {self.n_support}."
            )
        check_device(self.device)
        if self.compile is not None:
            check_choice("compile", self.compile, COMPILE_MODES)
            if self.learner != "protonets":
                raise bad_argument(
                    "compile",
                    self.compile,
                    "it is measured for learner='protonets' only; use that learner, or "
                    "compile=None.",
                )

    @property
    def full(self) -> bool:
        """True when every support image keeps its graph (no LITE)."""
        return self.h is None or self.h >= self.n_support

    def label(self) -> str:
        kind = "full" if self.full else f"LITE h={self.h}"
        layout = "" if self.precision == "fp32" else f" {self.precision}"
        layout += " channels-last" if self.channels_last else ""
        layout += f" compiled ({self.compile})" if self.compile else ""
        return f"{self.backbone} {self.image_size}px N={self.n_support} {kind}{layout}"


@dataclass(frozen=True)
class Measurement:
    """Peak memory (bytes) and median step time (seconds) of one `StepConfig`.

    ``peak_bytes`` is the whole peak (all steps, the warm-up included); ``step_bytes`` the
    step's own share, peak minus ``rest_bytes``. Where ``rest_bytes`` is read differs by
    device: on CUDA before the warm-up step, so the share includes the optimiser state that
    the warm-up creates (memory a training step needs); on the CPU after it, just before the
    timed steps, so one-time allocations (thread pools, kernel caches, and the optimiser
    state) stay out of the share. ``error`` says why a configuration could not run
    (``"out of memory"``, a crash); the numbers are then None. ``step_seconds_min`` and
    ``step_seconds_max`` are the fastest and slowest timed steps (the warm-up step is never
    timed): a wide range means a busy machine, not a slow step.
    """

    config: StepConfig
    peak_bytes: int | None
    rest_bytes: int | None
    step_seconds: float | None
    device_name: str
    error: str | None = None
    step_bytes: int | None = None
    step_seconds_min: float | None = None
    step_seconds_max: float | None = None

    def used(self, memory: str = "peak") -> int | None:
        """``peak_bytes`` (``memory="peak"``) or ``step_bytes`` (``memory="step_share"``)."""
        check_choice("memory", memory, MEMORY_KINDS)
        return self.peak_bytes if memory == "peak" else self.step_bytes

    def fits(self, budget_bytes: float, margin: float = 0.0, memory: str = "peak") -> bool:
        """Measured, and its peak (or step share) at most ``(1 - margin) · budget_bytes``."""
        used = self.used(memory)
        return used is not None and used <= (1 - margin) * budget_bytes

    def as_dict(self) -> dict:
        row = asdict(self.config)
        row.update(
            peak_bytes=self.peak_bytes,
            rest_bytes=self.rest_bytes,
            step_bytes=self.step_bytes,
            step_seconds=self.step_seconds,
            step_seconds_min=self.step_seconds_min,
            step_seconds_max=self.step_seconds_max,
            device_name=self.device_name,
            error=self.error,
        )
        return row


def build_training_step(config: StepConfig):
    """The learner, optimiser, task and Lite of ``config``, on its device (seeded).

    The caller's random state is left untouched; the optimiser's learning rate is 0, so
    every step is the same step. The Lite carries the precision and memory layout (a
    `Lite.full` one for full back-propagation outside fp32 and the default layout, else
    None), and the learner is channels-last (and its backbone compiled) when asked; an fp16
    step needs a gradient scaler (`litekit.precision.grad_scaler`).
    """
    from litekit import Episode, Lite

    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's generator untouched
        torch.manual_seed(0)
        backbone = backbone_from_name(
            config.backbone, width=config.width, norm=config.norm, weights=config.weights
        )
        learner = learner_from_name(config.learner, backbone, image_size=config.image_size)
    learner = learner.to(device)
    if config.channels_last:
        learner = learner.to(memory_format=torch.channels_last)
    if config.compile is not None:  # the parameters stay the learner's own
        # One static graph per batch shape (chunk, last chunk, h, query batch): few shapes,
        # and what CUDA graphs ("reduce-overhead") need.
        learner.backbone = torch.compile(learner.backbone, mode=config.compile, dynamic=False)
    optimizer = optimizer_from_name(config.optimizer, learner.parameters(), 0.0)
    g = torch.Generator().manual_seed(0)
    size = config.image_size
    episode = Episode(  # images stay on the host; chunks and batches move to the device
        support_images=torch.rand(config.n_support, 3, size, size, generator=g),
        support_labels=torch.arange(config.n_support) % config.way,
        query_images=torch.rand(config.n_query, 3, size, size, generator=g),
        query_labels=torch.arange(config.n_query) % config.way,
        class_ids=torch.arange(config.way),
    )
    if device.type == "cuda":
        episode = episode.pin_memory()
    layout = {"precision": config.precision, "channels_last": config.channels_last}
    lite = None
    if not config.full:
        lite = Lite(config.h, chunk_size=config.chunk_size, generator=g, **layout)
    elif config.precision != "fp32" or config.channels_last:
        lite = Lite.full(config.chunk_size, **layout)
    return learner, optimizer, episode, lite


def _measure_in_process(config: StepConfig) -> Measurement:
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
    try:
        return _measure_built(config, device, name, *build_training_step(config))
    except torch.OutOfMemoryError:
        return Measurement(config, None, None, None, name, "out of memory")
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _measure_built(config, device, name, learner, optimizer, episode, lite) -> Measurement:
    from litekit.train import meta_train_step

    scaler = grad_scaler(config.precision, device)

    def step() -> None:
        meta_train_step(
            learner, episode, optimizer, lite=lite, query_batch=config.query_batch, scaler=scaler
        )

    if device.type == "cuda":  # the warm-up counts: the optimiser's state is created there
        with cuda_peak(device) as reading:
            timing = timed_repeats(step, device, config.repeats)
        return Measurement(
            config, reading.peak_bytes, reading.rest_bytes, timing.median, name,
            step_bytes=reading.above_rest, step_seconds_min=timing.low,
            step_seconds_max=timing.high,
        )  # fmt: skip
    # CPU: the warm-up step also makes one-time allocations (thread pools, kernel caches);
    # the step's share is measured over the timed steps, from a fresh peak.
    gc.collect()
    reset_peak_rss()
    step()
    warm_peak = peak_rss()
    gc.collect()
    trim_heap()
    resettable = reset_peak_rss()
    rest = current_rss()
    timing = timed_repeats(step, device, config.repeats, warm_up=False)
    timed_peak = peak_rss()
    peak = max(warm_peak, timed_peak)
    share = timed_peak - rest if resettable else peak - rest
    return Measurement(
        config, int(peak), int(rest), timing.median, name, step_bytes=int(share),
        step_seconds_min=timing.low, step_seconds_max=timing.high,
    )  # fmt: skip


def measure_training_step(config: StepConfig, *, fresh_process: bool | None = None) -> Measurement:
    """Peak memory and step time of one ``meta_train_step`` under ``config``.

    ``fresh_process`` (default: True on the CPU, False on CUDA) runs the measurement in a
    new Python process (``python -m litekit.measure child``): on the CPU the peak RSS is per
    process, so that is the only way to measure one configuration alone. A process that dies
    (killed for memory, say) gives a `Measurement` with ``error`` set.
    """
    if not isinstance(config, StepConfig):
        raise bad_argument("config", config, "pass a litekit.measure.StepConfig.")
    if fresh_process is None:
        fresh_process = torch.device(config.device).type == "cpu"
    if not fresh_process:
        return _measure_in_process(config)
    environment = dict(os.environ)
    if config.threads is not None:
        environment["OMP_NUM_THREADS"] = str(config.threads)
    out = subprocess.run(
        [sys.executable, "-m", "litekit.measure", "child", json.dumps(asdict(config))],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    name = "cpu" if torch.device(config.device).type == "cpu" else config.device
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        if out.returncode < 0:
            why = f"killed by signal {-out.returncode} (out of memory?)"
        return Measurement(config, None, None, None, name, why)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    return Measurement(
        config, row["peak_bytes"], row["rest_bytes"], row["step_seconds"], row["device_name"],
        row["error"], row["step_bytes"], row.get("step_seconds_min"),
        row.get("step_seconds_max"),
    )  # fmt: skip
