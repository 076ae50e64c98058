"""The checks of ``python -m litekit.train``'s options that depend on each other or on
the machine: the task size, the embedded dataset, ``--variable`` bounds, the data sources,
the processes under torchrun, and the device.

They run after every option's own value was checked (`litekit._cli_types`) and before
anything is built; each error reads ``--option=value: what to do``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from litekit import _task_size
from litekit._checks import bad_argument
from litekit._cli_types import option_name
from litekit.data.procedural import MAX_SIZE, MIN_SIZE
from litekit.learners.build import check_norm, check_weights, default_norm
from litekit.precision import check_precision_on
from litekit.train._cli_metadataset import check_metadataset_options, check_without_metadataset
from litekit.train._cli_orbit import check_orbit_options
from litekit.train._cli_plan import check_memory_budget
from litekit.train.schedule import Schedule

EMBEDDED_CODES = 2048  # classes of the embedded dataset: training and held-out ranges share them
DEFAULT_SHOT, DEFAULT_QUERY = 5, 10


def resolve_task_size(args: argparse.Namespace) -> None:
    """``--shot``/``--query`` (per class) from themselves or from ``--n-support``/``--n-query``
    (in all), which must agree with them and be multiples of ``--way``; the totals are set
    too. ``--variable`` tasks take their sizes from ``--max-support`` and ``--max-query``."""
    if args.variable:
        for option in ("n_support", "n_query"):
            if getattr(args, option) is not None:
                raise bad_argument(
                    option_name(option),
                    getattr(args, option),
                    "--variable tasks vary in size; bound them with --max-support and "
                    "--max-query instead.",
                )
    args.shot, args.n_support = _task_size.resolve(
        _task_size.SUPPORT, args.way, args.shot, args.n_support, DEFAULT_SHOT, whole_classes=True
    )
    args.query, args.n_query = _task_size.resolve(
        _task_size.QUERY, args.way, args.query, args.n_query, DEFAULT_QUERY, whole_classes=True
    )


def _check_embedded_data(args: argparse.Namespace) -> None:
    """The embedded dataset: its image sizes, its number of classes, and tasks that fit."""
    if not MIN_SIZE <= args.image_size <= MAX_SIZE:
        raise bad_argument(
            "--image-size",
            args.image_size,
            f"the embedded dataset renders {MIN_SIZE} to {MAX_SIZE} px; pass a size in that "
            "range, or your own images with --data.",
        )
    if 2 * args.classes > EMBEDDED_CODES:
        raise bad_argument(
            "--classes",
            args.classes,
            f"the embedded dataset has {EMBEDDED_CODES} classes: --classes for training and "
            f"as many held out for validation; pass --classes <= {EMBEDDED_CODES // 2}.",
        )
    smallest_way = args.min_way if args.variable else args.way
    if smallest_way > args.classes:
        option = "--min-way" if args.variable else "--way"
        raise bad_argument(
            option,
            smallest_way,
            f"the embedded dataset has --classes {args.classes} training classes; pass "
            f"{option} <= {args.classes}, or raise --classes.",
        )
    if not args.variable and args.shot + args.query > args.images_per_class:
        raise bad_argument(
            "--images-per-class",
            args.images_per_class,
            f"a task takes shot + query = {args.shot + args.query} images of each class; pass "
            f"--images-per-class >= {args.shot + args.query}, or lower --shot or --query.",
        )


def _check_variable_tasks(args: argparse.Namespace) -> None:
    """``--variable``: bounds that agree with each other (as the sampler needs them)."""
    if args.max_way < args.min_way:
        raise bad_argument(
            "--max-way", args.max_way, f"pass --max-way >= --min-way ({args.min_way})."
        )
    if args.max_support < args.max_way:
        raise bad_argument(
            "--max-support",
            args.max_support,
            f"every class of a task takes a support image; pass --max-support >= --max-way "
            f"({args.max_way}).",
        )


def check_options(args: argparse.Namespace) -> None:
    """Options that must agree with each other, checked before anything is built.

    (Each option's own value was checked when it was read; folders' contents are checked
    when the data is read, and files to write by `litekit.paths` on rank 0.) Resolves
    ``--norm``'s default (``model`` with ``--weights``, else ``group``) and the task size
    (`resolve_task_size`).
    """
    if args.norm is None:
        args.norm = default_norm(args.weights)
    resolve_task_size(args)
    check_memory_budget(args)
    Schedule(args.schedule, args.warmup_steps).check_steps(
        args.steps, argument="--steps", prefix="--"
    )
    check_norm(args.backbone, args.norm, argument="--norm")
    check_weights(
        args.backbone, args.weights, norm=args.norm, argument="--weights", norm_argument="--norm"
    )
    if args.variable:
        _check_variable_tasks(args)
    if args.metadataset is not None:  # its tasks are checked when its sources are opened
        check_metadataset_options(args)
    else:
        check_without_metadataset(args)
        if args.orbit is not None:
            check_orbit_options(args)
        elif args.data is None:
            _check_embedded_data(args)
    if args.validation_data is not None and args.data is None:
        raise bad_argument(
            "--validation-data", args.validation_data, "pass --data too (the training folder)."
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.tasks_per_step < world:
        raise bad_argument(
            "--tasks-per-step",
            args.tasks_per_step,
            f"{world} processes share each step's tasks, so a step needs at least {world}; "
            f"pass --tasks-per-step >= {world} (a multiple of {world} balances the work).",
        )
    if args.out is not None and args.checkpoint is not None:
        if Path(args.out).absolute() == Path(args.checkpoint).absolute():
            raise bad_argument(
                "--out", args.out, "this is the --checkpoint file too; pass another path."
            )


def _processes_per_machine() -> int:
    """How many processes torchrun started on this machine (1 outside torchrun)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))


def check_precision_for(args: argparse.Namespace, device: torch.device) -> None:
    """``--precision`` computes on ``device`` (bf16 needs a GPU with bfloat16 arithmetic)."""
    check_precision_on(args.precision, device, "--precision")


def resolve_device(requested: str | None) -> torch.device:
    """This process's device: ``--device`` (default cuda when a GPU is visible, else cpu);
    under torchrun with CUDA, the GPU of its LOCAL_RANK. Refuses CUDA without a GPU for
    every process on this machine, before any process asks for one it cannot have."""
    name = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise bad_argument("--device", name, "no CUDA GPU is visible; pass --device cpu.")
    gpus, processes = torch.cuda.device_count(), _processes_per_machine()
    if processes > gpus:
        default = "the default when a GPU is visible; " if requested is None else ""
        raise bad_argument(
            "--device",
            name,
            f"{default}{processes} processes on this machine each need a GPU, but {gpus} "
            f"GPU(s) are visible; pass --device cpu, or start at most {gpus} process(es) per "
            f"machine (torchrun --nproc_per_node {gpus}).",
        )
    if device.index is not None and processes > 1:
        raise bad_argument(
            "--device",
            name,
            "under torchrun each process takes the GPU of its LOCAL_RANK; pass --device cuda "
            "(choose GPUs with CUDA_VISIBLE_DEVICES).",
        )
    if device.index is not None and device.index >= gpus:
        raise bad_argument(
            "--device", name, f"{gpus} GPU(s) are visible (cuda:0 to cuda:{gpus - 1})."
        )
    if device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device
