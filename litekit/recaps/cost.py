"""Recap of notebook 05: memory and time against N and image size, the planner, and the
reference measurements.

Memory on the CPU is a step's share of a fresh process's peak, and time a median over a
few repeats on a machine that may be busy: the sentences compare first and last values
against the spread of the repeats before they call anything a trend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from litekit._checks import bad_argument
from litekit.recaps.common import Recap, compare_times, intervals_apart, listing, seconds

MIB = 2**20
SEARCHED = {"h": "$h$", "query_batch": "the query batch", "chunk_size": "the chunk size"}


def _series(rows: Sequence[Mapping], kind: str, x: str) -> list[Mapping]:
    chosen = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r[x])
    if len(chosen) < 2:
        raise bad_argument("rows", len(chosen), f"pass at least two {kind!r} rows, one per {x}.")
    return chosen


def _growth(first: Mapping, last: Mapping) -> str:
    """How a time changed from the first to the last row, against the repeats' ranges."""
    low = (first.get("seconds_min"), first.get("seconds_max"))
    high = (last.get("seconds_min"), last.get("seconds_max"))
    ratio = last["seconds"] / first["seconds"]
    if None in low + high or intervals_apart(low, high):
        word = "grew" if ratio > 1 else "fell"
        return f"{word} {ratio:.1f}× ({seconds(first['seconds'])} to {seconds(last['seconds'])})"
    return (
        f"stayed within the spread of its repeats ({seconds(first['seconds'])} to "
        f"{seconds(last['seconds'])})"
    )


def _memory_change(first: float, last: float) -> str:
    change = last - first
    size = f"{abs(change) / MIB:.0f} MiB" if abs(change) >= MIB else f"{abs(change) / 1024:.0f} KiB"
    return f"{'+' if change >= 0 else '-'}{size}"


def memory_time_recap(
    *,
    by_n: Sequence[Mapping],
    by_size: Sequence[Mapping],
    h: int,
    n_for_sizes: int,
    memory: str,
    plan: Mapping,
    reference: Mapping[str, float],
    reference_growth: Mapping[str, float],
) -> Recap:
    """Notebook 05's closing points, from its measurements.

    Args:
        by_n: rows ``kind`` (``"full"``/``"lite"``), ``n``, ``bytes``, ``seconds``,
            ``seconds_min``, ``seconds_max``; ``by_size`` the same with ``size`` for ``n``.
        h, n_for_sizes: LITE's h, and the N of the sweep over sizes.
        memory: what the memory is (``"step share of the peak RSS"``, ``"peak allocated"``).
        plan: ``budget`` (formatted), ``fraction``, ``plan_n``, ``search`` (what the
            planner searched, in order), ``h``, ``query_batch`` (None: all queries at once),
            ``chunk_size``, ``probes``, ``largest_size``.
        reference: ``{"full": GiB, "lite": GiB}`` of EfficientNet-B0 at 224 px, N = 1000,
            on the H200; ``reference_growth`` their growth from N = 100 to 1000.
    """
    full, lite = _series(by_n, "full", "n"), _series(by_n, "lite", "n")
    n0, n1 = full[0]["n"], full[-1]["n"]
    full_change = full[-1]["bytes"] - full[0]["bytes"]
    lite_change = lite[-1]["bytes"] - lite[0]["bytes"]
    flat = full_change > 0 and lite_change < 0.25 * full_change
    sentences = [
        f"Memory ({memory}) from $N = {n0}$ to $N = {n1}$: full back-propagation "
        f"{_memory_change(full[0]['bytes'], full[-1]['bytes'])}, LITE "
        f"{_memory_change(lite[0]['bytes'], lite[-1]['bytes'])}"
        + (
            ": LITE's stayed flat, because its graph holds $h$ support images and one query "
            "batch whatever $N$ is."
            if flat
            else "."
        )
    ]
    comparison, verdict = compare_times(
        f"at $N = {n1}$ a LITE step ($h = {h}$)",
        (lite[-1]["seconds"], lite[-1].get("seconds_min"), lite[-1].get("seconds_max")),
        "a full one",
        (full[-1]["seconds"], full[-1].get("seconds_min"), full[-1].get("seconds_max")),
    )
    sentences.append(
        f"Step time from $N = {n0}$ to $N = {n1}$: full back-propagation's "
        f"{_growth(full[0], full[-1])}, LITE's {_growth(lite[0], lite[-1])}; {comparison}."
    )
    sized = {kind: _series(by_size, kind, "size") for kind in ("full", "lite")}
    s0, s1 = sized["full"][0]["size"], sized["full"][-1]["size"]
    pixels = (s1 / s0) ** 2
    grew = {kind: rows[-1]["bytes"] / rows[0]["bytes"] for kind, rows in sized.items()}
    each = listing([f"×{grew[kind]:.1f} with {name}" for kind, name in
                    (("full", "full back-propagation"), ("lite", "LITE"))])  # fmt: skip
    lower = all(b["bytes"] < a["bytes"] for a, b in zip(sized["full"], sized["lite"], strict=True))
    sentences.append(
        f"From {s0} to {s1} px ({pixels:.1f}× the pixels, $N = {n_for_sizes}$) memory grew "
        f"{each}"
        + (
            "; LITE, with fewer images in its graph, stayed below full back-propagation at "
            "every size, which leaves room for larger images."
            if lower
            else "."
        )
    )
    searched = listing([SEARCHED.get(name, name) for name in plan["search"]])
    batch = plan["query_batch"]
    sentences.append(
        f"The planner bisected on {searched}, measuring every candidate "
        f"({plan['probes']} measurements), and under a budget of {plan['budget']} "
        f"({plan['fraction']:.0%} of full back-propagation at $N = {plan['plan_n']}$) chose "
        f"$h = {plan['h']}$, "
        + ("all queries in one batch" if batch is None else f"query batch {batch}")
        + f" and chunk {plan['chunk_size']}; for that $h$ the largest image size that fitted "
        f"was {plan['largest_size']} px."
    )
    sentences.append(
        "The H200 reference shows the same shape at the paper's scale: EfficientNet-B0 at "
        f"224 px with $N = 1000$ needs {reference['full']:.1f} GiB with full back-propagation "
        f"and {reference['lite']:.1f} GiB with a minimal LITE; from $N = 100$ to $1000$ the "
        f"first grew {reference_growth['full']:.1f}× and the second "
        f"{reference_growth['lite']:.2f}×."
    )
    facts = {"lite_flat": flat, "time_at_largest_n": verdict, "lite_below_at_every_size": lower}
    return Recap(tuple(sentences), facts)
