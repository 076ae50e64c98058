"""The recap of the first chapter, notebook 00 (tasks, episodes and meta-learners).

Notebook 00 draws a few-shot task, meta-trains ProtoNets and Simple CNAPs for a few steps,
scores them on the same held-out tasks before and after, and measures how full
back-propagation's memory grows with N and with the pixels. Each sentence here is built from
those numbers and returned with the verdict it rests on, for the notebook's asserts: a change
in accuracy is a gain or a loss only when its paired 95% interval (Student's t, honest for
the handful of tasks a short run scores) excludes zero; a straight line needs three sizes; a
short run says it was too short, and what to run, instead of a long run's outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from litekit._checks import bad_argument
from litekit.measure.growth import MIB, linear_fit
from litekit.recaps.common import Recap, percent
from litekit.train.evaluation import Evaluation, confidence_interval

#: A memory sweep is called a straight line when every point is this close to its fit.
STRAIGHT = 0.02
#: Memory is "in proportion" to the pixels when its ratio is within this of theirs.
PROPORTIONAL = 0.05
#: Two tasks' FiLM scales "differ" when their mean gap is this share of γ's spread.
TASK_SPECIFIC = 0.1


#: Student's t quantile 0.975 for 1..30 degrees of freedom (a 95% two-sided interval).
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t_quantile(dof: int) -> float:
    """Student's t 0.975 quantile: the table up to 30 degrees of freedom, then the
    Cornish-Fisher expansion around the normal 1.96 (within 0.001 of the exact value)."""
    if dof < 1:
        raise bad_argument("dof", dof, "pass at least one degree of freedom.")
    if dof <= len(T_975):
        return T_975[dof - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def paired_change(before: Evaluation, after: Evaluation) -> tuple[float, float]:
    """Mean change in accuracy over the same tasks, and the 95% half-width of that mean.

    Both evaluations must score the same tasks in the same order: the per-task differences
    are what vary, so the interval is tighter than the two separate intervals suggest. The
    half-width is Student's t_{0.975, n-1} · s / √n (s the differences' sample standard
    deviation), which stays honest for the handful of tasks a short run scores; with one
    task it is infinite: one task cannot tell.
    """
    if len(before.accuracies) != len(after.accuracies):
        raise bad_argument(
            "after",
            len(after.accuracies),
            f"score the same {len(before.accuracies)} tasks before and after training.",
        )
    differences = [a - b for b, a in zip(before.accuracies, after.accuracies, strict=True)]
    n = len(differences)
    mean, normal = confidence_interval(differences)  # half-width 1.96 · s / √n
    if n < 2:
        return mean, float("inf")
    return mean, normal / 1.96 * t_quantile(n - 1)


def accuracy_sentence(
    name: str, before: Evaluation, after: Evaluation, steps: int
) -> tuple[str, str]:
    """What meta-training did to one learner's held-out accuracy, as this run measured it,
    and the verdict: ``"rose"``, ``"fell"`` or ``"unclear"`` (the interval holds zero)."""
    change, half = paired_change(before, after)
    tasks = len(before.accuracies)
    points = f"{100 * change:+.1f} ± {100 * half:.1f} points over the same {tasks} tasks"
    start = f"**{name}**: {percent(before.mean)} before, {percent(after.mean)} after {steps} steps"
    if change - half > 0:
        return (
            f"{start} ({points}): meta-training raised its accuracy on classes it never saw.",
            "rose",
        )
    if change + half < 0:
        return (
            f"{start} ({points}): accuracy fell in this run; fewer or gentler steps "
            "(a smaller learning rate) would be the first things to try.",
            "fell",
        )
    return (
        f"{start} ({points}): the change is within this run's noise, so the run was too "
        "short to show what meta-training does; run more steps (`STEPS`) and score more "
        "tasks (`EVAL_TASKS`) to see it.",
        "unclear",
    )


def _sweep(rows: Sequence[Mapping[str, Any]], vary: str) -> list[Mapping[str, Any]]:
    part = sorted((r for r in rows if r["vary"] == vary), key=lambda r: (r["n"], r["pixels"]))
    if len(part) < 2:
        raise bad_argument(
            "rows", len(part), f"pass memory_growth's rows, two or more vary={vary!r}."
        )
    return part


def memory_sentences(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """What `litekit.measure.memory_growth`'s rows show, in two sentences, and the facts:
    ``line`` (True, False, or None when two sizes of N cannot test a line) and
    ``proportional`` (memory in proportion to the pixels).

    A line needs three sizes to be tested (any two points lie on one); proportion to the
    pixels is tested by the ratio of memory to the ratio of pixels, and by the line too when
    there are three sizes or more.
    """
    by_n, by_size = _sweep(rows, "n"), _sweep(rows, "size")
    fit_n = linear_fit([r["n"] for r in by_n], [r["saved_bytes"] for r in by_n])
    fit_px = linear_fit([r["pixels"] for r in by_size], [r["saved_bytes"] for r in by_size])
    first, last = by_n[0], by_n[-1]
    size = first["image_size"]
    line = None if len(by_n) < 3 else fit_n.worst <= STRAIGHT
    if line is None:
        shape = (
            "measured at two sizes only, which any straight line fits (add sizes to "
            "`MEMORY_NS` to test the line)"
        )
    elif line:
        shape = f"on a straight line (every point within {STRAIGHT:.0%} of it)"
    else:
        shape = f"not quite on a straight line (a point {fit_n.worst:.0%} away from it)"
    growth_n = (
        f"Full back-propagation kept {first['saved_bytes'] / MIB:.1f} MiB of activations for "
        f"the backward pass at N = {first['n']} and {last['saved_bytes'] / MIB:.1f} MiB at "
        f"N = {last['n']} ({size} × {size} px): {fit_n.slope / 1024:.0f} KiB more for each "
        f"support image, {shape}."
    )
    small, large = by_size[0], by_size[-1]
    pixels = large["pixels"] / small["pixels"]
    memory = large["saved_bytes"] / small["saved_bytes"]
    proportional = abs(memory / pixels - 1) <= PROPORTIONAL and (
        len(by_size) < 3 or fit_px.worst <= STRAIGHT
    )
    verdict = (
        "memory grows in proportion to the pixels, that is with the square of the image side"
        if proportional
        else "memory grows with the pixels, but not in proportion to them"
    )
    growth_px = (
        f"At N = {small['n']}, going from {small['image_size']} to {large['image_size']} px "
        f"a side ({pixels:.1f}× the pixels) took it from {small['saved_bytes'] / MIB:.1f} to "
        f"{large['saved_bytes'] / MIB:.1f} MiB ({memory:.1f}×): {verdict}."
    )
    return [growth_n, growth_px], {"line": line, "proportional": proportional}


def film_sentence(gamma_a: torch.Tensor, gamma_b: torch.Tensor) -> tuple[str, bool]:
    """How different two tasks' FiLM scales γ are, measured against γ's spread over channels,
    and whether that makes them task-specific (the gap at least `TASK_SPECIFIC` of it).

    ``gamma_a`` and ``gamma_b``: every FiLM layer's γ for one task, concatenated (the same
    channels in the same order for both).
    """
    a, b = gamma_a.detach().double().flatten(), gamma_b.detach().double().flatten()
    if a.shape != b.shape or a.numel() < 2:
        raise bad_argument("gamma_b", tuple(b.shape), f"pass γ for the same {a.numel()} channels.")
    gap = float((a - b).abs().mean())
    spread = float(a.std())
    share = gap / spread if spread > 0 else float("inf")
    numbers = (
        f"the two tasks' scales γ differ by {gap:#.2g} on average, {share:.1%} of how much γ "
        f"varies from channel to channel ({spread:#.2g})"
    )
    if share >= TASK_SPECIFIC:
        return f"Simple CNAPs: {numbers}: FiLM adapts the backbone to each task.", True
    return (
        f"Simple CNAPs: {numbers}: in this run FiLM modulates the backbone almost identically "
        "for the two tasks.",
        False,
    )


def tasks_recap(
    *,
    way: int,
    shot: int,
    n_query: int,
    image_size: int,
    steps: int,
    before: Mapping[str, Evaluation],
    after: Mapping[str, Evaluation],
    ceiling: float,
    memory_rows: Sequence[Mapping[str, Any]],
    film_gammas: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Recap:
    """Notebook 00: the task, what meta-training did, FiLM, and how memory grew.

    Args:
        way, shot, n_query, image_size: the task's shape (``n_query`` query images per class).
        steps: meta-training steps each learner took.
        before, after: held-out `Evaluation` of each learner (by name) before and after
            meta-training, on the same tasks.
        ceiling: the ideal observer's accuracy on such tasks at this image size
            (`litekit.data.ProceduralImages.ideal_accuracy`).
        memory_rows: `litekit.measure.memory_growth`'s table.
        film_gammas: Simple CNAPs' γ for two tasks after meta-training (`film_sentence`),
            or None.

    Facts: ``accuracy`` (learner name -> ``"rose"``, ``"fell"`` or ``"unclear"``),
    ``film_task_specific`` (None without ``film_gammas``), ``line`` and ``proportional``
    (`memory_sentences`).
    """
    if set(before) != set(after) or not before:
        raise bad_argument(
            "after", sorted(after), f"pass the same learners as before: {sorted(before)}."
        )
    n, m = way * shot, way * n_query
    sentences = [
        f"You drew a {way}-way {shot}-shot task: N = {n} support images and M = {m} query "
        f"images of {image_size} × {image_size} pixels, from classes the learners never "
        "trained on."
    ]
    facts: dict[str, Any] = {"accuracy": {}, "film_task_specific": None}
    for name in before:
        sentence, verdict = accuracy_sentence(name, before[name], after[name], steps)
        sentences.append(sentence)
        facts["accuracy"][name] = verdict
    if film_gammas is not None:
        sentence, facts["film_task_specific"] = film_sentence(*film_gammas)
        sentences.append(sentence)
    sentences.append(
        f"An ideal observer, which tells two classes apart exactly when their visible details "
        f"differ, would score {percent(ceiling)} on such tasks at {image_size} px."
    )
    memory, found = memory_sentences(memory_rows)
    facts.update(found)
    return Recap(tuple(sentences + memory), facts)
