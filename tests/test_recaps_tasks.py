"""The first chapter's tools: activation memory against N and pixels, and notebook 00's recap.

- `activation_bytes` counts what full back-propagation keeps for backward: exactly one image's
  worth more per support image (a straight line in N whose intercept is the query images'
  share), the same count as `measure_task_gradient`, less with LITE;
- `memory_growth` and `linear_fit` check their arguments before any work;
- `litekit.recaps.tasks_recap` says what the numbers say, with the facts it decided on, in
  every case a run can produce: a clear gain, a clear loss, a change within noise (a short
  run), straight or bent memory lines, too few sizes to test a line.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

from litekit import Episode, Lite
from litekit.learners import ProtoNets, conv4
from litekit.measure import activation_bytes, linear_fit, measure_task_gradient, memory_growth
from litekit.recaps.tasks import (
    STRAIGHT,
    accuracy_sentence,
    film_sentence,
    memory_sentences,
    paired_change,
    t_quantile,
    tasks_recap,
)
from litekit.train.evaluation import Evaluation, confidence_interval

WAY, QUERY_PER_CLASS = 2, 2


def learner() -> ProtoNets:
    torch.manual_seed(0)
    return ProtoNets(conv4(width=4, depth=2))


def random_task(n: int, size: int) -> Episode:
    g = torch.Generator().manual_seed(n * 1000 + size)
    m = WAY * QUERY_PER_CLASS
    return Episode(
        support_images=torch.rand(n, 3, size, size, generator=g),
        support_labels=torch.arange(n) % WAY,
        query_images=torch.rand(m, 3, size, size, generator=g),
        query_labels=torch.arange(m) % WAY,
        class_ids=torch.arange(WAY),
    )


def test_full_back_propagation_keeps_one_image_more_per_support_image():
    model = learner()
    saved = {n: activation_bytes(model, random_task(n, 16)) for n in (2, 4, 6, 8)}
    steps = {saved[n + 2] - saved[n] for n in (2, 4, 6)}
    assert len(steps) == 1 and steps.pop() > 0  # exactly linear in N
    per_image = (saved[8] - saved[2]) / 6
    query_share = saved[2] - 2 * per_image  # the line at N = 0
    assert query_share == pytest.approx(WAY * QUERY_PER_CLASS * per_image, rel=0.05)


def test_activation_bytes_agrees_with_the_task_gradient_measurement_and_lite_keeps_less():
    model, task = learner(), random_task(8, 16)
    full = activation_bytes(model, task)
    assert full == measure_task_gradient(model, task, None, repeats=1).saved_bytes
    lite = Lite(2, chunk_size=4, generator=torch.Generator().manual_seed(0))
    assert activation_bytes(model, task, lite) < full
    assert all(p.grad is None for p in model.parameters())  # left as found


def test_memory_growth_rows_and_pixels():
    rows = memory_growth(
        learner(), random_task, ns=[4, 2, 6], sizes=[16, 32], n_for_sizes=4, size_for_ns=16
    )
    assert [(r["vary"], r["n"], r["image_size"]) for r in rows] == [
        ("n", 2, 16), ("n", 4, 16), ("n", 6, 16), ("size", 4, 16), ("size", 4, 32)
    ]  # fmt: skip
    assert all(r["pixels"] == r["image_size"] ** 2 for r in rows)
    assert rows[1]["saved_bytes"] == rows[3]["saved_bytes"]  # the same task, measured twice
    assert all(r["mib"] == r["saved_bytes"] / 2**20 for r in rows)


@pytest.mark.parametrize(
    ("keywords", "argument"),
    [
        ({"ns": [4]}, "ns"),
        ({"ns": [4, 4]}, "ns"),
        ({"ns": "48"}, "ns"),
        ({"sizes": [16, 0]}, r"sizes\[1\]"),
        ({"n_for_sizes": 0}, "n_for_sizes"),
        ({"make_task": "task"}, "make_task"),
        ({"make_task": lambda n, size: random_task(n + 1, size)}, "make_task"),
    ],
)
def test_bad_memory_growth_arguments(keywords, argument):
    arguments = dict(make_task=random_task, ns=[2, 4], sizes=[16, 32], n_for_sizes=2,
                     size_for_ns=16)  # fmt: skip
    arguments.update(keywords)
    make_task = arguments.pop("make_task")
    with pytest.raises(ValueError, match=rf"^{argument}="):
        memory_growth(learner(), make_task, **arguments)


def test_linear_fit_is_exact_on_a_line_and_says_how_far_a_bent_one_strays():
    line = linear_fit([1, 2, 4], [3, 5, 9])
    assert (line.slope, line.intercept) == pytest.approx((2, 1)) and line.worst < 1e-12
    assert line(10) == pytest.approx(21)
    bent = linear_fit([1, 2, 3], [1, 4, 9])  # y = x²: the line 4x - 10/3
    assert bent.worst == pytest.approx(abs(4 - 10 / 3 - 1) / 1)
    with pytest.raises(ValueError, match="^xs="):
        linear_fit([1, 1], [2, 3])
    with pytest.raises(ValueError, match="^ys="):
        linear_fit([1, 2], [0, 3])


# --- the recap ---------------------------------------------------------------------------------


def evaluation(accuracies: list[float]) -> Evaluation:
    mean, half = confidence_interval(accuracies)
    return Evaluation(list(accuracies), mean, half)


BEFORE = evaluation([0.4, 0.5, 0.3, 0.45, 0.35, 0.4])


def test_paired_change_is_the_interval_of_the_per_task_differences():
    after = evaluation([0.6, 0.6, 0.5, 0.65, 0.5, 0.7])
    change, half = paired_change(BEFORE, after)
    differences = [a - b for b, a in zip(BEFORE.accuracies, after.accuracies, strict=True)]
    mean, normal = confidence_interval(differences)  # 1.96 · s / √n
    assert (change, half) == pytest.approx((mean, normal / 1.96 * 2.571))  # t, 5 dof
    assert paired_change(evaluation([0.2]), evaluation([0.9])) == (pytest.approx(0.7), math.inf)
    with pytest.raises(ValueError, match="^after=3: score the same 6 tasks"):
        paired_change(BEFORE, evaluation([0.5, 0.5, 0.5]))


def test_t_quantile_is_the_table_then_its_expansion():
    assert t_quantile(1) == 12.706 and t_quantile(30) == 2.042
    assert t_quantile(40) == pytest.approx(2.0211, abs=1e-3)
    assert t_quantile(120) == pytest.approx(1.9799, abs=1e-3)
    values = [t_quantile(d) for d in range(1, 200)]
    assert values == sorted(values, reverse=True) and values[-1] > 1.96
    with pytest.raises(ValueError, match="^dof=0"):
        t_quantile(0)


def test_accuracy_sentence_says_gain_loss_or_too_short_from_the_numbers():
    after = evaluation([0.6, 0.6, 0.5, 0.65, 0.5, 0.7])
    gain, verdict = accuracy_sentence("ProtoNets", BEFORE, after, 60)
    assert "40.0% before, 59.2% after 60 steps" in gain and "raised its accuracy" in gain
    assert "+19.2 ±" in gain and verdict == "rose"
    loss, verdict = accuracy_sentence("X", BEFORE, evaluation([0.2, 0.3, 0.1, 0.25, 0.15, 0.2]), 5)
    assert "accuracy fell" in loss and "raised" not in loss and verdict == "fell"
    noise, verdict = accuracy_sentence("X", BEFORE, evaluation([0.5, 0.4, 0.4, 0.35, 0.4, 0.45]), 3)
    assert "too short" in noise and "`STEPS`" in noise and "raised" not in noise
    assert verdict == "unclear"
    # four tasks: Student's t is wider than the normal approximation, and says noise
    before, after = evaluation([0.4] * 4), evaluation([0.4, 0.6, 0.5, 0.65])
    change, normal = confidence_interval([a - 0.4 for a in after.accuracies])
    assert change - normal > 0  # 1.96 · s / √n would call it a gain
    assert accuracy_sentence("X", before, after, 3)[1] == "unclear"
    assert accuracy_sentence("X", evaluation([0.2]), evaluation([0.9]), 3)[1] == "unclear"


def memory_rows(bend: float = 0.0) -> list[dict]:
    rows = [
        {
            "vary": "n",
            "n": n,
            "image_size": 48,
            "pixels": 48**2,
            "saved_bytes": 2**20 * (10 + 2 * n + bend * n * n),
        }
        for n in (10, 20, 40)
    ]
    rows += [{"vary": "size", "n": 20, "image_size": s, "pixels": s * s,
              "saved_bytes": 2**20 * s * s / 1024} for s in (32, 64)]  # fmt: skip
    return rows


def test_memory_sentences_read_the_rows():
    (growth_n, growth_pixels), facts = memory_sentences(memory_rows())
    assert facts == {"line": True, "proportional": True}
    assert "30.0 MiB" in growth_n and "90.0 MiB at N = 40 (48 × 48 px)" in growth_n
    assert "2048 KiB more for each support image, on a straight line" in growth_n
    assert "from 32 to 64 px a side (4.0× the pixels)" in growth_pixels
    assert "from 1.0 to 4.0 MiB (4.0×)" in growth_pixels and "in proportion" in growth_pixels
    (bent, _), facts = memory_sentences(memory_rows(bend=0.5))
    assert "not quite on a straight line" in bent and facts["line"] is False
    worst = float(re.search(r"a point (\d+)% away", bent).group(1)) / 100
    assert worst > STRAIGHT
    two = [r for r in memory_rows() if r["n"] != 20 or r["vary"] == "size"]
    (sentence, _), facts = memory_sentences(two)
    assert "two sizes only, which any straight line fits" in sentence and facts["line"] is None
    offset = [{**r, "saved_bytes": r["saved_bytes"] + 2**22} if r["vary"] == "size" else r
              for r in memory_rows()]  # fmt: skip
    (_, sentence), facts = memory_sentences(offset)
    assert "but not in proportion to them" in sentence and facts["proportional"] is False
    with pytest.raises(ValueError, match="^rows="):
        memory_sentences(memory_rows()[:4])  # one size only


def test_film_sentence_weighs_the_gap_between_tasks_against_the_spread_over_channels():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])  # spread (sample std) 1.29
    alike, specific = film_sentence(a, a + 0.01)
    assert "differ by 0.010 on average, 0.8% of how much" in alike
    assert "almost identically" in alike and "adapts" not in alike and not specific
    apart, specific = film_sentence(a, a.flip(0))
    assert "differ by 2.0 on average, 154.9%" in apart and "adapts the backbone" in apart
    assert specific
    with pytest.raises(ValueError, match="^gamma_b="):
        film_sentence(a, a[:3])


def test_recap_is_one_sentence_per_fact_with_its_facts_and_refuses_mismatched_learners():
    after = {"ProtoNets": evaluation([0.6] * 6), "Simple CNAPs": evaluation([0.42] * 6)}
    before = {"ProtoNets": BEFORE, "Simple CNAPs": BEFORE}
    shape = dict(way=5, shot=2, n_query=3, image_size=32, steps=4, ceiling=0.61)
    recap = tasks_recap(**shape, before=before, after=after, memory_rows=memory_rows())
    assert len(recap.sentences) == 6
    assert recap.markdown.count("\n- ") == 5 and recap.markdown.startswith("- ")
    assert recap.facts == {
        "accuracy": {"ProtoNets": "rose", "Simple CNAPs": "unclear"},
        "film_task_specific": None,
        "line": True,
        "proportional": True,
    }
    assert "5-way 2-shot task: N = 10 support images and M = 15 query images of 32 × 32" in recap
    assert "61.0% on such tasks at 32 px" in recap
    gammas = (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    with_film = tasks_recap(**shape, before=before, after=after, memory_rows=memory_rows(),
                            film_gammas=gammas)  # fmt: skip
    assert len(with_film.sentences) == 7 and film_sentence(*gammas)[0] in with_film.sentences
    assert with_film.facts["film_task_specific"] is True
    with pytest.raises(ValueError, match="^after="):
        tasks_recap(**shape, before=before, after={"ProtoNets": after["ProtoNets"]},
                    memory_rows=memory_rows())  # fmt: skip
