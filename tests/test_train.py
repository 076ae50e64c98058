"""meta_train_step: query batching, caching, weights and results."""

from __future__ import annotations

import pytest
import torch
from helpers import gradient, make_episode, make_learner, relative_error, subsets

from litekit import Lite, meta_train_step
from litekit.learners.base import Learner

KINDS = ["protonets", "simple_cnaps", "cnaps"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("query_batch", [1, 2, 3])
def test_query_batched_gradient_equals_unbatched_when_h_is_n(kind, query_batch):
    learner = make_learner(kind)
    episode = make_episode(n_support=6, n_query=7)
    unbatched = gradient(learner, episode)
    for lite in (None, Lite(6), Lite(6, subsets={"set": range(6), "features": range(6)})):
        batched = gradient(learner, episode, lite, query_batch=query_batch)
        assert relative_error(batched, unbatched) < 1e-12


class ScriptedLite(Lite):
    """A Lite whose successive draws follow a script: enumerates subsets per query batch."""

    def __init__(self, h: int, script: list[list[int]]) -> None:
        super().__init__(h)
        self.script = iter(script)

    def draw(self, n, paths):
        subset = torch.tensor(next(self.script))
        return {p: subset for p in paths}


def test_query_batched_lite_is_unbiased_by_enumeration():
    """Two query batches, each with its own subset: averaging the training step's gradient
    over every pair (first batch's subset, second batch's subset) gives the full gradient."""
    learner = make_learner("protonets")
    episode = make_episode(n_support=5, n_query=4)
    full = gradient(learner, episode)
    pairs = [(a, b) for a in subsets(5, 2) for b in subsets(5, 2)]
    total = sum(
        gradient(learner, episode, ScriptedLite(2, list(pair)), query_batch=2) for pair in pairs
    )
    assert relative_error(total / len(pairs), full) < 1e-8


def test_fresh_subset_per_query_batch():
    """With query batches, each batch draws its own subset (so batches are independent)."""
    learner = make_learner("protonets")
    episode = make_episode(n_support=8, n_query=6)
    draws = []

    class Recording(Lite):
        def draw(self, n, paths):
            out = super().draw(n, paths)
            draws.append(out["features"].tolist())
            return out

    gradient(
        learner, episode, Recording(3, generator=torch.Generator().manual_seed(0)), query_batch=2
    )
    assert len(draws) == 3
    assert len({tuple(d) for d in draws}) > 1


def test_one_no_grad_pass_per_task_whatever_the_query_batch():
    learner = make_learner("protonets")
    episode = make_episode(n_support=8, n_query=6)
    seen = []
    learner.backbone.register_forward_hook(
        lambda module, inputs, output: seen.append((torch.is_grad_enabled(), inputs[0].shape[0]))
    )
    gradient(learner, episode, Lite(2, chunk_size=3), query_batch=2)
    no_grad_images = sum(size for enabled, size in seen if not enabled)
    assert no_grad_images == 8  # the support set, once, in chunks of 3
    grad_images = sum(size for enabled, size in seen if enabled)
    assert grad_images == 3 * (2 + 2)  # per batch: h support rows + 2 queries


@pytest.mark.parametrize("kind", KINDS)
def test_meta_train_step_updates_and_reports(kind):
    learner = make_learner(kind)
    episode = make_episode(n_support=6, n_query=6)
    before = [p.detach().clone() for p in learner.parameters()]
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    result = meta_train_step(learner, episode, optimizer, lite=Lite(2), query_batch=4)
    assert 0.0 <= result.accuracy <= 1.0 and result.loss > 0
    with torch.no_grad():
        logits = learner(episode.support_images, episode.support_labels, episode.query_images)
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.parameters(), strict=True))
    assert logits.shape == (6, 3)


def test_reported_loss_is_the_true_task_loss_under_every_convention():
    learner = make_learner("protonets")
    episode = make_episode()
    with torch.no_grad():
        logits = learner(episode.support_images, episode.support_labels, episode.query_images)
        true_loss = torch.nn.functional.cross_entropy(logits, episode.query_labels).item()
    for scaling in ("unbiased", "none", "loss"):
        optimizer = torch.optim.SGD(learner.parameters(), lr=0.0)
        result = meta_train_step(
            learner, episode, optimizer, lite=Lite(2, scaling=scaling), query_batch=2
        )
        assert result.loss == pytest.approx(true_loss, rel=1e-12)


def test_several_tasks_per_step_average_their_gradients():
    learner = make_learner("protonets")
    tasks = [make_episode(seed=s) for s in (1, 2, 3)]
    expected = sum(gradient(learner, t) for t in tasks) / 3
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.0)
    meta_train_step(learner, tasks, optimizer)
    got = torch.cat([p.grad.flatten() for p in learner.parameters()])
    assert relative_error(got, expected) < 1e-12


def test_backbone_stays_in_eval_mode_while_training():
    learner = make_learner("simple_cnaps")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.0)
    meta_train_step(learner, make_episode(), optimizer, lite=Lite(2))
    assert learner.training and not learner.backbone.training
    assert all(not m.training for m in learner.backbone.modules())


def test_bad_query_batch_is_rejected_before_any_work():
    learner = make_learner("protonets")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    before = [p.detach().clone() for p in learner.parameters()]
    with pytest.raises(ValueError, match="^query_batch=0"):
        meta_train_step(learner, make_episode(), optimizer, lite=Lite(2), query_batch=0)
    with pytest.raises(ValueError, match="^episodes="):
        meta_train_step(learner, [], optimizer)
    good, bad = make_episode(seed=1), make_episode(seed=2)
    bad.support_labels[bad.support_labels == 1] = 2  # class 1 has no support image
    learner.zero_grad(set_to_none=True)
    with pytest.raises(ValueError, match=r"^support_labels=.*classes \[1\] have no support"):
        meta_train_step(learner, [good, bad], optimizer)  # the bad task comes second
    assert all(p.grad is None for p in learner.parameters()), "no task ran before the check"
    assert all(torch.equal(a, b) for a, b in zip(before, learner.parameters(), strict=True))
    assert isinstance(learner, Learner)
