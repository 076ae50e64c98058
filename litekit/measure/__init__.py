"""Measuring LITE: time and memory of training steps, and a planner for memory budgets.

One module per idea:

- `timing`: `timed_repeats` (median and range of repeated calls after a warm-up call) and
  `median_seconds`, the one timing helper (CUDA events around each call on CUDA, the wall
  clock elsewhere);
- `peak`: `cuda_peak`, the one reading of the CUDA allocator's peak above its resting
  allocation;
- `tensors`: memory counted from tensors, on any device: `SavedTensorMemory` (bytes autograd
  keeps for backward) and `CreatedTensorMemory` (bytes of the tensors a call creates);
- `rss`: the resident memory of this process (CPU measurements);
- `task_gradient`: `measure_task_gradient` and `cost_vs_h`, one task's LITE gradient on the
  caller's learner, in this process;
- `training_step`: `measure_training_step`, a configured training step (`StepConfig`, in
  any precision and memory layout) with its optimiser, in a fresh process on the CPU;
- `growth`: `activation_bytes` (what full back-propagation, or LITE, keeps for backward on
  one task) and `memory_growth` (that against N and against the image size), with
  `linear_fit`;
- `floor`: `measure_floor`, the backbone passes no LITE step can avoid (`StepFloor`: the
  no-grad pass, the gradient passes, the no-grad throughput), timed in this process;
- `planner`: `plan_budget`, the largest LITE set-up that fits a memory budget, by
  measurement; ``python -m litekit.measure plan --budget 8GiB ...`` (`cli`);
- `reference`: measurements made on an H200, read back (`load_reference`).

The cost to personalise (FLOPs, time, memory of adapting to one task) is `litekit.cost`.
"""

from litekit.measure.floor import MIN_FLOOR_REPEATS, StepFloor, measure_floor
from litekit.measure.growth import LinearFit, activation_bytes, linear_fit, memory_growth
from litekit.measure.peak import PeakReading, cuda_peak
from litekit.measure.planner import (
    MIN_BUDGET_BYTES,
    SEARCH_FIELDS,
    NothingFits,
    Plan,
    format_bytes,
    parse_bytes,
    plan_budget,
)
from litekit.measure.reference import load_reference, reference_curve
from litekit.measure.task_gradient import (
    TaskGradientCost,
    cost_vs_h,
    measure_task_gradient,
)
from litekit.measure.tensors import CreatedTensorMemory, SavedTensorMemory
from litekit.measure.timing import Timing, median_seconds, seconds_of, timed_repeats
from litekit.measure.training_step import (
    MEMORY_KINDS,
    Measurement,
    StepConfig,
    build_training_step,
    measure_training_step,
)

__all__ = [
    "MEMORY_KINDS",
    "MIN_BUDGET_BYTES",
    "MIN_FLOOR_REPEATS",
    "SEARCH_FIELDS",
    "CreatedTensorMemory",
    "LinearFit",
    "Measurement",
    "NothingFits",
    "PeakReading",
    "Plan",
    "SavedTensorMemory",
    "StepConfig",
    "StepFloor",
    "TaskGradientCost",
    "Timing",
    "activation_bytes",
    "build_training_step",
    "cost_vs_h",
    "cuda_peak",
    "format_bytes",
    "linear_fit",
    "load_reference",
    "measure_floor",
    "measure_task_gradient",
    "measure_training_step",
    "median_seconds",
    "memory_growth",
    "parse_bytes",
    "plan_budget",
    "reference_curve",
    "seconds_of",
    "timed_repeats",
]
