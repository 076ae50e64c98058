"""How many encoder passes a step makes over the support set, and how large each is.

- LITE's no-grad pass embeds the support set in chunks of at most ``chunk_size`` images:
  that bound is what keeps its memory flat in N, and values and gradients would not show a
  pass that ignored it. Each no-grad encoder call is recorded and checked, for every
  learner's `no_grad_support`, for the training step, for `lite_forward`, and for the
  FineTuner's feature passes (which take their chunk size from ``lite`` too).
- Full back-propagation (``lite=None``, or h >= N) is one plain pass with gradient per support
  path: no no-grad pass, no subset drawn (so no global random number consumed), and with
  ``backbone_mode="train"`` batch norm's running statistics see only the passes the model
  makes (one for the support set, one for the queries).
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import IMAGE_SHAPE, make_episode, make_learner, tiny_backbone
from torch import nn

from litekit import FineTuner, Lite, ProtoNets, SimpleCNAPs, lite_forward, meta_train_step
from litekit.lite import embed_support, embed_without_grad

KINDS = ["protonets", "simple_cnaps", "cnaps"]


class Calls:
    """Forward hooks on a learner's image encoders (the backbone, and a set encoder where
    there is one) that record each call's encoder, grad mode and batch size."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.seen: list[tuple[str, bool, int]] = []
        for name, module in modules.items():
            module.register_forward_hook(self._hook(name))

    def _hook(self, name: str):
        def record(_module, inputs, _output):
            self.seen.append((name, torch.is_grad_enabled(), inputs[0].shape[0]))

        return record

    @classmethod
    def on(cls, learner) -> Calls:
        encoders = learner.image_encoders()
        return cls({k: v for k, v in encoders.items() if k in ("backbone", "set_encoder")})

    def sizes(self, name: str, grad: bool) -> list[int]:
        return [size for who, enabled, size in self.seen if who == name and enabled == grad]


def images(n: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(n), dtype=dtype)


# --- the no-grad pass: chunks of at most chunk_size ------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 4])
@pytest.mark.parametrize("kind", KINDS)
def test_every_no_grad_call_of_a_learner_sees_at_most_chunk_size_images(kind, chunk_size):
    """`no_grad_support` over N = 10 images: each path's encoder is called ceil(N/chunk)
    times without gradient, each call on at most ``chunk_size`` images, N in all."""
    learner = make_learner(kind)
    calls = Calls.on(learner)
    n = 10
    cache = learner.no_grad_support(images(n), Lite(2, chunk_size=chunk_size))
    assert set(cache) == set(learner.support_paths)
    encoders = {"features": "backbone", "set": "set_encoder"}
    for path in learner.support_paths:
        sizes = calls.sizes(encoders[path], grad=False)
        assert max(sizes) <= chunk_size, f"{path}: a no-grad call on {max(sizes)} images"
        assert sum(sizes) == n and len(sizes) == math.ceil(n / chunk_size)
    assert not [c for c in calls.seen if c[1]], "the no-grad pass ran with gradient"


@pytest.mark.parametrize("kind", KINDS)
def test_the_training_steps_no_grad_pass_keeps_to_chunk_size(kind):
    """Through `meta_train_step` (N = 9, chunk 2, two query batches): the support set is
    embedded once without gradient, in calls of at most 2 images; the gradient calls hold the
    h sampled rows and a query batch."""
    learner = make_learner(kind)
    calls = Calls.on(learner)
    episode = make_episode(n_support=9, n_query=6)
    lite = Lite(3, chunk_size=2, generator=torch.Generator().manual_seed(0))
    meta_train_step(learner, episode, torch.optim.SGD(learner.parameters(), lr=0.1), lite, 3)
    no_grad = calls.sizes("backbone", grad=False)
    assert max(no_grad) <= 2 and sum(no_grad) == 9
    assert calls.sizes("backbone", grad=True) == [3 + 3, 3 + 3]
    if kind != "protonets":
        no_grad = calls.sizes("set_encoder", grad=False)
        assert max(no_grad) <= 2 and sum(no_grad) == 9
        assert calls.sizes("set_encoder", grad=True) == [3, 3]


@pytest.mark.parametrize("h", [0, 2, 7])
@pytest.mark.parametrize("chunk_size", [1, 3, 4])
def test_lite_forward_and_embed_without_grad_call_the_encoder_on_chunks(chunk_size, h):
    """`lite_forward` (h < N = 10) and `embed_without_grad`: ceil(N/chunk) no-grad calls of
    at most ``chunk_size`` images, covering N; `lite_forward` adds one call with gradient on
    the h sampled rows (none for h = 0)."""
    encoder = tiny_backbone().double()
    calls = Calls({"encoder": encoder})
    n = 10
    lite_forward(encoder, images(n), h, chunk_size=chunk_size)
    embed_without_grad(encoder, images(n), chunk_size)
    no_grad = calls.sizes("encoder", grad=False)
    assert max(no_grad) <= chunk_size
    assert sum(no_grad) == 2 * n and len(no_grad) == 2 * math.ceil(n / chunk_size)
    assert calls.sizes("encoder", grad=True) == ([h] if h else [])


