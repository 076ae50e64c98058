"""Images per second that the embedded dataset renders, at one image size.

    python benchmarks/data_throughput.py                 # 224 px, 1 process and 2 workers
    python benchmarks/data_throughput.py --size 512 --workers 4

The target: at least 500 images per second at 224 px on 2 cores. Two figures, in one
run: one process rendering with one thread, and a DataLoader with ``--workers`` worker
processes (one thread each), which is how training reads the data. Items are spread over
the whole dataset (a stride through the indices), so no class or image repeats. Prints one
JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
from torch.utils.data import DataLoader, Subset

from litekit.data import ProceduralImages


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)


def single_process(data: ProceduralImages, indices: list[int]) -> float:
    torch.set_num_threads(1)
    data[indices[0]]  # warm the coordinate caches
    start = time.perf_counter()
    for index in indices:
        data[index]
    return len(indices) / (time.perf_counter() - start)


def data_loader(data: ProceduralImages, indices: list[int], workers: int, batch: int) -> float:
    loader = DataLoader(
        Subset(data, indices),
        batch_size=batch,
        num_workers=workers,
        worker_init_fn=_one_thread,
        persistent_workers=False,
    )
    iterator = iter(loader)
    first = next(iterator)  # workers started and warm: time the rest
    start = time.perf_counter()
    count = 0
    for images, _ in iterator:
        count += images.shape[0]
    elapsed = time.perf_counter() - start
    del first
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    data = ProceduralImages(image_size=args.size)
    stride = len(data) // args.images
    indices = [i * stride for i in range(args.images)]
    one = single_process(data, indices[: args.images // 3])
    many = data_loader(data, indices, args.workers, args.batch)
    print(
        json.dumps(
            {
                "benchmark": "data_throughput",
                "image_size": args.size,
                "images": args.images,
                "single_process_images_per_s": round(one, 1),
                "workers": args.workers,
                "loader_images_per_s": round(many, 1),
                "target_images_per_s": 500,
                "meets_target": many >= 500,
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "torch": torch.__version__,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
