"""Scale-out with torch.distributed: tasks sharded over processes, gradients averaged.

Data parallelism over tasks. A meta-training step on T tasks is split over W processes
(ranks): rank r meta-trains on tasks r, r + W, r + 2W, ... of the same seeded global list,
accumulates the mean gradient of its own tasks, and the ranks average their gradients with
one all-reduce before the optimiser step. With T divisible by W every rank holds T/W tasks,
so the average of the ranks' means is the mean over all T tasks: the same gradient as one
process stepping on all T tasks (the 2-process gloo test checks it).

This is what DistributedDataParallel does for an ordinary model. Our training step calls the
learner's two halves (`cache_support`, `task_logits`) and back-propagates once per query
batch, outside ``forward``, so the reduction is done here, explicitly, once per step: a
learner wrapped in DDP is unwrapped and reduced the same way.

Why not let DDP reduce? DistributedDataParallel all-reduces gradients from autograd hooks
that it arms in its own ``forward``. A LITE step never calls that forward: it runs one
no-grad pass over the support set and then one backward per query batch (gradient
accumulation), several tasks per step. Reducing in DDP's hooks would mean one all-reduce per
backward (or ``no_sync`` bookkeeping) and would tie the step to DDP's forward. One explicit
all-reduce after the last backward of the step is simpler and exact, and it is the same
with or without the wrapper. (DDP's hooks stay idle when its forward is not called, so a
wrapped learner trains correctly here.)

Start the processes with ``torchrun`` (it sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT);
`init_from_environment` then joins the group, with NCCL on GPUs and gloo on CPUs.

Collective checks. Under torchrun every rank runs the same program; if one rank stopped on
an error while the others waited in a collective, the run would hang.
`same_outcome_on_every_rank` runs a check (on every rank, or on rank 0 only for files that
only rank 0 reads) and shares the outcome, so that every rank raises the same error, or none
does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from litekit._checks import bad_argument, check_int
from litekit._deprecated import old_names, warn_deprecated

T = TypeVar("T")


class CollectiveError(ValueError):
    """A checked error that every rank raises together (from `same_outcome_on_every_rank`),
    so the process group can be closed cleanly: no rank is left waiting in a collective."""


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_environment(device: str | None = None) -> tuple[int, int]:
    """Join the process group torchrun describes in the environment; no-op without one.

    Returns (rank, world size). The backend is NCCL when ``device`` is CUDA, gloo otherwise;
    with CUDA each process takes the GPU of its LOCAL_RANK.
    """
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return 0, 1
    if not dist.is_initialized():
        cuda = device is not None and str(device).startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return rank_and_world()


def leave_process_group(clean: bool) -> None:
    """Close the process group `init_from_environment` joined (no-op without one). ``clean``:
    every rank got here, so wait for all of them before any tears the group down (gloo
    needs it); after an error on one rank only, close without waiting."""
    if not dist.is_available() or not dist.is_initialized():
        return
    if clean and is_distributed():
        dist.barrier()
    dist.destroy_process_group()


def shard(
    items: Sequence[int] | range, rank: int | None = None, world: int | None = None
) -> list[int]:
    """This rank's share of a global list: items rank, rank + W, rank + 2W, ..."""
    if rank is None or world is None:
        rank, world = rank_and_world()
    return list(items)[rank::world]


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel (or the module itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """All-reduce the ``.grad`` of every parameter to its mean over ranks, in one call.

    A parameter without a gradient on some rank (that rank's loss does not reach it) counts as
    zeros there, so every rank takes part in the same single reduction.
    """
    if not is_distributed():
        return
    params = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        size = p.numel()
        p.grad = flat[offset : offset + size].view_as(p).clone()
        offset += size


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (what DDP does when it wraps)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def on_any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank when ``flag`` is True on any rank (one tiny all-reduce on
    ``device``, the learner's: NCCL reduces on the GPU); ``flag`` itself in one process."""
    if not is_distributed():
        return flag
    reduced = torch.tensor([float(flag)], device=device)
    dist.all_reduce(reduced, op=dist.ReduceOp.MAX)
    return bool(reduced.item())


def gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order, on every rank; [value] alone."""
    if not is_distributed():
        return [value]
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def same_outcome_on_every_rank(check: Callable[[], T], *, rank_zero_only: bool = False) -> T:
    """Run ``check`` and make every rank share its outcome: its value or its ValueError.

    ``rank_zero_only=False``: every rank runs ``check``; if any raises ValueError, every rank
    raises it as a `CollectiveError` (the lowest failing rank's message, naming that rank).
    Each rank gets its own value. ``rank_zero_only=True``: only rank 0 runs ``check`` (for
    files only rank 0 reads or writes), and every rank gets rank 0's value or raises its
    error. Outside a process group it is ``check()``.
    """
    if not is_distributed():
        return check()
    rank = dist.get_rank()
    value, error = None, None
    if rank == 0 or not rank_zero_only:
        try:
            value = check()
        except ValueError as caught:
            error = str(caught)
    if rank_zero_only:
        shared = [(value, error)]
        dist.broadcast_object_list(shared, src=0)
        value, error = shared[0]
        if error is not None:
            raise CollectiveError(error)
        return value
    errors = gather_objects(error)
    for failed, message in enumerate(errors):
        if message is not None:
            raise CollectiveError(message if failed == rank else f"{message} (on rank {failed})")
    return value


# --- one meta-training step over several processes ------------------------------------------


@dataclass(frozen=True)
class TaskShare:
    """This process's part of one step's T tasks, and the weight that makes the update exact.

    Each of the W processes weights its tasks by W/T; `finish_step` averages the gradients over
    the processes, so every process gets (1/W) Σ_r (W/T) Σ_{t on r} g_t = (1/T) Σ_t g_t: the
    mean over all T tasks, as one process stepping on all of them, whether or not W divides T.
    In one process W = 1 and the weight is 1/T.
    """

    mine: int
    total: int
    world: int

    @property
    def weight(self) -> float:
        """The factor on each of this process's task gradients: W/T."""
        return self.world / self.total


def task_share(mine: int, total_tasks: int | None) -> TaskShare:
    """Check the step's task count over all processes and return this process's share.

    ``total_tasks`` defaults to ``mine`` times the world size (equal shares).
    """
    _, world = rank_and_world()
    total = mine * world if total_tasks is None else total_tasks
    total = check_int(
        "total_tasks",
        total,
        minimum=mine,
        fix=f"this process holds {mine} task(s); pass the step's task count over all "
        "processes (at least that).",
    )
    if not is_distributed() and total != mine:
        raise bad_argument(
            "total_tasks",
            total_tasks,
            f"one process holds all {mine} task(s) of the step; pass total_tasks={mine} or "
            "leave it out.",
        )
    return TaskShare(mine, total, world)


@dataclass
class StepSums:
    """One step's sums over its tasks: the one record of them, from the first task to
    `litekit.train.StepResult`.

    The training step adds each task as it runs (`add`, or ``skipped += 1``, or `fail`);
    `finish_step` returns the sums over every process; `litekit.train.StepResult.of` turns
    them into means.

    Attributes:
        loss_sum, accuracy_sum: over the tasks that counted.
        counted: tasks whose gradient is in the step.
        skipped: tasks left out for a non-finite loss (``on_nonfinite="skip"``).
        failed: tasks not run because one failed (that task and those after it).
        failure: what failed, on this process (not summed); None when nothing did.
    """

    loss_sum: float = 0.0
    accuracy_sum: float = 0.0
    counted: int = 0
    skipped: int = 0
    failed: int = 0
    failure: str | None = None

    def add(self, loss: float, accuracy: float) -> None:
        """One task that counts."""
        self.loss_sum += loss
        self.accuracy_sum += accuracy
        self.counted += 1

    def fail(self, failure: str, not_run: int) -> None:
        """The step stops: ``not_run`` tasks (the failed one included) are not in it."""
        self.failure, self.failed = failure, not_run


def finish_step(
    parameters: Iterable[nn.Parameter],
    share: TaskShare,
    sums: StepSums,
    *old_counts: float,
) -> StepSums:
    """The one collective seam of a step: sum the tasks' statistics and average the gradients.

    Returns ``sums`` summed over every process (``failure`` stays this process's). In one
    process it only checks the counts and rescales for skipped tasks. Under torchrun the
    statistics are summed over processes with one all-reduce (and the task counts checked
    against ``share.total`` before anything is applied), then the gradients averaged with
    another (`_average_gradients`). When tasks were skipped (a non-finite loss), the gradient
    is rescaled by T / (T - skipped) so that it stays the mean over the tasks that counted.
    When a task failed on any process, the gradients are left alone: the caller raises (the
    same error on every process) and applies nothing.

    The old form ``finish_step(parameters, share, loss_sum, accuracy_sum, counted, skipped,
    failed)`` still works, with a warning.
    """
    if old_counts:
        warn_deprecated(
            "finish_step(parameters, share, loss_sum, accuracy_sum, counted, skipped, failed)",
            "pass a StepSums: finish_step(parameters, share, StepSums(...))",
        )
        sums = StepSums(sums, *old_counts)  # type: ignore[arg-type]
    parameters = [p for p in parameters if p.requires_grad]
    numbers = [sums.loss_sum, sums.accuracy_sum, sums.counted, sums.skipped, sums.failed]
    if is_distributed():
        device = parameters[0].device if parameters else torch.device("cpu")
        reduced = torch.tensor(numbers, dtype=torch.float64, device=device)
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        numbers = reduced.tolist()
    loss_sum, accuracy_sum, counted, skipped, failed = numbers
    total = StepSums(
        loss_sum, accuracy_sum, round(counted), round(skipped), round(failed), sums.failure
    )
    held = total.counted + total.skipped + total.failed
    if held != share.total:
        for p in parameters:
            p.grad = None  # nothing of this step is applied
        raise bad_argument(
            "total_tasks",
            share.total,
            f"the processes hold {held} tasks in all; pass that number, or give every "
            "process the same number of tasks and leave total_tasks out.",
        )
    if total.failed:
        return total
    _average_gradients(parameters)
    if total.skipped and total.counted:
        with torch.no_grad():
            for p in parameters:
                if p.grad is not None:
                    p.grad.mul_(share.total / total.counted)
    return total


__getattr__ = old_names(
    __name__,
    {
        "StepTotals": ("use StepSums", StepSums),
        "average_gradients": ("finish_step averages the gradients", _average_gradients),
    },
)
