"""Peak memory and step time of `meta_train_step`, full back-propagation against LITE, and
each LITE step against its floor.

    python benchmarks/lite_memory.py                      # CPU defaults (a few minutes)
    python benchmarks/lite_memory.py --device cuda --backbone efficientnet_b0 \\
        --image-size 224 --n 100 1000 --h 8 --query-batch 8 --n-query 40 --chunk 50 \\
        --precision bf16 --channels-last

Each configuration runs in a fresh Python process (this script, ``--child``), so one
configuration's allocations never inflate another's peak: on the CPU the peak resident set
size of that process (and the step's own share, above the resident size just before the
timed steps), on CUDA ``torch.cuda.max_memory_allocated``. Step time is the median over
``--repeats`` steps after one warm-up step (`litekit.measure.median_seconds`: CUDA events on
CUDA, the wall clock elsewhere).

The floor of a LITE step is what no LITE step can avoid (`litekit.measure.measure_floor`):
the no-grad pass over the N support images, plus, per query batch, one forward and backward
pass over the h sampled images and the batch. It is timed in the SAME process as the step,
right after it (so both see the same clocks, kernels and allocator), the same way, each part
the median of at least 10 calls after a warm-up call. Each LITE row reports the floor's
parts (``no_grad_s``, ``grad_pass_s`` × ``query_batches`` = ``grad_s``), the no-grad
throughput (``no_grad_images_per_s``) and ``step_over_floor``. A step can only be slower
than its floor: one faster than 0.95 × its floor means the floor is mis-measured, and the
script says which row and exits with status 1 (``--floor-tolerance`` changes the 0.95, for
tiny CPU smoke runs whose timings are noise).

``--precision``, ``--channels-last`` and ``--deterministic`` run every step (and floor) in
that precision, memory layout and kernel mode (`litekit.precision`,
`litekit.determinism`); ``--compile MODE`` runs the backbone through ``torch.compile`` in
that mode (the warm-up step compiles), to see whether compiling wins before litekit's
training functions offer it. Prints one JSON document (also to ``--out``): the rows, and ratios
that summarise them (LITE's peak memory and step time at the largest N over the smallest,
full back-propagation's peak and time over LITE's, the range of step / floor).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from litekit.measure import StepConfig, measure_floor, measure_training_step
from litekit.measure.floor import MIN_FLOOR_REPEATS
from litekit.measure.training_step import COMPILE_MODES
from litekit.precision import PRECISIONS

#: A step faster than this fraction of its floor is impossible: the floor is mis-measured.
FLOOR_TOLERANCE = 0.95
MIB = 2**20


def measure_here(config: StepConfig) -> dict:
    """One row, measured in this process: the step, then (LITE) its floor."""
    measured = measure_training_step(config, fresh_process=False)
    row = {
        "kind": "full" if config.full else "lite",
        "n": config.n_support,
        "h": None if config.full else config.h,
        "precision": config.precision,
        "channels_last": config.channels_last,
        "compile": config.compile,
        "peak_mib": None if measured.peak_bytes is None else measured.peak_bytes / MIB,
        "step_mib": None if measured.step_bytes is None else measured.step_bytes / MIB,
        "step_s": measured.step_seconds,
        "error": measured.error,
    }
    if config.full or measured.step_seconds is None:
        return row
    try:
        floor = measure_floor(config, max(MIN_FLOOR_REPEATS, config.repeats))
    except torch.OutOfMemoryError:
        row["error"] = "floor: out of memory"
        return row
    parts = floor.as_dict()
    parts.pop("n_support")
    parts["floor_repeats"] = parts.pop("repeats")
    row.update(parts)
    row["step_over_floor"] = row["step_s"] / row["floor_s"]
    return row


def child(config_json: str, deterministic: bool) -> int:
    """``--child``: measure one configuration in this (fresh) process, print its row."""
    from litekit.determinism import use_deterministic_kernels
    from litekit.measure.rss import configure_allocator

    configure_allocator()
    if deterministic:
        use_deterministic_kernels()
    config = StepConfig(**json.loads(config_json))
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    print(json.dumps(measure_here(config)))
    return 0


def measure_row(config: StepConfig, deterministic: bool) -> dict:
    """One row, measured by this script in a fresh process (``--child``)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(asdict(config))]
    if deterministic:
        command.append("--deterministic")
    environment = dict(os.environ)
    if config.threads is not None:
        environment["OMP_NUM_THREADS"] = str(config.threads)
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1])
    why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    if done.returncode < 0:
        why = f"killed by signal {-done.returncode} (out of memory?)"
    kind = "full" if config.full else "lite"
    return {"kind": kind, "n": config.n_support, "h": None if config.full else config.h,
            "precision": config.precision, "channels_last": config.channels_last,
            "compile": config.compile, "peak_mib": None, "step_mib": None, "step_s": None,
            "error": why}  # fmt: skip


