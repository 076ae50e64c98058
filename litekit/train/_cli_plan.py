"""``python -m litekit.train --memory-budget 8GiB``: plan LITE for the budget, then train.

The trainer's model and task size become a `litekit.measure.StepConfig`, and
`litekit.measure.plan_budget` finds, by measurement on this device, the largest h, query
batch and chunk size that fit (those given on the command line are kept, not searched). The
choice is printed and recorded with the run's options, so a resumed run keeps the plan its
checkpoint was made with instead of measuring again (measurements vary a little from run to
run, and another h would be another run).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from litekit import checkpoint as checkpoints
from litekit._checks import bad_argument
from litekit.measure.planner import SEARCH_FIELDS, NothingFits, check_budget, format_bytes
from litekit.measure.training_step import StepConfig

DEFAULT_CHUNK_SIZE = 64
_PLANNED = ("h", "query_batch", "chunk_size")


def check_memory_budget(args: argparse.Namespace) -> None:
    """``--memory-budget`` reads as bytes and leaves something to plan for a task of one
    size, in one process; checked with the other options, before anything runs. Resolves
    ``--chunk-size``'s default when there is no budget."""
    if args.memory_budget is None:
        if args.chunk_size is None:
            args.chunk_size = DEFAULT_CHUNK_SIZE
        return
    check_budget(args.memory_budget, "--memory-budget")
    if args.variable:
        raise bad_argument(
            "--memory-budget",
            args.memory_budget,
            "--variable tasks change size from task to task; plan the largest one with "
            "python -m litekit.measure plan --n-support MAX ... and pass its --h, "
            "--query-batch and --chunk-size.",
        )
    if all(getattr(args, name) is not None for name in _PLANNED):
        raise bad_argument(
            "--memory-budget",
            args.memory_budget,
            "--h, --query-batch and --chunk-size are all given, so there is nothing to plan; "
            "leave out --memory-budget, or one of them.",
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise bad_argument(
            "--memory-budget",
            args.memory_budget,
            "plan in one process first (python -m litekit.train --memory-budget ... --steps 1, "
            "or python -m litekit.measure plan ... --print-train-command), then start "
            "torchrun with the --h, --query-batch and --chunk-size it chose.",
        )


def step_config(args: argparse.Namespace, device: torch.device) -> StepConfig:
    """The training step the options describe, for measuring."""
    return StepConfig(
        backbone=args.backbone, learner=args.learner, image_size=args.image_size,
        n_support=args.n_support, way=args.way, n_query=args.n_query, h=args.h,
        query_batch=args.query_batch,
        chunk_size=DEFAULT_CHUNK_SIZE if args.chunk_size is None else args.chunk_size,
        width=args.width, norm=args.norm, device=str(device), optimizer=args.optimizer,
        threads=args.threads, precision=args.precision, channels_last=args.channels_last,
        weights=None if args.weights is None else str(args.weights),
    )  # fmt: skip


def _from_checkpoint(args: argparse.Namespace) -> dict | None:
    """The planned options a resumable checkpoint was made with, if it holds them."""
    if args.checkpoint is None or args.no_resume or not Path(args.checkpoint).is_file():
        return None
    try:
        saved = checkpoints.read(args.checkpoint)
    except checkpoints.CheckpointError:
        return None  # reported, with its fix, when the files are checked
    metadata = saved.get("metadata")
    options = metadata.get("options") if isinstance(metadata, dict) else None
    if not isinstance(options, dict) or options.get("memory_budget") != args.memory_budget:
        return None
    return {name: options.get(name) for name in _PLANNED}


def resolve_memory_budget(
    args: argparse.Namespace, device: torch.device, *, plan=None, quiet: bool = False
) -> None:
    """Set ``args.h``, ``args.query_batch`` and ``args.chunk_size`` for ``--memory-budget``:
    the checkpoint's when resuming one planned with the same budget, else a new plan. Says
    what it chose on stderr. ``plan`` replaces `litekit.measure.plan_budget` (tests)."""
    if args.memory_budget is None:
        return
    kept = _from_checkpoint(args)
    if kept is not None:
        for name, value in kept.items():
            setattr(args, name, value)
        if not quiet:
            print(
                f"--memory-budget {args.memory_budget}: resuming {args.checkpoint} with its "
                f"plan, h={args.h}, query batch {args.query_batch}, chunk size "
                f"{args.chunk_size}",
                file=sys.stderr,
            )
        return
    if plan is None:
        from litekit.measure.planner import plan_budget as plan
    search = [name for name in SEARCH_FIELDS if getattr(args, name) is None]
    config = step_config(args, device)
    if not quiet:
        print(
            f"--memory-budget {args.memory_budget}: measuring {config.label()} ...", file=sys.stderr
        )
    try:
        chosen = plan(args.memory_budget, config, search=search)
    except NothingFits as nothing:
        raise bad_argument(
            "--memory-budget",
            args.memory_budget,
            f"even {nothing.smallest()} needs {nothing.needs()} (limit "
            f"{format_bytes(nothing.limit_bytes)} with a {nothing.margin:.0%} margin); raise "
            "--memory-budget, or lower --image-size, --shot or --query.",
        ) from None
    c = chosen.config
    args.h = None if c.full else c.h
    args.query_batch, args.chunk_size = c.query_batch, c.chunk_size
    if not quiet:
        print(f"--memory-budget {args.memory_budget}: chose {chosen}", file=sys.stderr)
