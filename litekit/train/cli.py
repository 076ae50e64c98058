"""Meta-train from the command line, in one process or under torchrun.

    python -m litekit.train --learner protonets --backbone conv4 --image-size 84 \\
        --way 5 --shot 10 --query 10 --h 8 --steps 1000 --tasks-per-step 16 \\
        --checkpoint runs/conv4.pt --out runs/conv4.json

    torchrun --nproc_per_node 4 -m litekit.train ...the same options...

What it does: builds the data (the embedded procedural dataset, class-per-folder images
with ``--data``, ORBIT's users with ``--orbit``, or Meta-Dataset's sources with
``--metadataset``: `litekit.train._cli_metadataset`), a seeded episode sampler, the learner
and an optimiser, then calls `litekit.train.fit`, and prints a JSON summary (also written to
``--out``).

Tasks. Training tasks are episodes 0, 1, 2, ... of a sampler seeded by ``--seed`` (episode k
is a function of the seed and k alone); step s uses the ``--tasks-per-step`` tasks after
those of step s - 1, over all processes together. Validation tasks are ``--validation-tasks``
fixed episodes of held-out classes (the procedural dataset's next ``--classes`` classes, or
the folder ``--validation-data``).

Reproducible across process counts. LITE subsets come from a generator per task, seeded by
``--seed`` and the task's number, and the initial weights from ``--seed``, so the same
command on 1, 2 or 8 processes makes the same updates (to floating-point summation order).
A checkpoint can therefore be resumed on another number of processes.

Precision, memory layout, weights. ``--precision bf16`` (or ``fp16``, with a gradient
scaler) and ``--channels-last`` run the backbone's passes as `litekit.train.fit` does
(`litekit.precision`); ``--deterministic`` asks for deterministic kernels, so that on a GPU
too a resumed run equals an unbroken one bit for bit. ``--weights`` starts the backbone
from pretrained weights (a torchvision weights name, or a state-dict file) and normalises
the images as those weights expect. ``--precision``, ``--channels-last`` and ``--weights``
define the run (a checkpoint resumes only with the same values); ``--deterministic`` does
not (it changes kernels, not the computation).

Checked before anything runs or is written (exit status 2 and a one-line error naming the
option, its value and the fix): option values and how they agree with each other, the
device (a GPU for every process on the machine, bfloat16 arithmetic for ``--precision
bf16``), ``--weights`` that name no weights of the backbone, no file, or weights that do
not fit it, an unknown backbone, an image size the
backbone cannot embed (found by a dry forward), data folders that cannot make the asked
tasks, ``--checkpoint`` and ``--out`` paths that cannot be written (a read-only folder, a
file where a folder should be), a checkpoint made with other options (or by ``fit`` in
Python), a damaged checkpoint (checksum), and an ``--out`` file that is not a summary of
this tool. Under torchrun every process reports the same error.

Modules: `litekit.train._cli_options` reads the options and `litekit.train._cli_checks` checks
them together, `litekit.train._cli_build` builds what `fit` needs; this one checks the files,
trains and writes the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from litekit import checkpoint as checkpoints
from litekit._checks import bad_argument
from litekit._cli_types import option_name
from litekit.data.augment import Augment
from litekit.data.folders import bad_path
from litekit.distributed import (
    CollectiveError,
    init_from_environment,
    leave_process_group,
    rank_and_world,
    same_outcome_on_every_rank,
)
from litekit.learners.pretrained import is_weights_file
from litekit.learners.record import make_record
from litekit.paths import check_writable_file
from litekit.train import best, loop
from litekit.train._cli_build import build
from litekit.train._cli_checks import check_options, check_precision_for, resolve_device
from litekit.train._cli_metadataset import input_normalization
from litekit.train._cli_options import PROGRAM, parse_options
from litekit.train._cli_plan import resolve_memory_budget
from litekit.train.schedule import Schedule

__all__ = ["main"]

_SUMMARY_FORMAT = "litekit-train-summary"
# Options that define a run: a checkpoint resumes only with the same values. The others
# (steps, device, workers, threads, paths, cadence of validation and checkpoints, and
# --deterministic, which changes kernels, not the computation) may change.
_RUN_OPTIONS = (
    "learner",
    "backbone",
    "weights",
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
    "precision",
    "channels_last",
    "schedule",
    "warmup_steps",
    "augment",
    "clip_grad_norm",
    "backbone_lr_scale",
    "orbit",
    "orbit_setting",
    "clip_length",
    "orbit_clips",
    "orbit_validation_tasks",
    "metadataset",
    "sources",
    "md_normalization",
)
# What a checkpoint made before an option existed was made with: that option's default.
_RUN_OPTION_DEFAULTS = {
    "weights": None,
    "precision": "fp32",
    "channels_last": False,
    "schedule": "constant",
    "warmup_steps": 0,
    "augment": False,
    "clip_grad_norm": None,
    "backbone_lr_scale": 1.0,
    "orbit": None,
    "orbit_setting": "clutter",
    "clip_length": 8,
    "orbit_clips": 4,
    "orbit_validation_tasks": 5,
    "metadataset": None,
    "sources": None,
    "md_normalization": None,
}


def _record(args: argparse.Namespace) -> dict[str, Any]:
    """The options as plain values, for the checkpoint and the summary."""
    values = dict(vars(args))
    values.pop("preset_report", None)
    for key in ("data", "validation_data", "orbit", "metadataset"):
        if values[key] is not None:
            values[key] = str(Path(values[key]).resolve())
    if values["weights"] is not None and is_weights_file(values["weights"]):
        values["weights"] = str(Path(values["weights"]).resolve())
    return values


def _model(args: argparse.Namespace) -> dict[str, Any]:
    """The model record (`litekit.learners.record`): what python -m litekit.evaluate rebuilds
    the learner from."""
    return make_record(
        learner=args.learner,
        backbone=args.backbone,
        image_size=args.image_size,
        width=args.width,
        norm=args.norm,
        weights=_record(args)["weights"],
        precision=args.precision,
        channels_last=args.channels_last,
        input_normalization=(
            input_normalization(args) if args.metadataset is not None else "weights"
        ),
    )


def _check_checkpoint(path: Path, resume: bool, options: dict[str, Any]) -> None:
    """Rank 0: the checkpoint is absent, or sound and made with these run options; anything
    else is a ValueError naming the option to change. Nothing is written."""
    if not path.exists() and not path.is_symlink():
        return
    try:
        saved = checkpoints.read(path)
    except checkpoints.CheckpointError as error:
        kept = " litekit will not overwrite it." if error.kind == "foreign" else ""
        raise bad_path("--checkpoint", path, error.fix + kept) from None
    if not resume:
        raise bad_path(
            "--checkpoint",
            path,
            "a checkpoint is already there and --no-resume refuses to continue it; leave out "
            "--no-resume to continue it, or pass another --checkpoint to start afresh.",
        )
    metadata = saved.get("metadata")
    made_with = metadata.get("options") if isinstance(metadata, dict) else None
    if not isinstance(made_with, dict):
        raise bad_path(
            "--checkpoint",
            path,
            "this checkpoint was made by fit() in Python, not by python -m litekit.train, so "
            "its options are unknown; resume it from Python, or pass another --checkpoint.",
        )
    made_steps = made_with.get("steps")
    if made_with.get("schedule", "constant") != "constant" and made_steps != options["steps"]:
        raise bad_argument(
            "--steps",
            options["steps"],
            f"the checkpoint {str(path)!r} follows a {made_with['schedule']} schedule laid "
            f"out over --steps {made_steps}; pass --steps {made_steps} to finish that run, or "
            "another --checkpoint to start a longer one.",
        )
    for key in _RUN_OPTIONS:
        made = made_with.get(key, _RUN_OPTION_DEFAULTS.get(key))
        if made != options[key]:
            raise bad_argument(
                option_name(key),
                options[key],
                f"the checkpoint {str(path)!r} was made with {option_name(key)} "
                f"{made!r}; pass that value to resume it, or another "
                "--checkpoint path to start afresh.",
            )


def _check_out(path: Path) -> None:
    """Rank 0: ``--out`` may be created, or replace an earlier summary, nothing else."""
    if not path.exists():
        return
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        earlier = None
    if not isinstance(earlier, dict) or earlier.get("format") != _SUMMARY_FORMAT:
        raise bad_path(
            "--out",
            path,
            "a file that is not a litekit.train summary is there; litekit will not overwrite "
            "it. Pass another path.",
        )


def _validates(args: argparse.Namespace) -> bool:
    """Whether the run has validation: ORBIT's validation users, the embedded dataset's
    held-out classes, or --validation-data."""
    if args.orbit is not None:
        return args.orbit_validation_tasks > 0
    return args.validation_tasks > 0 and (args.data is None or args.validation_data is not None)


def best_file(args: argparse.Namespace) -> Path | None:
    """``--best-checkpoint``, or by default ``<checkpoint>.best<suffix>`` beside
    ``--checkpoint`` when the run validates; None otherwise."""
    if args.best_checkpoint is not None:
        return Path(args.best_checkpoint)
    if args.checkpoint is None or not _validates(args):
        return None
    last = Path(args.checkpoint)
    return last.with_name(f"{last.stem}.best{last.suffix}")


def _check_best(args: argparse.Namespace) -> None:
    """``--best-checkpoint`` needs validation, and is neither --checkpoint nor --out."""
    if args.best_checkpoint is None:
        return
    if not _validates(args):
        raise bad_argument(
            "--best-checkpoint",
            args.best_checkpoint,
            "the best checkpoint is the one of the best validation score, and this run has no "
            "validation; add validation (--validation-data, or --orbit with "
            "--orbit-validation-tasks > 0), or leave --best-checkpoint out.",
        )
    for option, other in (("--checkpoint", args.checkpoint), ("--out", args.out)):
        if other is not None and Path(other).absolute() == Path(args.best_checkpoint).absolute():
            raise bad_argument(
                "--best-checkpoint", args.best_checkpoint, f"this is the {option} file too."
            )


def _check_files(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """Rank 0, before training: the files the run writes can be written, and are not
    someone else's (`litekit.paths.check_writable_file`, then their contents)."""
    resuming = False
    if args.checkpoint is not None:
        path = check_writable_file("--checkpoint", args.checkpoint)
        _check_checkpoint(path, not args.no_resume, options)
        resuming = path.exists() and not args.no_resume
    keep = best_file(args)
    if keep is not None:
        best.check_file(keep, resuming, argument="--best-checkpoint")
    if args.out is not None:
        _check_out(check_writable_file("--out", args.out))


