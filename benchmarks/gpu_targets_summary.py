"""The GPU targets, judged from the JSON that benchmarks/gpu_targets.sh wrote.

    python benchmarks/gpu_targets_summary.py benchmarks/results --image-size 224 --n 1000

Reads every ``gpu-targets-*.json`` report of ``benchmarks/lite_memory.py`` in the folder, the
resume check (``resume/resume_check.json``) and the torchrun tests' exit status
(``gpu-targets-torchrun.json``), prints one line per measured row and one per target, and
writes ``gpu-targets-summary.json``. The main row is LITE with EfficientNet-B0, ProtoNets,
bfloat16 and channels-last at ``--image-size`` and N = ``--n``; the targets:

- its step takes at most 0.15 s, and at most 1.3 times its floor;
- its peak memory is at most 1.0 GiB;
- it is at least 4 times faster than full back-propagation in float32 at the same N, in
  the same run (not judged when full back-propagation did not fit);
- its no-grad pass embeds at least 15,000 images per second.

It also prints what deterministic kernels cost, and what compiling the backbone
(``torch.compile``, mode ``reduce-overhead``) gains, as step-time ratios to the main row.

With ``--smoke`` (the CPU dry run's tiny sizes) the values are printed but not judged.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GIB_IN_MIB = 1024.0
#: The torch.compile mode whose row is compared with the eager main row.
COMPILE_MODE = "reduce-overhead"
#: (name, what is compared, the limit, True when the value must be at most the limit)
TARGETS = (
    ("LITE bf16+channels-last step (s)", "step_s", 0.15, True),
    ("its step / its floor", "step_over_floor", 1.3, True),
    ("its peak memory (GiB)", "peak_gib", 1.0, True),
    ("fp32 full back-propagation step / its step", "speedup_over_full", 4.0, False),
    ("its no-grad throughput (images/s)", "no_grad_images_per_s", 15_000.0, False),
)


def load_rows(folder: Path) -> list[dict]:
    """Every row of every report, with its report's backbone, learner, size and mode."""
    rows = []
    for path in sorted(folder.glob("gpu-targets-*.json")):
        report = json.loads(path.read_text())
        if report.get("benchmark") != "lite_memory":
            continue
        config = report["config"]
        for row in report["rows"]:
            rows.append({
                **row, "file": path.name, "backbone": config["backbone"],
                "learner": config["learner"], "image_size": config["image_size"],
                "deterministic": config["deterministic"], "device": report["device"],
            })  # fmt: skip
    return rows


def find(rows: Sequence[dict], **wanted: Any) -> dict | None:
    """The first row with every ``wanted`` value."""
    return next((r for r in rows if all(r.get(k) == v for k, v in wanted.items())), None)


def main_rows(rows: Sequence[dict], image_size: int, n: int) -> dict[str, dict | None]:
    """The rows the targets compare: LITE bf16+CL, its deterministic and compiled twins, and
    fp32 full back-propagation (eager unless named)."""
    same = {"backbone": "efficientnet_b0", "learner": "protonets", "image_size": image_size, "n": n}
    lite = {"kind": "lite", "precision": "bf16", "channels_last": True, **same}
    return {
        "lite": find(rows, deterministic=False, compile=None, **lite),
        "deterministic": find(rows, deterministic=True, compile=None, **lite),
        "compiled": find(rows, deterministic=False, compile=COMPILE_MODE, **lite),
        "full": find(rows, kind="full", precision="fp32", channels_last=False,
                     deterministic=False, compile=None, **same),
    }  # fmt: skip


