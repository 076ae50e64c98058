"""ORBIT's per-video metrics on hand-computed cases, and its aggregates against a direct
recomputation (per user, per video, 1.96 · σ / √n with σ of ddof = 0)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from litekit.orbit import (
    aggregate,
    frame_accuracy,
    frames_to_recognition,
    interval,
    video_accuracy,
    video_metrics,
    video_prediction,
)


def test_a_video_never_recognised():
    predictions = [1, 2, 2, 1, 0]  # label 3 never predicted
    assert frame_accuracy(predictions, 3) == 0.0
    assert frames_to_recognition(predictions, 3) == 1.0
    assert video_accuracy(predictions, 3) == 0.0


def test_a_video_recognised_at_its_last_frame():
    predictions = [0, 0, 0, 1]
    assert frame_accuracy(predictions, 1) == 0.25
    assert frames_to_recognition(predictions, 1) == 3 / 4  # index 3 of 4 frames
    assert video_accuracy(predictions, 1) == 0.0  # the vote says 0


def test_a_video_recognised_at_its_first_frame():
    predictions = [2, 0, 2, 2, 1]
    assert frames_to_recognition(predictions, 2) == 0.0
    assert frame_accuracy(predictions, 2) == 3 / 5
    assert video_accuracy(predictions, 2) == 1.0


def test_a_tie_in_the_vote_goes_to_the_lowest_class():
    assert video_prediction([2, 1, 2, 1]) == 1
    assert video_accuracy([2, 1, 2, 1], 1) == 1.0
    assert video_accuracy([2, 1, 2, 1], 2) == 0.0
    assert video_prediction([3, 0, 3, 0, 5, 5]) == 0  # three-way tie


def test_video_metrics_by_name():
    got = video_metrics(np.array([1, 1, 0]), 0, ["frame_accuracy", "video_accuracy"])
    assert got == {"frame_accuracy": 1 / 3, "video_accuracy": 0.0}


@pytest.mark.parametrize("bad", [[], [[0, 1]], [-1, 0], [0.5, 1.0], [True, False]])
def test_predictions_must_be_class_ids(bad):
    with pytest.raises(ValueError, match="predictions="):
        frame_accuracy(bad, 0)


def test_interval_uses_the_population_standard_deviation():
    values = [0.2, 0.5, 0.9]
    mean, ci = interval(values)
    sigma = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)  # ddof = 0
    assert mean == pytest.approx(sum(values) / 3)
    assert ci == pytest.approx(1.96 * sigma / math.sqrt(3))
    assert interval([0.7]) == (0.7, 0.0)


def test_aggregates_match_a_recomputation():
    rng = np.random.default_rng(0)
    records = []
    for user, videos in (("P1", 3), ("P2", 5), ("P3", 1)):
        for task in range(2):
            for v in range(videos):
                scores = {"frame_accuracy": float(rng.uniform()),
                          "video_accuracy": float(rng.integers(2))}  # fmt: skip
                records.append({"user": user, "task": task, "video": f"{user}-{v}", **scores})
    got = aggregate(records, ["frame_accuracy", "video_accuracy"])
    for metric in ("frame_accuracy", "video_accuracy"):
        pooled = np.array([r[metric] for r in records])
        assert got["per_video"][metric]["mean"] == pytest.approx(pooled.mean())
        assert got["per_video"][metric]["ci95"] == pytest.approx(
            1.96 * pooled.std() / math.sqrt(len(pooled))
        )
        assert got["per_video"][metric]["n"] == len(records) == 2 * (3 + 5 + 1)
        users = np.array([
            np.mean([r[metric] for r in records if r["user"] == u]) for u in ("P1", "P2", "P3")
        ])  # fmt: skip
        assert got["per_user"][metric]["mean"] == pytest.approx(users.mean())
        assert got["per_user"][metric]["ci95"] == pytest.approx(1.96 * users.std() / math.sqrt(3))
        assert got["per_user"][metric]["n"] == 3
    # users with more videos weigh more per video than per user
    assert got["per_user"]["frame_accuracy"]["mean"] != pytest.approx(
        got["per_video"]["frame_accuracy"]["mean"]
    )
