"""Speed-up of the torch.func vmap path of `per_image_gradients` over its loop path.

    python benchmarks/vmap_speedup.py [--n 20 50] [--image-size 32] [--learners protonets
        simple_cnaps] [--repeats 3] [--device cpu|cuda] [--dtype float32|float64]

For each learner and support size N it times `per_image_gradients(..., method="vmap")`
(one batched vector-Jacobian product over all N images) and `method="loop"` (one LITE
gradient with a fixed one-image subset per image and path), after one warm-up call each,
checks that the two agree, and prints one JSON object with a row per configuration.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from litekit.diagnostics import LEARNERS, demo_task, per_image_gradients
from litekit.measure import median_seconds


def timed(function, repeats: int, device: torch.device) -> tuple[float, object]:
    """Median seconds over ``repeats`` calls after one warm-up call, and the warm-up's result."""
    result = function()
    return median_seconds(function, device, repeats, warm_up=False), result


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    rows = []
    for learner_name in args.learners:
        for n in args.n:
            learner, episode = demo_task(
                learner_name,
                n_support=n,
                way=args.way,
                n_query=args.query,
                image_size=args.image_size,
                width=args.width,
                depth=args.depth,
                seed=args.seed,
                dtype=dtype,
                device=device,
            )
            vmap_s, vmapped = timed(
                lambda learner=learner, episode=episode: per_image_gradients(
                    learner, episode, method="vmap"
                ),
                args.repeats,
                device,
            )
            loop_s, looped = timed(
                lambda learner=learner, episode=episode: per_image_gradients(
                    learner, episode, method="loop"
                ),
                args.repeats,
                device,
            )
            gap = float((vmapped.per_image - looped.per_image).norm() / looped.per_image.norm())
            rows.append(
                {
                    "learner": learner_name,
                    "n": n,
                    "image_size": args.image_size,
                    "parameters": int(vmapped.full.numel()),
                    "vmap_seconds": round(vmap_s, 4),
                    "loop_seconds": round(loop_s, 4),
                    "speedup": round(loop_s / vmap_s, 2),
                    "relative_difference": gap,
                }
            )
    return {
        "benchmark": "per_image_gradients: vmap path vs loop path",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "dtype": args.dtype,
        "repeats": args.repeats,
        "backbone": f"conv4(width={args.width}, depth={args.depth})",
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--learners", nargs="+", default=["protonets", "simple_cnaps"], choices=LEARNERS
    )
    parser.add_argument("--n", nargs="+", type=int, default=[20, 50], help="support sizes N")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--query", type=int, default=10)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    result = run(parser.parse_args(argv))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
