"""Renamed public names still work for a release, each with a DeprecationWarning."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from helpers import make_episode, make_learner

from litekit import EpisodeSampler, Lite, lite_forward, meta_train_step
from litekit.distributed import StepSums, TaskShare, finish_step
from litekit.episodes import Sampler
from litekit.lite import Embedded, embed_support, with_precision

LABELS = np.repeat(np.arange(6), 5)


def test_meta_train_step_takes_episode_as_the_old_keyword():
    results = []
    for keyword in ("episodes", "episode"):
        learner = make_learner("protonets")
        optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
        if keyword == "episode":
            with pytest.warns(DeprecationWarning, match=r"meta_train_step\(episode=.*episodes="):
                results.append(
                    meta_train_step(learner, episode=make_episode(), optimizer=optimizer)
                )
        else:
            results.append(meta_train_step(learner, episodes=make_episode(), optimizer=optimizer))
    assert results[0] == results[1]
    with pytest.raises(TypeError, match="episodes= only"):
        meta_train_step(
            learner, episode=make_episode(), episodes=make_episode(), optimizer=optimizer
        )


def test_episode_sampler_takes_query_as_the_old_keyword_and_attribute():
    new = EpisodeSampler(LABELS, way=3, shot=2, query_per_class=2, episodes=3, seed=1)
    with pytest.warns(DeprecationWarning, match="query_per_class="):
        old = EpisodeSampler(LABELS, way=3, shot=2, query=2, episodes=3, seed=1)
    with pytest.warns(DeprecationWarning, match="query_per_class"):
        assert old.query == 2
    a, b = new.episode(2), old.episode(2)
    assert np.array_equal(a.query_indices, b.query_indices)
    with pytest.warns(DeprecationWarning, match="support_indices"):
        assert np.array_equal(a.support, a.support_indices)
    with pytest.warns(DeprecationWarning, match="query_indices"):
        assert np.array_equal(a.query, a.query_indices)
    assert isinstance(new, Sampler)
    from litekit.episodes import _SamplerBase

    assert _SamplerBase is Sampler


def test_lite_forward_keeps_its_old_keywords_and_wraps_embed_support():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(4, 3).double()
    images, queries = torch.randn(7, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    new = lite_forward(encoder, images, 3, subset=[1, 4, 5])
    with pytest.warns(DeprecationWarning, match="subset="):
        old = lite_forward(encoder, images, 3, indices=[1, 4, 5])
    assert torch.equal(new, old) and isinstance(new, torch.Tensor)
    with pytest.warns(DeprecationWarning, match="embed_support"):
        pair = lite_forward(encoder, images, 3, subset=[1, 4, 5], queries=queries)
    assert isinstance(pair, Embedded) and torch.equal(pair.support, new)
    direct = embed_support(
        encoder,
        images,
        Lite(3),
        torch.device("cpu"),
        cached=encoder(images).detach(),
        subset=torch.tensor([1, 4, 5]),
        queries=queries,
    )
    assert torch.allclose(direct.support, new) and torch.allclose(direct.queries, pair.queries)
    direct.support.sum().backward()
    grad = encoder.weight.grad.clone()
    encoder.zero_grad()
    new.sum().backward()
    assert torch.allclose(encoder.weight.grad, grad)


def test_lite_old_names_warn_and_agree():
    lite = Lite(2, scaling="loss")
    with pytest.warns(DeprecationWarning, match="support_scale"):
        assert lite.row_scaling == "none"
    import litekit.lite

    with pytest.warns(DeprecationWarning, match="with_precision"):
        old = litekit.lite.with_layout
    assert old is with_precision
    learner = make_learner("protonets")
    with pytest.warns(DeprecationWarning, match="check_per_image_embedding"):
        learner.check_exact_lite()


def test_finish_step_takes_its_old_five_numbers():
    learner = make_learner("protonets")
    share = TaskShare(2, 2, 1)
    with pytest.warns(DeprecationWarning, match="StepSums"):
        old = finish_step(learner.parameters(), share, 3.0, 1.5, 2, 0, 0)
    new = finish_step(learner.parameters(), share, StepSums(3.0, 1.5, 2))
    assert old == new
    import litekit.distributed

    with pytest.warns(DeprecationWarning, match="StepSums"):
        assert litekit.distributed.StepTotals is StepSums


@pytest.mark.parametrize(
    ("module", "old"),
    [
        ("litekit.checkpoint", "is_checkpoint"),
        ("litekit.determinism", "deterministic_kernels_in_use"),
        ("litekit.diagnostics.common", "flat_grad"),
        ("litekit.learners.pretrained", "cache_file"),
        ("litekit.widgets", "grid"),
        ("litekit.distributed", "average_gradients"),
    ],
)
def test_names_made_private_still_answer_with_a_warning(module, old):
    found = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{module}.{old} is deprecated"):
        value = getattr(found, old)
    assert value is getattr(found, f"_{old}")
    with pytest.raises(AttributeError):
        found.no_such_name  # noqa: B018 - the module's __getattr__ still refuses others
