"""Each tutorial's recap says what its numbers show: a long run's result after a long run,
and after a short one, that it was too short (how short, what to run instead).

The numbers below are like those of the tutorials' CI runs (short) and of their defaults
(long); the notebooks themselves assert their displayed recap against their own numbers.
"""

from __future__ import annotations

import pytest

from litekit import recaps
from litekit.recaps.common import compare_times, points, timing
from litekit.train import Evaluation, History


def evaluation(mean: float, ci: float, tasks: int = 4) -> Evaluation:
    return Evaluation([mean] * tasks, mean, ci)


def curve(values, cis) -> History:
    steps = [0, *[(i + 1) * 30 for i in range(len(values) - 1)]]
    return History(val_step=steps, val_accuracy=list(values), val_ci95=list(cis))


# --- the shared sentences ------------------------------------------------------------------------


def test_points_have_a_sign_and_no_negative_zero():
    assert points(0.025) == "+2.5 points" and points(-0.025) == "-2.5 points"
    assert points(-0.0001) == "0.0 points" and points(0.0) == "0.0 points"


def test_times_differ_only_beyond_the_spread_of_their_repeats():
    sentence, verdict = compare_times("LITE", (0.1, 0.09, 0.12), "full", (0.3, 0.28, 0.35))
    assert verdict == "faster" and "3.0× faster" in sentence
    sentence, verdict = compare_times("LITE", (0.26, 0.005, 0.3), "full", (0.0075, 0.007, 0.3))
    assert verdict == "same" and "the ranges overlap" in sentence
    assert compare_times("LITE", (0.4, 0.39, 0.41), "full", (0.2, 0.19, 0.21))[1] == "slower"
    assert compare_times("LITE", (0.4, None, None), "full", (0.2, None, None))[1] == "same"
    assert timing(0.0123, 0.0119, 0.015) == "12.3 ms (11.9 ms to 15 ms over the repeats)"
    with pytest.raises(ValueError, match="^LITE="):
        compare_times("LITE", (0.5, 0.6, 0.7), "full", (0.2, 0.1, 0.3))


# --- notebook 01 ------------------------------------------------------------------------------


def test_decomposition_recap_reports_the_run():
    recap = recaps.decomposition_recap(
        residuals={"ProtoNets": 2e-16, "SimpleCNAPs": 4e-16, "CNAPs": 3e-16},
        loop_gap=1e-15,
        spread=3.2,
        set_to_feature={"SimpleCNAPs": 0.0012, "CNAPs": 0.0011},
        batch_norm={"eval": 1e-16, "train": 0.52},
    )
    assert recap.facts == {"exact": True, "spread": True, "batch_statistics_break": True}
    assert "4.0e-16" in recap and "3.2×" in recap and "SimpleCNAPs 833×" in recap
    assert "failed (residual 0.52)" in recap
    flat = recaps.decomposition_recap(
        residuals={"ProtoNets": 1e-9}, loop_gap=1e-15, spread=1.2,
        set_to_feature={"CNAPs": 0.05}, batch_norm={"eval": 1e-16, "train": 1e-5},
    )  # fmt: skip
    assert flat.facts == {"exact": False, "spread": False, "batch_statistics_break": False}
    assert "missed the task gradient" in flat and "close to equal" in flat
    assert flat.markdown.startswith("- ") and flat._repr_markdown_() == flat.markdown


# --- notebook 02 ------------------------------------------------------------------------------


def unbiasedness(draws: int, final: dict, noise: float, n: int = 5):
    return recaps.unbiasedness_recap(
        n=n, h=2, exact_error=1e-16, subsets=10, film_learner="SimpleCNAPs", pairs=100,
        pair_error=2e-16, biases={"none": 0.34, "loss": 0.925},
        same_subset={1: 1.4e-3, 2: 5e-4, n: 0.0}, draws=draws, final=final, noise=noise,
    )  # fmt: skip


