"""The training step's guards against non-finite numbers, and the weights of a skipping step.

Two faults reach `meta_train_step`:
- a task whose loss is NaN or infinite (a NaN pixel): ``on_nonfinite="raise"`` stops the step
  with nothing changed; ``"skip"`` takes that task's gradient back out and averages the others;
- every loss finite but the accumulated gradient not (an overflow in the backward pass only):
  the step's gradient check. ``"raise"`` stops with nothing changed; ``"skip"`` skips the
  whole step and reports every task as skipped, loss and accuracy NaN (`StepResult`).

The second fault is built with a hook on one parameter that turns its gradient into inf or
NaN: the forward pass, hence every loss, is untouched.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import gradient, make_episode, make_learner, relative_error

from litekit import Episode, Lite, meta_train_step
from litekit.train.step import NonFiniteLossError

KINDS = ["protonets", "simple_cnaps"]


def tasks(count: int = 3) -> list[Episode]:
    return [make_episode(n_support=6, n_query=5, seed=40 + s) for s in range(count)]


def state(learner, optimizer) -> tuple:
    """Weights, buffers and optimiser state as plain lists and text, comparable with ``==``."""
    return [v.tolist() for v in learner.state_dict().values()], str(optimizer.state_dict())


def poison_gradient(learner, value: float):
    """Every backward pass gives the first convolution's bias the gradient ``value``
    everywhere (inf: an overflow; NaN: inf - inf), whatever the loss; returns the handle."""
    bias = learner.backbone[0].bias
    return bias.register_hook(lambda grad: torch.full_like(grad, value))


def true_loss(learner, episode: Episode) -> float:
    with torch.no_grad():
        logits = learner(episode.support_images, episode.support_labels, episode.query_images)
        return float(F.cross_entropy(logits, episode.query_labels))


@pytest.mark.parametrize("value", [math.inf, math.nan])
@pytest.mark.parametrize("lite", [None, Lite(2)], ids=["full", "lite"])
@pytest.mark.parametrize("kind", KINDS)
def test_finite_losses_with_a_non_finite_gradient_raise_and_change_nothing(kind, lite, value):
    learner = make_learner(kind)
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.1)
    meta_train_step(learner, tasks(1), optimizer)  # the optimiser has state to protect
    losses = [true_loss(learner, t) for t in tasks()]
    assert all(math.isfinite(x) for x in losses), "the fault must be in the gradient alone"
    before = state(learner, optimizer)
    poison_gradient(learner, value)
    with pytest.raises(NonFiniteLossError, match="gradient is not finite although every task"):
        meta_train_step(learner, tasks(), optimizer, lite=lite)
    assert state(learner, optimizer) == before
    assert all(p.grad is None for p in learner.parameters())


@pytest.mark.parametrize("value", [math.inf, math.nan])
@pytest.mark.parametrize("kind", KINDS)
def test_skip_skips_a_step_whose_gradient_is_not_finite(kind, value):
    """``on_nonfinite="skip"``: the whole step is skipped (every task reported skipped, loss
    and accuracy NaN), weights and optimiser state unchanged, and the next sound step trains."""
    learner = make_learner(kind)
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.1)
    meta_train_step(learner, tasks(1), optimizer)
    before = state(learner, optimizer)
    handle = poison_gradient(learner, value)
    result = meta_train_step(learner, tasks(), optimizer, lite=Lite(2), on_nonfinite="skip")
    assert result.skipped == 3
    assert math.isnan(result.loss) and math.isnan(result.accuracy)
    assert state(learner, optimizer) == before
    assert all(p.grad is None for p in learner.parameters())
    handle.remove()
    result = meta_train_step(learner, tasks(), optimizer, lite=Lite(2), on_nonfinite="skip")
    assert result.skipped == 0 and math.isfinite(result.loss)
    assert state(learner, optimizer) != before


# --- the weights of a step that skips some tasks -----------------------------------------------


def with_nan(episode: Episode, where: str) -> Episode:
    """``episode`` with one NaN pixel in a support or a query image: a NaN loss."""
    support, query = episode.support_images.clone(), episode.query_images.clone()
    (support if where == "support" else query)[1, 0, 3, 3] = float("nan")
    return Episode(support, episode.support_labels, query, episode.query_labels, episode.class_ids)


FIXED = {"set": [0, 3], "features": [2, 5]}


@pytest.mark.parametrize("bad", [(0,), (3,), (1, 2)], ids=["first", "last", "middle-two"])
@pytest.mark.parametrize("kind", ["protonets", "cnaps"])
def test_skipping_step_applies_the_mean_over_the_counted_tasks(kind, bad):
    """Four tasks, some with a NaN pixel (in a support image or a query image): one SGD(lr=1)
    step with ``on_nonfinite="skip"`` moves the weights by exactly the mean of the sound
    tasks' gradients, each computed on its own (weight 1, `accumulate_task_gradient`): the
    bad tasks' gradients are absent, and the others are weighted 1/(tasks counted), not
    1/T. Loss and accuracy are the means over the counted tasks; ``skipped`` counts the rest.
    Fixed subsets make each estimate deterministic; float64 rounding of θ - (θ - g) leaves
    ~1e-15 relative.
    """
    learner = make_learner(kind)
    lite = Lite(2, subsets=FIXED if kind == "cnaps" else {"features": FIXED["features"]})
    sound = tasks(4)
    step_tasks = [
        with_nan(t, "support" if k % 2 == 0 else "query") if k in bad else t
        for k, t in enumerate(sound)
    ]
    counted = [t for k, t in enumerate(sound) if k not in bad]
    expected = sum(gradient(learner, t, lite) for t in counted) / len(counted)
    losses = [true_loss(learner, t) for t in counted]
    accuracies = []
    for t in counted:
        with torch.no_grad():
            logits = learner(t.support_images, t.support_labels, t.query_images)
        accuracies.append(float((logits.argmax(1) == t.query_labels).double().mean()))

    before = torch.cat([p.detach().flatten().clone() for p in learner.parameters()])
    optimizer = torch.optim.SGD(learner.parameters(), lr=1.0)
    result = meta_train_step(learner, step_tasks, optimizer, lite=lite, on_nonfinite="skip")
    after = torch.cat([p.detach().flatten() for p in learner.parameters()])
    assert result.skipped == len(bad)
    assert torch.isfinite(after).all()
    assert relative_error(before - after, expected) < 1e-12
    assert result.loss == pytest.approx(sum(losses) / len(losses), rel=1e-12)
    assert result.accuracy == pytest.approx(sum(accuracies) / len(accuracies), rel=1e-12)
