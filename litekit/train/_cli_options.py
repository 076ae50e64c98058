"""The options of ``python -m litekit.train``: what it reads, with each value's own check.

Errors read ``--option=value: what to do`` and are raised while options are read, before
anything is built: each option's own value by its argparse ``type`` (`litekit._cli_types`);
values that depend on each other, and the device, are checked next, in
`litekit.train._cli_checks`. Parsing errors are ValueErrors, not argparse's usage text and
SystemExit, so that ``main`` prints one line and returns exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from litekit._cli_help import DefaultsHelpFormatter
from litekit._cli_types import (
    TWO_CLASSES,
    _backbone,
    _choice,
    _device,
    _folder,
    _integer,
    _Parser,
    _positive_number,
)
from litekit.data.metadataset import NORMALIZATIONS
from litekit.learners.build import LEARNERS, NORMS, OPTIMIZERS
from litekit.lite import SCALINGS
from litekit.md_episodes import TRAINING_SOURCES
from litekit.precision import PRECISIONS
from litekit.train._cli_checks import DEFAULT_QUERY, DEFAULT_SHOT
from litekit.train.metadataset import sources_option
from litekit.train.presets import PRESETS, apply_preset, given_options
from litekit.train.schedule import SCHEDULES

PROGRAM = "python -m litekit.train"
README_SECTION = "the README's 'Command line, several GPUs, several machines' section"


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
