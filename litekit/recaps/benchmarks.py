"""Recap of notebook 07: ORBIT's protocol, Meta-Dataset and one task of 1000 images, in
miniature.

Every score here has an interval: ORBIT's 1.96 σ/√n over videos or users, Meta-Dataset's
1.96 s/√n over tasks, and, for the one large task, Wilson's interval over its query images.
A score is called above chance, or two scores different, only when the intervals say so;
when a run was too short for a claim, the recap says how short and what to run instead.
Memory is compared as measured, and time against the spread of its repeats.
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
    compare_times,
    intervals_apart,
    listing,
    percent,
    points,
)

Z95 = 1.96


def wilson_interval(correct: int, total: int) -> tuple[float, float]:
    """Wilson's 95% interval ``(low, high)`` for an accuracy of ``correct`` of ``total``.

    One task scores each query image once: its accuracy is a proportion of ``total``
    trials. Wilson's interval stays inside [0, 1] and does not shrink to a point at 0% or
    100%, as the normal approximation does on a few images.
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise bad_argument("total", total, "pass the number of query images scored (>= 1).")
    if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct <= total:
        raise bad_argument("correct", correct, f"pass a count from 0 to total={total}.")
    p, z2 = correct / total, Z95**2
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = Z95 * math.sqrt(p * (1 - p) / total + z2 / (4 * total**2)) / (1 + z2 / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def _interval(name: str, summary: Mapping[str, Any]) -> tuple[float, float, int]:
    """(mean, ci95, n) of an aggregate ``{"mean", "ci95", "n"}``, checked."""
    try:
        mean, ci, n = summary["mean"], summary["ci95"], summary["n"]
    except (KeyError, TypeError) as error:
        raise bad_argument(name, summary, "pass {'mean': ..., 'ci95': ..., 'n': ...}.") from error
    return check_number(f"{name}.mean", mean), check_number(f"{name}.ci95", ci), int(n)


def against_chance(mean: float, ci95: float, chance: float) -> str:
    """``"above"``, ``"below"`` or ``"overlap"``: where ``mean ± ci95`` lies against chance."""
    if mean - ci95 > chance:
        return "above"
    if mean + ci95 < chance:
        return "below"
    return "overlap"


def too_short(what: str, run: str, needs: str) -> str:
    """The sentence for a run too short for a claim: how short, and what to run."""
    return (
        f"This run was too short to show {what}: {run}, where the notebook checks it from "
        f"{needs} on; run it with its default parameters, which have enough, to see it."
    )


def _orbit_sentences(
    steps: int,
    best_step: int,
    best_score: float,
    neurips21: Mapping[str, Any],
    chance: float,
    videos_per_user: Mapping[str, int],
    long_enough: bool,
    min_steps: int,
    min_videos: int,
) -> tuple[list[str], dict[str, Any]]:
    if best_step == steps:
        kept = " (the last), so `orbit.best.pt` holds the same weights as `orbit.pt`."
    elif best_step == 0:
        kept = (
            ", before the first training step: the scores below are of the untrained network, "
            "which `orbit.best.pt` kept."
        )
    else:
        kept = f" of {steps}, so the scores below are of that checkpoint, not the last."
    sentences = [
        f"`python -m litekit.train --orbit` meta-trained {steps} steps on the train users; the "
        f"best validation score (per-video frame accuracy on the validation users) was "
        f"{percent(best_score)}, at step {best_step}{kept}"
    ]
    fa = _interval("neurips21.per_video.frame_accuracy", neurips21["per_video"]["frame_accuracy"])
    fa_user = _interval(
        "neurips21.per_user.frame_accuracy", neurips21["per_user"]["frame_accuracy"]
    )
    chance = check_number("chance", chance, positive=True)
    where = against_chance(fa[0], fa[1], chance)
    verdict = {
        "above": "the interval lies above chance, so the model tells a user's new objects apart.",
        "below": "the interval lies below chance.",
        "overlap": "the interval reaches chance, so this run does not show the model beating "
        "a guess.",
    }[where]
    sentences.append(
        f"Under `neurips21`, the test users' clutter videos scored a frame accuracy of "
        f"{accuracy(*fa[:2])} per video (n = {fa[2]} videos) and {accuracy(*fa_user[:2])} per "
        f"user (n = {fa_user[2]} users), against {percent(chance)} for a guess among each "
        f"user's objects: {verdict}"
    )
    if where != "above" and not long_enough:
        sentences.append(
            too_short(
                "the model beating a guess",
                f"{steps} training steps and {fa[2]} test videos",
                f"{min_steps} steps and {min_videos} videos",
            )
        )
    ftr = _interval("frames_to_recognition", neurips21["per_video"]["frames_to_recognition"])
    va = _interval("video_accuracy", neurips21["per_video"]["video_accuracy"])
    sentences.append(
        f"The right object was first named {percent(ftr[0], 0)} of the way into a video on "
        f"average (frames-to-recognition: lower is better, 0 the first frame), and the "
        f"majority vote named it in {percent(va[0], 0)} of the videos."
    )
    counts = sorted(int(c) for c in videos_per_user.values())
    if not counts or len(counts) != fa_user[2]:
        raise bad_argument(
            "videos_per_user",
            dict(videos_per_user),
            f"pass the videos of each of {fa_user[2]} users.",
        )
    equal = counts[0] == counts[-1]
    if equal:
        weights = (
            f"Every test user had {counts[0]} scored videos, so the per-user and per-video "
            f"means weigh every video alike and agree"
        )
    else:
        weights = (
            f"The test users had from {counts[0]} to {counts[-1]} scored videos each, so the "
            f"two means weigh videos differently: {percent(fa_user[0])} per user against "
            f"{percent(fa[0])} per video"
        )
    wider = fa_user[1] > fa[1]
    spread = (
        f"the per-user interval was the wider (± {100 * fa_user[1]:.1f} against "
        f"± {100 * fa[1]:.1f}): {fa_user[2]} users are fewer values than {fa[2]} videos"
        if wider
        else f"the per-user interval was the narrower (± {100 * fa_user[1]:.1f} against "
        f"± {100 * fa[1]:.1f}): a user's mean over their videos varies less than single "
        f"videos do, which outweighed having only {fa_user[2]} values"
    )
    sentences.append(f"{weights}; {spread}.")
    facts = {
        "best_is_last": best_step == steps,
        "orbit_vs_chance": where,
        "equal_weights": equal,
        "per_user_wider": wider,
    }
    return sentences, facts


def benchmarks_recap(
    *,
    steps: int,
    best_step: int,
    best_score: float,
    neurips21: Mapping[str, Any],
    chance: float,
    videos_per_user: Mapping[str, int],
    orbit2022: Mapping[str, Any],
    frames_2022: int,
    md_steps: int,
    md: Mapping[str, Mapping[str, Any]],
    md_chance: Mapping[str, float],
    task: Mapping[str, Mapping[str, Any]],
    task_chance: float,
    finetuner_steps: int,
    memory_rows: Sequence[Mapping[str, Any]],
    chunk_size: int,
    memory: str,
    min_steps: int,
    min_videos: int,
    min_md_steps: int,
    min_md_tasks: int,
) -> Recap:
    """Notebook 07's closing points, from its measurements.

    Args:
        steps, best_step, best_score: ORBIT meta-training's steps, and the step and
            validation score of the best checkpoint.
        neurips21: the ``aggregates`` of ``python -m litekit.evaluate orbit`` under
            ``neurips21`` (``{"per_user": {metric: {"mean", "ci95", "n"}}, "per_video": ...}``).
        chance: the mean over the scored videos of 1 / (the user's number of objects).
        videos_per_user: test user -> their scored videos.
        orbit2022: the ``aggregates`` under ``orbit2022``; ``frames_2022`` the most frames
            it scored in one video.
        md_steps: multi-source training steps; ``md``: source -> ``{"mean", "ci95", "n"}``
            over its test tasks; ``md_chance``: source -> the mean of 1 / way over them.
        task: ``{"learner": record, "finetuner": record}``, each with ``accuracy``,
            ``correct``, ``total`` and ``n_support``; ``task_chance`` 1 / its classes;
            ``finetuner_steps`` the FineTuner's steps.
        memory_rows: `litekit.train.one_task.task_memory_rows`' rows; ``chunk_size`` the
            chunk size; ``memory`` what the memory is (``"the tensors the call creates"``).
        min_steps, min_videos, min_md_steps, min_md_tasks: the least at which the notebook
            checks its claims (the model beating chance on ORBIT; every Meta-Dataset source
            beating chance). The one large task claims no winner: its two learners are
            compared by their intervals in any run.
    """
    long_enough = steps >= min_steps and (
        _interval("per_video", neurips21["per_video"]["frame_accuracy"])[2] >= min_videos
    )
    sentences, facts = _orbit_sentences(
        steps,
        best_step,
        best_score,
        neurips21,
        chance,
        videos_per_user,
        long_enough,
        min_steps,
        min_videos,
    )
    facts["long_enough"] = long_enough

    fa = _interval("neurips21", neurips21["per_video"]["frame_accuracy"])
    fa22 = _interval("orbit2022", orbit2022["per_video"]["frame_accuracy"])
    if intervals_apart((fa22[0] - fa22[1], fa22[0] + fa22[1]), (fa[0] - fa[1], fa[0] + fa[1])):
        protocols = "higher" if fa22[0] > fa[0] else "lower"
        said = (
            f"{protocols} beyond both intervals. The protocols differ in their context, their "
            "scored frames and the history at once, so this does not say which change made "
            "the difference."
        )
    else:
        protocols = "same"
        said = "the intervals overlap, so this run does not tell the two protocols apart."
    sentences.append(
        f"Under `orbit2022` (frames without the object dropped, at most 200 frames per video "
        f"scored without history, every 30th clean frame as context; {frames_2022} frames "
        f"per video here), the per-video frame accuracy was {accuracy(*fa22[:2])} against "
        f"{accuracy(*fa[:2])} under `neurips21`: {said}"
    )
    facts["protocols"] = protocols

    if set(md) != set(md_chance) or not md:
        raise bad_argument("md_chance", sorted(md_chance), f"pass chance for {sorted(md)}.")
    scores = {name: _interval(f"md.{name}", summary) for name, summary in md.items()}
    above = {
        name: against_chance(mean, ci, md_chance[name]) == "above"
        for name, (mean, ci, _) in scores.items()
    }
    shown = "; ".join(
        f"{name} {accuracy(mean, ci)} over {n} tasks (chance {percent(md_chance[name])})"
        for name, (mean, ci, n) in scores.items()
    )
    clear = [name for name, ok in above.items() if ok]
    if len(clear) == len(above):
        verdict = "every source's interval lies above chance."
    elif clear:
        rest = [name for name in above if name not in clear]
        verdict = (
            f"the interval{'s' if len(clear) > 1 else ''} of {listing(clear)} "
            f"lie{'' if len(clear) > 1 else 's'} above chance, not that of {listing(rest)}."
        )
    else:
        verdict = "no source's interval lies clear of chance."
    sentences.append(
        f"Meta-Dataset, after {md_steps} multi-source training steps, on each source's test "
        f"tasks: {shown}: {verdict}"
    )
    md_tasks = min(n for _, _, n in scores.values())
    md_long_enough = md_steps >= min_md_steps and md_tasks >= min_md_tasks
    if len(clear) < len(above) and not md_long_enough:
        sentences.append(
            too_short(
                "every source beating chance",
                f"{md_steps} training steps and {md_tasks} test tasks per source",
                f"{min_md_steps} steps and {min_md_tasks} tasks",
            )
        )
    facts["md_above_chance"] = above
    facts["md_long_enough"] = md_long_enough

    if set(task) != {"learner", "finetuner"}:
        raise bad_argument("task", sorted(task), "pass the 'learner' and 'finetuner' records.")
    learner, tuner = task["learner"], task["finetuner"]
    total = int(learner["total"])
    ranges = {k: wilson_interval(int(r["correct"]), int(r["total"])) for k, r in task.items()}
    apart = intervals_apart(ranges["learner"], ranges["finetuner"])
    gap = learner["accuracy"] - tuner["accuracy"]
    told = (
        f"{'the meta-learner' if gap > 0 else 'the FineTuner'} ahead by {points(abs(gap))[1:]}, "
        "beyond both 95% intervals"
        if apart
        else f"{points(gap)} for the meta-learner, inside the 95% intervals (Wilson's, over "
        f"{total} images), so this task does not tell them apart"
    )
    sentences.append(
        f"The {learner['n_support']}-image task ({total} query images, chance "
        f"{percent(task_chance, 0)}): the meta-learner, adapted in one forward pass over its "
        f"support set, scored {percent(learner['accuracy'])} top-1 and the `FineTuner`, "
        f"after {finetuner_steps} steps on a new linear head, {percent(tuner['accuracy'])}: "
        f"{told}."
    )
    facts["task_apart"] = apart

    facts.update(_memory_sentence(memory_rows, chunk_size, memory, total, sentences))
    return Recap(tuple(sentences), facts)


def _memory_sentence(
    rows: Sequence[Mapping[str, Any]], chunk_size: int, memory: str, total: int, out: list[str]
) -> dict[str, Any]:
    """The memory and time of scoring the task, appended to ``out``; returns the facts."""
    series = {}
    for kind in ("lite", "full"):
        series[kind] = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["n"])
        if len(series[kind]) < 2:
            raise bad_argument("memory_rows", len(series[kind]), f"pass two {kind!r} rows or more.")
    lite, full = series["lite"], series["full"]
    n0, n1 = lite[0]["n"], lite[-1]["n"]
    lite_flat = lite[-1]["mib"] < 1.5 * lite[0]["mib"] + 1
    full_grows = full[-1]["mib"] > 2 * full[0]["mib"]
    same_scores = all(
        abs(a["accuracy"] - b["accuracy"]) <= 1 / total for a, b in zip(lite, full, strict=True)
    )
    shape = (
        ("flat in $N$" if lite_flat else "growing with $N$")
        + " in chunks, "
        + ("growing with $N$" if full_grows else "not doubling")
        + " in one pass"
    )
    times = {
        kind: (rows[-1]["seconds"], rows[-1].get("seconds_min"), rows[-1].get("seconds_max"))
        for kind, rows in series.items()
    }
    compared, verdict = compare_times(
        "scoring in chunks", times["lite"], "in one pass", times["full"]
    )
    out.append(
        f"Scoring the task on its first $N$ support images took, in chunks of {chunk_size}, "
        f"{lite[0]['mib']:.1f} MiB at $N = {n0}$ and {lite[-1]['mib']:.1f} MiB at $N = {n1}$; "
        f"in one pass, {full[0]['mib']:.1f} and {full[-1]['mib']:.1f} MiB ({memory}): "
        f"{shape}"
        + (", with the same top-1 at every $N$." if same_scores else ".")
        + f" At $N = {n1}$, {compared}."
    )
    return {
        "lite_flat": lite_flat,
        "full_grows": full_grows,
        "same_scores": same_scores,
        "time_at_largest_n": verdict,
    }