def test_unbiasedness_recap_separates_biases_only_when_the_noise_allows():
    long = unbiasedness(200, {"unbiased": 0.069, "none": 0.455, "loss": 5.17}, 0.048)
    assert long.facts["separated"] and "more draws do not remove a bias" in long
    assert "down to 0 at $h = N = 5$" in long and "10 subsets" in long
    assert "so did SimpleCNAPs' with independent subsets" in long
    short = unbiasedness(40, {"unbiased": 0.2, "none": 0.3, "loss": 2.0}, 0.15)
    assert not short.facts["separated"]
    assert "too short to separate them: with 40 draws" in short and "`DRAWS`" in short


# --- notebook 03 ------------------------------------------------------------------------------


def variance_rows(n: int, hs: list[int]) -> list[dict]:
    return [
        {"h": h, "trace_cov": 1.05 * n * (n - h) / h, "trace_stderr": 0.1 * n * (n - h) / h,
         "theory_trace": n * (n - h) / h, "mean_cosine": 0.5 + 0.5 * h / n}
        for h in hs
    ]  # fmt: skip


def cost_table(n: int, m: int, lite_time: tuple, full_time: tuple) -> list[dict]:
    rows = [
        {"h": h, "method": "lite", "saved_bytes": (h + m) * 1000, "seconds": lite_time[0],
         "seconds_min": lite_time[1], "seconds_max": lite_time[2]}
        for h in (1, 2, 5)
    ]  # fmt: skip
    full = {"h": n, "method": "full", "saved_bytes": (n + m) * 1000, "seconds": full_time[0],
            "seconds_min": full_time[1], "seconds_max": full_time[2]}  # fmt: skip
    return [*rows, full]


@pytest.mark.parametrize(
    ("lite_time", "full_time", "verdict", "says"),
    [
        ((0.17, 0.16, 0.18), (0.26, 0.25, 0.27), "faster", "faster, beyond the spread"),
        ((0.26, 0.005, 0.3), (0.0075, 0.007, 0.3), "same", "it saves time only where"),
        ((0.0035, 0.0033, 0.0036), (0.0028, 0.0027, 0.0029), "slower", "it did not on this"),
    ],
)
def test_variance_recap_says_how_time_compared_on_this_machine(lite_time, full_time, verdict, says):
    recap = recaps.variance_recap(
        stats=variance_rows(10, [1, 2, 5, 10]), film_stats=variance_rows(10, [1, 5, 10]),
        cost=cost_table(10, 5, lite_time, full_time), n_support=10, n_query=5, image_size=32,
    )  # fmt: skip
    assert recap.facts["time"] == verdict and says in recap
    assert recap.facts["cosine_rises"] and recap.facts["above_bound"]
    assert recap.facts["memory_off"] == pytest.approx(0.0)
    assert "was 0 at $h = N = 10$" in recap and "fell to 0.44 of its value" in recap


# --- notebook 04 ------------------------------------------------------------------------------


def meta_training(full, lite, steps, tasks, histories):
    return recaps.meta_training_recap(
        full=full, lite=lite, small_size=32, large_size=64, h=4, n_support=30, steps=steps,
        tasks=tasks, min_steps=100, min_tasks=50,
        ideal={32: 0.61, 64: 0.779, 224: 0.969}, histories=histories,
        ceilings={label: 0.779 for label in histories}, budget="21 MiB",
        fits={"full_large": False, "lite": True},
    )  # fmt: skip


def test_meta_training_recap_of_a_short_run_claims_nothing_it_cannot_show():
    """The CI run of notebook 04: LITE behind by 2.5 points, overlapping intervals, a
    validation curve falling from 0.5 to 0.3."""
    recap = meta_training(
        evaluation(0.375, 0.167), evaluation(0.35, 0.098), 4, 4,
        {"ProtoNets, 64 px, LITE h=4": curve([0.5, 0.35, 0.3], [0.2, 0.25, 0.2])},
    )  # fmt: skip
    assert not recap.facts["apart"] and not recap.facts["long_enough"]
    assert "-2.5 points for LITE" in recap and "the 95% intervals overlap" in recap
    assert "too short to separate them: 4 training steps and 4 held-out tasks" in recap
    assert "do not overlap" not in recap and "clearly higher" not in recap
    assert recap.facts["curves"] == {"ProtoNets, 64 px, LITE h=4": "stayed"}
    assert "climbs" not in recap and "stayed within its intervals" in recap


