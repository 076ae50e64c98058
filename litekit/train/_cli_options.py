"""The options of ``python -m litekit.train``, and every check of their values.

Errors read ``--option=value: what to do`` and are raised here, while options are read,
before anything is built: each option's own value by its argparse ``type`` callable, values
that depend on each other by `check_options`, and the device (GPUs visible, torchrun's
processes) by `resolve_device`. Parsing errors are ValueErrors, not argparse's usage text
and SystemExit, so that ``main`` prints one line and returns exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from litekit import _task_size
from litekit._checks import bad_argument
from litekit._cli_help import DefaultsHelpFormatter
from litekit.data.folders import bad_path
from litekit.data.metadataset import NORMALIZATIONS
from litekit.data.procedural import MAX_SIZE, MIN_SIZE
from litekit.learners.build import (
    LEARNERS,
    NORMS,
    OPTIMIZERS,
    check_backbone_name,
    check_norm,
    check_weights,
    default_norm,
)
from litekit.lite import SCALINGS
from litekit.md_episodes import TRAINING_SOURCES
from litekit.precision import PRECISIONS, check_precision_on
from litekit.train._cli_metadataset import check_metadataset_options, check_without_metadataset
from litekit.train._cli_orbit import check_orbit_options
from litekit.train._cli_plan import check_memory_budget
from litekit.train.metadataset import sources_option
from litekit.train.presets import PRESETS, apply_preset, given_options
from litekit.train.schedule import SCHEDULES, Schedule

PROGRAM = "python -m litekit.train"
EMBEDDED_CODES = 2048  # classes of the embedded dataset: training and held-out ranges share them
README_SECTION = "the README's 'Command line, several GPUs, several machines' section"

Convert = Callable[[str], Any]  # an argparse ``type``: the option's text -> its checked value


def option_name(dest: str) -> str:
    """``"image_size"`` -> ``"--image-size"``: the option an argparse destination comes from."""
    return "--" + dest.replace("_", "-")


def _invalid(option: str, value: Any, fix: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(str(bad_argument(option, value, fix)))


def _integer(option: str, minimum: int, fix: str | None = None) -> Convert:
    """An integer >= ``minimum``."""
    fix = fix or f"pass an integer >= {minimum}."

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _invalid(option, text, fix) from None
        if value < minimum:
            raise _invalid(option, value, fix)
        return value

    return convert


def _positive_number(option: str, example: str) -> Convert:
    """A finite number > 0."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _invalid(option, text, f"pass a positive number, e.g. {example}.") from None
        if not (value > 0 and math.isfinite(value)):
            raise _invalid(option, value, f"pass a positive number, e.g. {example}.")
        return value

    return convert


def _choice(option: str, choices: Sequence[str]) -> Convert:
    """One of ``choices``."""

    def convert(text: str) -> str:
        if text not in choices:
            raise _invalid(option, text, f"choose one of {', '.join(map(repr, choices))}.")
        return text

    return convert


def _backbone(option: str) -> Convert:
    """``conv4``, a torchvision classification model's name or ``timm:NAME``; an unknown
    name gets the library's suggestions of close names, under the option's name."""

    def convert(text: str) -> str:
        try:  # checks the name alone: nothing is built
            return check_backbone_name(text, argument=option)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _device(option: str) -> Convert:
    """A device torch can parse, of type cpu or cuda (GPUs are counted in `resolve_device`)."""

    def convert(text: str) -> str:
        try:
            device = torch.device(text)
        except (RuntimeError, TypeError):
            raise _invalid(option, text, "pass 'cpu', 'cuda' or 'cuda:0'.") from None
        if device.type not in ("cpu", "cuda"):
            raise _invalid(option, text, "pass 'cpu' or 'cuda'.")
        return text

    return convert


def _folder(option: str) -> Convert:
    """An existing folder (what is inside is checked when the dataset is read)."""

    def convert(text: str) -> str:
        if not Path(text).is_dir():
            error = bad_path(option, text, "no such folder; see data/README.md for the layout.")
            raise argparse.ArgumentTypeError(str(error))
        return text

    return convert


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line ValueErrors (see `parse_options`)."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(f"{message} (see {self.prog} --help)")


TWO_CLASSES = "a task tells classes apart, so it needs at least 2; pass an integer >= 2."
DEFAULT_SHOT, DEFAULT_QUERY = 5, 10


def _integer_option(
    group: Any, option: str, minimum: int, default: int | None, help: str, fix: str | None = None
) -> None:
    group.add_argument(option, type=_integer(option, minimum, fix), default=default, help=help)


