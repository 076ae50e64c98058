"""Meta-train from the command line, in one process or under torchrun.

    python -m litekit.train --learner protonets --backbone conv4 --image-size 84 \\
        --way 5 --shot 10 --query 10 --h 8 --steps 1000 --tasks-per-step 16 \\
        --checkpoint runs/conv4.pt --out runs/conv4.json

    torchrun --nproc_per_node 4 -m litekit.train ...the same options...

What it does: builds the data (the embedded procedural dataset, or class-per-folder images
with ``--data``), a seeded episode sampler, the learner and an optimiser, then calls
`litekit.train.fit`, and prints a JSON summary (also written to ``--out``).

Tasks. Training tasks are episodes 0, 1, 2, ... of a sampler seeded by ``--seed`` (episode k
is a function of the seed and k alone); step s uses the ``--tasks-per-step`` tasks after
those of step s - 1, over all processes together. Validation tasks are ``--validation-tasks``
fixed episodes of held-out classes (the procedural dataset's next ``--classes`` classes, or
the folder ``--validation-data``).

Reproducible across process counts. LITE subsets come from a generator per task, seeded by
``--seed`` and the task's number, and the initial weights from ``--seed``, so the same
command on 1, 2 or 8 processes makes the same updates (to floating-point summation order).
A checkpoint can therefore be resumed on another number of processes.

Checked before anything runs or is written (exit status 2 and a one-line error naming the
option, its value and the fix): option values, an unknown backbone, an image size the
backbone cannot embed (found by a dry forward), a checkpoint made with other options (or by
``fit`` in Python), a damaged checkpoint (checksum), and an ``--out`` file that is not a
summary of this tool. Under torchrun every process reports the same error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from litekit import checkpoint as checkpoints
from litekit._checks import bad_argument, check_choice, check_int
from litekit.distributed import (
    CollectiveError,
    agree,
    init_from_environment,
    is_distributed,
    rank_and_world,
)
from litekit.episodes import EpisodeSampler, VariableEpisodeSampler, episode_loader
from litekit.learners.backbones import check_image_size
from litekit.learners.base import Learner
from litekit.learners.build import (
    LEARNERS,
    NORMS,
    OPTIMIZERS,
    backbone_from_name,
    learner_from_name,
    optimizer_from_name,
)
from litekit.lite import SCALINGS, Lite
from litekit.train.loop import History, fit

SUMMARY_FORMAT = "litekit-train-summary"
POOL = 2**31 - 1  # training episodes the sampler numbers: more than any run uses
# Options that define a run: a checkpoint resumes only with the same values. The others
# (steps, device, workers, threads, paths, cadence of validation and checkpoints) may change.
RUN_OPTIONS = (
    "learner",
    "backbone",
    "width",
    "norm",
    "image_size",
    "variable",
    "way",
    "shot",
    "query",
    "min_way",
    "max_way",
    "max_query",
    "max_support",
    "h",
    "query_batch",
    "chunk_size",
    "scaling",
    "tasks_per_step",
    "optimizer",
    "lr",
    "seed",
    "data",
    "class_depth",
    "skip_small_classes",
    "classes",
    "images_per_class",
    "validation_data",
    "validation_tasks",
)
# Library argument names that errors may start with, and the options they come from.
_ALIASES = {
    "root": "data",
    "num_classes": "classes",
    "episodes": "steps",
    "min_log_weight": "variable",
}
# Library advice that the command line spells another way.
_PHRASES = {"pass skip_small_classes=True": "pass --skip-small-classes"}


def build_parser() -> argparse.ArgumentParser:
    """The command line's options (``python -m litekit.train --help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m litekit.train",
        description="Meta-train a learner with LITE; the same command runs under torchrun.",
        epilog="See litekit/train/cli.py and the README's 'Scale-out' section.",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--learner", default="protonets", help=f"one of {', '.join(LEARNERS)}")
    model.add_argument(
        "--backbone", default="conv4", help="'conv4' or a torchvision model name (random init)"
    )
    model.add_argument("--width", type=int, default=64, help="conv4 channels")
    model.add_argument(
        "--norm",
        default="group",
        help="torchvision models: 'group' replaces BatchNorm by GroupNorm (trains from "
        "scratch, exact LITE); 'model' keeps BatchNorm in eval mode",
    )
    model.add_argument("--image-size", type=int, default=84, help="side of the square images")
    tasks = parser.add_argument_group("tasks")
    tasks.add_argument("--way", type=int, default=5)
    tasks.add_argument("--shot", type=int, default=5, help="support images per class")
    tasks.add_argument("--query", type=int, default=10, help="query images per class")
    tasks.add_argument(
        "--variable", action="store_true", help="Meta-Dataset-style tasks of varying way/shot"
    )
    tasks.add_argument("--min-way", type=int, default=5, help="with --variable")
    tasks.add_argument("--max-way", type=int, default=20, help="with --variable")
    tasks.add_argument("--max-query", type=int, default=10, help="with --variable, per class")
    tasks.add_argument("--max-support", type=int, default=200, help="with --variable")
    lite = parser.add_argument_group("LITE")
    lite.add_argument(
        "--h", type=int, default=None, help="support images back-propagated (default: all)"
    )
    lite.add_argument("--query-batch", type=int, default=None, help="query images per backward")
    lite.add_argument("--chunk-size", type=int, default=64, help="images per no-grad call")
    lite.add_argument("--scaling", default="unbiased", help=f"one of {', '.join(SCALINGS)}")
    training = parser.add_argument_group("training")
    training.add_argument("--steps", type=int, default=100, help="optimiser steps in all")
    training.add_argument(
        "--tasks-per-step", type=int, default=4, help="tasks per step, over all processes"
    )
    training.add_argument("--optimizer", default="adam", help=f"one of {', '.join(OPTIMIZERS)}")
    training.add_argument("--lr", type=float, default=1e-3)
    training.add_argument("--seed", type=int, default=0)
    training.add_argument(
        "--device", default=None, help="cpu, cuda (each torchrun process takes its LOCAL_RANK)"
    )
    training.add_argument("--workers", type=int, default=0, help="loader processes per rank")
    training.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", default=None, help="class-per-folder images (default: the embedded dataset)"
    )
    data.add_argument("--class-depth", type=int, default=1, help="folder levels to a class")
    data.add_argument(
        "--skip-small-classes",
        action="store_true",
        help="leave out folder classes with fewer than shot + query images",
    )
    data.add_argument("--validation-data", default=None, help="folder of held-out classes")
    data.add_argument("--classes", type=int, default=200, help="embedded dataset: classes")
    data.add_argument("--images-per-class", type=int, default=40, help="embedded dataset")
    runs = parser.add_argument_group("validation, checkpoints, output")
    runs.add_argument("--validation-tasks", type=int, default=20, help="0: no validation")
    runs.add_argument("--validate-every", type=int, default=None, help="default: steps // 10")
    runs.add_argument("--checkpoint", default=None, help="file to save to and resume from")
    runs.add_argument("--checkpoint-every", type=int, default=None)
    runs.add_argument(
        "--no-resume", action="store_true", help="refuse to start if --checkpoint exists"
    )
    runs.add_argument("--out", default=None, help="also write the JSON summary here")
    runs.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def option_name(argument: str) -> str:
    """``"image_size"`` → ``"--image-size"``."""
    return "--" + _ALIASES.get(argument, argument).replace("_", "-")