def test_meta_training_recap_of_a_long_run_states_its_result():
    recap = meta_training(
        evaluation(0.55, 0.02, 100), evaluation(0.70, 0.02, 100), 120, 100,
        {"ProtoNets, 64 px, LITE h=4": curve([0.2, 0.5, 0.68], [0.05, 0.05, 0.04]),
         "SimpleCNAPs, 64 px, LITE h=4": curve([0.6, 0.4], [0.04, 0.04])},
    )  # fmt: skip
    assert recap.facts["apart"] and recap.facts["long_enough"] and recap.facts["gap"] > 0
    assert "LITE ahead by 15.0 points, and the 95% intervals do not overlap" in recap
    assert "too short" not in recap
    assert recap.facts["curves"] == {
        "ProtoNets, 64 px, LITE h=4": "rose", "SimpleCNAPs, 64 px, LITE h=4": "fell"
    }  # fmt: skip
    assert "rose from 20.0% at step 0 to 68.0% at step 60" in recap
    assert "did not fit it; LITE with $h = 4$ of $N = 30$ did." in recap


# --- notebook 05 ------------------------------------------------------------------------------


def sweep(x: str, values: list[int], lite_bytes, full_bytes, lite_s, full_s) -> list[dict]:
    rows = []
    for kind, memory, time in (("full", full_bytes, full_s), ("lite", lite_bytes, lite_s)):
        for i, value in enumerate(values):
            t = time[i]
            rows.append({"kind": kind, x: value, "bytes": memory[i] * 2**20, "seconds": t,
                         "seconds_min": 0.9 * t, "seconds_max": 1.1 * t})  # fmt: skip
    return rows


PLAN = {"budget": "60 MiB", "fraction": 0.5, "plan_n": 200, "h": 12, "query_batch": 10,
        "search": ["h", "query_batch", "chunk_size"],
        "chunk_size": 25, "probes": 9, "largest_size": 96}  # fmt: skip


def test_memory_time_recap_calls_a_trend_only_beyond_the_repeats():
    recap = recaps.memory_time_recap(
        by_n=sweep("n", [25, 200], [40, 41], [60, 400], [0.1, 0.4], [0.1, 0.8]),
        by_size=sweep("size", [32, 128], [10, 80], [30, 500], [0.1, 0.3], [0.1, 0.9]),
        h=10, n_for_sizes=50, memory="step share of the peak RSS", plan=PLAN,
        reference={"full": 84.9, "lite": 6.6}, reference_growth={"full": 7.4, "lite": 1.0},
    )  # fmt: skip
    assert recap.facts == {"lite_flat": True, "time_at_largest_n": "faster",
                           "lite_below_at_every_size": True}  # fmt: skip
    assert "LITE's stayed flat" in recap and "full back-propagation's grew 8.0×" in recap
    assert "16.0× the pixels" in recap and "largest image size that fitted was 96 px" in recap
    assert "grew ×16.7 with full back-propagation and ×8.0 with LITE" in recap
    assert "bisected on $h$, the query batch and the chunk size" in recap
    assert "LITE +1 MiB" in recap
    noisy = recaps.memory_time_recap(
        by_n=sweep("n", [10, 40], [40, 41], [40, 45], [0.01, 0.0102], [0.01, 0.0105]),
        by_size=sweep("size", [32, 48], [10, 12], [11, 15], [0.01, 0.01], [0.01, 0.01]),
        h=2, n_for_sizes=10, memory="step share of the peak RSS", plan=PLAN,
        reference={"full": 84.9, "lite": 6.6}, reference_growth={"full": 7.4, "lite": 1.0},
    )  # fmt: skip
    assert noisy.facts["time_at_largest_n"] == "same"
    assert "stayed within the spread of its repeats" in noisy
    tiny = recaps.memory_time_recap(
        by_n=sweep("n", [10, 40], [16, 15.99], [40, 100], [0.3, 0.4], [0.2, 0.6]),
        by_size=sweep("size", [32, 48], [10, 12], [11, 15], [0.01, 0.01], [0.01, 0.01]),
        h=2, n_for_sizes=10, memory="step share", plan={**PLAN, "search": ["h"],
                                                         "query_batch": None},
        reference={"full": 84.9, "lite": 6.6}, reference_growth={"full": 7.4, "lite": 1.0},
    )  # fmt: skip
    assert "LITE -10 KiB" in tiny and "bisected on $h$, measuring" in tiny
    assert "all queries in one batch" in tiny
    with pytest.raises(ValueError, match="^rows="):
        recaps.memory_time_recap(
            by_n=sweep("n", [10], [1], [1], [0.1], [0.1]), by_size=[], h=1, n_for_sizes=1,
            memory="", plan=PLAN, reference={}, reference_growth={},
        )  # fmt: skip