def _summary(
    args: argparse.Namespace, history: loop.History, world: int, device: torch.device
) -> dict[str, Any]:
    """The JSON summary of a finished run."""
    validation, kept = None, None
    if history.val_step:
        validation = {
            "score": "per-video frame accuracy (ORBIT)" if args.orbit else "accuracy",
            "step": history.val_step,
            "accuracy": history.val_accuracy,
            "ci95": history.val_ci95,
        }
        found = best.best_so_far(history.val_step, history.val_accuracy)
        keep = best_file(args)
        if found is not None and keep is not None:
            kept = {"step": found[0], "score": found[1], "path": str(keep.resolve())}
    return {
        "format": _SUMMARY_FORMAT,
        "options": _record(args),
        "preset": args.preset_report,
        "processes": world,
        "device": device.type,
        "steps_done": history.step[-1] if history.step else 0,
        "final_loss": history.loss[-1] if history.loss else None,
        "final_accuracy": history.accuracy[-1] if history.accuracy else None,
        "validation": validation,
        "best": kept,
        "seconds": history.seconds[-1] if history.seconds else 0.0,
        "checkpoint": None if args.checkpoint is None else str(Path(args.checkpoint).resolve()),
        "history": history.as_dict(),
    }


def _schedule(args: argparse.Namespace) -> Schedule | None:
    """``--schedule`` and ``--warmup-steps``; None for the default (the rate as given), so
    that a run without them resumes checkpoints made before they existed."""
    schedule = Schedule(args.schedule, args.warmup_steps)
    return None if schedule == Schedule() else schedule


