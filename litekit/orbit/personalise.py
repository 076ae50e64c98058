"""Personalise a learner to a task's context set once, then classify frame features.

ORBIT scores a target frame from *features*: the mean of the features of the frame and
its previous frames (history), and, in ``neurips21``, a context clip is also the mean of
its frames' features. A learner's call ``learner(support, labels, query)`` maps images to
logits, so scoring needs its two halves apart:

- ``encode``: images -> features, with the task's adaptation (Simple CNAPs and CNAPs
  modulate the backbone with FiLM parameters generated from the context set; ProtoNets
  embeds with its backbone as it is);
- ``classify``: features -> logits, from the context features (class means for ProtoNets,
  the Mahalanobis head for Simple CNAPs, the generated linear classifier for CNAPs).

`personalise` builds both from a context set in one no-grad pass (in chunks, in the asked
precision and memory layout). Other learners (``FineTuner``, your own module with the
learner call) are wrapped as they are: their "features" are the images themselves and
``classify`` calls the learner, so neither pooling applies (`Personalised.poolable`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from litekit._checks import bad_argument, check_int
from litekit.learners.cnaps import FilmLearner
from litekit.learners.heads import prototype_logits
from litekit.learners.protonets import ProtoNets
from litekit.lite import embed_without_grad
from litekit.precision import check_precision


@dataclass(frozen=True)
class Compute:
    """How frames are embedded: images per no-grad call, precision, memory layout."""

    chunk_size: int = 64
    precision: str = "fp32"
    channels_last: bool = False

    def __post_init__(self) -> None:
        check_int("chunk_size", self.chunk_size, minimum=1)
        check_precision(self.precision)


@dataclass(frozen=True)
class Personalised:
    """A learner personalised to one task.

    ``encode(images)`` -> features (B, D) on the learner's device; ``classify(features)``
    -> logits (M, K). ``shared_encoder``: ``encode`` is the same for every task (no FiLM),
    so target features can be computed once and reused. ``poolable``: features may be
    averaged (False for learners that score images directly).
    """

    encode: Callable[[torch.Tensor], torch.Tensor]
    classify: Callable[[torch.Tensor], torch.Tensor]
    shared_encoder: bool
    poolable: bool = True


def pool_groups(features: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """The mean feature of each group: row g averages the rows whose group id is g
    (ids 0..G-1, every one present)."""
    groups = groups.to(features.device)
    count = int(groups.max()) + 1
    sums = features.new_zeros(count, features.shape[1]).index_add(0, groups, features)
    sizes = torch.bincount(groups, minlength=count).to(features.dtype)
    return sums / sizes.unsqueeze(1)


def _group_labels(labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """The label of each group (all its members must share it)."""
    out = torch.full((int(groups.max()) + 1,), -1, dtype=torch.long)
    out[groups] = labels
    if not torch.equal(out[groups], labels):
        raise bad_argument(
            "groups", "mixed", "a group holds images of two labels; one clip, one object."
        )
    return out


def _refuse_batch_statistics(learner: nn.Module) -> None:
    coupled = learner.batch_coupled_layers() if hasattr(learner, "batch_coupled_layers") else []
    if coupled:
        raise bad_argument(
            "learner",
            f"{type(learner).__name__} with {coupled[0]}",
            "this layer normalises with the statistics of each batch even in eval mode, so a "
            "frame's score would depend on which frames are embedded with it; use GroupNorm "
            "or batch norm with running statistics.",
        )


def _learner_call(
    learner: nn.Module, images: torch.Tensor, labels: torch.Tensor, compute: Compute
) -> Personalised:
    def classify(query: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                learner(images, labels, query[i : i + compute.chunk_size])
                for i in range(0, len(query), compute.chunk_size)
            ]
        )

    return Personalised(lambda x: x, classify, shared_encoder=True, poolable=False)


@torch.no_grad()
def personalise(
    learner: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor | None = None,
    compute: Compute | None = None,
) -> Personalised:
    """Personalise ``learner`` to the context set (``images``, ``labels`` 0..K-1).

    ``groups`` (one id per image, 0..G-1): average the features of each group into one
    support example (ORBIT's context clips); None keeps every image. ``compute`` sets the
    chunk size, precision and memory layout (`Compute`).
    """
    compute = compute or Compute()
    labels = labels.long()
    if not isinstance(learner, ProtoNets | FilmLearner):
        if groups is not None:
            raise bad_argument(
                "groups",
                "clips",
                f"{type(learner).__name__} scores images, not features, so clips cannot be "
                "averaged; pass groups=None (context_pooling='frame').",
            )
        return _learner_call(learner, images, labels, compute)
    _refuse_batch_statistics(learner)
    device = learner.device
    layout = (compute.precision, compute.channels_last)

    def embed(encoder: Callable, x: torch.Tensor) -> torch.Tensor:
        return embed_without_grad(encoder, x, compute.chunk_size, device, *layout)

    if isinstance(learner, ProtoNets):
        encode, shared = learner.embed, True
    else:
        codes = embed(learner.set_encoder, images)
        encode, shared = learner.film_encoder(learner.film(codes.mean(0))), False
    support = embed(encode, images)
    support_labels = labels.to(device)
    if groups is not None:
        groups = groups.long()
        support_labels = _group_labels(labels, groups).to(device)
        support = pool_groups(support, groups)
    way = int(labels.max()) + 1
    if isinstance(learner, ProtoNets):

        def classify(features: torch.Tensor) -> torch.Tensor:
            return prototype_logits(support, support_labels, features, way)
    else:

        def classify(features: torch.Tensor) -> torch.Tensor:
            return learner.head(support, support_labels, features, way)

    return Personalised(lambda x: embed(encode, x), classify, shared_encoder=shared)
