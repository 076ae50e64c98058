"""Recaps of the training tutorials: meta-training on large images (04) and meta-learning
against transfer learning (06).

Accuracies come with 95% intervals over a finite number of tasks, and a short run (few
steps, few tasks) cannot separate two learners. The sentences here say what the run shows,
and when it was too short to show what the tutorial is about, they say so, with the run's
size and what to run instead, rather than stating the long run's result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from litekit._checks import bad_argument
from litekit.recaps.common import (
    Recap,
    accuracy,
    check_number,
    intervals_apart,
    listing,
    percent,
    points,
    trend,
)


def _score(name: str, result: Any) -> tuple[float, float]:
    """(mean, ci95) of an `litekit.train.Evaluation` or a (mean, ci95) pair."""
    mean, ci = (result.mean, result.ci95) if hasattr(result, "mean") else result
    return check_number(f"{name}.mean", mean), check_number(f"{name}.ci95", ci)


def short_run(steps: int, tasks: int, min_steps: int, min_tasks: int) -> str:
    """The sentence for a run too short for its claim: how short, and what to run."""
    return (
        f"This run was too short to separate them: {steps} training steps and {tasks} "
        f"held-out tasks, where the notebook checks the comparison from {min_steps} steps and "
        f"{min_tasks} tasks on; run it with its default parameters, which have enough, to see it."
    )


def curve_sentence(label: str, history: Any, ceiling: float | None) -> tuple[str, str]:
    """How one run's validation accuracy moved, and its trend (rose, fell, stayed)."""
    steps, values, cis = history.val_step, history.val_accuracy, history.val_ci95
    if len(values) < 2:
        return (
            f"{label}: one validation point, {percent(values[0]) if values else 'none'}.",
            "stayed",
        )
    noise = math.hypot(cis[0], cis[-1])
    moved = trend(values[0], values[-1], noise)
    what = {"rose": "rose", "fell": "fell", "stayed": "stayed within its intervals, going"}[moved]
    sentence = (
        f"{label}: validation accuracy {what} from {percent(values[0])} at step {steps[0]} to "
        f"{percent(values[-1])} at step {steps[-1]}"
    )
    if ceiling is not None:
        sentence += f" (the ideal observer's ceiling at its size: {percent(ceiling)})"
    return sentence + ".", moved


def meta_training_recap(
    *,
    full: Any,
    lite: Any,
    small_size: int,
    large_size: int,
    h: int,
    n_support: int,
    steps: int,
    tasks: int,
    min_steps: int,
    min_tasks: int,
    ideal: Mapping[int, float],
    histories: Mapping[str, Any],
    ceilings: Mapping[str, float],
    budget: str,
    fits: Mapping[str, bool],
) -> Recap:
    """Notebook 04: one memory budget, LITE on large images against full back-propagation
    on small ones, and the learning curves.

    Args:
        full, lite: the held-out `Evaluation` of each (or ``(mean, ci95)``).
        small_size, large_size, h, n_support: the set-up.
        steps, tasks: training steps and held-out tasks of this run; ``min_steps`` and
            ``min_tasks`` the least at which the notebook checks the comparison.
        ideal: image size -> the ideal observer's accuracy (section 1's table).
        histories: run label -> `History`; ``ceilings``: run label -> ideal accuracy at its
            size.
        budget: the budget, formatted; ``fits``: ``{"full_large": bool, "lite": bool}``.
    """
    if set(fits) != {"full_large", "lite"}:
        raise bad_argument("fits", dict(fits), "pass {'full_large': bool, 'lite': bool}.")
    sizes = sorted(ideal)
    sentences = [
        "The embedded dataset hides part of each class in fine gratings: an ideal observer "
        "scores " + listing([f"{percent(ideal[s])} at {s} px" for s in sizes]) + " on 5-way tasks.",
        f"One full back-propagation step on {small_size} px images set the budget ({budget}). "
        f"Full back-propagation on {large_size} px images "
        + ("fitted it too" if fits["full_large"] else "did not fit it")
        + f"; LITE with $h = {h}$ of $N = {n_support}$ "
        + ("did." if fits["lite"] else "did not either."),
    ]
    full_score, lite_score = _score("full", full), _score("lite", lite)
    gap = lite_score[0] - full_score[0]
    apart = intervals_apart(
        (lite_score[0] - lite_score[1], lite_score[0] + lite_score[1]),
        (full_score[0] - full_score[1], full_score[0] + full_score[1]),
    )
    long_enough = steps >= min_steps and tasks >= min_tasks
    scores = (
        f"LITE on {large_size} px images scored {accuracy(*lite_score)} and full "
        f"back-propagation on {small_size} px images {accuracy(*full_score)}, after "
        f"{steps} steps each, over the same {tasks} held-out tasks"
    )
    if apart:
        leader = "LITE" if gap > 0 else "full back-propagation"
        sentences.append(f"{scores}: {leader} ahead by {points(abs(gap))[1:]}, and the 95% "
                         "intervals do not overlap.")  # fmt: skip
    else:
        sentences.append(f"{scores} ({points(gap)} for LITE): the 95% intervals overlap, so "
                         "this run does not tell them apart.")  # fmt: skip
    if not long_enough:
        sentences.append(short_run(steps, tasks, min_steps, min_tasks))
    moves = {}
    for label, history in histories.items():
        sentence, moves[label] = curve_sentence(label, history, ceilings.get(label))
        sentences.append(sentence)
    facts = {"gap": gap, "apart": apart, "long_enough": long_enough, "curves": moves}
    return Recap(tuple(sentences), facts)


