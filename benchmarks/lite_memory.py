"""Peak memory and step time of `meta_train_step`: full back-propagation against LITE.

    python benchmarks/lite_memory.py                      # CPU defaults (about 3 minutes)
    python benchmarks/lite_memory.py --device cuda --backbone efficientnet_b0 \
        --image-size 224 --n 100 1000 --h 8 --query-batch 8 --query 40 --chunk 50

Each configuration runs in a fresh Python process, so one configuration's allocations never
inflate another's peak. Memory is the peak resident set size of that process on the CPU
(with the resident size just before the first step, so the step's own share is visible),
and ``torch.cuda.max_memory_allocated`` on CUDA. Step time is the median over ``--repeats``
steps after one warm-up step.

The floor for a LITE step is what no LITE step can avoid: a no-grad forward over the N
support images, plus, per query batch, a forward and backward over h support images and
the batch. It is timed in the same process, and the JSON reports step / floor.
Prints one JSON document: the rows and the summary ratios the targets refer to.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from litekit import Episode, Lite, ProtoNets, meta_train_step
from litekit.learners import conv4
from litekit.lite import embed_without_grad


def current_rss_mib() -> float:
    """Resident set size now, from /proc (Linux); falls back to the peak elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_episode(n: int, way: int, query: int, size: int, seed: int) -> Episode:
    g = torch.Generator().manual_seed(seed)
    return Episode(
        support_images=torch.rand(n, 3, size, size, generator=g),
        support_labels=torch.arange(n) % way,
        query_images=torch.rand(way * query, 3, size, size, generator=g),
        query_labels=torch.arange(way * query) % way,
        class_ids=torch.arange(way),
    )


def timed(function, device: torch.device, repeats: int) -> float:
    """Median wall time of ``function`` over ``repeats`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(config: dict) -> dict:
    """One configuration, in this (fresh) process."""
    torch.manual_seed(0)
    device = torch.device(config["device"])
    backbone = conv4() if config["backbone"] == "conv4" else config["backbone"]
    learner = ProtoNets(backbone).to(device)
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.0)  # lr 0: every step is the same
    episode = make_episode(config["n"], config["way"], config["query"], config["image_size"], 0)
    if device.type == "cuda" and config["pin_memory"]:
        episode = episode.pin_memory()
    full = config["kind"] == "full"
    lite = (
        None
        if full
        else Lite(
            config["h"], chunk_size=config["chunk"], generator=torch.Generator().manual_seed(0)
        )
    )
    query_batch = None if full else config["query_batch"]

    def step() -> None:
        meta_train_step(learner, episode, optimizer, lite=lite, query_batch=query_batch)

    rest_mib = current_rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row = dict(config)
    try:
        row["step_s"] = timed(step, device, config["repeats"])
    except torch.OutOfMemoryError:
        row["out_of_memory"] = True
        return row
    if device.type == "cuda":
        row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        row["peak_rss_mib"] = peak_rss_mib()
        row["rest_rss_mib"] = rest_mib
        row["step_rss_mib"] = row["peak_rss_mib"] - rest_mib
    if not full:
        row["floor_s"] = floor_time(learner, episode, config, device)
        row["step_over_floor"] = row["step_s"] / row["floor_s"]
    return row


def floor_time(learner: ProtoNets, episode: Episode, config: dict, device) -> float:
    """No-grad forward over N + per query batch, forward and backward over h + batch."""
    h, batch = config["h"], config["query_batch"]
    batches = [episode.query_images[i : i + batch] for i in range(0, episode.n_query, batch)]
    support_rows = episode.support_images[:h]

    def no_grad_pass() -> None:
        embed_without_grad(learner.embed, episode.support_images, config["chunk"], device)

    def graph_pass() -> None:
        for queries in batches:
            images = torch.cat([support_rows, queries]).to(device, non_blocking=True)
            learner.embed(images).sum().backward()

    return timed(no_grad_pass, device, config["repeats"]) + timed(
        graph_pass, device, config["repeats"]
    )


def run_fresh(config: dict) -> dict:
    """`measure` in a new interpreter, so peaks are per configuration."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {**config, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(rows: list[dict], sizes: list[int], device: str) -> dict:
    """The ratios the targets refer to."""
    lite = {r["n"]: r for r in rows if r["kind"] == "lite" and "step_s" in r}
    full = {r["n"]: r for r in rows if r["kind"] == "full" and "step_s" in r}
    key = "peak_gib" if device.startswith("cuda") else "peak_rss_mib"
    small, large = min(sizes), max(sizes)
    summary: dict = {}
    if small in lite and large in lite:
        summary[f"lite_peak_ratio_n{large}_over_n{small}"] = lite[large][key] / lite[small][key]
        if key == "peak_rss_mib":
            summary[f"lite_step_rss_ratio_n{large}_over_n{small}"] = (
                lite[large]["step_rss_mib"] / lite[small]["step_rss_mib"]
            )
    for n in sizes:
        if n in lite and n in full:
            summary[f"full_over_lite_peak_n{n}"] = full[n][key] / lite[n][key]
    if lite:
        summary["max_step_over_floor"] = max(r["step_over_floor"] for r in lite.values())
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--n", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--h", type=int, default=8)
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--query", type=int, default=10, help="query images per class")
    parser.add_argument("--query-batch", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=["full", "lite"])
    parser.add_argument("--no-pin-memory", dest="pin_memory", action="store_false")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return
    rows = []
    for n in args.n:
        for kind in args.kinds:
            config = {
                "kind": kind,
                "n": n,
                "device": args.device,
                "backbone": args.backbone,
                "image_size": args.image_size,
                "h": args.h,
                "way": args.way,
                "query": args.query,
                "query_batch": args.query_batch,
                "chunk": args.chunk,
                "repeats": args.repeats,
                "pin_memory": args.pin_memory,
            }
            rows.append(run_fresh(config))
            print(json.dumps(rows[-1]), file=sys.stderr)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        json.dumps(
            {
                "benchmark": "lite_memory",
                "device": device_name,
                "torch": torch.__version__,
                "rows": rows,
                "summary": summarise(rows, args.n, args.device),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