def _choice_option(group: Any, option: str, choices: Sequence[str], default: str) -> None:
    group.add_argument(
        option, type=_choice(option, choices), default=default, help=f"one of {', '.join(choices)}"
    )


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    _choice_option(group, "--learner", LEARNERS, "protonets")
    group.add_argument(
        "--backbone",
        type=_backbone("--backbone"),
        default="conv4",
        help="'conv4', a torchvision model name (resnet18, efficientnet_b0), or a timm model "
        "as timm:NAME (timm:efficientnet_b0, timm:vit_small_patch16_224; pip install "
        "'litekit[timm]'); random weights unless --weights",
    )
    group.add_argument(
        "--weights",
        default=None,
        help="pretrained backbone weights (default: none, random initialisation): a "
        "torchvision weights name (DEFAULT, IMAGENET1K_V1: from torchvision's cache, "
        "downloaded only when missing), DEFAULT for a timm model (timm's file, from its "
        "cache, never downloaded), or a .safetensors or torch.save state-dict file; the "
        "images are then normalised as those weights expect",
    )
    _integer_option(group, "--width", 1, 64, "conv4 channels")
    group.add_argument(
        "--norm",
        type=_choice("--norm", NORMS),
        default=None,
        help=f"one of {', '.join(NORMS)} (default: model with --weights, to keep their "
        "BatchNorm; else group, so a randomly initialised model normalises each image on "
        "its own)",
    )
    _integer_option(group, "--image-size", 1, 84, "side of the square images")
    group.add_argument(
        "--preset",
        type=_choice("--preset", tuple(PRESETS)),
        default=None,
        help="fill in the options not given here: "
        + "; ".join(f"{name}: {p.description}" for name, p in PRESETS.items()),
    )


def _task_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tasks")
    _integer_option(group, "--way", 2, 5, "classes per task", TWO_CLASSES)
    _integer_option(group, "--shot", 1, None, f"support images per class (default: {DEFAULT_SHOT})")
    _integer_option(group, "--query", 1, None, f"query images per class (default: {DEFAULT_QUERY})")
    total = "a task's {} images in all, the same as --way x {} (default: from {})"
    _integer_option(group, "--n-support", 2, None, total.format("support", "--shot", "--shot"))
    _integer_option(group, "--n-query", 2, None, total.format("query", "--query", "--query"))
    group.add_argument(
        "--variable", action="store_true", help="Meta-Dataset-style tasks of varying way/shot"
    )
    _integer_option(group, "--min-way", 2, 5, "with --variable", TWO_CLASSES)
    _integer_option(group, "--max-way", 2, 20, "with --variable", TWO_CLASSES)
    _integer_option(group, "--max-query", 1, 10, "with --variable, per class")
    _integer_option(group, "--max-support", 1, 200, "with --variable")


def _lite_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LITE")
    full = "leave --h out for full back-propagation."
    _integer_option(group, "--h", 0, None, "support images back-propagated (default: all)", full)
    _integer_option(
        group,
        "--query-batch",
        1,
        None,
        "query images per backward pass (default: the whole query set in one)",
    )
    _integer_option(
        group,
        "--chunk-size",
        1,
        None,
        "images per no-grad call (default: 64; planned with --memory-budget)",
    )
    group.add_argument(
        "--memory-budget",
        default=None,
        help="plan --h, --query-batch and --chunk-size (those not given) for this much memory "
        "per process, e.g. 8GiB, by measuring steps on this device before training (default: "
        "none, no plan)",
    )
    _choice_option(group, "--scaling", SCALINGS, "unbiased")


def _training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    _integer_option(group, "--steps", 1, 100, "optimiser steps in all")
    _integer_option(group, "--tasks-per-step", 1, 4, "tasks per step, over all processes")
    _choice_option(group, "--optimizer", OPTIMIZERS, "adam")
    group.add_argument(
        "--lr",
        type=_positive_number("--lr", "1e-3"),
        default=1e-3,
        help="learning rate: 1e-3 suits a backbone trained from scratch; from pretrained "
        "--weights 1e-4 or lower keeps what they learnt",
    )
    group.add_argument(
        "--schedule",
        type=_choice("--schedule", SCHEDULES),
        default="constant",
        help="learning-rate schedule over --steps: constant; cosine (down to 0 at the last "
        "step); step (a tenth at half and at three quarters of the steps)",
    )
    _integer_option(
        group, "--warmup-steps", 0, 0, "steps of linear warm-up of the learning rate first"
    )
    group.add_argument(
        "--clip-grad-norm",
        type=_positive_number("--clip-grad-norm", "1.0"),
        default=None,
        help="cap the gradient's total norm at this before each step (default: none)",
    )
    group.add_argument(
        "--augment",
        action="store_true",
        help="random resized crops and horizontal flips of the training tasks' support and "
        "query images, drawn from --seed and the task's number",
    )
    group.add_argument(
        "--backbone-lr-scale",
        type=_positive_number("--backbone-lr-scale", "0.1"),
        default=1.0,
        help="the backbone's learning rate as a fraction of --lr (ORBIT: 0.1)",
    )
    _integer_option(group, "--seed", 0, 0, "seeds tasks, LITE subsets and initial weights")
    group.add_argument(
        "--device",
        type=_device("--device"),
        default=None,
        help="cpu or cuda (default: cuda when a GPU is visible); under torchrun each process "
        "takes the GPU of its LOCAL_RANK",
    )
    _integer_option(group, "--workers", 0, 0, "loader processes per rank")
    _integer_option(group, "--threads", 1, None, "torch CPU threads (default: torch's choice)")
    _choice_option(group, "--precision", PRECISIONS, "fp32")
    group.add_argument(
        "--channels-last",
        action="store_true",
        help="channels-last memory layout for the learner and the images (fast on GPUs)",
    )
    group.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic kernels: on a GPU too, a resumed run equals an unbroken one "
        "exactly (at some cost in speed)",
    )