def as_options(error: ValueError, parser: argparse.ArgumentParser) -> str:
    """A library error ``name=value: fix`` with ``name`` spelled as the option it came from."""
    message = str(error)
    for phrase, spelled in _PHRASES.items():
        message = message.replace(phrase, spelled)
    head, sep, rest = message.partition("=")
    dests = {action.dest for action in parser._actions}
    if sep and (head in dests or head in _ALIASES):
        return option_name(head) + "=" + rest
    return message


def check_options(args: argparse.Namespace) -> None:
    """Values the library would not see until later, checked first (house style)."""
    check_choice("learner", args.learner, LEARNERS)
    check_choice("norm", args.norm, NORMS)
    check_choice("optimizer", args.optimizer, OPTIMIZERS)
    check_choice("scaling", args.scaling, SCALINGS)
    for name in ("width", "image_size", "way", "shot", "query", "steps", "tasks_per_step"):
        check_int(name, getattr(args, name), minimum=1)
    for name in ("min_way", "max_way", "max_query", "max_support", "chunk_size", "class_depth"):
        check_int(name, getattr(args, name), minimum=1)
    for name in ("seed", "workers", "validation_tasks", "classes", "images_per_class"):
        check_int(name, getattr(args, name), minimum=0)
    for name in ("query_batch", "validate_every", "checkpoint_every", "threads"):
        if getattr(args, name) is not None:
            check_int(name, getattr(args, name), minimum=1)
    if args.h is not None:
        check_int("h", args.h, minimum=0, fix="leave --h out for full back-propagation.")
    if not args.lr > 0:
        raise bad_argument("lr", args.lr, "pass a positive learning rate, e.g. 1e-3.")
    if args.data is None and 2 * args.classes > 2048:
        raise bad_argument(
            "classes",
            args.classes,
            "the embedded dataset has 2048 classes: --classes for training and as many held "
            "out for validation; pass --classes <= 1024.",
        )
    if args.data is None and not args.variable and args.shot + args.query > args.images_per_class:
        raise bad_argument(
            "images_per_class",
            args.images_per_class,
            f"a task takes shot + query = {args.shot + args.query} images of each class; pass "
            f"--images-per-class >= {args.shot + args.query}, or lower --shot or --query.",
        )
    if args.validation_data is not None and args.data is None:
        raise bad_argument(
            "validation_data", args.validation_data, "pass --data too (the training folder)."
        )


