"""What every single-forward-pass meta-learner shares.

A learner maps a task (support images and labels, query images) to query logits in one
forward pass. It keeps no per-task state: the call takes the task and returns logits.

The call is split in two so that `litekit.train.meta_train_step` can batch the query set:
- `cache_support` runs the one no-grad pass over the support set (per support path);
- `task_logits` draws LITE subsets, re-embeds those rows with gradient, and classifies a
  batch of queries. It can be called many times against one cache.
``learner(support, labels, query, lite=...)`` is the two in sequence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import nn

from litekit._checks import bad_argument, check_choice
from litekit.episodes import check_task_tensors
from litekit.learners.backbones import as_backbone
from litekit.lite import Lite, embed_without_grad

SupportCache = dict[str, torch.Tensor]
BACKBONE_MODES = ("eval", "train")


def check_labels(labels: torch.Tensor) -> int:
    """Return the task's way K, checking that labels are exactly 0..K-1, each present."""
    if labels.numel() == 0:
        raise bad_argument("support_labels", [], "the support set is empty.")
    if int(labels.min()) < 0:
        raise bad_argument(
            "support_labels", labels.tolist()[:10], "labels must be 0..way-1 (non-negative)."
        )
    way = int(labels.max()) + 1
    missing = (torch.bincount(labels.cpu(), minlength=way) == 0).nonzero().flatten().tolist()
    if missing:
        raise bad_argument(
            "support_labels",
            labels.tolist()[:10],
            f"classes {missing[:5]} have no support image; relabel classes as 0..way-1.",
        )
    return way


class Learner(nn.Module, ABC):
    """Base class: backbone handling, devices, the no-grad cache and LITE paths.

    Args:
        backbone: an ``nn.Module`` mapping images (B, C, H, W) to embeddings, or a name
            (``"conv4"``, ``"resnet18"``, ``"efficientnet_b0"``, ...).
        backbone_mode: ``"eval"`` (default) keeps the backbone in eval mode even while the
            learner trains: batch norm uses its running statistics, and dropout and
            stochastic depth are off, so each image's embedding depends on that image alone
            and the LITE split of the gradient is exact (as in the paper). ``"train"`` lets
            the backbone follow the learner's mode; with batch norm the split is then only
            approximate, and recomputed rows see different batch statistics.
    """

    support_paths: tuple[str, ...] = ("features",)

    def __init__(self, backbone: nn.Module | str, *, backbone_mode: str = "eval") -> None:
        super().__init__()
        self.backbone = as_backbone(backbone)
        self.backbone_mode = check_choice("backbone_mode", backbone_mode, BACKBONE_MODES)
        self.train(self.training)

    def train(self, mode: bool = True) -> Learner:
        super().train(mode)
        if self.backbone_mode == "eval":
            self.backbone.eval()
        return self

    @property
    def device(self) -> torch.device:
        """Where the learner's parameters live; images are moved here chunk by chunk."""
        return next(self.parameters()).device

    # --- the two halves of a forward pass -------------------------------------------------

    def cache_support(self, support_images: torch.Tensor, lite: Lite | None) -> SupportCache | None:
        """The no-grad pass over the support set, or None when every image keeps its graph."""
        if lite is None or lite.is_full(support_images.shape[0]):
            return None
        return self._no_grad_support(support_images, lite.chunk_size)

    @abstractmethod
    def task_logits(
        self,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        query_images: torch.Tensor,
        lite: Lite | None,
        cache: SupportCache | None,
    ) -> torch.Tensor:
        """Query logits (M, K), with fresh LITE subsets when ``cache`` is given."""

    def forward(
        self,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        query_images: torch.Tensor,
        lite: Lite | None = None,
    ) -> torch.Tensor:
        """Logits (M, K) for ``query_images`` in the task the support set defines.

        ``lite=None`` back-propagates through every support image; ``lite=Lite(h, ...)``
        through h of them per support path, with an unbiased gradient by default.
        """
        check_task_tensors(support_images, support_labels, query_images)
        check_labels(support_labels)
        cache = self.cache_support(support_images, lite)
        return self.task_logits(support_images, support_labels, query_images, lite, cache)

    # --- helpers for subclasses -------------------------------------------------------------

    @abstractmethod
    def _no_grad_support(self, support_images: torch.Tensor, chunk_size: int) -> SupportCache:
        """Support embeddings without gradient, one entry per name in ``support_paths``."""

    def _to_device(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device, non_blocking=True)

    def _draw(self, lite: Lite | None, cache: SupportCache | None, n: int) -> dict:
        return {} if cache is None or lite is None else lite.draw(n, self.support_paths)

    def _support_path(
        self,
        path: str,
        encoder: Callable[[torch.Tensor], torch.Tensor],
        images: torch.Tensor,
        lite: Lite | None,
        cache: SupportCache | None,
        subsets: dict[str, torch.Tensor],
        queries: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Support embeddings along one path (full graph, or LITE on the cached values).

        With ``queries``, the same encoder also embeds them, in the same call as the support
        rows that carry gradient; the second element is then their embeddings, else None.
        """
        if cache is None or lite is None:
            batch = images if queries is None else torch.cat([images, queries.to(images.device)])
            out = encoder(self._to_device(batch))
            n = images.shape[0]
            return out[:n], (out[n:] if queries is not None else None)
        return lite.embed(encoder, images, cache[path], subsets[path], queries)

    def _cached(
        self,
        encoder: Callable[[torch.Tensor], torch.Tensor],
        images: torch.Tensor,
        chunk_size: int,
    ) -> torch.Tensor:
        return embed_without_grad(encoder, images, chunk_size, self.device)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone embeddings, flattened to (B, D)."""
        return self.backbone(images).flatten(1)
