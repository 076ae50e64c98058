"""At one memory budget: LITE on large images against full back-propagation on small ones.

    python benchmarks/accuracy_vs_size.py --threads 1            # CPU defaults, a few minutes
    python benchmarks/accuracy_vs_size.py --sweep 32 64 128       # also accuracy against size
    python benchmarks/accuracy_vs_size.py --device cuda --backbone efficientnet_b0 \
        --small-size 112 --large-size 224 --way 10 --shot 50 --query 4 --chunk 100 \
        --lr 1e-3 --steps 300 --workers 8

The paper's claim, on the embedded dataset (whose classes differ partly in detail that
small images lose):
1. the budget is the measured memory of one full back-propagation step on small images
   (``--small-size``), for a task of N = way · shot support images: on CUDA its peak
   ``max_memory_allocated``; on the CPU its step share, the peak RSS of a fresh process
   minus its RSS just before the step (Python and torch alone take hundreds of MiB);
2. the planner (`litekit.measure.plan_budget`) finds, by measurement, the largest h (and
   query batch) whose LITE step on large images (``--large-size``) fits that budget; full
   back-propagation on the large images is measured too, and does not fit;
3. both are meta-trained for the same steps on the same tasks (same classes, same images,
   rendered at their sizes) from the same initial weights, and scored on the same held-out
   tasks of unseen classes, with 95% confidence intervals (1.96 · s / √n over tasks).
The target: LITE ahead by at least 5 points, with intervals that do not overlap.
``--sweep`` also trains with LITE at each listed size (the same h) to show accuracy rising
with image size, next to an ideal observer's accuracy for this dataset. Torchvision
backbones start from random weights (no download) with GroupNorm in place of BatchNorm
(``--norm group``, the default): a randomly initialised BatchNorm in eval mode normalises
nothing, and EfficientNet-B0 then maps every image to nearly zero.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from litekit import EpisodeSampler, Lite, episode_loader, evaluate, fit
from litekit.data import ProceduralImages
from litekit.learners import backbone_from_name, learner_from_name
from litekit.measure import (
    StepConfig,
    format_bytes,
    measure_training_step,
    parse_bytes,
    plan_budget,
)


def make_learner(args: argparse.Namespace, device: torch.device):
    torch.manual_seed(args.seed)  # the same initial weights for every run
    backbone = backbone_from_name(args.backbone, width=args.width, norm=args.norm)
    return learner_from_name(args.learner, backbone, image_size=args.large_size).to(device)


def datasets(args: argparse.Namespace, size: int):
    """Training classes 0..C-1 and test classes C..2C-1 of the same code shuffle."""
    train = ProceduralImages(args.classes, args.images_per_class, size, seed=args.seed)
    test = ProceduralImages(
        args.classes, args.images_per_class, size, seed=args.seed, first_class=args.classes
    )
    return train, test


def train_and_score(args, size: int, h: int | None, query_batch, chunk: int, device) -> dict:
    train, test = datasets(args, size)
    tasks = EpisodeSampler(train, args.way, args.shot, args.query, args.steps, seed=args.seed)
    held_out = EpisodeSampler(
        test, args.way, args.shot, args.query, args.eval_tasks, seed=args.seed + 1
    )
    learner = make_learner(args, device)
    optimizer = torch.optim.Adam(learner.parameters(), lr=args.lr)
    lite = None
    if h is not None:
        lite = Lite(h, chunk_size=chunk, generator=torch.Generator().manual_seed(args.seed))
    loader = episode_loader(train, tasks, num_workers=args.workers)
    start = time.perf_counter()
    history = fit(
        learner,
        loader,
        optimizer,
        args.steps,
        lite,
        query_batch=query_batch,
        progress=args.progress,
        description=f"{size}px {'full' if h is None else f'LITE h={h}'}",
    )
    seconds = time.perf_counter() - start
    result = evaluate(learner, episode_loader(test, held_out, num_workers=args.workers), lite)
    return {
        "image_size": size,
        "h": h,
        "query_batch": query_batch,
        "accuracy": result.mean,
        "ci95": result.ci95,
        "interval": [result.mean - result.ci95, result.mean + result.ci95],
        "ideal_accuracy": test.ideal_accuracy(args.way),
        "train_seconds": seconds,
        "final_training_accuracy": sum(history.accuracy[-20:]) / len(history.accuracy[-20:]),
    }


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="conv4")
    parser.add_argument("--width", type=int, default=32, help="conv4 channels")
    parser.add_argument(
        "--norm",
        choices=["model", "group"],
        default="group",
        help="torchvision backbones: GroupNorm (trainable from scratch) or the model's own",
    )
    parser.add_argument("--learner", default="protonets", choices=["protonets", "simple_cnaps"])
    parser.add_argument("--small-size", type=int, default=32)
    parser.add_argument("--large-size", type=int, default=64)
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--shot", type=int, default=10)
    parser.add_argument("--query", type=int, default=10, help="query images per class")
    parser.add_argument("--chunk", type=int, default=25)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-tasks", type=int, default=200)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--images-per-class", type=int, default=40)
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--budget", default=None, help="default: full back-prop's, small images")
    parser.add_argument("--h", type=int, default=None, help="skip the planner, use this h")
    parser.add_argument("--query-batch", type=int, default=None, help="with --h")
    parser.add_argument("--search", nargs="+", default=["h", "query_batch"])
    parser.add_argument("--sweep", type=int, nargs="*", default=[])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true")
    return parser.parse_args()


def equal_memory(args: argparse.Namespace, device: torch.device) -> tuple[dict, int, int, int]:
    """The budget (full back-propagation's, small images), the LITE set-up for large images
    that fits it (planned by measurement unless --h is given), and the memory report.

    Returns (report, h, query batch, chunk size).
    """
    n, n_query = args.way * args.shot, args.way * args.query
    small = StepConfig(
        backbone=args.backbone,
        learner=args.learner,
        image_size=args.small_size,
        n_support=n,
        way=args.way,
        n_query=n_query,
        chunk_size=args.chunk,
        width=args.width,
        norm=args.norm,
        device=args.device,
        repeats=1,
        threads=args.threads,
    )
    # On CUDA the budget bounds the allocated peak; on the CPU the step's own share of the
    # process's peak RSS (Python and torch alone take hundreds of MiB before any work).
    bound = "peak" if device.type == "cuda" else "step_share"
    full_small = measure_training_step(small)
    full_large = measure_training_step(replace(small, image_size=args.large_size))
    budget = full_small.used(bound) if args.budget is None else parse_bytes(args.budget, "--budget")
    large = replace(small, image_size=args.large_size)
    if args.h is None:
        plan = plan_budget(budget, large, margin=args.margin, memory=bound, search=args.search)
        h, query_batch, chunk = plan.config.h, plan.config.query_batch, plan.config.chunk_size
        lite = plan.measurement
        probes = len(plan.probes)
    else:
        h, query_batch, chunk = args.h, args.query_batch, args.chunk
        lite = measure_training_step(replace(large, h=h, query_batch=query_batch))
        probes = 1
    report = {
        "counted": "cuda max_memory_allocated"
        if bound == "peak"
        else "step share of a fresh process's peak RSS (peak minus RSS before the step)",
        "budget_bytes": budget,
        "margin": args.margin,
        "full_small_bytes": full_small.used(bound),
        "full_large_bytes": full_large.used(bound),
        "lite_large_bytes": lite.used(bound),
        "full_large_fits": full_large.fits(budget, 0.0, bound),
        "lite_large_fits": lite.fits(budget, 0.0, bound),
        "process_peaks_bytes": {
            "full_small": full_small.peak_bytes,
            "full_large": full_large.peak_bytes,
            "lite_large": lite.peak_bytes,
        },
        "planner_measurements": probes,
        "readable": {
            "budget": format_bytes(budget),
            "full_small": format_bytes(full_small.used(bound)),
            "full_large": format_bytes(full_large.used(bound)),
            "lite_large": format_bytes(lite.used(bound)),
        },
    }
    return report, h, query_batch, chunk


def main() -> None:
    args = parse_options()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n, n_query = args.way * args.shot, args.way * args.query
    began = time.perf_counter()
    memory, h, query_batch, chunk = equal_memory(args, device)
    full_run = train_and_score(args, args.small_size, None, None, args.chunk, device)
    lite_run = train_and_score(args, args.large_size, h, query_batch, chunk, device)
    sweep = []
    for size in args.sweep:
        if size == args.large_size:
            sweep.append(lite_run)
        else:
            sweep.append(train_and_score(args, size, h, query_batch, chunk, device))
    gap = lite_run["accuracy"] - full_run["accuracy"]
    report = {
        "benchmark": "accuracy_vs_size",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "task": {"way": args.way, "shot": args.shot, "n_support": n, "n_query": n_query},
        "training": {
            "backbone": args.backbone,
            "learner": args.learner,
            "steps": args.steps,
            "lr": args.lr,
            "eval_tasks": args.eval_tasks,
            "seed": args.seed,
        },
        "memory": memory,
        "full_backprop_small": full_run,
        "lite_large": lite_run,
        "sweep": sweep,
        "lite_minus_full_points": 100 * gap,
        "intervals_overlap": lite_run["interval"][0] <= full_run["interval"][1],
        "target_met": 100 * gap >= 5 and lite_run["interval"][0] > full_run["interval"][1],
        "seconds": time.perf_counter() - began,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