def resolve_device(requested: str | None) -> torch.device:
    """The device of this process: under torchrun with CUDA, the GPU of its LOCAL_RANK."""
    name = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise bad_argument("device", name, "pass 'cpu', 'cuda' or 'cuda:0'.") from error
    if device.type not in ("cpu", "cuda"):
        raise bad_argument("device", name, "pass 'cpu' or 'cuda'.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise bad_argument("device", name, "no CUDA GPU is visible; pass --device cpu.")
        if "LOCAL_RANK" in os.environ:
            if device.index is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise bad_argument(
                    "device",
                    name,
                    "under torchrun each process takes the GPU of its LOCAL_RANK; pass "
                    "--device cuda (choose GPUs with CUDA_VISIBLE_DEVICES).",
                )
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def record(args: argparse.Namespace) -> dict[str, Any]:
    """The options as plain values, for the checkpoint and the summary."""
    values = dict(vars(args))
    for key in ("data", "validation_data"):
        if values[key] is not None:
            values[key] = str(Path(values[key]).resolve())
    return values


def check_checkpoint(path: Path, resume: bool, options: dict[str, Any]) -> int:
    """Rank 0: the checkpoint is absent (0), or sound and made with these run options (its
    step). Anything else is a ValueError naming the option to change."""
    saved = checkpoints.prepare(path, resume)
    if saved is None:
        return 0
    metadata = saved.get("metadata")
    made_with = metadata.get("options") if isinstance(metadata, dict) else None
    if not isinstance(made_with, dict):
        raise bad_argument(
            "checkpoint",
            str(path),
            "this checkpoint was made by fit() in Python, not by python -m litekit.train, so "
            "its options are unknown; resume it from Python, or pass another --checkpoint.",
        )
    for key in RUN_OPTIONS:
        if made_with.get(key) != options[key]:
            then = made_with.get(key)
            raise bad_argument(
                key,
                options[key],
                f"the checkpoint {str(path)!r} was made with {option_name(key)} {then!r}; pass "
                f"that value to resume it, or another --checkpoint path to start afresh.",
            )
    return int(saved["step"])


def check_out(path: Path) -> None:
    """Rank 0: ``--out`` may be created, or replace an earlier summary, nothing else."""
    if path.is_dir():
        raise bad_argument("out", str(path), "this is a folder; pass a file path.")
    if not path.exists():
        return
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        earlier = None
    if not isinstance(earlier, dict) or earlier.get("format") != SUMMARY_FORMAT:
        raise bad_argument(
            "out",
            str(path),
            "a file that is not a litekit.train summary is there; litekit will not overwrite "
            "it. Pass another path.",
        )


@dataclass
class Run:
    """What `build` makes: the learner and everything `fit` needs."""

    learner: Learner
    optimizer: torch.optim.Optimizer
    episodes: Any
    validation: Any
    lite: Lite | None


def build_backbone(args: argparse.Namespace) -> torch.nn.Module:
    """The backbone, with its image size checked by a dry forward (on the CPU)."""
    backbone = backbone_from_name(args.backbone, width=args.width, norm=args.norm)
    check_image_size(backbone, args.image_size, name="--image-size", backbone_name=args.backbone)
    return backbone


def _datasets(args: argparse.Namespace):
    if args.data is None:
        from litekit.data import ProceduralImages

        train = ProceduralImages(
            num_classes=args.classes,
            images_per_class=args.images_per_class,
            image_size=args.image_size,
            seed=args.seed,
        )
        held_out = ProceduralImages(  # the next codes: classes training never sees
            num_classes=args.classes,
            images_per_class=args.images_per_class,
            image_size=args.image_size,
            seed=args.seed,
            first_class=args.classes,
        )
        return train, held_out
    from litekit.data import ImageFolderDataset

    train = ImageFolderDataset(args.data, args.image_size, class_depth=args.class_depth)
    held_out = None
    if args.validation_data is not None:
        held_out = ImageFolderDataset(
            args.validation_data, args.image_size, class_depth=args.class_depth
        )
    return train, held_out


def _sampler(args: argparse.Namespace, data: Any, episodes: int, seed: int):
    if args.variable:
        return VariableEpisodeSampler(
            data,
            episodes,
            seed,
            min_way=args.min_way,
            max_way=args.max_way,
            max_query=args.max_query,
            max_support=args.max_support,
        )
    return EpisodeSampler(
        data,
        args.way,
        args.shot,
        args.query,
        episodes,
        seed,
        skip_small_classes=args.skip_small_classes,
    )


def build(args: argparse.Namespace, device: torch.device) -> Run:
    """Data, samplers, learner and optimiser; every check that needs them runs here."""
    torch.manual_seed(args.seed)  # the same initial weights on every process
    backbone = build_backbone(args)
    train, held_out = _datasets(args)
    episodes = episode_loader(
        train,
        _sampler(args, train, POOL, args.seed),
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
    )
    validation = None
    if held_out is not None and args.validation_tasks > 0:
        validation = episode_loader(
            held_out,
            _sampler(args, held_out, args.validation_tasks, args.seed + 1),
            num_workers=args.workers,
        )
    learner = learner_from_name(args.learner, backbone, image_size=args.image_size).to(device)
    optimizer = optimizer_from_name(args.optimizer, learner.parameters(), args.lr)
    lite = None
    if args.h is not None:
        lite = Lite(args.h, chunk_size=args.chunk_size, scaling=args.scaling)
    return Run(learner, optimizer, episodes, validation, lite)


def summary(
    args: argparse.Namespace, history: History, world: int, device: torch.device
) -> dict[str, Any]:
    """The JSON summary of a finished run."""
    validation = None
    if history.val_step:
        validation = {
            "step": history.val_step,
            "accuracy": history.val_accuracy,
            "ci95": history.val_ci95,
        }
    return {
        "format": SUMMARY_FORMAT,
        "options": record(args),
        "processes": world,
        "device": device.type,
        "steps_done": history.step[-1] if history.step else 0,
        "final_loss": history.loss[-1] if history.loss else None,
        "final_accuracy": history.accuracy[-1] if history.accuracy else None,
        "validation": validation,
        "seconds": history.seconds[-1] if history.seconds else 0.0,
        "checkpoint": None if args.checkpoint is None else str(Path(args.checkpoint).resolve()),
        "history": history.as_dict(),
    }


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    """Check, build and train; the summary on rank 0, None on the other ranks."""
    check_options(args)
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    init_from_environment(str(device))
    rank, world = rank_and_world()
    options = record(args)
    built = agree(lambda: build(args, device))
    if args.checkpoint is not None:
        path = Path(args.checkpoint)
        agree(lambda: check_checkpoint(path, not args.no_resume, options), rank_zero_only=True)
    if args.out is not None:
        agree(lambda: check_out(Path(args.out)), rank_zero_only=True)
    if built.validation is None and args.data is not None and rank == 0 and not args.quiet:
        print("no validation: pass --validation-data for held-out classes", file=sys.stderr)
    history = fit(
        built.learner,
        built.episodes,
        built.optimizer,
        args.steps,
        built.lite,
        query_batch=args.query_batch,
        tasks_per_step=args.tasks_per_step,
        validation=built.validation,
        validate_every=args.validate_every,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=not args.no_resume,
        progress=not args.quiet,
        description=f"{args.learner}/{args.backbone} on {world} process(es)",
        subset_seed=args.seed,
        metadata={"options": options},
    )
    if rank != 0:
        return None
    result = summary(args, history, world, device)
    if args.out is not None:
        checkpoints.write_atomic((json.dumps(result, indent=2) + "\n").encode(), Path(args.out))
    return result


def _shutdown(clean: bool) -> None:
    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return
    if clean and is_distributed():
        torch.distributed.barrier()  # every rank done before any tears the group down (gloo)
    torch.distributed.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, print the summary (rank 0); 0 on success, 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    clean = False
    try:
        result = run(args)
        clean = True
    except ValueError as error:
        rank, world = rank_and_world()
        where = f" (rank {rank})" if world > 1 else ""
        print(f"{parser.prog}: error{where}: {as_options(error, parser)}", file=sys.stderr)
        # Every rank raised a collective error together; any other one left ranks waiting.
        clean = world == 1 or isinstance(error, CollectiveError)
        return 2
    finally:
        _shutdown(clean)
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0
