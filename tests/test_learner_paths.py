"""Learners describe their own support paths; the estimator is reached through one function."""

from __future__ import annotations

import pytest
import torch
from helpers import make_episode, make_learner, relative_error

from litekit import Lite
from litekit.diagnostics import per_image_gradients, vmap_supported
from litekit.learners import Learner, ProtoNets
from litekit.learners.heads import prototype_logits
from litekit.lite import embed_support, embed_without_grad


class PlainProtoNets(Learner):
    """ProtoNets written against the base class only, without `path_encoders`."""

    def no_grad_support(self, support_images, lite):
        return {"features": embed_without_grad(self.embed, support_images, lite.chunk_size)}

    def task_logits(self, support_images, support_labels, query_images, lite, cache):
        subsets = {} if cache is None else lite.draw(len(support_images), self.support_paths)
        support, queries = self._support_path(
            "features", self.embed, support_images, lite, cache, subsets, query_images
        )
        return prototype_logits(support, support_labels, queries, int(support_labels.max()) + 1)


@pytest.mark.parametrize("kind", ["protonets", "simple_cnaps", "cnaps"])
def test_each_learner_describes_an_encoder_per_support_path(kind):
    learner, episode = make_learner(kind), make_episode()
    cache = learner.cache_support(episode.support_images, Lite(0))
    encoders = learner.path_encoders(cache)
    assert tuple(encoders) == learner.support_paths
    for path, encoder in encoders.items():  # each maps images to that path's cached rows
        assert torch.allclose(encoder(episode.support_images), cache[path], atol=1e-12)


def test_a_learner_without_path_encoders_gets_the_loop_with_the_same_terms():
    plain = PlainProtoNets(make_learner("protonets").backbone).double()
    supported, reason = vmap_supported(plain)
    assert not supported and "path_encoders" in reason
    episode = make_episode()
    looped = per_image_gradients(plain, episode)
    vmapped = per_image_gradients(ProtoNets(plain.backbone).double(), episode)
    assert looped.method == "loop" and vmapped.method == "vmap"
    assert relative_error(looped.per_image, vmapped.per_image) < 1e-10


def test_embed_support_with_no_rows_and_no_queries_does_not_call_the_encoder():
    calls = []

    def encoder(images):
        calls.append(len(images))
        return images.sum(1, keepdim=True)

    images = torch.randn(5, 3)
    cached = encoder(images)
    calls.clear()
    out = embed_support(
        encoder,
        images,
        Lite(0),
        torch.device("cpu"),
        cached=cached,
        subset=torch.tensor([], dtype=torch.long),
    )
    assert out.support is cached and out.queries is None and calls == []
    out = embed_support(encoder, images, None, torch.device("cpu"), queries=images[:2])
    assert calls == [7] and torch.equal(out.support, cached) and out.queries.shape == (2, 1)