def values(found: dict[str, dict | None]) -> dict[str, Any]:
    """What the targets read from the main rows (None where a row is missing or failed)."""
    lite, full = found["lite"], found["full"]
    ok = lite is not None and lite.get("step_s") is not None
    out: dict[str, Any] = {key: (lite.get(key) if ok else None) for key in
                           ("step_s", "step_over_floor", "no_grad_images_per_s")}  # fmt: skip
    out["peak_gib"] = lite["peak_mib"] / GIB_IN_MIB if ok and lite["peak_mib"] else None
    out["speedup_over_full"] = None
    if ok and full is not None and full.get("step_s") is not None:
        out["speedup_over_full"] = full["step_s"] / lite["step_s"]
    out["full_error"] = None if full is None else full.get("error")
    for twin in ("deterministic", "compiled"):
        other = found[twin]
        out[f"{twin}_step_over_plain"] = None
        if ok and other is not None and other.get("step_s") is not None:
            out[f"{twin}_step_over_plain"] = other["step_s"] / lite["step_s"]
    return out


def judge(measured: dict[str, Any], smoke: bool) -> list[dict]:
    """One verdict per target: "met", "missed", "not measured" or "smoke"."""
    verdicts = []
    for name, key, limit, at_most in TARGETS:
        value = measured[key]
        if value is None:
            verdict = "not measured"
            if key == "speedup_over_full" and measured["full_error"]:
                verdict += f" (full back-propagation: {measured['full_error']})"
        elif smoke:
            verdict = "smoke (tiny sizes: not judged)"
        else:
            verdict = "met" if (value <= limit if at_most else value >= limit) else "missed"
        bound = f"<= {limit:g}" if at_most else f">= {limit:g}"
        verdicts.append({"target": name, "value": value, "limit": bound, "verdict": verdict})
    return verdicts


def row_line(row: dict) -> str:
    mode = row["precision"] + (" CL" if row["channels_last"] else "")
    mode += " det" if row["deterministic"] else ""
    mode += f" compiled ({row['compile']})" if row.get("compile") else ""
    what = f"{row['learner']}/{row['backbone']} {row['image_size']}px {row['kind']} N={row['n']}"
    if row.get("error"):
        return f"  {what} {mode}: {row['error']}"
    text = f"  {what} {mode}: step {row['step_s']:.4f} s, peak {row['peak_mib'] or 0:.0f} MiB"
    if row.get("floor_s") is not None:
        text += (
            f", floor {row['floor_s']:.4f} s (no-grad {row['no_grad_s']:.4f} + "
            f"{row['query_batches']} x {row['grad_pass_s']:.4f}), step/floor "
            f"{row['step_over_floor']:.2f}, no-grad {row['no_grad_images_per_s']:,.0f} img/s"
        )
    return text  # fmt: skip


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    rows = load_rows(args.folder)
    measured = values(main_rows(rows, args.image_size, args.n))
    verdicts = judge(measured, args.smoke)
    resume = read_json(args.folder / "resume" / "resume_check.json")
    torchrun = read_json(args.folder / "gpu-targets-torchrun.json")
    print(f"== {len(rows)} measured row(s) in {args.folder}")
    for row in rows:
        print(row_line(row))
    print("== targets")
    for v in verdicts:
        shown = "-" if v["value"] is None else f"{v['value']:.4g}"
        print(f"  {v['target']}: {shown} (target {v['limit']}): {v['verdict']}")
    ratio = measured["deterministic_step_over_plain"]
    print(f"  deterministic kernels: step x {'-' if ratio is None else f'{ratio:.3f}'}")
    ratio = measured["compiled_step_over_plain"]
    print(f"  torch.compile ({COMPILE_MODE}) backbone: step x "
          f"{'-' if ratio is None else f'{ratio:.3f}'} (a gain is below 1)")  # fmt: skip
    if resume is not None:
        print(f"  resumed vs unbroken, deterministic: largest |difference| "
              f"{resume['largest_difference']!r} (exactly 0 required)")  # fmt: skip
    if torchrun is not None:
        print(f"  torchrun tests: exit status {torchrun['exit_status']}")
    summary = {"rows": rows, "measured": measured, "targets": verdicts, "resume": resume,
               "torchrun": torchrun, "smoke": args.smoke}  # fmt: skip
    (args.folder / "gpu-targets-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