# --- notebook 06 ------------------------------------------------------------------------------


def transfer(results, paired, unpaired, gap, steps, tasks):
    return recaps.transfer_recap(
        results=results, meta_learners=["ProtoNets", "SimpleCNAPs"],
        finetuner="FineTuner, whole backbone + head", head_only="FineTuner, head only",
        ideal=0.779, image_size=64, paired=paired, unpaired=unpaired, best="ProtoNets",
        gap=gap, flops={"ProtoNets": 1e9, "SimpleCNAPs": 1.2e9,
                        "FineTuner, whole backbone + head": 4e10, "FineTuner, head only": 1e9},
        time_ratio=(30.0, 22.0, 41.0), steps=steps, tasks=tasks, min_steps=100,
        min_tasks=20,
    )  # fmt: skip


def test_transfer_recap_of_the_ci_run_is_true_of_its_numbers():
    """The CI run of notebook 06: 45-55% against a 78% ceiling, paired ± 21.2 against
    ± 27.7 unpaired for one learner and ± 27.7 against ± 26.5 for the other."""
    results = {"ProtoNets": evaluation(0.55, 0.127), "SimpleCNAPs": evaluation(0.45, 0.098),
               "FineTuner, whole backbone + head": evaluation(0.55, 0.247),
               "FineTuner, head only": evaluation(0.525, 0.123)}  # fmt: skip
    recap = transfer(results, {"ProtoNets": (0.0, 0.212), "SimpleCNAPs": (0.10, 0.277)},
                     {"ProtoNets": 0.277, "SimpleCNAPs": 0.265}, (0.0, 0.212), 4, 4)  # fmt: skip
    assert not recap.facts["within_ceiling"] and not recap.facts["within_5_points"]
    assert recap.facts["paired_tighter"] == {"ProtoNets": True, "SimpleCNAPs": False}
    assert "Every learner stayed more than 10 points below it" in recap
    assert "within a few points" not in recap
    assert "pairing did not tighten every interval in this run" in recap
    assert "too short to separate them: 4 training steps and 4 held-out tasks" in recap
    assert "0.0 points ± 21.2 paired" in recap and "-0.0" not in recap.markdown
    assert "cost 33× the FLOPs of SimpleCNAPs" in recap and "22× to 41×" in recap


def test_transfer_recap_of_a_long_run_states_its_result():
    results = {"ProtoNets": evaluation(0.74, 0.03, 30), "SimpleCNAPs": evaluation(0.72, 0.03, 30),
               "FineTuner, whole backbone + head": evaluation(0.75, 0.03, 30),
               "FineTuner, head only": evaluation(0.73, 0.03, 30)}  # fmt: skip
    recap = transfer(results, {"ProtoNets": (0.01, 0.02), "SimpleCNAPs": (0.03, 0.02)},
                     {"ProtoNets": 0.042, "SimpleCNAPs": 0.042}, (0.01, 0.02), 120, 30)  # fmt: skip
    assert recap.facts["within_ceiling"] and recap.facts["within_5_points"]
    assert "Every learner came within 10 points of that ceiling" in recap
    assert "pairing the tasks made the comparison more precise" in recap
    assert "too short" not in recap
    wide = transfer(results, {"ProtoNets": (0.01, 0.02), "SimpleCNAPs": (0.03, 0.02)},
                    {"ProtoNets": 0.042, "SimpleCNAPs": 0.042}, (0.03, 0.04), 120, 30)  # fmt: skip
    assert wide.facts["mean_within_5_points"] and not wide.facts["within_5_points"]
    assert "the mean difference was within 5 points, but its interval reaches further" in wide


