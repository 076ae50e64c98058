"""``python -m litekit.measure measure|plan ...``: measure a training step, or plan LITE for a
memory budget by measurement. Prints JSON.

    python -m litekit.measure measure --backbone resnet18 --image-size 224 --n-support 100 --h 8
    python -m litekit.measure plan --budget 8GiB --device cuda --backbone efficientnet_b0 \\
        --image-size 224 --n-support 500 --n-query 40 --compare-full
    python -m litekit.measure measure --device cuda --backbone efficientnet_b0 \\
        --image-size 224 --n-support 1000 --h 8 --query-batch 8 --precision bf16 --channels-last
    python -m litekit.measure plan --budget 8GiB --backbone timm:efficientnet_b0 \\
        --image-size 512 --way 5 --shot 20 --query 10 --print-train-command

The task size has the trainer's vocabulary too: ``--way``, ``--shot`` and ``--query`` per
class, or ``--n-support`` and ``--n-query`` in all (given together, they must agree).
``--norm`` has the trainer's default (``model`` with ``--weights``, else ``group``), so a
plan is for the model the trainer builds. ``--print-train-command`` prints the
``python -m litekit.train`` command with the chosen set-up instead of the JSON (which holds
it too, as ``train_options`` and ``train_command``).

``--precision`` and ``--channels-last`` run (and plan) the step as `litekit.train.fit` runs
it in that precision and memory layout; ``--weights`` starts the backbone from pretrained
weights (a torchvision weights name or a state-dict file).

Every option is checked before anything is measured: a bad one ends the command with one
line on stderr naming the option, its value and the fix, and exit status 2. A plan for which
even the smallest set-up measured does not fit ends with one line saying what that set-up
needs, and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import NoReturn

import torch

from litekit import _task_size
from litekit._checks import bad_argument, check_int
from litekit._cli_help import DefaultsHelpFormatter
from litekit.learners.backbones import check_image_size
from litekit.learners.build import (
    LEARNERS,
    NORMS,
    backbone_from_name,
    check_backbone_name,
    check_norm,
    default_norm,
)
from litekit.measure.planner import (
    SEARCH_FIELDS,
    NothingFits,
    check_budget,
    check_margin,
    format_bytes,
    plan_budget,
)
from litekit.measure.rss import configure_allocator
from litekit.measure.train_command import check_whole_classes, train_command, train_options
from litekit.measure.training_step import (
    INT_MINIMUMS,
    MEMORY_KINDS,
    StepConfig,
    check_device,
    measure_training_step,
)
from litekit.precision import PRECISIONS, check_precision_on

PROG = "python -m litekit.measure"
DEFAULT_SHOT, DEFAULT_QUERY = 10, 10  # with --way 5: tasks of 50 support and 50 query images


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line's options (``python -m litekit.measure --help``)."""
    parser = _OneLineParser(
        prog=PROG,
        description="Measure a meta-training step's peak memory and time, or find the largest "
        "LITE set-up (h, query batch, chunk size, or image size) that fits a memory budget.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("command", choices=["measure", "plan"], help="what to do")
    step = parser.add_argument_group("the step")
    step.add_argument(
        "--backbone",
        default="conv4",
        help="'conv4', a torchvision model name, or a timm model as timm:NAME",
    )
    step.add_argument("--learner", default="protonets", choices=LEARNERS, help="the learner")
    step.add_argument("--image-size", type=int, default=64, help="side of the square images")
    step.add_argument("--way", type=int, default=5, help="classes per task")
    step.add_argument(
        "--shot", type=int, default=None, help=f"support images per class (default: {DEFAULT_SHOT})"
    )
    step.add_argument(
        "--query", type=int, default=None, help=f"query images per class (default: {DEFAULT_QUERY})"
    )
    step.add_argument(
        "--n-support",
        type=int,
        default=None,
        help="N, the task's support images in all (default: --way x --shot)",
    )
    step.add_argument(
        "--n-query",
        type=int,
        default=None,
        help="the task's query images in all (default: --way x --query)",
    )
    step.add_argument(
        "--h", type=int, default=None, help="default: all, full back-propagation (plan: searched)"
    )
    step.add_argument(
        "--query-batch",
        type=int,
        default=None,
        help="query images per backward pass (default: the whole query set; plan: searched)",
    )
    step.add_argument(
        "--chunk-size", type=int, default=64, help="images per no-grad call (plan: searched)"
    )
    step.add_argument("--width", type=int, default=64, help="conv4 channels")
    step.add_argument(
        "--norm",
        choices=NORMS,
        default=None,
        help="the backbone's normalisation (default: model with --weights, else group: as "
        "python -m litekit.train)",
    )
    step.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu or cuda (default: cuda when a GPU is visible, else cpu)",
    )
    step.add_argument("--repeats", type=int, default=2, help="timed steps after a warm-up step")
    step.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    step.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="the backbone's passes"
    )
    step.add_argument(
        "--channels-last", action="store_true", help="channels-last images and kernels"
    )
    step.add_argument(
        "--weights",
        default=None,
        help="pretrained: a torchvision weights name, DEFAULT for timm's cached file, or a "
        "state-dict file (default: none, random weights)",
    )
    step.add_argument(
        "--print-train-command",
        action="store_true",
        help="print the python -m litekit.train command of the set-up (the plan's choice) "
        "instead of the JSON",
    )
    plan = parser.add_argument_group("plan")
    plan.add_argument(
        "--budget",
        "--memory-budget",
        dest="budget",
        default=None,
        help="e.g. 8GiB or 500MB, at least 1MiB (default: none; plan needs one)",
    )
    plan.add_argument("--margin", type=float, default=0.1, help="fraction kept free")
    plan.add_argument(
        "--memory",
        choices=MEMORY_KINDS,
        default="peak",
        help="what the budget bounds: the whole peak, or the step's share above the memory "
        "in use before it",
    )
    plan.add_argument(
        "--search",
        nargs="+",
        default=list(SEARCH_FIELDS),
        choices=SEARCH_FIELDS,
        help="what the plan searches, in this order",
    )
    plan.add_argument(
        "--image-sizes",
        type=int,
        nargs="+",
        default=None,
        help="default: none; given, the plan finds the largest of these sizes instead",
    )
    plan.add_argument("--compare-full", action="store_true", help="also measure full back-prop")
    return parser


