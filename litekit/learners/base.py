"""What every single-forward-pass meta-learner shares.

A learner maps a task (support images and labels, query images) to query logits in one
forward pass. It keeps no per-task state: the call takes the task and returns logits.

The call is split in two so that `litekit.train.meta_train_step` can batch the query set:
- `cache_support` runs the one no-grad pass over the support set (per support path,
  `no_grad_support`, through `litekit.lite.embed_without_grad`);
- `task_logits` draws LITE subsets (`litekit.lite.Lite.draw`) and reaches the support
  images through `_support_path`, which calls `litekit.lite.embed_support` (the sampled
  rows re-embedded with gradient and scaled, the query batch in the same encoder call),
  then classifies the queries. It can be called many times against one cache.
``learner(support_images, support_labels, query_images, lite=...)`` is the two in sequence.

A learner also says which modules embed images one by one (`image_encoder_names`, held in
eval mode) and, where it can, each support path's per-image encoder (`path_encoders`, which
the diagnostics' fast vmap method uses).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from litekit._checks import bad_argument, check_choice
from litekit._deprecated import warn_deprecated
from litekit.learners.backbones import as_backbone, probe
from litekit.learners.checks import (
    batch_coupled_modules,
    check_channels,
    check_embedding,
    check_labels,
    check_query_labels,
    check_task_tensors,
)
from litekit.lite import Embedded, Encoder, Lite, embed_support, run_encoder

SupportCache = dict[str, torch.Tensor]
BACKBONE_MODES = ("eval", "train")


class Learner(nn.Module, ABC):
    """Base class: backbone handling, devices, the no-grad cache and LITE paths.

    Args:
        backbone: an ``nn.Module`` mapping images (B, C, H, W) to embeddings, or a name
            (``"conv4"``, ``"resnet18"``, ``"efficientnet_b0"``, ...). Checked when the
            learner is built, by one dry forward of a blank 64-pixel image: it must return
            one tensor with a row per image.
        weights: pretrained weights for the backbone: a torchvision weights name
            (``"DEFAULT"``) with a model name, or a state-dict file for any backbone
            (`litekit.learners.pretrained`). Their images expect ImageNet normalisation:
            pass ``normalization=litekit.learners.pretrained.normalization(weights)`` to the
            dataset.
        backbone_mode: ``"eval"`` (default) keeps every module that embeds images one by one
            (the backbone, and a set encoder and FiLM generator where there are) in eval mode
            even while the learner trains: batch norm uses its running statistics, and
            dropout and stochastic depth are off, so each image's embedding depends on that
            image alone and the LITE split of the gradient is exact (as in the paper).
            ``"train"`` lets them follow the learner's mode; with batch norm the split is
            then only approximate, and recomputed rows see different batch statistics.
    """

    support_paths: tuple[str, ...] = ("features",)
    #: Attributes holding the modules that embed images one by one (see ``backbone_mode``).
    image_encoder_names: tuple[str, ...] = ("backbone",)

    def __init__(
        self, backbone: nn.Module | str, *, backbone_mode: str = "eval", weights: str | None = None
    ) -> None:
        super().__init__()
        self.backbone = as_backbone(backbone, weights)
        self.backbone_mode = check_choice("backbone_mode", backbone_mode, BACKBONE_MODES)
        self._check_backbone_output()
        self.train(self.training)

    def train(self, mode: bool = True) -> Learner:
        super().train(mode)
        if self.backbone_mode == "eval":
            for module in self.image_encoders().values():
                module.eval()
        return self

    def image_encoders(self) -> dict[str, nn.Module]:
        """The modules that embed images one by one, by attribute name."""
        found = {name: getattr(self, name, None) for name in self.image_encoder_names}
        return {name: module for name, module in found.items() if isinstance(module, nn.Module)}

    @property
    def device(self) -> torch.device:
        """Where the learner's parameters live; images are moved here chunk by chunk."""
        return next(self.parameters()).device

    # --- checks, before any work ----------------------------------------------------------

    def check_task(
        self,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        query_images: torch.Tensor,
        query_labels: torch.Tensor | None = None,
        lite: Lite | None = None,
    ) -> int:
        """Check one task before any work and return its way K.

        Shapes and labels (support labels 0..K-1, each present; query labels, when given,
        among them), image channels against each encoder's first convolution, and, when
        ``lite`` samples a subset, that no layer mixes the images of a batch (which would
        bias the estimate silently).
        """
        check_task_tensors(support_images, support_labels, query_images)
        way = check_labels(support_labels)
        if query_labels is not None:
            check_query_labels(query_labels, way, query_images.shape[0])
        check_channels(support_images, self.image_encoders())
        if lite is not None and not lite.is_full(support_images.shape[0]):
            self.check_per_image_embedding()
        return way

    def check_exact_lite(self) -> None:
        """Deprecated name of `check_per_image_embedding`."""
        warn_deprecated("Learner.check_exact_lite", "call check_per_image_embedding")
        self.check_per_image_embedding()

    def check_per_image_embedding(self) -> None:
        """Refuse LITE where a layer normalises with batch statistics the user did not ask for:
        LITE's estimate is exact only when each image is embedded on its own.

        With ``backbone_mode="train"`` batch statistics are a documented choice (the split is
        approximate); in eval mode they come from batch norm built without running statistics,
        which no mode switch can fix.
        """
        if self.backbone_mode == "train":
            return
        coupled = self.batch_coupled_layers()
        if coupled:
            raise bad_argument(
                "lite",
                f"h with {coupled[0]}",
                "this layer normalises with the statistics of the whole batch even in eval "
                "mode, so each embedding depends on the other images and LITE's gradient "
                "would be biased; use GroupNorm (litekit.learners.group_norm) or batch norm "
                "with running statistics, or pass lite=None for full back-propagation.",
            )

    def batch_coupled_layers(self) -> list[str]:
        """Layers of the image encoders that use batch statistics now
        (`litekit.learners.checks.batch_coupled_modules`)."""
        return [
            layer
            for name, module in self.image_encoders().items()
            for layer in batch_coupled_modules(module, prefix=f"{name}.")
        ]

    def _check_backbone_output(self) -> None:
        """One dry forward of a blank 64-px image: the backbone must return a tensor row."""
        try:
            output = probe(self.backbone, 64)
        except (RuntimeError, ValueError, AssertionError, IndexError, TypeError):
            return  # it needs other inputs (size, channels): checked at the first call instead
        check_embedding(output, 1, "backbone")

    # --- the two halves of a forward pass -------------------------------------------------

    def cache_support(self, support_images: torch.Tensor, lite: Lite | None) -> SupportCache | None:
        """The no-grad pass over the support set, or None when every image keeps its graph."""
        if lite is None or lite.is_full(support_images.shape[0]):
            return None
        return self.no_grad_support(support_images, lite)

    @abstractmethod
    def no_grad_support(self, support_images: torch.Tensor, lite: Lite) -> SupportCache:
        """Support embeddings without gradient, one entry per name in ``support_paths``:
        `litekit.lite.embed_without_grad` in ``lite``'s chunks, precision and memory layout."""

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
        self.check_task(support_images, support_labels, query_images, lite=lite)
        cache = self.cache_support(support_images, lite)
        return self.task_logits(support_images, support_labels, query_images, lite, cache)

    def path_encoders(self, cache: SupportCache) -> dict[str, Encoder] | None:
        """Each support path's per-image encoder, for this task's no-grad ``cache``: the map
        from a batch of images to that path's embeddings, with everything else the task
        fixes (a set encoding) held at its cached value.

        The diagnostics take per-image vector-Jacobian products through these
        (`litekit.diagnostics.per_image_gradients` with vmap). None, the default, says the
        learner does not describe them: the diagnostics then use the slower loop, which
        needs nothing but `task_logits`.
        """
        return None

    # --- for subclasses -------------------------------------------------------------------

    def _support_path(
        self,
        path: str,
        encoder: Encoder,
        support_images: torch.Tensor,
        lite: Lite | None,
        cache: SupportCache | None,
        subsets: dict[str, torch.Tensor],
        query_images: torch.Tensor | None = None,
    ) -> Embedded:
        """One support path's embeddings, and the query batch's, from `embed_support`.

        With a ``cache``, the path's no-grad embeddings carry the value and its subset
        (from `Lite.draw`) the gradient; without one, every support image keeps its graph.
        The query images go through the same encoder call as the sampled rows, except when
        batch statistics are in use: then they are embedded apart, so that query images
        never change the support statistics.
        """
        cached, subset = (None, None) if cache is None else (cache[path], subsets[path])
        if query_images is None or not self.batch_coupled_layers():
            return embed_support(
                encoder, support_images, lite, self.device,
                cached=cached, subset=subset, queries=query_images,
            )  # fmt: skip
        support = embed_support(
            encoder, support_images, lite, self.device, cached=cached, subset=subset
        ).support
        layout = {} if lite is None else lite.layout
        return Embedded(support, run_encoder(encoder, query_images, self.device, **layout))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone embeddings, flattened to (B, D)."""
        return check_embedding(self.backbone(images), images.shape[0], "backbone").flatten(1)