def _run(args: argparse.Namespace) -> dict[str, Any] | None:
    """Check, build and train; the summary on rank 0, None on the other ranks."""
    check_options(args)
    _check_best(args)
    device = resolve_device(args.device)
    check_precision_for(args, device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    resolve_memory_budget(args, device)  # --memory-budget: measures, says what it chose
    init_from_environment(str(device))
    rank, world = rank_and_world()
    options = _record(args)
    same_outcome_on_every_rank(lambda: _check_files(args, options), rank_zero_only=True)
    inputs = same_outcome_on_every_rank(lambda: build(args, device))
    if args.preset_report is not None and rank == 0 and not args.quiet:
        report = args.preset_report
        shown = ", ".join(f"{option_name(k)} {v}" for k, v in report["set"].items())
        kept = ", ".join(f"{option_name(k)} {v}" for k, v in report["kept"].items()) or "none"
        print(f"--preset {report['name']}: {shown}; kept from the command line: {kept}",
              file=sys.stderr)  # fmt: skip
    if inputs.validation is None and args.data is not None and rank == 0 and not args.quiet:
        print("no validation: pass --validation-data for held-out classes", file=sys.stderr)
    history = loop.fit(
        inputs.learner,
        inputs.episodes,
        inputs.optimizer,
        args.steps,
        inputs.lite,
        query_batch=args.query_batch,
        tasks_per_step=args.tasks_per_step,
        validation=inputs.validation,
        validate_every=args.validate_every,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=not args.no_resume,
        best_checkpoint=best_file(args),
        progress=not args.quiet,
        description=f"{args.learner}/{args.backbone} on {world} process(es)",
        subset_seed=args.seed,
        schedule=_schedule(args),
        clip_grad_norm=args.clip_grad_norm,
        augment=Augment(seed=args.seed) if args.augment else None,
        metadata={"options": options, "model": _model(args)},
        precision=args.precision,
        channels_last=args.channels_last,
        deterministic=args.deterministic,
    )
    if rank != 0:
        return None
    result = _summary(args, history, world, device)
    if args.out is not None:
        checkpoints.write_atomic((json.dumps(result, indent=2) + "\n").encode(), Path(args.out))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check, train, print the summary (rank 0); 0 on success, 2 on bad input, 130
    when interrupted (Ctrl-C, or SIGTERM from torchrun; the last whole step is checkpointed).

    Bad input is one line on stderr, ``python -m litekit.train: error: --option=value:
    fix`` (with ``(rank r)`` after ``error`` under torchrun, where every rank reports it).
    """
    clean = False
    try:
        result = _run(parse_options(argv))
        clean = True
    except ValueError as error:
        rank, world = rank_and_world()
        where = f" (rank {rank})" if world > 1 else ""
        print(f"{PROGRAM}: error{where}: {error}", file=sys.stderr)
        # Every rank raised a collective error together; any other one left ranks waiting.
        clean = world == 1 or isinstance(error, CollectiveError)
        return 2
    except KeyboardInterrupt:  # fit has said which step it saved, and where
        return 130
    finally:
        leave_process_group(clean)
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0
