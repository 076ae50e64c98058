"""Peak memory and step time of `meta_train_step`: full back-propagation against LITE.

    python benchmarks/lite_memory.py                      # CPU defaults (a few minutes)
    python benchmarks/lite_memory.py --device cuda --backbone efficientnet_b0 \
        --image-size 224 --n 100 1000 --h 8 --query-batch 8 --n-query 40 --chunk 50

Each configuration is measured by `litekit.measure.measure_training_step` in a fresh Python
process, so one configuration's allocations never inflate another's peak: on the CPU the
peak resident set size of that process (and the step's own share, above the resident size
just before the timed steps), on CUDA ``torch.cuda.max_memory_allocated``. Step time is the
median over ``--repeats`` steps after one warm-up step.

The floor for a LITE step is what no LITE step can avoid: a no-grad forward over the N
support images, plus, per query batch, one forward and backward over h support images and
the batch. It is timed here on the same machine, and the JSON reports step / floor.
Prints one JSON document: the rows, and ratios that summarise them (LITE's peak memory and
step time at the largest N over the smallest, full back-propagation's peak over LITE's, and
the largest step / floor).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from litekit.lite import embed_without_grad
from litekit.measure import StepConfig, build_training_step, measure_training_step, median_seconds


def floor_seconds(config: StepConfig) -> float:
    """No-grad forward over N, plus per query batch a forward and backward over h + batch."""
    learner, _, episode, _ = build_training_step(config)
    device = learner.device
    batch = config.query_batch or config.n_query
    batches = [episode.query_images[i : i + batch] for i in range(0, config.n_query, batch)]
    rows = episode.support_images[: config.h]

    def no_grad_pass() -> None:
        embed_without_grad(learner.embed, episode.support_images, config.chunk_size, device)

    def graph_passes() -> None:
        for queries in batches:
            images = torch.cat([rows, queries]).to(device, non_blocking=True)
            learner.embed(images).sum().backward()

    return median_seconds(no_grad_pass, device, config.repeats) + median_seconds(
        graph_passes, device, config.repeats
    )


def row_of(config: StepConfig) -> dict:
    """Measure one configuration (fresh process), plus its floor when it is a LITE step."""
    measurement = measure_training_step(config, fresh_process=True)
    row = {
        "kind": "full" if config.full else "lite",
        "n": config.n_support,
        "h": None if config.full else config.h,
        "peak_mib": None if measurement.peak_bytes is None else measurement.peak_bytes / 2**20,
        "step_mib": None if measurement.step_bytes is None else measurement.step_bytes / 2**20,
        "step_s": measurement.step_seconds,
        "error": measurement.error,
    }
    if not config.full and measurement.step_seconds is not None:
        row["floor_s"] = floor_seconds(config)
        row["step_over_floor"] = row["step_s"] / row["floor_s"]
    return row


def summarise(rows: list[dict], sizes: list[int]) -> dict:
    """LITE at the largest N over the smallest, full over LITE, and step over floor."""
    lite = {r["n"]: r for r in rows if r["kind"] == "lite" and r["step_s"] is not None}
    full = {r["n"]: r for r in rows if r["kind"] == "full" and r["step_s"] is not None}
    small, large = min(sizes), max(sizes)
    summary: dict = {}
    if small in lite and large in lite:
        for key in ("peak_mib", "step_mib"):
            summary[f"lite_{key}_n{large}_over_n{small}"] = lite[large][key] / lite[small][key]
    for n in sizes:
        if n in lite and n in full:
            summary[f"full_over_lite_peak_n{n}"] = full[n]["peak_mib"] / lite[n]["peak_mib"]
    if lite:
        summary["max_step_over_floor"] = max(r["step_over_floor"] for r in lite.values())
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--learner", default="protonets")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--n", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--h", type=int, default=8)
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--n-query", type=int, default=40)
    parser.add_argument("--query-batch", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--kinds", nargs="+", default=["full", "lite"], choices=["full", "lite"])
    args = parser.parse_args()
    rows = []
    for n in args.n:
        for kind in args.kinds:
            config = StepConfig(
                backbone=args.backbone, learner=args.learner, image_size=args.image_size,
                n_support=n, way=args.way, n_query=args.n_query,
                h=None if kind == "full" else args.h,
                query_batch=None if kind == "full" else args.query_batch,
                chunk_size=args.chunk, device=args.device, repeats=args.repeats,
                threads=args.threads,
            )  # fmt: skip
            rows.append(row_of(config))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    report = {
        "benchmark": "lite_memory",
        "device": device_name,
        "torch": torch.__version__,
        "config": vars(args),
        "rows": rows,
        "summary": summarise(rows, args.n),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