def _data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        type=_folder("--data"),
        default=None,
        help="class-per-folder images (see data/README.md); default: the embedded dataset",
    )
    _integer_option(group, "--class-depth", 1, 1, "folder levels from --data down to a class")
    group.add_argument(
        "--skip-small-classes",
        action="store_true",
        help="leave out folder classes with fewer than shot + query images",
    )
    group.add_argument(
        "--validation-data",
        type=_folder("--validation-data"),
        default=None,
        help="folder of held-out classes, laid out as --data (default: none, no validation "
        "for --data)",
    )
    classes = "embedded dataset: training classes (as many more are held out)"
    _integer_option(group, "--classes", 2, 200, classes, TWO_CLASSES)
    pair = "pass 2 or more (a task takes a support and a query image of a class)."
    _integer_option(group, "--images-per-class", 2, 40, "embedded dataset: images per class", pair)
    _orbit_options(parser)
    _metadataset_options(parser)


def _metadataset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Meta-Dataset (see data/README.md)")
    group.add_argument(
        "--metadataset", type=_folder("--metadataset"), default=None,
        help="the folder of converted Meta-Dataset sources: multi-source training tasks",
    )  # fmt: skip
    group.add_argument(
        "--sources", type=sources_option("--sources"), default=None,
        help="comma-separated sources under --metadataset (default: the LITE paper's eight, "
        + ",".join(TRAINING_SOURCES) + ")",
    )  # fmt: skip
    group.add_argument(
        "--md-normalization", type=_choice("--md-normalization", (*NORMALIZATIONS, "weights")),
        default=None,
        help="metadataset ([-1, 1]), imagenet, none ([0, 1]) or weights (what --weights "
        "expect); default: weights with --weights, else metadataset",
    )  # fmt: skip


def _orbit_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ORBIT (see data/README.md)")
    group.add_argument(
        "--orbit",
        type=_folder("--orbit"),
        default=None,
        help="ORBIT's folder (train/, validation/): tasks from the train users, validation "
        "on the validation users",
    )
    _choice_option(group, "--orbit-setting", ("clutter", "clean"), "clutter")
    _integer_option(group, "--clip-length", 1, 8, "consecutive frames per clip")
    _integer_option(
        group, "--orbit-clips", 1, 4, "clips per video in a training task (context and target)"
    )
    _integer_option(
        group,
        "--orbit-validation-tasks",
        0,
        5,
        "tasks per validation user (ORBIT's neurips21 protocol; 0: no validation)",
    )


def _output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("validation, checkpoints, output")
    _integer_option(
        group, "--validation-tasks", 0, 20, "held-out tasks per validation; 0: no validation"
    )
    _integer_option(
        group, "--validate-every", 1, None, "steps between validations (default: steps // 10)"
    )
    group.add_argument(
        "--checkpoint",
        default=None,
        help="file to save to and resume from (default: none, nothing saved)",
    )
    group.add_argument(
        "--best-checkpoint",
        default=None,
        help="where the run at its best validation score is kept (default with --checkpoint "
        "and validation: beside it, <name>.best.pt)",
    )
    _integer_option(
        group,
        "--checkpoint-every",
        1,
        None,
        "steps between checkpoints (default: --validate-every)",
    )
    group.add_argument(
        "--no-resume", action="store_true", help="refuse to start if --checkpoint exists"
    )
    group.add_argument(
        "--out", default=None, help="also write the JSON summary here (default: stdout only)"
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The command line's options (``python -m litekit.train --help``)."""
    parser = _Parser(
        prog=PROGRAM,
        description="Meta-train a learner with LITE; the same command runs under torchrun.",
        epilog=f"See {README_SECTION} (README.md) and litekit/train/cli.py.",
        exit_on_error=False,
        formatter_class=DefaultsHelpFormatter,
    )
    _model_options(parser)
    _task_options(parser)
    _lite_options(parser)
    _training_options(parser)
    _data_options(parser)
    _output_options(parser)
    return parser


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options of ``argv``, each checked, with ``--preset``'s settings filled in for
    the options not given (``args.preset_report`` says which); a ValueError ``--option=
    value: fix`` if one is bad. ``--help`` prints and exits as usual."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        explicit = given_options(build_parser(), argv) if args.preset is not None else set()
    except argparse.ArgumentError as error:
        # The type callables' messages already read "--option=value: fix"; argparse's own
        # (a missing value, say) come as "argument --option: expected one argument".
        if error.argument_name and error.message.startswith(f"{error.argument_name}="):
            raise ValueError(error.message) from None
        raise ValueError(f"{error} (see {PROGRAM} --help)") from None
    args.preset_report = apply_preset(args, explicit)
    return args


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
    if args.metadataset is not None:
        check_metadataset_options(args)
    else:
        check_without_metadataset(args)
    if args.metadataset is not None:
        pass  # its own tasks, checked when its sources are opened
    elif args.orbit is not None:
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
