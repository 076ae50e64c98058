"""A resumed run equals an unbroken one exactly: python -m litekit.train, checked end to end.

    python benchmarks/resume_check.py --device cuda --out build/resume -- \\
        --backbone efficientnet_b0 --image-size 224 --h 40 ...     # options of the runs

Three runs of ``python -m litekit.train`` with the same options and ``--deterministic``:
``--steps 2`` into a checkpoint; the same command with ``--steps 4``, which resumes it (under
``torchrun`` with one process when ``--torchrun``); and an unbroken ``--steps 4`` run into
another checkpoint. Prints the largest absolute difference between the two final
checkpoints, over the learner's weights and the optimiser's state, and the tensor where it
is, and writes it with the runs' summaries to ``<out>/resume_check.json``. The checkpoints
go to a temporary folder (``--work`` to keep them), so ``--out`` holds small files only.
Exit status 0 when the largest difference is exactly 0, 1 when it is not (or a run failed).

Deterministic kernels (`litekit.determinism`) are what makes this hold on a GPU: without
them cuDNN may choose another convolution algorithm in the resumed process, and atomic
additions sum in another order.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch


def tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in nested dicts and lists, with its path (``optimizer.state.3.exp_avg``)."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from tensors(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from tensors(item, f"{prefix}.{index}")


def largest_difference(a: dict, b: dict) -> tuple[float, str]:
    """The largest |a - b| over the learner's and the optimiser's tensors, and where."""
    first = dict(tensors({"learner": a["learner"], "optimizer": a["optimizer"]}))
    second = dict(tensors({"learner": b["learner"], "optimizer": b["optimizer"]}))
    if first.keys() != second.keys():
        return float("inf"), f"different tensors: {sorted(first.keys() ^ second.keys())[:3]}"
    worst, where = 0.0, "(none)"
    for name, tensor in first.items():
        other = second[name]
        if tensor.shape != other.shape:
            return float("inf"), f"{name}: shapes {tuple(tensor.shape)}, {tuple(other.shape)}"
        if tensor.numel() == 0:
            continue
        gap = float((tensor.double() - other.double()).abs().max())
        if gap > worst or where == "(none)":
            worst, where = max(worst, gap), name
    return worst, where


def train(options: list[str], steps: int, checkpoint: Path, out: Path, torchrun: bool) -> int:
    """One ``python -m litekit.train`` run (under a one-process torchrun when asked)."""
    launcher = [sys.executable, "-m", "litekit.train"]
    if torchrun:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "1", "-m", "litekit.train"]  # fmt: skip
    command = [*launcher, *options, "--steps", str(steps), "--deterministic", "--quiet",
               "--checkpoint", str(checkpoint), "--out", str(out)]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0:
        print(f"resume_check: {' '.join(command)}\n{done.stderr[-2000:]}", file=sys.stderr)
    return done.returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="build/resume-check")
    parser.add_argument("--work", default=None, help="keep the checkpoints here")
    parser.add_argument("--torchrun", action="store_true", help="resume under torchrun")
    parser.add_argument("train_options", nargs="*", help="after --: the runs' options")
    args = parser.parse_args(argv)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    if args.work is None:
        with tempfile.TemporaryDirectory(prefix="litekit-resume-") as work:
            return check(args, folder, Path(work))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    return check(args, folder, Path(args.work))


def check(args: argparse.Namespace, folder: Path, work: Path) -> int:
    """The three runs (checkpoints in ``work``, summaries in ``folder``), then the comparison."""
    from litekit import checkpoint as checkpoints

    for path in (work / "run.pt", work / "straight.pt"):
        path.unlink(missing_ok=True)
    for name in ("first.json", "resumed.json", "straight.json"):
        (folder / name).unlink(missing_ok=True)
    options = [*args.train_options, "--device", args.device]
    codes = {
        "first": train(options, 2, work / "run.pt", folder / "first.json", False),
        "resumed": train(options, 4, work / "run.pt", folder / "resumed.json", args.torchrun),
        "straight": train(options, 4, work / "straight.pt", folder / "straight.json", False),
    }
    result: dict[str, Any] = {"device": args.device, "torchrun": args.torchrun, "exit": codes}
    if any(codes.values()):
        result["largest_difference"] = None
        print(f"resume_check: a run failed: {codes}")
    else:
        resumed = checkpoints.load(work / "run.pt")
        straight = checkpoints.load(work / "straight.pt")
        worst, where = largest_difference(resumed, straight)
        result.update(steps=[resumed["step"], straight["step"]], largest_difference=worst,
                      where=where)  # fmt: skip
        for name in ("first", "resumed", "straight"):
            summary = json.loads((folder / f"{name}.json").read_text())
            result[name] = {key: summary[key] for key in ("device", "processes", "steps_done")}
            result[name]["loss"] = summary["history"]["loss"]
        print(f"resumed vs unbroken ({args.device}, deterministic): steps {result['steps']}, "
              f"largest |difference| {worst!r} at {where}")  # fmt: skip
    (folder / "resume_check.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["largest_difference"] == 0.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
