"""Score a checkpoint from the command line: ``python -m litekit.evaluate SOURCE ...``.

    python -m litekit.evaluate folders --checkpoint runs/b0.pt --data data/mini-imagenet/test \\
        --way 5 --shot 5 --query 15 --episodes 600 --out runs/b0-test.json
    python -m litekit.evaluate orbit --checkpoint runs/orbit.pt --root data/orbit \\
        --protocol neurips21 --setting clutter --out runs/orbit-test.json
    python -m litekit.evaluate metadataset --checkpoint runs/md.pt --root data/meta-dataset \\
        --sources omniglot,aircraft --tasks 600 --out runs/md-test.json
    python -m litekit.evaluate task --checkpoint runs/md.pt \\
        --support data/vtab/eurosat/train800val200 --query data/vtab/eurosat/test

The model comes from the checkpoint alone (a checkpoint of ``python -m litekit.train``,
which records learner, backbone, image size, normalisation, precision and memory layout:
`litekit.learners.record`). ``--learner``, ``--backbone``, ``--width``, ``--norm``,
``--image-size`` and ``--precision`` may repeat what it records; a value that contradicts
it is refused. The sources (`litekit.evaluate.sources`) say where the tasks come from.

It prints a table (the aggregates with their 95% intervals, and the summary's notes) and
writes everything, the per-task (or per-video) records included, to ``--out`` as JSON
(`litekit.evaluate.report`).

Checked before anything is scored (exit status 2, one line ``python -m litekit.evaluate:
error: --option=value: fix``): every option's value, ``--out`` (writable, and new or an
earlier evaluation), the checkpoint (a sound litekit checkpoint that records its model),
options that contradict it, the device and precision, and the source's data.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from litekit._checks import bad_argument
from litekit._cli_help import DefaultsHelpFormatter
from litekit._cli_types import _backbone, _choice, _device, _integer, _Parser
from litekit.evaluate import report
from litekit.evaluate import sources as registry
from litekit.evaluate.model import build_learner, check_options, read_model
from litekit.learners.build import LEARNERS, NORMS
from litekit.orbit.personalise import Compute
from litekit.precision import PRECISIONS, check_precision_on
from litekit.train._cli_checks import resolve_device
from litekit.train._cli_options import README_SECTION

PROGRAM = "python -m litekit.evaluate"
FROM_CHECKPOINT = "default: the checkpoint's"  # the model options' help


def _common(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("what to score, and where")
    run.add_argument("--checkpoint", required=True, help="a checkpoint of python -m litekit.train")
    run.add_argument(
        "--out", default=None, help="write the results here, as JSON (default: printed only)"
    )
    run.add_argument("--seed", type=_integer("--seed", 0), default=0, help="seeds the tasks")
    run.add_argument(
        "--device",
        type=_device("--device"),
        default=None,
        help="cpu or cuda (default: cuda when a GPU is visible)",
    )
    run.add_argument(
        "--chunk-size", type=_integer("--chunk-size", 1), default=64, help="images per no-grad call"
    )
    run.add_argument(
        "--workers",
        type=_integer("--workers", 0),
        default=0,
        help="processes (folders) or threads (orbit) that load images",
    )
    run.add_argument(
        "--threads",
        type=_integer("--threads", 1),
        default=None,
        help="torch CPU threads (default: torch's own choice)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    model = parser.add_argument_group(
        "the model (read from the checkpoint; given here, they must agree with it)"
    )
    model.add_argument(
        "--learner", type=_choice("--learner", LEARNERS), default=None, help=FROM_CHECKPOINT
    )
    model.add_argument(
        "--backbone", type=_backbone("--backbone"), default=None, help=FROM_CHECKPOINT
    )
    model.add_argument("--width", type=_integer("--width", 1), default=None, help=FROM_CHECKPOINT)
    model.add_argument("--norm", type=_choice("--norm", NORMS), default=None, help=FROM_CHECKPOINT)
    model.add_argument(
        "--image-size", type=_integer("--image-size", 1), default=None, help=FROM_CHECKPOINT
    )
    model.add_argument(
        "--precision", type=_choice("--precision", PRECISIONS), default=None, help=FROM_CHECKPOINT
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line (``python -m litekit.evaluate --help``, ``... SOURCE --help``)."""
    parser = _Parser(
        prog=PROGRAM,
        description="Score a checkpoint of python -m litekit.train on held-out tasks.",
        epilog=f"See {README_SECTION} (README.md), data/README.md for ORBIT, and "
        "litekit/evaluate/cli.py.",
        exit_on_error=False,
    )
    subparsers = parser.add_subparsers(
        dest="source", required=True, metavar="SOURCE", parser_class=_Parser
    )
    for name in registry.SOURCES:
        module = registry.load(name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=DefaultsHelpFormatter,
            exit_on_error=False,
        )
        _common(sub)
        module.add_options(sub.add_argument_group(f"{name}"))
    return parser


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options of ``argv``, each checked; a ValueError ``--option=value: fix`` if one is
    bad. ``--help`` prints and exits as usual."""
    try:
        return build_parser().parse_args(argv)
    except argparse.ArgumentError as error:
        if error.argument_name and error.message.startswith(f"{error.argument_name}="):
            raise ValueError(error.message) from None
        raise ValueError(f"{error} (see {PROGRAM} --help)") from None


def _options(args: argparse.Namespace) -> dict[str, Any]:
    values = {k: v for k, v in vars(args).items() if k != "source"}
    for key in ("checkpoint", "out", "root", "data", "annotations"):
        if values.get(key) is not None:
            values[key] = str(Path(values[key]).resolve())
    return values


def _run(args: argparse.Namespace) -> tuple[dict, str]:
    """Check, build, score; the JSON document and the printed text."""
    source = registry.load(args.source)
    out = report.check_out(args.out)
    if out is not None and out.resolve() == Path(args.checkpoint).resolve():
        raise bad_argument("--out", args.out, "this is the --checkpoint file; pass another path.")
    model = read_model(args.checkpoint)
    check_options(args, model)
    device = resolve_device(args.device)
    precision = model.record["precision"]
    check_precision_on(precision, device, "--precision")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    prepared = source.prepare(args, model)
    learner = build_learner(model, device)
    compute = Compute(args.chunk_size, precision, bool(model.record["channels_last"]))
    run = registry.Run(device, compute, args.seed, args.workers, progress=not args.quiet)
    scored = source.score(prepared, learner, run)
    checkpoint = {"path": str(model.path.resolve()), "step": model.step, "model": model.record}
    document = report.document(
        args.source, _options(args), checkpoint, scored.aggregates, scored.summary, scored.records
    )
    if out is not None:
        report.write(document, out)
    lines = [
        f"{args.source}: {model.record['learner']} / {model.record['backbone']} at "
        f"{model.record['image_size']} px, checkpoint step {model.step} ({model.path})",
        report.table(scored.rows),
        *(f"- {note}" for note in scored.summary.get("notes", [])),
    ]
    if out is not None:
        lines.append(f"results written to {out}")
    return document, "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check, score, print; 0 on success, 2 on bad input, 130 when interrupted.

    Bad input is one line on stderr: ``python -m litekit.evaluate: error: --option=value:
    fix``.
    """
    try:
        _, text = _run(parse_options(argv))
    except ValueError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted; nothing was written.", file=sys.stderr)
        return 130
    print(text)
    return 0
