"""Cost to personalise: what adapting to one new task costs each learner at test time.

A meta-learner personalises with one forward pass over the support set; a fine-tuner with
many forward and backward passes. `personalisation_cost` measures, for one task and one
learner, the whole call ``learner(support, labels, query)``:

- FLOPs, counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add,
  forward and backward alike; matrix products and convolutions, which dominate);
- wall time (median over ``repeats``);
- peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the call, above the
  allocation before it; on other devices the peak of the bytes held at once by the tensors
  the call creates (`litekit.measure.CreatedTensorMemory`: every storage an operator returns,
  counted until it is freed). The CPU's resident set is no substitute inside a long-lived
  process: glibc keeps freed memory resident and hands it out again, so a call that follows
  bigger work shows little or no rise (measured: fine-tuning a whole backbone "used" less
  than one ProtoNets forward pass that ran before it);
- parameter counts: total, trainable (``requires_grad``, what meta-training updates) and
  tuned per task (what the learner fits by gradient descent at test time: zero for a
  meta-learner).

``precision`` and ``channels_last`` measure the call in that precision and memory layout
(`litekit.precision`): a meta-learner's through the `Lite` settings of its pass, a
`FineTuner` through its own fields, set for the measurement and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from litekit._checks import check_int
from litekit.episodes import Episode
from litekit.learners.film import film_channels
from litekit.learners.finetuner import FineTuner
from litekit.lite import Lite, with_precision
from litekit.measure.peak import cuda_peak
from litekit.measure.tensors import CreatedTensorMemory
from litekit.measure.timing import timed_repeats
from litekit.precision import channels_last_weights, check_precision


@dataclass(frozen=True)
class PersonalisationCost:
    """The cost of one ``learner(support, labels, query)`` call; see the module docstring."""

    learner: str
    flops: int
    seconds: float
    peak_memory_mib: float
    memory_measure: str
    parameters: int
    trainable_parameters: int
    tuned_per_task: int
    precision: str = "fp32"
    channels_last: bool = False
    seconds_min: float | None = None  # the fastest of the timed calls (``seconds``: median)
    seconds_max: float | None = None  # and the slowest

    def as_dict(self) -> dict:
        return asdict(self)


def count_flops(function, *args, **kwargs) -> tuple[object, int]:
    """Run ``function(*args, **kwargs)`` and return its result and the FLOPs it took."""
    with FlopCounterMode(display=False) as counter:
        result = function(*args, **kwargs)
    return result, int(counter.get_total_flops())


def peak_memory_of(function, device: torch.device) -> tuple[object, float, str]:
    """Run ``function()`` and return its result, its peak memory in MiB, and how it was read.

    On CUDA: the allocator's peak during the call above its allocation before it
    (`litekit.measure.cuda_peak`). Elsewhere: the peak bytes of the tensors the call creates
    (`litekit.measure.CreatedTensorMemory`).
    """
    if device.type == "cuda":
        with cuda_peak(device) as reading:
            result = function()
        how = "cuda max_memory_allocated above the resting allocation"
        return result, reading.above_rest / 2**20, how
    with CreatedTensorMemory() as created:
        result = function()
    return result, created.peak / 2**20, "peak bytes of the tensors the call creates"


def _device_of(learner: nn.Module) -> torch.device:
    return next(learner.parameters()).device


def tuned_per_task(learner: nn.Module, episode: Episode) -> int:
    """Parameters a learner fits by gradient descent on each task (0 for meta-learners)."""
    if not isinstance(learner, FineTuner):
        return 0
    with torch.no_grad():
        dim = learner.backbone(episode.support_images[:1].to(learner.device)).flatten(1).shape[1]
    backbone = dict(learner.backbone.named_parameters())
    tuned = sum(backbone[n].numel() for n in learner.tuned_names)
    film = sum(2 * c for c in film_channels(learner.backbone, learner.film_layers))
    return tuned + film + dim * episode.way + episode.way


@contextmanager
def _finetuner_layout(learner: nn.Module, precision: str, channels_last: bool) -> Iterator[None]:
    """A `FineTuner`'s ``precision`` and ``channels_last`` set for the block, then restored
    (any other learner takes them from its `Lite`)."""
    if not isinstance(learner, FineTuner):
        yield
        return
    kept = (learner.precision, learner.channels_last)
    learner.precision, learner.channels_last = precision, channels_last
    try:
        yield
    finally:
        learner.precision, learner.channels_last = kept


def personalisation_cost(
    learner: nn.Module,
    episode: Episode,
    *,
    name: str | None = None,
    lite: Lite | None = None,
    repeats: int = 3,
    precision: str | None = None,
    channels_last: bool | None = None,
) -> PersonalisationCost:
    """Measure one task's cost to personalise (and classify its queries) for ``learner``.

    ``precision`` and ``channels_last`` (None: the learner's own, a `FineTuner`'s fields or
    ``lite``'s settings) set the precision and memory layout of the call's backbone passes;
    the learner's convolution kernels are channels-last for the measurement only.
    """
    repeats = check_int("repeats", repeats, minimum=1)
    if precision is not None:
        check_precision(precision)
    device = _device_of(learner)
    lite = lite if lite is not None else Lite(0, chunk_size=64)
    if isinstance(learner, FineTuner):
        precision = learner.precision if precision is None else precision
        channels_last = learner.channels_last if channels_last is None else bool(channels_last)
    else:
        lite = with_precision(lite, precision, channels_last)
        precision, channels_last = lite.precision, lite.channels_last
    learner.eval()

    @torch.no_grad()
    def call():
        return learner(
            episode.support_images, episode.support_labels, episode.query_images, lite=lite
        )

    with (
        _finetuner_layout(learner, precision, channels_last),
        channels_last_weights(learner, channels_last),
    ):
        _, flops = count_flops(call)
        _, peak, how = peak_memory_of(call, device)
        timing = timed_repeats(call, device, repeats)
    return PersonalisationCost(
        learner=name or type(learner).__name__,
        flops=flops,
        seconds=timing.median,
        seconds_min=timing.low,
        seconds_max=timing.high,
        peak_memory_mib=peak,
        memory_measure=how,
        parameters=sum(p.numel() for p in learner.parameters()),
        trainable_parameters=sum(p.numel() for p in learner.parameters() if p.requires_grad),
        tuned_per_task=tuned_per_task(learner, episode),
        precision=precision,
        channels_last=channels_last,
    )