def label(row: dict) -> str:
    """A row in words: ``lite N=1000 h=8 bf16 channels-last``."""
    words = [row["kind"], f"N={row['n']}"]
    words += [f"h={row['h']}"] if row["h"] is not None else []
    words += [row["precision"]] + (["channels-last"] if row["channels_last"] else [])
    words += [f"compiled ({row['compile']})"] if row.get("compile") else []
    return " ".join(words)


def floor_violations(rows: Sequence[dict], tolerance: float = FLOOR_TOLERANCE) -> list[str]:
    """The rows whose step is faster than ``tolerance`` × its floor, each said in words."""
    return [
        f"{label(r)}: step {r['step_s']:.4f} s is faster than {tolerance} x its floor "
        f"{r['floor_s']:.4f} s (step / floor {r['step_over_floor']:.3f}): the floor is "
        "mis-measured"
        for r in rows
        if r.get("floor_s") is not None and r["step_s"] < tolerance * r["floor_s"]
    ]


def summarise(rows: list[dict], sizes: list[int], tolerance: float = FLOOR_TOLERANCE) -> dict:
    """LITE at the largest N over the smallest, full over LITE, and step over floor."""
    lite = {r["n"]: r for r in rows if r["kind"] == "lite" and r["step_s"] is not None}
    full = {r["n"]: r for r in rows if r["kind"] == "full" and r["step_s"] is not None}
    small, large = min(sizes), max(sizes)
    summary: dict = {}
    if small in lite and large in lite and small != large:
        for key in ("peak_mib", "step_mib", "step_s"):
            if lite[small][key]:
                summary[f"lite_{key}_n{large}_over_n{small}"] = lite[large][key] / lite[small][key]
    for n in sizes:
        if n in lite and n in full:
            if lite[n]["peak_mib"]:
                summary[f"full_over_lite_peak_n{n}"] = full[n]["peak_mib"] / lite[n]["peak_mib"]
            summary[f"full_over_lite_step_s_n{n}"] = full[n]["step_s"] / lite[n]["step_s"]
    ratios = [r["step_over_floor"] for r in lite.values() if "step_over_floor" in r]
    if ratios:
        summary["max_step_over_floor"] = max(ratios)
        summary["min_step_over_floor"] = min(ratios)
    summary["floor_violations"] = floor_violations(rows, tolerance)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--learner", default="protonets")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64, help="conv4 channels")
    parser.add_argument("--n", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--h", type=int, default=8)
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--n-query", type=int, default=40)
    parser.add_argument("--query-batch", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=MIN_FLOOR_REPEATS)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--kinds", nargs="+", default=["full", "lite"], choices=["full", "lite"])
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--deterministic", action="store_true", help="deterministic kernels")
    parser.add_argument("--compile", choices=COMPILE_MODES, default=None,
                        help="torch.compile the backbone (ProtoNets only)")  # fmt: skip
    parser.add_argument("--floor-tolerance", type=float, default=FLOOR_TOLERANCE,
                        help="a step faster than this x its floor is a violation (exit 1); "
                        "lower it only for noisy tiny CPU runs")  # fmt: skip
    parser.add_argument("--out", default=None, help="also write the JSON report here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser


def configs(args: argparse.Namespace) -> list[StepConfig]:
    """Every (N, kind) configuration asked for, checked before anything is measured."""
    return [
        StepConfig(
            backbone=args.backbone,
            learner=args.learner,
            image_size=args.image_size,
            n_support=n,
            way=args.way,
            n_query=args.n_query,
            h=None if kind == "full" else args.h,
            query_batch=None if kind == "full" else args.query_batch,
            chunk_size=args.chunk,
            width=args.width,
            device=args.device,
            repeats=args.repeats,
            threads=args.threads,
            precision=args.precision,
            channels_last=args.channels_last,
            compile=args.compile,
        )  # fmt: skip
        for n in args.n
        for kind in args.kinds
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the JSON report; 0, or 1 when a step is faster than its floor allows,
    2 on a bad option."""
    args = build_parser().parse_args(argv)
    if args.child is not None:
        return child(args.child, args.deterministic)
    try:
        planned = configs(args)
    except ValueError as error:
        print(f"lite_memory: error: {error}", file=sys.stderr)
        return 2
    rows = []
    for config in planned:
        rows.append(measure_row(config, args.deterministic))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    options = {k: v for k, v in vars(args).items() if k != "child"}
    report = {
        "benchmark": "lite_memory",
        "device": device_name,
        "torch": torch.__version__,
        "config": options,
        "rows": rows,
        "summary": summarise(rows, args.n, args.floor_tolerance),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    for violation in report["summary"]["floor_violations"]:
        print(f"lite_memory: {violation}", file=sys.stderr)
    return 1 if report["summary"]["floor_violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