# --- notebook 07 ------------------------------------------------------------------------------


def orbit_aggregates(per_video, per_user, ftr=(0.2, 0.1), va=(0.5, 0.2)):
    """ORBIT's aggregates as `python -m litekit.evaluate orbit` writes them."""
    (mean, ci, n), (user_mean, user_ci, users) = per_video, per_user
    return {
        "per_video": {"frame_accuracy": {"mean": mean, "ci95": ci, "n": n},
                      "frames_to_recognition": {"mean": ftr[0], "ci95": ftr[1], "n": n},
                      "video_accuracy": {"mean": va[0], "ci95": va[1], "n": n}},
        "per_user": {"frame_accuracy": {"mean": user_mean, "ci95": user_ci, "n": users}},
    }  # fmt: skip


def task_rows(lite_mib, full_mib, lite_s, full_s, sizes=(12, 30)) -> list[dict]:
    rows = []
    for i, n in enumerate(sizes):
        for kind, mib, t in (("lite", lite_mib[i], lite_s[i]), ("full", full_mib[i], full_s[i])):
            rows.append({"kind": kind, "n": n, "mib": mib, "seconds": t, "seconds_min": 0.9 * t,
                         "seconds_max": 1.1 * t, "accuracy": 0.5})  # fmt: skip
    return rows


def benchmarks(**changes):
    """Notebook 07's recap on numbers like its CI run's (2 steps, 5 test videos, 6 query
    images), with ``changes`` applied."""
    arguments = dict(
        steps=2, best_step=2, best_score=0.815,
        neurips21=orbit_aggregates((0.4778, 0.2937, 5), (0.4877, 0.0684, 2)),
        chance=0.4, videos_per_user={"P103": 3, "P104": 2},
        orbit2022={"per_video": {"frame_accuracy": {"mean": 0.432, "ci95": 0.1228, "n": 5}}},
        frames_2022=50, md_steps=2,
        md={"shapes": {"mean": 0.5, "ci95": 0.1089, "n": 2},
            "alphabets": {"mean": 0.2667, "ci95": 0.1307, "n": 2}},
        md_chance={"shapes": 0.183, "alphabets": 0.2},
        task={"learner": {"accuracy": 4 / 6, "correct": 4, "total": 6, "n_support": 30},
              "finetuner": {"accuracy": 2 / 6, "correct": 2, "total": 6, "n_support": 30}},
        task_chance=1 / 3, finetuner_steps=2,
        memory_rows=task_rows([0.5, 0.5], [0.8, 1.9], [0.010, 0.011], [0.010, 0.012]),
        chunk_size=5, memory="the tensors the call creates", min_steps=50, min_videos=30,
        min_md_steps=20, min_md_tasks=10,
    )  # fmt: skip
    arguments.update(changes)
    return recaps.benchmarks_recap(**arguments)


def test_wilson_interval_matches_its_formula_and_stays_in_range():
    assert recaps.wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert recaps.wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = recaps.wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)
    with pytest.raises(ValueError, match="^correct=7"):
        recaps.wilson_interval(7, 6)
    with pytest.raises(ValueError, match="^total=0"):
        recaps.wilson_interval(0, 0)


