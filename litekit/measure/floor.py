"""The floor of a LITE training step: the backbone passes no LITE step can avoid.

A LITE step over N support images, with h of them back-propagated and the query set in
batches of B, runs at least

- one no-grad forward pass over the N support images, in chunks (``no_grad_s``);
- per query batch, one forward and one backward pass over the h sampled support images and
  the batch, in one encoder call (``grad_pass_s`` for one batch of B; ``grad_s`` for all
  ⌈M/B⌉ batches, a last, smaller batch timed at its own size).

Everything else a step does (a set encoder's passes, prototypes, the loss, the optimiser,
moving the batch, Python) comes on top, so a step takes at least ``floor_s = no_grad_s +
grad_s``, and ``step / floor`` is what the rest costs. `measure_floor` times these passes
of the learner's backbone (`Learner.embed`) in the step's precision and memory layout, on
the task and learner `build_training_step` makes, each part the median of ``repeats`` calls
after a warm-up call (`median_seconds`: CUDA events on CUDA). Time it in the same process
as the step, after the step: the two then share the device's state (clocks, cuDNN's choice
of kernels, the allocator's cache), and a ratio compares like with like.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from litekit._checks import bad_argument, check_int
from litekit.lite import embed_without_grad, run_encoder
from litekit.measure.timing import median_seconds
from litekit.measure.training_step import StepConfig, build_training_step

#: The fewest calls each part of the floor is timed over (a median of fewer is noise).
MIN_FLOOR_REPEATS = 10


@dataclass(frozen=True)
class StepFloor:
    """The parts of a LITE step's floor, in seconds (see the module docstring)."""

    n_support: int
    no_grad_s: float
    grad_pass_s: float
    query_batches: int
    grad_s: float
    repeats: int

    @property
    def floor_s(self) -> float:
        """Seconds of the floor, the no-grad pass plus every gradient pass."""
        return self.no_grad_s + self.grad_s

    @property
    def no_grad_images_per_s(self) -> float:
        """Support images the no-grad pass embeds per second."""
        return self.n_support / self.no_grad_s

    def as_dict(self) -> dict:
        row = asdict(self)
        row.update(floor_s=self.floor_s, no_grad_images_per_s=self.no_grad_images_per_s)
        return row


def measure_floor(config: StepConfig, repeats: int = MIN_FLOOR_REPEATS) -> StepFloor:
    """Time the floor of ``config``'s LITE step, in this process (at least 10 repeats)."""
    if not isinstance(config, StepConfig):
        raise bad_argument("config", config, "pass a litekit.measure.StepConfig.")
    if config.full:
        raise bad_argument(
            "config",
            config.label(),
            "the floor is that of a LITE step: pass h < n_support (full back-propagation "
            "has no no-grad pass).",
        )
    repeats = check_int(
        "repeats", repeats, minimum=MIN_FLOOR_REPEATS,
        fix=f"pass at least {MIN_FLOOR_REPEATS}: a median of fewer calls is noise.",
    )  # fmt: skip
    learner, _, episode, _ = build_training_step(config)
    device = learner.device
    layout = {"precision": config.precision, "channels_last": config.channels_last}
    support, queries = episode.support_images, episode.query_images
    sampled = support[: config.h]  # which h rows does not change the time
    batch = min(config.query_batch or config.n_query, config.n_query)

    def no_grad_pass() -> None:
        embed_without_grad(learner.embed, support, config.chunk_size, device, **layout)

    def grad_pass(size: int):
        def run() -> None:
            learner.zero_grad(set_to_none=True)
            parts = [sampled, queries[:size]]
            images = torch.cat([p.to(device, non_blocking=True) for p in parts])
            run_encoder(learner.embed, images, device, **layout).sum().backward()

        return run

    no_grad_s = median_seconds(no_grad_pass, device, repeats)
    grad_pass_s = median_seconds(grad_pass(batch), device, repeats)
    full_batches, last = divmod(config.n_query, batch)
    grad_s = full_batches * grad_pass_s
    if last:
        grad_s += median_seconds(grad_pass(last), device, repeats)
    learner.zero_grad(set_to_none=True)
    return StepFloor(
        n_support=config.n_support,
        no_grad_s=no_grad_s,
        grad_pass_s=grad_pass_s,
        query_batches=math.ceil(config.n_query / batch),
        grad_s=grad_s,
        repeats=repeats,
    )