@pytest.mark.parametrize("tune", [(), "all"], ids=["head-only", "tune-all"])
def test_a_finetuners_feature_passes_without_gradient_keep_to_chunk_size(tune):
    """FineTuner takes the chunk size from ``lite``: its passes without gradient (the support
    and query features of a head-only tuner; a tuned backbone's query features) call the
    backbone on at most ``chunk_size`` images each, and cover the images they embed
    (N = 10 support, M = 7 query images, chunk 3). The tuning steps themselves, with
    gradient, take ``batch_size`` rows."""
    learner = FineTuner(tiny_backbone().double(), steps=2, batch_size=4, tune=tune)
    calls = Calls({"backbone": learner.backbone})
    episode = make_episode(n_support=10, n_query=7)
    learner(
        episode.support_images,
        episode.support_labels,
        episode.query_images,
        lite=Lite(0, chunk_size=3),
    )
    no_grad = calls.sizes("backbone", grad=False)
    assert max(no_grad) <= 3, f"a no-grad backbone call on {max(no_grad)} images"
    if tune == ():
        assert sum(no_grad) == 10 + 7 and not calls.sizes("backbone", grad=True)
    else:
        assert sum(no_grad) >= 7 and calls.sizes("backbone", grad=True) == [4, 4]


# --- full back-propagation: one pass with gradient, nothing random -------------------------------


FULL_LITES = {"none": None, "h=N": "n", "h>N": "n+3", "Lite.full": "full"}


def full_lite(which: str, n: int) -> Lite | None:
    spec = FULL_LITES[which]
    if spec is None:
        return None
    return Lite.full() if spec == "full" else Lite(n if spec == "n" else n + 3, chunk_size=2)


@pytest.mark.parametrize("which", [w for w in FULL_LITES if w != "none"])
def test_lite_forward_with_h_at_least_n_is_one_plain_pass(which):
    """h >= N: one encoder call with gradient on all N images (and the queries, when given,
    in the same call), no no-grad pass, and the global random stream untouched."""
    encoder = tiny_backbone().double()
    calls = Calls({"encoder": encoder})
    n = 6
    h = full_lite(which, n).h
    state = torch.get_rng_state()
    lite_forward(encoder, images(n), h, chunk_size=2)
    embed_support(encoder, images(n), None, torch.device("cpu"), queries=images(4))
    assert torch.equal(torch.get_rng_state(), state), "full back-propagation drew a subset"
    assert calls.seen == [("encoder", True, n), ("encoder", True, n + 4)]


@pytest.mark.parametrize("which", FULL_LITES)
@pytest.mark.parametrize("kind", KINDS)
def test_full_back_propagation_runs_one_pass_per_path_and_draws_nothing(kind, which):
    """One `meta_train_step` with full back-propagation (whole query set in one batch):
    each support path's encoder is called once, with gradient (the backbone on the support
    set and the queries together), never without; the global random stream is untouched
    (no subset is drawn, even from a generator-less `Lite`)."""
    learner = make_learner(kind)
    episode = make_episode(n_support=6, n_query=5)
    calls = Calls.on(learner)
    state = torch.get_rng_state()
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    meta_train_step(learner, episode, optimizer, lite=full_lite(which, 6))
    assert torch.equal(torch.get_rng_state(), state), "full back-propagation drew a subset"
    expected = [("backbone", True, 6 + 5)]
    if kind != "protonets":
        expected = [("set_encoder", True, 6), *expected]
    assert calls.seen == expected


def batch_norm_backbone() -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


@pytest.mark.parametrize("which", FULL_LITES)
@pytest.mark.parametrize("learner_class", [ProtoNets, SimpleCNAPs])
def test_full_back_propagation_in_train_mode_updates_batch_norm_once_per_pass(learner_class, which):
    """``backbone_mode="train"``: batch norm uses batch statistics, so the support set and the
    queries are embedded in two calls (queries must not change the support statistics).
    One full-back-propagation step therefore counts exactly 2 batches
    (``num_batches_tracked``) and moves the running mean; an extra no-grad pass would count a
    third."""
    options = {} if learner_class is ProtoNets else {"set_dim": 4, "film_hidden": 5}
    learner = learner_class(batch_norm_backbone(), backbone_mode="train", **options).double()
    norm = learner.backbone[1]
    mean_before = norm.running_mean.clone()
    optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
    meta_train_step(learner, make_episode(n_support=6, n_query=5), optimizer, full_lite(which, 6))
    assert int(norm.num_batches_tracked) == 2
    assert not torch.equal(norm.running_mean, mean_before)