def transfer_recap(
    *,
    results: Mapping[str, Any],
    meta_learners: Sequence[str],
    finetuner: str,
    head_only: str,
    ideal: float,
    image_size: int,
    paired: Mapping[str, tuple[float, float]],
    unpaired: Mapping[str, float],
    best: str,
    gap: tuple[float, float],
    flops: Mapping[str, float],
    time_ratio: tuple[float, float, float],
    steps: int,
    tasks: int,
    min_steps: int,
    min_tasks: int,
) -> Recap:
    """Notebook 06: accuracy on the same tasks, paired differences, and the cost ratio.

    Args:
        results: learner -> `Evaluation` (or ``(mean, ci95)``) on the held-out tasks.
        meta_learners: the meta-learners' names; ``finetuner`` the whole-backbone
            fine-tuner; ``head_only`` the linear probe.
        ideal: the ideal observer's accuracy at ``image_size``.
        paired: meta-learner -> (mean, ci95) of the fine-tuner minus it, task by task;
            ``unpaired``: meta-learner -> the interval if the tasks were independent.
        best: the more accurate meta-learner; ``gap`` (mean, ci95) of the fine-tuner minus it.
        flops: learner -> FLOPs to personalise to one task.
        time_ratio: (median, lowest, highest) of the fine-tuner's time over the dearer
            meta-learner's, from their repeated timings.
        steps, tasks, min_steps, min_tasks: as in `meta_training_recap`.
    """
    scores = {name: _score(name, result) for name, result in results.items()}
    named = {name: f"*{name}*" for name in scores}  # names with commas read as one
    missing = {finetuner, head_only, best, *meta_learners} - set(scores)
    if missing:
        raise bad_argument("results", sorted(scores), f"add the results of {sorted(missing)}.")
    long_enough = steps >= min_steps and tasks >= min_tasks
    dearest = max(meta_learners, key=lambda name: flops[name])
    sentences = [
        f"{listing(list(meta_learners))}, meta-trained with LITE for {steps} steps, personalised "
        "to each new task in one forward pass over its support set: no parameter is tuned at "
        f"test time. `FineTuner` trained a new head (and, in {named[finetuner]}, the whole "
        "backbone) on every task, and left the backbone it started from unchanged.",
    ]
    shown = "; ".join(f"{named[name]} {accuracy(*score)}" for name, score in scores.items())
    below = [named[name] for name, (mean, _) in scores.items() if ideal - mean > 0.10]
    sentences.append(
        f"On the same {tasks} held-out tasks: {shown}; the ideal observer at {image_size} px "
        f"scores {percent(ideal)}. "
        + (
            "Every learner came within 10 points of that ceiling."
            if not below
            else "Every learner stayed more than 10 points below it."
            if len(below) == len(scores)
            else f"{listing(below)} stayed more than 10 points below it."
        )
    )
    tighter = {name: paired[name][1] < unpaired[name] for name in meta_learners}
    each = "; ".join(
        f"against {name}, {points(paired[name][0])} ± {100 * paired[name][1]:.1f} paired, "
        f"± {100 * unpaired[name]:.1f} if the tasks were independent"
        for name in meta_learners
    )
    verdict = (
        "pairing the tasks made the comparison more precise"
        if all(tighter.values())
        else "pairing did not tighten every interval in this run"
    )
    sentences.append(
        f"{named[finetuner]} minus each meta-learner, task by task: {each}: {verdict}."
    )
    within = abs(gap[0]) + gap[1] < 0.05
    mean_within = abs(gap[0]) < 0.05
    sentences.append(
        f"Against the better meta-learner ({best}), {named[finetuner]} was {points(gap[0])} "
        f"± {100 * gap[1]:.1f} (paired): "
        + (
            "within 5 points either way, interval included: the meta-learners were competitive."
            if within
            else "the mean difference was within 5 points, but its interval reaches further; "
            "more held-out tasks would narrow it."
            if mean_within
            else "more than 5 points apart on average."
        )
    )
    if not long_enough and not (within and all(tighter.values()) and not below):
        sentences.append(short_run(steps, tasks, min_steps, min_tasks))
    ratio = flops[finetuner] / flops[dearest]
    probe = flops[head_only] / flops[meta_learners[0]]
    median, low, high = time_ratio
    sentences.append(
        f"The headline: {named[finetuner]} cost {ratio:.0f}× the FLOPs of {dearest} to personalise "
        f"(the notebook checks more than 10×) and took {median:.3g}× as long per task "
        f"({low:.3g}× to {high:.3g}× over the timed repeats); the head-only fine-tuner cost "
        f"{probe:.2f}× the FLOPs of {meta_learners[0]}."
    )
    facts = {"within_ceiling": not below, "paired_tighter": tighter, "within_5_points": within,
             "mean_within_5_points": mean_within, "long_enough": long_enough,
             "flops_ratio": ratio}  # fmt: skip
    return Recap(tuple(sentences), facts)