def _option(field: str) -> str:
    """``"image_size"`` → ``"--image-size"``."""
    return "--" + field.replace("_", "-")


def check_options(args: argparse.Namespace) -> tuple[StepConfig, int | None]:
    """The step configuration and the budget (bytes; None for ``measure``), every option
    checked under its own name first, so that nothing below raises for one of them.

    Checks the values, the combinations (``--way`` against ``--n-support``, ``--norm``
    against ``--backbone``), and, by one dry forward, that the backbone embeds the smallest
    image size asked for.
    """
    check_backbone_name(args.backbone, argument="--backbone")
    if args.norm is None:
        args.norm = default_norm(args.weights)
    check_norm(args.backbone, args.norm, argument="--norm")
    check_int("--way", args.way, minimum=1)
    for option in ("shot", "query"):
        if getattr(args, option) is not None:
            check_int(_option(option), getattr(args, option), minimum=1)
    _, args.n_support = _task_size.resolve(
        _task_size.SUPPORT, args.way, args.shot, args.n_support, DEFAULT_SHOT, whole_classes=False
    )
    _, args.n_query = _task_size.resolve(
        _task_size.QUERY, args.way, args.query, args.n_query, DEFAULT_QUERY, whole_classes=False
    )
    if args.print_train_command:
        check_whole_classes(args.way, args.n_support, args.n_query, prefix="--")
    for field, minimum in INT_MINIMUMS.items():
        if getattr(args, field) is not None:
            check_int(_option(field), getattr(args, field), minimum=minimum)
    if args.way > args.n_support:
        raise bad_argument(
            "--way", args.way, f"every class needs a support image; pass --way <= {args.n_support}."
        )
    check_device(args.device, argument="--device")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        raise bad_argument("--device", args.device, "no CUDA GPU is visible; pass --device cpu.")
    check_precision_on(args.precision, args.device, "--precision")
    check_margin(args.margin, "--margin")
    for size in args.image_sizes or ():
        check_int("--image-sizes", size, minimum=INT_MINIMUMS["image_size"])
    # One dry forward of the smallest image: a backbone that cannot embed it says so here.
    smallest, name = min([args.image_size, *(args.image_sizes or ())]), "--image-size"
    if args.image_sizes and smallest < args.image_size:
        name = "--image-sizes"
    backbone = backbone_from_name(
        args.backbone, width=args.width, norm=args.norm, weights=args.weights,
        argument_prefix="--",
    )  # fmt: skip
    check_image_size(backbone, smallest, name=name, backbone_name=args.backbone)
    budget = None
    if args.command == "plan":
        if args.budget is None:
            raise bad_argument("--budget", None, "plan needs a budget, e.g. --budget 8GiB.")
        budget = check_budget(args.budget, "--budget")
    config = StepConfig(
        backbone=args.backbone, learner=args.learner, image_size=args.image_size,
        n_support=args.n_support, way=args.way, n_query=args.n_query, h=args.h,
        query_batch=args.query_batch, chunk_size=args.chunk_size, width=args.width,
        norm=args.norm, device=args.device, repeats=args.repeats, threads=args.threads,
        precision=args.precision, channels_last=args.channels_last, weights=args.weights,
    )  # fmt: skip
    return config, budget


