"""Notebooks 04 and 05 at the paper's scale on a GPU, in bf16 with channels-last, timed.

    python benchmarks/gpu_notebooks.py                  # on a CUDA machine (pip install -e .)
    python benchmarks/gpu_notebooks.py --cpu-smoke      # the same parameters' wiring, tiny, CPU

Runs each notebook headless with papermill (from ``notebooks/``, as the tests do), with the
parameters below: notebook 04 with ``SCALE="gpu"`` (EfficientNet-B0, 112 against 224 px,
tasks of N = 500, bf16 and channels-last), and notebook 05 with EfficientNet-B0 at 224 px in
bf16 and channels-last, over N = 100 to 1000. Every ``assert`` in a notebook must hold for its
run to pass. Writes the executed copies and ``gpu-notebooks.json`` (each notebook's
parameters, wall time in minutes, and the error if it failed) to ``--out`` (default
``benchmarks/results``; ``build/gpu-notebooks-smoke`` for the smoke run), and the executed
copies to ``build/gpu-notebooks/`` (``build/gpu-notebooks-smoke/``).

``--cpu-smoke`` runs both on the CPU with their small CI parameters (from the notebooks'
``metadata.litekit.ci_parameters``) and bf16 with channels-last: it checks that the
precision and layout parameters reach every step, in a few minutes. Exit status: the number
of notebooks that failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LAYOUT = {"PRECISION": "bf16", "CHANNELS_LAST": True}

# The paper's setting on one GPU. Notebook 04's SCALE="gpu" preset sets its backbone, sizes,
# task shape, precision and layout itself; FRESH_PROCESS stays None (in-process on CUDA).
GPU_RUNS: dict[str, dict[str, Any]] = {
    "04_meta_training_large_images.ipynb": {"SCALE": "gpu", "DEVICE": "cuda"},
    "05_memory_and_time.ipynb": {
        "DEVICE": "cuda",
        "BACKBONE": "efficientnet_b0",
        "IMAGE_SIZE": 224,
        "N_VALUES": [100, 250, 500, 1000],
        "SIZES": [112, 160, 224, 320],
        "N_FOR_SIZES": 100,
        "N_QUERY": 40,
        "H": 8,
        "QUERY_BATCH": 8,
        "CHUNK": 100,
        "REPEATS": 5,
        "PLAN_N": 500,
        "PLAN_SIZES": [160, 224, 288, 320, 384, 448],
        **LAYOUT,
    },
}


def ci_parameters(path: Path) -> dict[str, Any]:
    """The small parameters the notebook's CI run uses (``metadata.litekit.ci_parameters``)."""
    notebook = nbformat.read(path, as_version=4)
    return dict(notebook["metadata"].get("litekit", {}).get("ci_parameters", {}))


def parameters_for(name: str, smoke: bool) -> dict[str, Any]:
    """What one run of notebook ``name`` is given: the GPU set-up, or the CPU smoke set-up."""
    if not smoke:
        return {**GPU_RUNS[name], "INTERACTIVE": False}
    return {**ci_parameters(NOTEBOOKS / name), "DEVICE": "cpu", **LAYOUT, "INTERACTIVE": False}


def run(name: str, parameters: dict[str, Any], executed: Path, timeout: int) -> dict[str, Any]:
    """Execute one notebook into ``executed``; its wall time, and the error if it failed."""
    import papermill

    started = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / name),
            str(executed / name),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(NOTEBOOKS),
            execution_timeout=timeout,
            progress_bar=False,
        )
    except Exception as failure:  # noqa: BLE001  (recorded in the JSON, counted in the exit)
        error = f"{type(failure).__name__}: {str(failure)[-1500:]}"
    minutes = (time.perf_counter() - started) / 60
    print(f"{name}: {'failed' if error else 'ran'} in {minutes:.1f} min", flush=True)
    if error:
        print(error, file=sys.stderr)
    return {"notebook": name, "parameters": parameters, "minutes": round(minutes, 2),
            "error": error}  # fmt: skip


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny runs on the CPU")
    parser.add_argument("--out", type=Path, default=None, help="folder for the results")
    parser.add_argument("--only", choices=sorted(GPU_RUNS), action="append",
                        help="run only this notebook (repeatable)")  # fmt: skip
    parser.add_argument("--cell-timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        parser.error("no CUDA device is visible: run on a GPU machine, or pass --cpu-smoke")
    executed = ROOT / "build" / ("gpu-notebooks-smoke" if args.cpu_smoke else "gpu-notebooks")
    out = args.out or (executed if args.cpu_smoke else ROOT / "benchmarks" / "results")
    for folder in (out, executed):
        folder.mkdir(parents=True, exist_ok=True)
    runs = [run(name, parameters_for(name, args.cpu_smoke), executed, args.cell_timeout)
            for name in (args.only or sorted(GPU_RUNS))]  # fmt: skip
    report = {"benchmark": "gpu_notebooks", "device": device_name(), "torch": torch.__version__,
              "smoke": args.cpu_smoke, "runs": runs}  # fmt: skip
    (out / "gpu-notebooks.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return sum(r["error"] is not None for r in runs)


if __name__ == "__main__":
    sys.exit(main())
