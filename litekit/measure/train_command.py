"""A measured set-up as the options of ``python -m litekit.train`` (`train_options`).

The planner answers in a `StepConfig` (h, query batch, chunk size for a task of N support
and query images); the trainer takes options. `train_options` writes the one as the other,
so that a plan is runnable as printed: ``python -m litekit.measure plan ...
--print-train-command``. The task size is written per class (``--way``, ``--shot``,
``--query``), the trainer's vocabulary, which needs totals that ``way`` divides
(`check_whole_classes`).
"""

from __future__ import annotations

import shlex

from litekit._checks import bad_argument
from litekit.measure.training_step import StepConfig

PROGRAM = "python -m litekit.train"


def check_whole_classes(way: int, n_support: int, n_query: int, *, prefix: str = "") -> None:
    """The trainer's tasks give every class as many images: N and the query set size must
    be multiples of ``way``. ``prefix`` (``"--"``) makes the error name options."""
    for field, total, per_class in (
        ("n_support", n_support, "shot"),
        ("n_query", n_query, "query"),
    ):
        if total % way:
            name = prefix + field.replace("_", "-") if prefix else field
            raise bad_argument(
                name,
                total,
                f"{PROGRAM} gives each of the {way} classes of a task as many images; pass a "
                f"multiple of {way} (or {prefix}{per_class} per class) to get a train command.",
            )


def train_options(config: StepConfig) -> list[str]:
    """The options of ``python -m litekit.train`` that train with ``config``'s model, task
    size and LITE set-up (h, query batch, chunk size, precision, layout, device).

    What a step measurement does not fix (data, steps, learning rate, ...) is left to the
    trainer's defaults or to options added after these.
    """
    check_whole_classes(config.way, config.n_support, config.n_query)
    options = ["--learner", config.learner, "--backbone", config.backbone]
    if config.backbone == "conv4":
        options += ["--width", str(config.width)]
    options += ["--norm", config.norm]
    if config.weights is not None:
        options += ["--weights", str(config.weights)]
    options += ["--image-size", str(config.image_size), "--way", str(config.way)]
    options += ["--shot", str(config.n_support // config.way)]
    options += ["--query", str(config.n_query // config.way)]
    if not config.full:  # full back-propagation is the trainer's default (no --h)
        options += ["--h", str(config.h), "--chunk-size", str(config.chunk_size)]
    if config.query_batch is not None:
        options += ["--query-batch", str(config.query_batch)]
    if config.optimizer != "adam":
        options += ["--optimizer", config.optimizer]
    if config.precision != "fp32":
        options += ["--precision", config.precision]
    if config.channels_last:
        options.append("--channels-last")
    options += ["--device", config.device]
    return options


def train_command(config: StepConfig) -> str:
    """`train_options` as one shell command line."""
    return shlex.join([*PROGRAM.split(), *train_options(config)])
