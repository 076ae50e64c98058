"""A planner that fits LITE to a memory budget by measurement (`plan_budget`).

Memory grows with h, the query batch, the chunk size and the image size, so each can be
found by bisection, with each probe a real measurement (`measure_training_step`). A
configuration *fits* when its measured peak (or, with ``memory="step_share"``, its step
share) is at most ``(1 - margin) · budget``; the margin absorbs what one measurement cannot
see (allocator fragmentation, other processes, a different driver). With a fixed image size
the planner finds, in this order,

1. the largest h in 1..N (h = N is full back-propagation), with the query batch tied to
   min(h, query set size), so the graph holds as many support as query images until the
   whole query set fits in one batch, and the chunk size at its floor;
2. the largest query batch up to the query set, with that h;
3. the largest chunk size up to N, with that h and query batch.

Any of the three can be held at the value given instead (``search=``). With a fixed h it
finds the largest image size instead. Every probe is kept in the plan, so a notebook can
show how the search went.

Every probe runs in the configuration's precision and memory layout (``precision``,
``channels_last``, `litekit.precision`): activations kept in bfloat16 take half the bytes
of float32 ones, so the same budget holds a larger h, and the plan is for the step as it
will run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from litekit._checks import bad_argument, check_choice, check_int
from litekit.measure.training_step import (
    MEMORY_KINDS,
    Measurement,
    StepConfig,
    measure_training_step,
)

#: The `StepConfig` fields the planner can search, in its order of priority.
SEARCH_FIELDS = ("h", "query_batch", "chunk_size")
#: The smallest budget the planner accepts: no training step fits in less.
MIN_BUDGET_BYTES = 2**20
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
_BYTES_FIX = "pass a positive number of bytes or a size such as '8GiB' or '500MB'."


def _as_bytes(value: object) -> int | None:
    """``"6GiB"``, ``"500 MB"``, ``2**30`` as bytes; None for anything else (or <= 0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().upper().replace(" ", "")
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                number = float(text[: -len(unit)])
            except ValueError:
                return None
            return int(number * _UNITS[unit]) if number > 0 else None
    return None


def parse_bytes(value: int | float | str, name: str = "budget") -> int:
    """``"6GiB"``, ``"500 MB"``, ``2**30`` → bytes; ``name`` is the argument errors name."""
    parsed = _as_bytes(value)
    if parsed is None:
        raise bad_argument(name, value, _BYTES_FIX)
    return parsed


def check_budget(value: int | float | str, name: str = "budget") -> int:
    """`parse_bytes`, refusing budgets under `MIN_BUDGET_BYTES` (a slip of the unit)."""
    budget = parse_bytes(value, name)
    if budget < MIN_BUDGET_BYTES:
        raise bad_argument(
            name, value, "that is under 1 MiB, too little for any training step; pass e.g. 8GiB."
        )
    return budget


def check_margin(value: object, name: str = "margin") -> float:
    """Return ``value`` if it is a fraction in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise bad_argument(name, value, "pass a fraction in [0, 1), e.g. 0.1.")
    return float(value)


def format_bytes(value: float) -> str:
    """Bytes in B, KiB, MiB or GiB, for people."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.2f} {unit}" if unit == "GiB" else f"{value / size:.0f} {unit}"
    return f"{value:.0f} B"


@dataclass
class Plan:
    """What `plan_budget` found: a configuration whose measured memory fits the budget.

    ``config`` is the chosen configuration, ``measurement`` its measurement, ``memory`` what
    the budget bounds (see `MEMORY_KINDS`), and ``probes`` every measurement the search made,
    in order.
    """

    config: StepConfig
    measurement: Measurement
    budget_bytes: int
    margin: float
    probes: list[Measurement] = field(default_factory=list)
    memory: str = "peak"

    @property
    def limit_bytes(self) -> float:
        """Bytes of the budget a plan may use, ``(1 - margin) · budget``."""
        return (1 - self.margin) * self.budget_bytes

    def as_dict(self) -> dict:
        return {
            "budget_bytes": self.budget_bytes,
            "margin": self.margin,
            "limit_bytes": self.limit_bytes,
            "memory": self.memory,
            "chosen": self.measurement.as_dict(),
            "probes": [p.as_dict() for p in self.probes],
        }

    def __str__(self) -> str:
        c, m = self.config, self.measurement
        what = "full back-propagation" if c.full else f"h={c.h}"
        used = "peak" if self.memory == "peak" else "step share"
        layout = f" in {c.precision}" + (", channels-last" if c.channels_last else "")
        return (
            f"{what}, query_batch={c.query_batch}, chunk_size={c.chunk_size} at "
            f"{c.image_size} px{layout}: {used} {format_bytes(m.used(self.memory))} of a "
            f"{format_bytes(self.budget_bytes)} budget ({self.margin:.0%} margin), "
            f"{m.step_seconds:.3f} s per step, {len(self.probes)} measurements"
        )


class NothingFits(ValueError):
    """No configuration the planner may try fits the budget.

    Attributes: ``config`` the smallest configuration tried, ``measurement`` its
    measurement, ``budget_bytes``, ``margin`` and ``memory`` as given to `plan_budget`.
    """

    def __init__(
        self,
        config: StepConfig,
        measurement: Measurement,
        budget_bytes: int,
        margin: float,
        memory: str,
    ) -> None:
        self.config, self.measurement = config, measurement
        self.budget_bytes, self.margin, self.memory = budget_bytes, margin, memory
        fix = (
            f"even {self.smallest()} needs {self.needs()} (limit "
            f"{format_bytes(self.limit_bytes)} with margin {margin}); raise the budget or lower "
            "the image size, the task size or the margin."
        )
        super().__init__(str(bad_argument("budget", format_bytes(budget_bytes), fix)))

    @property
    def limit_bytes(self) -> float:
        """Bytes of the budget a plan may use, ``(1 - margin) · budget``."""
        return (1 - self.margin) * self.budget_bytes

    def smallest(self) -> str:
        """The smallest configuration tried, in words."""
        c = self.config
        return f"{c.label()} with query_batch={c.query_batch}, chunk_size={c.chunk_size}"

    def needs(self) -> str:
        """What it measured (or why it could not run)."""
        m = self.measurement
        return format_bytes(m.used(self.memory)) if m.peak_bytes is not None else str(m.error)


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


def _check_plan_arguments(config, memory, search, min_chunk_size, image_sizes) -> list | None:
    if not isinstance(config, StepConfig):
        raise bad_argument("config", config, "pass a litekit.measure.StepConfig.")
    check_choice("memory", memory, MEMORY_KINDS)
    if isinstance(search, str):
        raise bad_argument("search", search, f"pass a list of names from {list(SEARCH_FIELDS)}.")
    for name in search:
        check_choice("search", name, SEARCH_FIELDS)
    check_int("min_chunk_size", min_chunk_size, minimum=1)
    if image_sizes is None:
        return None
    sizes = sorted({check_int("image_sizes", s, minimum=16) for s in image_sizes})
    if not sizes:
        raise bad_argument("image_sizes", image_sizes, "pass at least one size.")
    return sizes


def plan_budget(
    budget: int | float | str,
    config: StepConfig,
    *,
    margin: float = 0.1,
    memory: str = "peak",
    search: Sequence[str] = SEARCH_FIELDS,
    min_chunk_size: int = 8,
    image_sizes: Sequence[int] | None = None,
    fresh_process: bool | None = None,
    measure: Callable[[StepConfig], Measurement] | None = None,
) -> Plan:
    """Find, by measurement, the largest LITE set-up whose memory fits ``budget``.

    Args:
        budget: bytes, or a string such as ``"8GiB"`` (at least 1 MiB); on the CPU it bounds
            the peak RSS of the whole measuring process, on CUDA the peak allocated by
            tensors.
        config: the task and model (backbone, learner, image size, N, way, query size,
            device); its ``h``, ``query_batch`` and ``chunk_size`` are the values kept for
            anything not searched.
        margin: fraction of the budget kept free (0.1: use at most 90% of it).
        memory: what the budget bounds: ``"peak"``, the whole measured peak, or
            ``"step_share"``, the step's own share (peak minus the memory in use before it;
            see `Measurement` for where each device reads that). On the CPU the step share
            leaves out the hundreds of MiB that Python and torch take before any work, so
            that budgets compare training steps, not interpreters.
        search: which of `SEARCH_FIELDS` to search, in that order of priority (see the
            module docstring). Ignored with ``image_sizes``.
        min_chunk_size: the chunk size while h and the query batch are searched.
        image_sizes: candidate sizes, increasing; then the planner finds the largest image
            size that fits with ``config``'s h, query batch and chunk size instead.
        fresh_process: passed to `measure_training_step`.
        measure: replaces `measure_training_step` (for tests, or a cached measurement).

    Raises `NothingFits` (a ValueError naming the smallest configuration and what it needs)
    when nothing fits.
    """
    budget_bytes = check_budget(budget)
    margin = check_margin(margin)
    sizes = _check_plan_arguments(config, memory, search, min_chunk_size, image_sizes)
    run = measure or (lambda c: measure_training_step(c, fresh_process=fresh_process))
    seen: dict[StepConfig, Measurement] = {}  # every probe, in the order made

    def fits(candidate: StepConfig) -> bool:
        if candidate not in seen:
            seen[candidate] = run(candidate)
        return seen[candidate].fits(budget_bytes, margin, memory)

    def nothing_fits(candidate: StepConfig) -> NothingFits:
        return NothingFits(candidate, seen[candidate], budget_bytes, margin, memory)

    if sizes is not None:
        chosen = _largest_image_size(config, sizes, fits, nothing_fits)
    else:
        chosen = _search(config, search, min_chunk_size, fits, nothing_fits)
    fits(chosen)  # measured already, unless nothing was searched
    return Plan(chosen, seen[chosen], budget_bytes, margin, list(seen.values()), memory)


def _largest_image_size(
    config: StepConfig,
    sizes: list[int],
    fits: Callable[[StepConfig], bool],
    nothing_fits: Callable[[StepConfig], NothingFits],
) -> StepConfig:
    """``config`` at the largest of ``sizes`` (increasing) that fits."""
    index = _largest(0, len(sizes) - 1, lambda i: fits(replace(config, image_size=sizes[i])))
    if index is None:
        raise nothing_fits(replace(config, image_size=sizes[0]))
    return replace(config, image_size=sizes[index])


def _search(
    config: StepConfig,
    search: Sequence[str],
    min_chunk_size: int,
    fits: Callable[[StepConfig], bool],
    nothing_fits: Callable[[StepConfig], NothingFits],
) -> StepConfig:
    """h, then the query batch, then the chunk size, each the largest that fits."""
    n, n_query = config.n_support, config.n_query
    chosen = config
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
    return chosen
