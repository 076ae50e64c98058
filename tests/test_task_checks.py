"""Checks a learner makes before any work: encoders held in eval mode, layers that couple the
images of a batch refused for LITE, query labels, backbone outputs and image channels."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import gradient, make_episode, make_learner, relative_error, subsets, tiny_backbone
from torch import nn

from litekit import CNAPs, Lite, ProtoNets, SimpleCNAPs, evaluate, lite_forward, meta_train_step
from litekit.diagnostics import exact_expectation
from litekit.learners import SetEncoder


def batch_norm_set_encoder() -> nn.Module:
    """A set encoder with batch norm, as in the original CNAPs code, with running statistics
    far from the identity so that eval and training mode give different codes."""
    torch.manual_seed(3)
    norm = nn.BatchNorm2d(4)
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), norm, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


def simple_cnaps_with_batch_norm_set_encoder() -> SimpleCNAPs:
    learner = SimpleCNAPs(
        tiny_backbone(), set_encoder=batch_norm_set_encoder(), set_dim=4, film_hidden=5
    )
    for head in learner.film.heads:
        nn.init.normal_(head.weight, std=0.5)
    return learner.double()


def test_every_image_encoder_is_held_in_eval_mode_while_training():
    learner = simple_cnaps_with_batch_norm_set_encoder()
    learner.train()
    assert learner.training
    assert not learner.backbone.training
    assert not learner.set_encoder.training and not learner.set_encoder[1].training
    assert not learner.film.training


def film_learner_with_batch_norm_set_encoder(kind: str):
    """Simple CNAPs or CNAPs with `batch_norm_set_encoder`, freshly built: no ``.train()``
    or ``.eval()`` call after construction."""
    options = dict(set_encoder=batch_norm_set_encoder(), set_dim=4, film_hidden=5)
    if kind == "simple_cnaps":
        learner = SimpleCNAPs(tiny_backbone(), **options)
    else:
        learner = CNAPs(tiny_backbone(), feature_dim=3, classifier_hidden=5, **options)
    for head in learner.film.heads:
        nn.init.normal_(head.weight, std=0.5)
    return learner.double()


@pytest.mark.parametrize("kind", ["simple_cnaps", "cnaps"])
def test_a_freshly_built_film_learner_holds_its_image_encoders_in_eval_mode(kind):
    """Straight from the constructor (a module starts in training mode), every module of the
    backbone, the set encoder and the FiLM generator is in eval mode, so the diagnostics,
    which never call ``.train()``, see running statistics: `exact_expectation` on the fresh
    learner equals the full gradient to float64 round-off (1e-12; the batch statistics of a
    set encoder left in training mode bias it by ~5e-4). The full gradient is the training
    step's (which calls ``.train()``, holding the encoders in eval mode), after the
    enumeration, so that the enumeration sees the learner as built."""
    learner = film_learner_with_batch_norm_set_encoder(kind)
    assert learner.training
    for name, module in learner.image_encoders().items():
        assert not any(m.training for m in module.modules()), f"{name} is in training mode"
    episode = make_episode(n_support=4, n_query=4)
    moments = exact_expectation(learner, episode, 2)
    assert moments.count == 36
    full = gradient(learner, episode)
    assert relative_error(moments.mean, full) < 1e-12


def test_a_batch_norm_set_encoder_gives_exact_lite_values_and_an_unbiased_gradient():
    """The review's reproduction: with the set encoder's batch norm in training mode, LITE's
    chunked codes differed from the full ones and the exact LITE mean was off by 9.5e-4.
    Held in eval mode, values agree to round-off and the enumerated mean is the gradient."""
    learner = simple_cnaps_with_batch_norm_set_encoder()
    episode = make_episode(n_support=4, n_query=4)
    learner.train()
    full_logits = learner(episode.support_images, episode.support_labels, episode.query_images)
    lite_logits = learner(
        episode.support_images,
        episode.support_labels,
        episode.query_images,
        lite=Lite(2, chunk_size=2, generator=torch.Generator().manual_seed(0)),
    )
    torch.testing.assert_close(lite_logits, full_logits, rtol=0, atol=1e-12)
    full = gradient(learner, episode)
    pairs = [(a, b) for a in subsets(4, 2) for b in subsets(4, 2)]
    mean = sum(
        gradient(learner, episode, Lite(2, chunk_size=2, subsets={"set": a, "features": b}))
        for a, b in pairs
    ) / len(pairs)
    assert relative_error(mean, full) < 1e-10


def batch_statistics_backbone() -> nn.Module:
    """Batch norm without running statistics: batch statistics even in eval mode."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4, track_running_stats=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).double()


