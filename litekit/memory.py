"""Peak memory and time of a meta-training step, and a planner that fits LITE to a budget.

Measuring (`measure_step`):
- on CUDA, the peak is ``torch.cuda.max_memory_allocated`` over the step (statistics reset
  just before it), so it counts the tensors the step holds at once: weights, optimiser
  state, activations kept for back-propagation, one chunk of the no-grad pass;
- on the CPU, the peak is the peak resident set size (RSS) of a *fresh* Python process
  that builds the learner and one task and runs the steps: the whole process, Python and
  torch included, because that is what a machine's memory must hold. The resident size
  just before the timed steps is reported too (``rest_bytes``), and the step's own share is
  measured over the timed steps after a warm-up step (which makes one-time allocations:
  thread pools, kernel caches): their peak RSS minus the RSS just before them (Linux resets
  the peak through /proc/self/clear_refs; the measuring process makes glibc return freed
  tensors to the system at once). One process per configuration keeps one configuration's
  allocations out of another's peak. In-process CPU measurements (``fresh_process=False``)
  are quicker but approximate: memory the allocator kept from earlier work can hide part of
  a step.
Step time is the median over ``repeats`` steps after one warm-up step.

Planning (`plan_budget`): memory grows with h, the query batch, the chunk size and the
image size, so each can be found by bisection, with each probe a real measurement. A
configuration *fits* when its measured peak (or, with ``count="step"``, its step share) is
at most ``(1 - margin) · budget``; the
margin absorbs what one measurement cannot see (allocator fragmentation, other processes,
a different driver). With a fixed image size the planner finds, in this order,
1. the largest h in 1..N (h = N is full back-propagation), with the query batch tied to
   min(h, query set size), so the graph holds as many support as query images until the
   whole query set fits in one batch, and the chunk size at its floor;
2. the largest query batch up to the query set, with that h;
3. the largest chunk size up to N, with that h and query batch.
Any of the three can be held at the value given instead (``search=``).
With a fixed h it finds the largest image size instead. Every probe is kept in the plan,
so a notebook can show how the search went.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from litekit._checks import bad_argument, check_choice, check_int
from litekit.learners.build import (
    LEARNERS,
    NORMS,
    OPTIMIZERS,
    backbone_from_name,
    learner_from_name,
    optimizer_from_name,
)

SEARCHES = ("h", "query_batch", "chunk_size")
COUNTS = ("peak", "step")
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


# --- resident memory of this process ----------------------------------------------------


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return peak_rss()


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes: Linux's VmHWM (which
    `reset_peak_rss` can reset), else ``getrusage``'s high-water mark since start."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # KiB on Linux


def _trim_heap() -> None:
    """Give freed heap memory back to the system (glibc), so the resident size is live data."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def configure_allocator() -> None:
    """In a measuring process: large allocations always use mmap (glibc), so freed tensors
    leave the resident set at once and one step's memory cannot hide in another's."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD: fixed, no dynamic growth
        libc.mallopt(-1, 256 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def parse_bytes(value: int | float | str, name: str = "budget") -> int:
    """``"6GiB"``, ``"500 MB"``, ``2**30`` → bytes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value > 0:
            return int(value)
    elif isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        for unit in sorted(_UNITS, key=len, reverse=True):
            if text.endswith(unit):
                try:
                    number = float(text[: -len(unit)])
                except ValueError:
                    break
                if number > 0:
                    return int(number * _UNITS[unit])
                break
    raise bad_argument(name, value, "pass a positive number of bytes or a string like '6GiB'.")