def _nothing_fits(nothing: NothingFits, args: argparse.Namespace) -> str:
    return str(
        bad_argument(
            "--budget",
            args.budget,
            f"even {nothing.smallest()} needs {nothing.needs()} (limit "
            f"{format_bytes(nothing.limit_bytes)} with --margin {args.margin}); raise --budget "
            "or lower --image-size, --n-support, --n-query or --margin.",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check, measure or plan, print JSON; 0 on success, 2 on a bad option, 1 when
    nothing fits the budget."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["child"]:  # the fresh process of `measure_training_step`
        configure_allocator()
        config = StepConfig(**json.loads(argv[1]))
        print(json.dumps(measure_training_step(config, fresh_process=False).as_dict()))
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config, budget = check_options(args)
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    if args.command == "measure":
        result = measure_training_step(config).as_dict()
        if args.print_train_command:
            print(json.dumps(result), file=sys.stderr)
            print(train_command(config))
            return 0
        print(json.dumps(result, indent=2))
        return 0
    try:
        plan = plan_budget(
            budget,
            config,
            margin=args.margin,
            memory=args.memory,
            search=args.search,
            image_sizes=args.image_sizes,
        )
    except NothingFits as nothing:
        print(f"{parser.prog}: error: {_nothing_fits(nothing, args)}", file=sys.stderr)
        return 1
    result = {"plan": str(plan), **plan.as_dict()}
    if whole_classes(plan.config):
        result["train_options"] = train_options(plan.config)
        result["train_command"] = train_command(plan.config)
    if args.compare_full:
        result["full_backprop"] = measure_training_step(replace(plan.config, h=None)).as_dict()
    if args.print_train_command:
        print(f"{PROG}: {plan}", file=sys.stderr)
        print(result["train_command"])
        return 0
    print(json.dumps(result, indent=2))
    return 0


def whole_classes(config: StepConfig) -> bool:
    """True when ``config``'s task is one the trainer samples (see `check_whole_classes`)."""
    return config.n_support % config.way == 0 and config.n_query % config.way == 0