def test_batch_norm_without_running_statistics_is_refused_for_lite_before_any_work():
    learner = ProtoNets(batch_statistics_backbone())
    episode = make_episode(n_support=6, n_query=4)
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    with pytest.raises(ValueError, match=r"^lite=.*track_running_stats=False.*GroupNorm"):
        meta_train_step(learner, episode, optimizer, lite=Lite(2, chunk_size=2))
    assert all(torch.equal(before[k], v) for k, v in learner.state_dict().items())
    assert all(p.grad is None for p in learner.parameters())
    with pytest.raises(ValueError, match="track_running_stats=False"):
        learner(episode.support_images, episode.support_labels, episode.query_images, Lite(2))
    meta_train_step(learner, episode, optimizer, lite=None)  # full back-propagation is fine


def test_evaluate_embeds_a_batch_coupled_support_set_whole(monkeypatch):
    """Chunking would change a batch-statistics model's values, so evaluate passes no Lite
    (one pass over the whole support set) there, and a chunking Lite(0) elsewhere."""
    seen = []
    original = ProtoNets.forward

    def recording(self, *args, lite=None):
        seen.append(lite)
        return original(self, *args, lite=lite)

    monkeypatch.setattr(ProtoNets, "forward", recording)
    episode = make_episode(n_support=6, n_query=6)
    evaluate(ProtoNets(batch_statistics_backbone()), [episode], Lite(0, chunk_size=2))
    evaluate(make_learner("protonets"), [episode], Lite(0, chunk_size=2))
    assert seen[0].is_full(6)  # full back-propagation's single pass (under no_grad)
    assert isinstance(seen[1], Lite) and seen[1].h == 0 and seen[1].chunk_size == 2


@pytest.mark.parametrize(
    ("labels", "phrase"),
    [
        (torch.tensor([0, 1, 2, 7]), r"^query_labels=\[7\]: .*not in the support set"),
        (torch.tensor([0, 1, 2, 3]), r"^query_labels=\[3\]: .*not in the support set"),
        (torch.tensor([0.0, 1.0, 2.0, 0.0]), r"^query_labels=torch.float32: .*labels.long\(\)"),
    ],
)
def test_bad_query_labels_are_refused_before_any_work(labels, phrase):
    learner = make_learner("protonets")
    episode = make_episode(n_support=6, way=3, n_query=4)
    bad = type(episode)(
        episode.support_images,
        episode.support_labels,
        episode.query_images,
        labels,
        episode.class_ids,
    )
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=phrase):
        meta_train_step(learner, [episode, bad], optimizer)
    assert all(p.grad is None for p in learner.parameters())
    with pytest.raises(ValueError, match=phrase):
        evaluate(learner, [bad])


class Squeezed(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3))


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor):
        y = self.conv(x).mean(dim=(2, 3))
        return y, y


@pytest.mark.parametrize(
    ("backbone", "phrase"),
    [(Squeezed(), r"^backbone='output shape \(1,\).*one row per image"), (Pair(), "tuple")],
)
def test_a_backbone_that_does_not_return_embedding_rows_is_refused_when_built(backbone, phrase):
    with pytest.raises(ValueError, match=phrase):
        ProtoNets(backbone)


def test_images_with_the_wrong_channel_count_are_named_before_any_work():
    learner = make_learner("simple_cnaps")
    episode = make_episode(n_support=6, n_query=4)
    gray = episode.support_images[:, :1]
    with pytest.raises(ValueError, match=r"^support_images=\(6, 1, 6, 6\): .*1 channel.*takes 3"):
        learner(gray, episode.support_labels, episode.query_images[:, :1])


def test_lite_h_zero_warns_that_only_the_query_path_trains():
    learner = make_learner("protonets")
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="only the query path trains"):
        meta_train_step(learner, make_episode(), optimizer, lite=Lite(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta_train_step(learner, make_episode(), optimizer, lite=Lite(2))


def test_lite_forward_under_the_loss_convention_warns_that_the_caller_scales_the_loss():
    encoder = tiny_backbone().double()
    images = torch.randn(5, 3, 6, 6, dtype=torch.float64)
    with pytest.warns(UserWarning, match="multiply your loss by"):
        lite_forward(encoder, images, 2, scaling="loss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lite_forward(encoder, images, 2, scaling="none")
        lite_forward(encoder, images, 5, scaling="loss")  # h = N: nothing to scale


def test_set_encoder_default_has_no_batch_coupling():
    assert (
        SimpleCNAPs(tiny_backbone(), set_encoder=SetEncoder(3, 4, 4, 2)).batch_coupled_layers()
        == []
    )


def test_vmap_is_not_offered_through_batch_norm_without_running_statistics():
    from litekit.diagnostics import vmap_supported

    supported, reason = vmap_supported(ProtoNets(batch_statistics_backbone()))
    assert not supported and "track_running_stats=False" in reason
    assert vmap_supported(make_learner("protonets")) == (True, "")
