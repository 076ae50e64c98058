"""Learners: backbones, modes, FiLM hooks, value equality under LITE, and bad inputs."""

from __future__ import annotations

import pytest
import torch
from helpers import make_episode, make_learner
from torch import nn

from litekit import CNAPs, Lite, ProtoNets, SimpleCNAPs
from litekit.learners import conv4, strip_classifier, torchvision_backbone

KINDS = ["protonets", "simple_cnaps", "cnaps"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk_size", [1, 4, 100])
def test_lite_logits_equal_full_logits(kind, chunk_size):
    learner = make_learner(kind).eval()
    episode = make_episode(n_support=9)
    args = (episode.support_images, episode.support_labels, episode.query_images)
    full = learner(*args)
    lite = learner(*args, lite=Lite(3, chunk_size=chunk_size))
    torch.testing.assert_close(lite, full, rtol=0, atol=1e-12)


@pytest.mark.parametrize("learner_class", [ProtoNets, SimpleCNAPs, CNAPs])
@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_torchvision_backbones_work_as_is(learner_class, name):
    torch.manual_seed(0)
    learner = learner_class(name)
    support = torch.randn(6, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    query = torch.randn(4, 3, 32, 32)
    logits = learner(support, labels, query, lite=Lite(2, chunk_size=4))
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in learner.backbone.parameters())


def test_strip_classifier_handles_the_common_heads():
    import torchvision

    resnet = strip_classifier(torchvision.models.resnet18())
    assert isinstance(resnet.fc, nn.Identity)
    effnet = strip_classifier(torchvision.models.efficientnet_b0())
    assert isinstance(effnet.classifier[-1], nn.Identity)
    with torch.no_grad():
        assert resnet.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 512)
        assert effnet.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 1280)


def test_unknown_backbone_name_is_explained():
    with pytest.raises(ValueError, match="^backbone='resnet1000'.*resnet"):
        torchvision_backbone("resnet1000")


def test_backbone_mode_train_follows_the_learner():
    learner = ProtoNets(torchvision_backbone("resnet18"), backbone_mode="train")
    learner.train()
    assert learner.backbone.training
    learner.eval()
    assert not learner.backbone.training
    with pytest.raises(ValueError, match="^backbone_mode='batch'"):
        ProtoNets(conv4(), backbone_mode="batch")


@pytest.mark.parametrize("kind", ["simple_cnaps", "cnaps"])
def test_film_leaves_no_hooks_behind(kind):
    learner = make_learner(kind)
    episode = make_episode()
    learner(episode.support_images, episode.support_labels, episode.query_images, lite=Lite(2))
    for module in learner.backbone.modules():
        assert not module._forward_hooks


def test_film_changes_the_embedding():
    """The set encoding really modulates the backbone: other support sets, other features."""
    learner = make_learner("simple_cnaps").eval()
    a, b = make_episode(seed=1), make_episode(seed=2)
    with torch.no_grad():
        _, encoder_a, _ = learner.adapt(a.support_images, None, None)
        _, encoder_b, _ = learner.adapt(b.support_images, None, None)
        query = a.query_images
        assert not torch.allclose(encoder_a(query), encoder_b(query))
        plain = learner.embed(query)
        assert not torch.allclose(encoder_a(query), plain)


def test_mahalanobis_head_with_one_shot_classes_is_finite():
    from litekit.learners.heads import mahalanobis_logits

    embeddings = torch.randn(3, 4, dtype=torch.float64)
    logits = mahalanobis_logits(embeddings, torch.tensor([0, 1, 2]), embeddings, 3)
    assert torch.isfinite(logits).all()
    assert (logits.argmax(1) == torch.arange(3)).all()


def test_cnaps_classifier_starts_as_a_prototype_classifier():
    """w_k = μ_k, b_k = -||μ_k||²/2 at W₂ = 0: the same ranking as ProtoNets."""
    from litekit.learners.heads import LinearClassifierGenerator, prototype_logits

    generator = LinearClassifierGenerator(5).double()
    nn.init.zeros_(generator.weight.weight)
    nn.init.zeros_(generator.bias.weight)
    nn.init.zeros_(generator.bias.bias)
    e, q = torch.randn(8, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    labels = torch.arange(8) % 4
    proto = prototype_logits(e, labels, q, 4)
    linear = generator(e, labels, q, 4)
    # -||q-μ||² / 2 = q·μ - ||μ||²/2 - ||q||²/2: equal up to a per-query constant
    torch.testing.assert_close(linear - q.pow(2).sum(1, keepdim=True) / 2, proto / 2)


@pytest.mark.parametrize(
    ("mutate", "starts"),
    [
        (lambda s, y, q: (s, y, q[:, :, :4]), "query_images="),
        (lambda s, y, q: (s[:0], y[:0], q), "support_images="),
        (lambda s, y, q: (s, y.double(), q), "support_labels="),
        (lambda s, y, q: (s, y + 1, q), "support_labels="),
        (lambda s, y, q: (s, y[:-1], q), "support_labels="),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_task_inputs_fail_before_any_work(kind, mutate, starts):
    learner = make_learner(kind)
    episode = make_episode()
    calls = []
    learner.backbone.register_forward_hook(lambda *args: calls.append(1))
    args = mutate(episode.support_images, episode.support_labels, episode.query_images)
    with pytest.raises(ValueError, match=f"^{starts}"):
        learner(*args, lite=Lite(2))
    assert calls == []


def test_learner_keeps_no_per_task_state():
    learner = make_learner("cnaps")
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    attributes = set(vars(learner))
    episode = make_episode()
    learner(episode.support_images, episode.support_labels, episode.query_images, lite=Lite(2))
    assert set(vars(learner)) == attributes
    assert all(torch.equal(before[k], v) for k, v in learner.state_dict().items())


def test_cnaps_finds_its_embedding_size_on_the_backbones_dtype():
    backbone = conv4(width=8).double()  # a float32 probe image would not pass through it
    learner = CNAPs(backbone).double()
    images = torch.randn(6, 3, 32, 32, dtype=torch.float64)
    logits = learner(images, torch.arange(6) % 3, images[:2])
    assert logits.dtype == torch.float64 and logits.shape == (2, 3)
