"""Recaps of the gradient tutorials: the split (01), unbiasedness (02), variance (03).

Each function takes the run's numbers (plain values and the row tables of
`litekit.diagnostics` and `litekit.measure`) and returns a `Recap` whose sentences are true
of them, whatever the parameters were.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from litekit._checks import bad_argument
from litekit.recaps.common import Recap, check_number, compare_times, listing, seconds

ROUND_OFF = 1e-12  # float64: a relative residual below this is exact


def decomposition_recap(
    *,
    residuals: Mapping[str, float],
    loop_gap: float,
    spread: float,
    set_to_feature: Mapping[str, float],
    batch_norm: Mapping[str, float],
) -> Recap:
    """Notebook 01: the split of the task gradient, as this run measured it.

    Args:
        residuals: learner name -> ||g_Q + Σ g_n - dL/dθ|| / ||dL/dθ||.
        loop_gap: relative difference of the per-image terms computed by vmap and by a loop.
        spread: how far the largest per-image term reaches along the gradient, over the
            median one.
        set_to_feature: learner with a set encoder -> mean ||g_n^set|| / mean ||g_n^features||.
        batch_norm: ``{"eval": residual, "train": residual}`` of a batch-norm backbone.
    """
    if not residuals or not set_to_feature or set(batch_norm) != {"eval", "train"}:
        raise bad_argument(
            "residuals", dict(residuals), "pass residuals, set_to_feature and batch_norm "
            "(eval and train) from the notebook's cells."
        )  # fmt: skip
    worst = max(check_number(f"residuals[{k!r}]", v) for k, v in residuals.items())
    exact = worst < ROUND_OFF
    learners = listing(list(residuals))
    split = (
        f"The task gradient was exactly $g_Q + \\sum_n g_n$ for {learners}: the largest "
        f"relative residual was {worst:.1e}, float64 round-off"
        if exact
        else f"The split $g_Q + \\sum_n g_n$ missed the task gradient by a relative {worst:.1e}"
    )
    sentences = [
        f"{split}; the vmap and loop computations of the terms agreed to {loop_gap:.1e}.",
        "Each $g_n$ is a cheap cotangent times an expensive Jacobian; in ProtoNets every "
        "image of a class shared one cotangent.",
    ]
    spread = check_number("spread", spread, positive=True)
    if spread >= 1.5:
        sentences.append(
            f"The per-image terms were far from equal: the largest reached {spread:.1f}× as far "
            "along the gradient as the median one. Their spread $S^2$ sets LITE's variance "
            "(notebook 03)."
        )
    else:
        sentences.append(
            f"The per-image terms were close to equal here (the largest reached {spread:.1f}× "
            "the median one); their spread $S^2$ sets LITE's variance (notebook 03)."
        )
    factors = {name: 1 / check_number(name, r, positive=True) for name, r in set_to_feature.items()}
    each = listing([f"{name} {factor:.0f}×" for name, factor in factors.items()])
    sentences.append(
        "With a set encoder each image had a feature term and a set term (through the total "
        f"derivative $dL/dz$); at initialisation the set terms were smaller: {each} smaller "
        "on average than the feature terms."
    )
    fixed, batch = batch_norm["eval"], batch_norm["train"]
    broke = batch > 1e-3
    sentences.append(
        f"Batch normalisation with fixed running statistics kept the split exact (residual "
        f"{fixed:.0e}); with batch statistics the split "
        + (f"failed (residual {batch:.2g})." if broke else f"held to {batch:.1e} in this run.")
    )
    facts = {"exact": exact, "spread": spread >= 1.5, "batch_statistics_break": broke}
    return Recap(tuple(sentences), facts)


def unbiasedness_recap(
    *,
    n: int,
    h: int,
    exact_error: float,
    subsets: int,
    film_learner: str,
    pairs: int,
    pair_error: float,
    biases: Mapping[str, float],
    same_subset: Mapping[int, float],
    draws: int,
    final: Mapping[str, float],
    noise: float,
) -> Recap:
    """Notebook 02: unbiasedness by enumeration, the biased conventions, the running mean.

    Args:
        n, h: the small task's N and h; ``exact_error`` the relative error of the average
            over all ``subsets`` subsets, ``pair_error`` that of ``film_learner`` over all
            ``pairs`` pairs of independent subsets.
        biases: ``{"none": b, "loss": b}``, the exact relative biases at h.
        same_subset: h -> relative bias with one subset shared by both paths.
        draws: draws of the running mean on the larger task; ``final`` its relative error
            after them per scaling (``"unbiased"``, ``"none"``, ``"loss"``); ``noise`` the
            expected error of the unbiased mean of ``draws`` draws,
            sqrt(tr Cov[ĝ] / draws) / ||dL/dθ||.
    """
    for name in ("unbiased", "none", "loss"):
        if name not in final:
            raise bad_argument(
                "final", dict(final), f"pass the error after {draws} draws of {name}."
            )
    noise = check_number("noise", noise, positive=True)
    sentences = [
        f"Averaged over all {subsets:,} subsets ($N = {n}$, $h = {h}$), LITE's gradient equalled "
        f"the full gradient to {exact_error:.0e}; so did {possessive(film_learner)} with "
        f"independent subsets for its two support paths, over all {pairs:,} pairs "
        f"({pair_error:.0e}).",
        f"No $N/h$ factor (VTAB+MD code) left a relative bias of {biases['none']:.3g} and $N/h$ "
        f"on the whole loss (ORBIT code) one of {biases['loss']:.3g}, exactly the closed "
        "forms: the support path shrunk by $h/N$, the query path inflated by $N/h$.",
    ]
    shared = sorted(same_subset.items())
    first_h, first_bias = shared[0]
    sentences.append(
        "One subset shared by the set encoder and the feature extractor left a bias of exactly "
        f"$(N-h)/h$ times one fixed vector: {first_bias:.2g} (relative) at $h = {first_h}$, "
        + (f"down to 0 at $h = N = {n}$." if shared[-1][0] == n else "falling like $1/h$.")
    )
    unbiased = final["unbiased"]
    sentences.append(
        f"After {draws} draws the unbiased running mean was {unbiased:.3g} from the gradient, "
        f"against an expected {noise:.3g} from the variance formula: it keeps falling like "
        "$1/\\sqrt{k}$."
    )
    smaller = min(final["none"], final["loss"])
    separated = smaller > 3 * noise
    if separated:
        sentences.append(
            f"The biased means stayed at their bias ({final['none']:.3g} and {final['loss']:.3g}, "
            f"at least {smaller / noise:.0f}× the noise): more draws do not remove a bias."
        )
    else:
        sentences.append(
            f"This run was too short to separate them: with {draws} draws the noise "
            f"({noise:.3g}) is not much smaller than the smaller bias ({smaller:.3g}); rerun "
            "with a larger `DRAWS` to see the biased means level off while the unbiased one "
            "keeps falling."
        )
    return Recap(tuple(sentences), {"separated": separated})


def possessive(name: str) -> str:
    """``"SimpleCNAPs'"``, ``"ProtoNet's"``."""
    return name + ("'" if name.endswith("s") else "'s")


def _rows_by_h(rows: Sequence[Mapping], name: str) -> list[Mapping]:
    if not rows:
        raise bad_argument(name, rows, "pass the rows of the notebook's measurements.")
    return sorted(rows, key=lambda row: row["h"])


def step_time_sentence(cost: Sequence[Mapping], image_size: int) -> tuple[str, str]:
    """LITE's step at its smallest h against full back-propagation, as this run timed them.

    ``cost`` holds the rows of `litekit.measure.cost_vs_h` (``seconds`` with
    ``seconds_min`` and ``seconds_max``). Returns the sentence and the verdict (``"faster"``,
    ``"same"`` or ``"slower"``: LITE against full, beyond the spread of the repeats). When
    LITE is not faster, the sentence says why that can be so.
    """
    full = [r for r in cost if r["method"] == "full"]
    lite = _rows_by_h([r for r in cost if r["method"] == "lite"], "cost")
    if len(full) != 1:
        raise bad_argument(
            "cost", len(full), "pass cost_vs_h's rows: one full back-propagation row."
        )
    smallest, full_row = lite[0], full[0]
    sentence, verdict = compare_times(
        f"One LITE step at $h = {smallest['h']}$",
        (smallest["seconds"], smallest.get("seconds_min"), smallest.get("seconds_max")),
        "full back-propagation",
        (full_row["seconds"], full_row.get("seconds_min"), full_row.get("seconds_max")),
    )
    if verdict != "faster":
        sentence += (
            f". A LITE step embeds all $N$ images without a graph and then the $h + M$ sampled "
            "and query images again with one; it saves time only where the backward pass "
            f"dominates, and at {image_size} px, with steps of about "
            f"{seconds(full_row['seconds'])}, it did not on this machine"
        )
    return sentence + ".", verdict


def variance_recap(
    *,
    stats: Sequence[Mapping],
    film_stats: Sequence[Mapping],
    cost: Sequence[Mapping],
    n_support: int,
    n_query: int,
    image_size: int,
) -> Recap:
    """Notebook 03: variance against the formula, alignment, memory and time against h.

    ``stats`` and ``film_stats`` are `litekit.diagnostics.estimator_stats` rows (ProtoNets,
    and a learner with a set encoder); ``cost`` the rows of `litekit.measure.cost_vs_h`
    (LITE rows and one ``"full"`` row, with ``seconds_min`` and ``seconds_max``).
    """
    stats = _rows_by_h(stats, "stats")
    sampled = [r for r in stats if r["h"] < n_support]
    worst = max((abs(r["trace_cov"] - r["theory_trace"]) / r["trace_stderr"] for r in sampled
                 if r["trace_stderr"] > 0), default=0.0)  # fmt: skip
    hs = ", ".join(str(r["h"]) for r in sampled)
    zero = any(r["h"] == n_support and r["trace_cov"] == 0 for r in stats)
    sentences = [
        "For ProtoNets the measured $\\operatorname{tr}\\mathrm{Cov}[\\hat g]$ matched "
        f"$\\frac{{N(N-h)}}{{h}}\\operatorname{{tr}}S^2$ at $h$ = {hs} within {worst:.1f} "
        "standard errors" + (f", and was 0 at $h = N = {n_support}$." if zero else ".")
    ]
    cosines = [r["mean_cosine"] for r in stats]
    rising = all(a <= b for a, b in zip(cosines, cosines[1:], strict=False))
    sentences.append(
        f"The mean cosine between one LITE draw and the full gradient "
        f"{'rose' if rising else 'went'} from {cosines[0]:.2f} at $h = {stats[0]['h']}$ to "
        f"{cosines[-1]:.2f} at $h = {stats[-1]['h']}$."
    )
    film = [r for r in _rows_by_h(film_stats, "film_stats") if r["trace_stderr"] > 0]
    shortfall = max(((r["theory_trace"] - r["trace_cov"]) / r["trace_stderr"] for r in film),
                    default=0.0)  # fmt: skip
    above = shortfall <= 4
    sentences.append(
        "With a set encoder the formula is a lower bound, because $dL/dz$ is itself "
        + (
            "estimated; every measurement was at or above it."
            if shortfall <= 0
            else "estimated; every measurement stayed above it within noise (at most "
            f"{shortfall:.1f} standard errors below)."
            if above
            else f"estimated; here a measurement fell {shortfall:.1f} standard errors below it."
        )
    )
    full = [r for r in cost if r["method"] == "full"]
    lite = _rows_by_h([r for r in cost if r["method"] == "lite"], "cost")
    if len(full) != 1:
        raise bad_argument(
            "cost", len(full), "pass cost_vs_h's rows: one full back-propagation row."
        )
    full_row = full[0]
    shares = [r["saved_bytes"] / full_row["saved_bytes"] for r in lite]
    formula = [(r["h"] + n_query) / (n_support + n_query) for r in lite]
    off = max(abs(a - b) for a, b in zip(shares, formula, strict=True))
    sentences.append(
        "The memory kept for backward was the share $(h+M)/(N+M)$ of full back-propagation's: "
        f"{shares[0]:.2f} at $h = {lite[0]['h']}$ up to {shares[-1]:.2f} at $h = {lite[-1]['h']}$, "
        f"within {off:.1g} of the formula."
    )
    sentence, verdict = step_time_sentence(cost, image_size)
    sentences.append(sentence)
    theory = {r["h"]: r["theory_trace"] for r in stats}
    if 1 in theory and 2 in theory and theory[1] > 0:
        sentences.append(
            "The variance falls like $(N-h)/h$: from $h = 1$ to $h = 2$ it fell to "
            f"{theory[2] / theory[1]:.2f} of its value, and the first doublings of $h$ buy most "
            "of the reduction while memory grows linearly."
        )
    facts = {"cosine_rises": rising, "above_bound": above, "time": verdict, "memory_off": off}
    if not math.isfinite(worst):
        raise bad_argument("stats", worst, "pass finite measurements.")
    return Recap(tuple(sentences), facts)