def format_bytes(value: float) -> str:
    """Bytes in MiB or GiB, for people."""
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def median_seconds(function: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls, after one warm-up call.

    CUDA work is synchronised before and after each call, so the time is the work's own.
    """
    function()
    times = []
    for _ in range(check_int("repeats", repeats, minimum=1)):
        _synchronize(device)
        start = time.perf_counter()
        function()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- one configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class StepConfig:
    """One meta-training step to measure: a learner, a task size and a LITE set-up.

    Args:
        backbone: ``"conv4"`` or a torchvision model name (random weights, eval mode).
        learner: ``"protonets"``, ``"simple_cnaps"`` or ``"cnaps"``.
        image_size: side of the square images.
        n_support: N, support images in the task.
        way: classes in the task.
        n_query: query images in the task.
        h: support images back-propagated through; ``None`` (or h >= N) is full
            back-propagation.
        query_batch: query images per backward pass; ``None`` is the whole query set.
        chunk_size: images per call of the no-grad pass.
        width: channels of ``"conv4"`` (ignored for other backbones).
        norm: ``"model"`` keeps a torchvision model's own normalisation (BatchNorm, eval
            mode); ``"group"`` replaces it by GroupNorm (`litekit.learners.group_norm`), as
            for training a randomly initialised model from scratch.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        optimizer: ``"adam"`` (its state is part of the peak) or ``"sgd"``.
        repeats: timed steps after one warm-up step.
        threads: torch CPU threads in the measuring process (``None``: torch's default).
    """

    backbone: str = "conv4"
    learner: str = "protonets"
    image_size: int = 64
    n_support: int = 50
    way: int = 5
    n_query: int = 50
    h: int | None = None
    query_batch: int | None = None
    chunk_size: int = 64
    width: int = 64
    norm: str = "model"
    device: str = "cpu"
    optimizer: str = "adam"
    repeats: int = 2
    threads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            raise bad_argument("backbone", self.backbone, "pass 'conv4' or a torchvision name.")
        check_choice("learner", self.learner, LEARNERS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_int("image_size", self.image_size, minimum=16)
        check_int("n_support", self.n_support, minimum=1)
        check_int("way", self.way, minimum=1)
        if self.way > self.n_support:
            raise bad_argument(
                "way", self.way, f"every class needs a support image; use way <= {self.n_support}."
            )
        check_int("n_query", self.n_query, minimum=1)
        if self.h is not None:
            check_int("h", self.h, minimum=0, fix="pass None for full back-propagation or h >= 0.")
        if self.query_batch is not None:
            check_int("query_batch", self.query_batch, minimum=1)
        check_int("chunk_size", self.chunk_size, minimum=1)
        check_int("width", self.width, minimum=1)
        check_choice("norm", self.norm, NORMS)
        check_int("repeats", self.repeats, minimum=1)
        if self.threads is not None:
            check_int("threads", self.threads, minimum=1)
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as error:
            raise bad_argument("device", self.device, "pass 'cpu', 'cuda' or 'cuda:0'.") from error
        if device.type not in ("cpu", "cuda"):
            raise bad_argument("device", self.device, "litekit.memory measures 'cpu' or 'cuda'.")

    @property
    def full(self) -> bool:
        """True when every support image keeps its graph (no LITE)."""
        return self.h is None or self.h >= self.n_support

    def label(self) -> str:
        kind = "full" if self.full else f"LITE h={self.h}"
        return f"{self.backbone} {self.image_size}px N={self.n_support} {kind}"


@dataclass(frozen=True)
class Measurement:
    """Peak memory (bytes) and median step time (seconds) of one `StepConfig`.

    ``peak_bytes`` is the whole peak (all steps, the warm-up included); ``step_bytes`` the
    step's own share, peak minus ``rest_bytes``. Where ``rest_bytes`` is read differs by
    device: on CUDA before the warm-up step, so the share includes the optimiser state that
    the warm-up creates (memory a training step needs); on the CPU after it, just before the
    timed steps, so one-time allocations (thread pools, kernel caches, and the optimiser
    state) stay out of the share. ``error`` says why a configuration could not run
    (``"out of memory"``, a crash); the numbers are then None.
    """

    config: StepConfig
    peak_bytes: int | None
    rest_bytes: int | None
    step_seconds: float | None
    device_name: str
    error: str | None = None
    step_bytes: int | None = None

    def used(self, count: str = "peak") -> int | None:
        """``peak_bytes`` (``count="peak"``) or ``step_bytes`` (``count="step"``)."""
        return (
            self.peak_bytes if check_choice("count", count, COUNTS) == "peak" else self.step_bytes
        )

    def fits(self, budget_bytes: float, margin: float = 0.0, count: str = "peak") -> bool:
        """Measured, and its peak (or step share) at most ``(1 - margin) · budget_bytes``."""
        used = self.used(count)
        return used is not None and used <= (1 - margin) * budget_bytes

    def as_dict(self) -> dict:
        row = asdict(self.config)
        row.update(
            peak_bytes=self.peak_bytes,
            rest_bytes=self.rest_bytes,
            step_bytes=self.step_bytes,
            step_seconds=self.step_seconds,
            device_name=self.device_name,
            error=self.error,
        )
        return row


def build_step(config: StepConfig):
    """The learner, optimiser, task and Lite of ``config``, on its device (seeded)."""
    from litekit import Episode, Lite

    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's generator untouched
        torch.manual_seed(0)
        backbone = backbone_from_name(config.backbone, width=config.width, norm=config.norm)
        learner = learner_from_name(config.learner, backbone, image_size=config.image_size)
    learner = learner.to(device)
    # lr 0: every step is the same step
    optimizer = optimizer_from_name(config.optimizer, learner.parameters(), 0.0)
    g = torch.Generator().manual_seed(0)
    size = config.image_size
    episode = Episode(  # images stay on the host; chunks and batches move to the device
        support_images=torch.rand(config.n_support, 3, size, size, generator=g),
        support_labels=torch.arange(config.n_support) % config.way,
        query_images=torch.rand(config.n_query, 3, size, size, generator=g),
        query_labels=torch.arange(config.n_query) % config.way,
        class_ids=torch.arange(config.way),
    )
    if device.type == "cuda":
        episode = episode.pin_memory()
    lite = None
    if not config.full:
        lite = Lite(config.h, chunk_size=config.chunk_size, generator=g)
    return learner, optimizer, episode, lite


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_here(config: StepConfig) -> Measurement:
    """Measure ``config`` in this process (see `measure_step` for a fresh one)."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
    try:
        return _measure_built(config, device, name, *build_step(config))
    except torch.OutOfMemoryError:
        return Measurement(config, None, None, None, name, "out of memory")
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _measure_built(config, device, name, learner, optimizer, episode, lite) -> Measurement:
    from litekit.train import meta_train_step

    def step() -> float:
        _synchronize(device)
        start = time.perf_counter()
        meta_train_step(learner, episode, optimizer, lite=lite, query_batch=config.query_batch)
        _synchronize(device)
        return time.perf_counter() - start

    if device.type == "cuda":  # the warm-up counts: the optimiser's state is created there
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        rest = torch.cuda.memory_allocated(device)
        step()
        times = [step() for _ in range(config.repeats)]
        peak = torch.cuda.max_memory_allocated(device)
        return Measurement(
            config, int(peak), int(rest), statistics.median(times), name,
            step_bytes=int(peak - rest),
        )  # fmt: skip
    # CPU: the warm-up step also makes one-time allocations (thread pools, kernel caches);
    # the step's share is measured over the timed steps, from a fresh peak.
    gc.collect()
    reset_peak_rss()
    step()
    warm_peak = peak_rss()
    gc.collect()
    _trim_heap()
    resettable = reset_peak_rss()
    rest = current_rss()
    times = [step() for _ in range(config.repeats)]
    timed_peak = peak_rss()
    peak = max(warm_peak, timed_peak)
    share = timed_peak - rest if resettable else peak - rest
    return Measurement(
        config, int(peak), int(rest), statistics.median(times), name, step_bytes=int(share)
    )


def measure_step(config: StepConfig, *, fresh_process: bool | None = None) -> Measurement:
    """Peak memory and step time of one ``meta_train_step`` under ``config``.

    ``fresh_process`` (default: True on the CPU, False on CUDA) runs the measurement in a
    new Python process: on the CPU the peak RSS is per process, so that is the only way to
    measure one configuration alone. A process that dies (killed for memory, say) gives a
    `Measurement` with ``error`` set.
    """
    if not isinstance(config, StepConfig):
        raise bad_argument("config", config, "pass a litekit.memory.StepConfig.")
    if fresh_process is None:
        fresh_process = torch.device(config.device).type == "cpu"
    if not fresh_process:
        return measure_here(config)
    environment = dict(os.environ)
    if config.threads is not None:
        environment["OMP_NUM_THREADS"] = str(config.threads)
    out = subprocess.run(
        [sys.executable, "-m", "litekit.memory", "child", json.dumps(asdict(config))],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    name = "cpu" if torch.device(config.device).type == "cpu" else config.device
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        if out.returncode < 0:
            why = f"killed by signal {-out.returncode} (out of memory?)"
        return Measurement(config, None, None, None, name, why)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    return Measurement(
        config, row["peak_bytes"], row["rest_bytes"], row["step_seconds"], row["device_name"],
        row["error"], row["step_bytes"],
    )  # fmt: skip


# --- the planner ----------------------------------------------------------------------------


@dataclass
class Plan:
    """What `plan_budget` found: a configuration whose measured peak fits the budget.

    ``config`` is the chosen configuration, ``measurement`` its measurement, and ``probes``
    every measurement the search made, in order.
    """

    config: StepConfig
    measurement: Measurement
    budget_bytes: int
    margin: float
    probes: list[Measurement] = field(default_factory=list)
    count: str = "peak"

    @property
    def limit_bytes(self) -> float:
        """The usable part of the budget: ``(1 - margin) · budget``."""
        return (1 - self.margin) * self.budget_bytes

    def as_dict(self) -> dict:
        return {
            "budget_bytes": self.budget_bytes,
            "margin": self.margin,
            "limit_bytes": self.limit_bytes,
            "count": self.count,
            "chosen": self.measurement.as_dict(),
            "probes": [p.as_dict() for p in self.probes],
        }

    def __str__(self) -> str:
        c, m = self.config, self.measurement
        what = "full back-propagation" if c.full else f"h={c.h}"
        used = "peak" if self.count == "peak" else "step share"
        return (
            f"{what}, query_batch={c.query_batch}, chunk_size={c.chunk_size} at "
            f"{c.image_size} px: {used} {format_bytes(m.used(self.count))} of a "
            f"{format_bytes(self.budget_bytes)} budget ({self.margin:.0%} margin), "
            f"{m.step_seconds:.3f} s per step, {len(self.probes)} measurements"
        )


def _largest(low: int, high: int, fits: Callable[[int], bool]) -> int | None:
    """The largest v in [low, high] with fits(v), for a monotone fits (True then False).

    ``high`` is tried right after ``low``: when everything fits (a chunk size, often) that
    costs two measurements instead of a whole bisection.
    """
    if not fits(low):
        return None
    if low == high or fits(high):
        return high
    high -= 1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def plan_budget(
    budget: int | float | str,
    config: StepConfig,
    *,
    margin: float = 0.1,
    count: str = "peak",
    search: Sequence[str] = SEARCHES,
    min_chunk_size: int = 8,
    image_sizes: Sequence[int] | None = None,
    fresh_process: bool | None = None,
    measure: Callable[[StepConfig], Measurement] | None = None,
) -> Plan:
    """Find, by measurement, the largest LITE set-up whose peak fits ``budget``.

    Args:
        budget: bytes, or a string such as ``"8GiB"``; on the CPU it bounds the peak RSS of
            the whole measuring process, on CUDA the peak allocated by tensors.
        config: the task and model (backbone, learner, image size, N, way, query size,
            device); its ``h``, ``query_batch`` and ``chunk_size`` are the values kept for
            anything not searched.
        margin: fraction of the budget kept free (0.1: use at most 90% of it).
        count: what the budget bounds: ``"peak"``, the whole measured peak, or ``"step"``,
            the step's own share (peak minus the memory in use before it; see `Measurement`
            for where each device reads that). On the
            CPU ``"step"`` leaves out the hundreds of MiB that Python and torch take before
            any work, so that budgets compare training steps, not interpreters.
        search: which of ``"h"``, ``"query_batch"``, ``"chunk_size"`` to search, in that
            order of priority (see the module docstring). Ignored with ``image_sizes``.
        min_chunk_size: the chunk size while h and the query batch are searched.
        image_sizes: candidate sizes, increasing; then the planner finds the largest image
            size that fits with ``config``'s h, query batch and chunk size instead.
        fresh_process: passed to `measure_step`.
        measure: replaces `measure_step` (for tests, or a cached measurement).

    Raises ValueError, naming the smallest configuration and its peak, when nothing fits.
    """
    budget_bytes = parse_bytes(budget)
    if not isinstance(config, StepConfig):
        raise bad_argument("config", config, "pass a litekit.memory.StepConfig.")
    if not 0 <= margin < 1:
        raise bad_argument("margin", margin, "pass a fraction in [0, 1), e.g. 0.1.")
    check_choice("count", count, COUNTS)
    if isinstance(search, str):
        raise bad_argument("search", search, f"pass a list of names from {list(SEARCHES)}.")
    for name in search:
        check_choice("search", name, SEARCHES)
    check_int("min_chunk_size", min_chunk_size, minimum=1)
    if image_sizes is not None:
        sizes = sorted({check_int("image_sizes", s, minimum=16) for s in image_sizes})
        if not sizes:
            raise bad_argument("image_sizes", image_sizes, "pass at least one size.")
    run = measure or (lambda c: measure_step(c, fresh_process=fresh_process))
    probes: list[Measurement] = []
    seen: dict[StepConfig, Measurement] = {}

    def probe(candidate: StepConfig) -> Measurement:
        if candidate not in seen:
            seen[candidate] = run(candidate)
            probes.append(seen[candidate])
        return seen[candidate]

    def fits(candidate: StepConfig) -> bool:
        return probe(candidate).fits(budget_bytes, margin, count)

    def nothing_fits(candidate: StepConfig) -> ValueError:
        m = seen[candidate]
        got = format_bytes(m.used(count)) if m.peak_bytes is not None else m.error
        return bad_argument(
            "budget",
            format_bytes(budget_bytes),
            f"even {candidate.label()} with query_batch={candidate.query_batch}, "
            f"chunk_size={candidate.chunk_size} needs {got} (limit "
            f"{format_bytes((1 - margin) * budget_bytes)} with margin {margin}); raise the "
            "budget or lower the image size, the task size or the margin.",
        )

    chosen = config
    if image_sizes is not None:
        index = _largest(0, len(sizes) - 1, lambda i: fits(replace(config, image_size=sizes[i])))
        if index is None:
            raise nothing_fits(replace(config, image_size=sizes[0]))
        chosen = replace(config, image_size=sizes[index])
    else:
        n, n_query = config.n_support, config.n_query
        if "h" in search:
            start = config
            if "chunk_size" in search:
                start = replace(start, chunk_size=min(min_chunk_size, n))

            def with_h(v: int) -> StepConfig:
                if "query_batch" not in search:
                    return replace(start, h=v)
                return replace(start, h=v, query_batch=min(v, n_query))

            h = _largest(1, n, lambda v: fits(with_h(v)))
            if h is None:
                raise nothing_fits(with_h(1))
            chosen = with_h(h)
        if "query_batch" in search:
            low = min(chosen.query_batch or n_query, n_query)
            batch = _largest(low, n_query, lambda v: fits(replace(chosen, query_batch=v)))
            if batch is None:
                raise nothing_fits(replace(chosen, query_batch=low))
            chosen = replace(chosen, query_batch=batch)
        if chosen.full:  # no no-grad pass: the chunk size does not matter
            chosen = replace(chosen, chunk_size=config.chunk_size)
        elif "chunk_size" in search:
            low = min(min_chunk_size, n)
            chunk = _largest(low, n, lambda v: fits(replace(chosen, chunk_size=v)))
            if chunk is None:
                raise nothing_fits(replace(chosen, chunk_size=low))
            chosen = replace(chosen, chunk_size=chunk)
        if not search and not fits(chosen):
            raise nothing_fits(chosen)
    return Plan(chosen, probe(chosen), budget_bytes, margin, probes, count)


# --- reference measurements -----------------------------------------------------------------


def load_reference(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """A reference file in JSON lines: its header (first line: the device) and its rows.

    ``benchmarks/reference/h200-protonets-step.jsonl`` has one row per configuration, with
    ``kind`` (``"full"``, ``"lite"``, ...), ``net``, ``size``, ``n``, ``h``, and ``peak_gib``
    and ``step_s``, or ``oom: true`` where the step did not fit.
    """
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        raise bad_argument("path", str(path), "the reference file is empty.")
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def reference_curve(
    rows: Sequence[dict], kind: str, net: str, size: int, h: int = 40
) -> list[tuple[int, float | None, float | None]]:
    """(N, peak GiB, step seconds) of one kind of step against N; None where out of memory."""
    points = [
        (r["n"], r.get("peak_gib"), r.get("step_s"))
        for r in rows
        if (r["kind"], r["net"], r["size"], r.get("h")) == (kind, net, size, h)
    ]
    return sorted(points)


def plot_reference(rows: Sequence[dict], net: str, size: int, ax=None, h: int = 40):
    """Peak memory against N, full back-propagation against LITE, from reference rows."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    for kind, colour, label in (
        ("full", "tab:orange", "full back-propagation"),
        ("lite", "tab:blue", f"minimal LITE, h={h}"),
    ):
        points = [(n, peak) for n, peak, _ in reference_curve(rows, kind, net, size, h)]
        shown = [(n, peak) for n, peak in points if peak is not None]
        if shown:
            ax.plot(*zip(*shown, strict=True), "o-", color=colour, label=label)
        for n, peak in points:
            if peak is None:
                ax.axvline(n, color=colour, linestyle=":", label=f"{label}: out of memory")
    ax.set(xlabel="support-set size N", ylabel="peak GiB", title=f"{net}, {size} px")
    ax.legend(fontsize="small")
    return ax


# --- command line ---------------------------------------------------------------------------


def _config_from(args: argparse.Namespace) -> StepConfig:
    return StepConfig(
        backbone=args.backbone,
        learner=args.learner,
        image_size=args.image_size,
        n_support=args.n_support,
        way=args.way,
        n_query=args.n_query,
        h=args.h,
        query_batch=args.query_batch,
        chunk_size=args.chunk_size,
        width=args.width,
        norm=args.norm,
        device=args.device,
        repeats=args.repeats,
        threads=args.threads,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m litekit.memory measure|plan ...``: print JSON (see ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["child"]:  # the fresh process of `measure_step`
        configure_allocator()
        print(json.dumps(measure_here(StepConfig(**json.loads(argv[1]))).as_dict()))
        return
    parser = argparse.ArgumentParser(prog="python -m litekit.memory", description=__doc__)
    parser.add_argument("command", choices=["measure", "plan"])
    parser.add_argument("--backbone", default="conv4")
    parser.add_argument("--learner", default="protonets", choices=LEARNERS)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--n-support", type=int, default=50)
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--n-query", type=int, default=50)
    parser.add_argument("--h", type=int, default=None)
    parser.add_argument("--query-batch", type=int, default=None)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64, help="conv4 channels")
    parser.add_argument("--norm", choices=NORMS, default="model")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--budget", default=None, help="for plan: e.g. 8GiB")
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--count", choices=COUNTS, default="peak", help="what the budget bounds")
    parser.add_argument("--search", nargs="+", default=list(SEARCHES), choices=SEARCHES)
    parser.add_argument("--image-sizes", type=int, nargs="+", default=None)
    parser.add_argument(
        "--compare-full", action="store_true", help="for plan: also measure full back-prop"
    )
    args = parser.parse_args(argv)
    config = _config_from(args)
    if args.command == "measure":
        print(json.dumps(measure_step(config).as_dict(), indent=2))
        return
    if args.budget is None:
        parser.error("plan needs --budget, e.g. --budget 8GiB")
    plan = plan_budget(
        args.budget,
        config,
        margin=args.margin,
        count=args.count,
        search=args.search,
        image_sizes=args.image_sizes,
    )
    result = {"plan": str(plan), **plan.as_dict()}
    if args.compare_full:
        result["full_backprop"] = measure_step(replace(plan.config, h=None)).as_dict()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