def test_benchmarks_recap_of_the_ci_run_claims_nothing_it_cannot_show():
    """The CI run of notebook 07: 47.8 ± 29.4% per video against 40% chance after 2 steps,
    a per-user interval narrower than the per-video one, one source of two above chance,
    4 and 2 of 6 query images right."""
    recap = benchmarks()
    assert recap.facts["orbit_vs_chance"] == "overlap" and not recap.facts["long_enough"]
    assert "the interval reaches chance, so this run does not show the model beating" in recap
    assert "too short to show the model beating a guess: 2 training steps and 5 test" in recap
    assert "tells a user's new objects apart" not in recap
    assert not recap.facts["per_user_wider"] and "per-user interval was the narrower" in recap
    assert not recap.facts["equal_weights"] and "from 2 to 3 scored videos" in recap
    assert recap.facts["protocols"] == "same" and "does not tell the two protocols apart" in recap
    assert recap.facts["md_above_chance"] == {"shapes": True, "alphabets": False}
    assert "the interval of shapes lies above chance, not that of alphabets" in recap
    assert "too short to show every source beating chance: 2 training steps and 2 test" in recap
    assert not recap.facts["task_apart"] and "so this task does not tell them apart" in recap
    assert "+33.3 points for the meta-learner" in recap
    assert recap.facts["lite_flat"] and recap.facts["full_grows"]
    assert "flat in $N$ in chunks, growing with $N$ in one pass" in recap
    assert recap.facts["time_at_largest_n"] == "same" and "the ranges overlap" in recap
    assert "(the last), so `orbit.best.pt` holds the same weights" in recap


def test_benchmarks_recap_of_a_long_run_states_its_result():
    """Numbers like notebook 07's defaults: 60 steps, 60 test videos, 200 query images."""
    recap = benchmarks(
        steps=60, best_step=40, best_score=0.485,
        neurips21=orbit_aggregates((0.5169, 0.1009, 60), (0.5368, 0.1167, 3)),
        chance=0.25, videos_per_user={"P106": 20, "P107": 15, "P108": 25},
        orbit2022={"per_video": {"frame_accuracy": {"mean": 0.7, "ci95": 0.05, "n": 60}}},
        frames_2022=52, md_steps=40,
        md={"shapes": {"mean": 0.84, "ci95": 0.0339, "n": 20},
            "alphabets": {"mean": 0.6725, "ci95": 0.0571, "n": 20}},
        md_chance={"shapes": 0.18, "alphabets": 0.2},
        task={"learner": {"accuracy": 0.585, "correct": 117, "total": 200, "n_support": 1000},
              "finetuner": {"accuracy": 0.9, "correct": 180, "total": 200, "n_support": 1000}},
        task_chance=0.1, finetuner_steps=50,
        memory_rows=task_rows([109.4, 109.5], [109.4, 1000.1], [0.6, 1.6], [0.7, 3.0],
                              sizes=(100, 1000)),
        chunk_size=50,
    )  # fmt: skip
    assert recap.facts["orbit_vs_chance"] == "above" and recap.facts["long_enough"]
    assert "the interval lies above chance, so the model tells a user's new objects apart" in recap
    assert "51.7% ± 10.1 per video (n = 60 videos)" in recap and "too short" not in recap
    assert recap.facts["per_user_wider"] and "53.7% per user against 51.7% per video" in recap
    assert not recap.facts["best_is_last"] and "of 60, so the scores below are of that" in recap
    assert recap.facts["protocols"] == "higher" and "higher beyond both intervals" in recap
    assert recap.facts["md_above_chance"] == {"shapes": True, "alphabets": True}
    assert "every source's interval lies above chance" in recap
    assert recap.facts["task_apart"] and "the FineTuner ahead by 31.5 points" in recap
    assert recap.facts["lite_flat"] and recap.facts["full_grows"]
    assert "flat in $N$ in chunks, growing with $N$ in one pass" in recap
    assert recap.facts["time_at_largest_n"] == "faster" and "1.9× faster" in recap
    equal = benchmarks(videos_per_user={"P103": 3, "P104": 3}, best_step=0)
    assert equal.facts["equal_weights"] and "weigh every video alike" in equal
    assert "before the first training step" in equal
    level = benchmarks(memory_rows=task_rows([0.5, 2.0], [0.8, 1.0], [0.01, 0.01], [0.01, 0.01]))
    assert not level.facts["lite_flat"] and not level.facts["full_grows"]
    assert "growing with $N$ in chunks, not doubling in one pass" in level
    with pytest.raises(ValueError, match="^videos_per_user="):
        benchmarks(videos_per_user={"P103": 3})
    with pytest.raises(ValueError, match="^md_chance="):
        benchmarks(md_chance={"shapes": 0.2})
