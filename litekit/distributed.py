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

Start the processes with ``torchrun`` (it sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT);
`init_from_environment` then joins the group, with NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
from torch import nn


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


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """All-reduce the ``.grad`` of every parameter to its mean over ranks, in one call.

    A parameter without a gradient on some rank (no path from that rank's loss) counts as
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
