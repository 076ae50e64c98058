"""FineTuner: the transfer-learning baseline that adapts to each task by gradient descent.

Where a meta-learner personalises to a task in one forward pass over its support set, a
fine-tuner trains: a new linear head on the support set, for ``steps`` optimiser steps, and
optionally the last blocks of the backbone or per-channel FiLM parameters with it. It is the
baseline the LITE paper compares against (transfer learning, as in BiT), and its cost to
personalise is many forward and backward passes per task instead of one forward pass.

The caller's backbone is never changed: tuned backbone parameters are copies, used through
``torch.func.functional_call``, and they live only for the duration of one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from litekit._checks import bad_argument, check_choice, check_int
from litekit.learners.backbones import as_backbone
from litekit.learners.build import OPTIMIZERS
from litekit.learners.checks import check_labels, check_task_tensors
from litekit.learners.film import film_applied, film_channels, find_film_layers
from litekit.lite import Lite, embed_without_grad, run_encoder
from litekit.precision import check_precision, grad_scaler

Classifier = Callable[[torch.Tensor], torch.Tensor]


class FineTuner(nn.Module):
    """Train a linear head (and optionally more) on each task's support set, then classify.

    Args:
        backbone: module or name; kept in eval mode (fixed batch-norm statistics).
        steps: optimiser steps per task.
        lr: learning rate (of the head, and of everything tuned unless ``backbone_lr`` is set).
        backbone_lr: learning rate of the tuned backbone weights and FiLM parameters; ``None``
            uses ``lr``. Fine-tuning recipes often give the new, randomly initialised head a
            larger rate than the pretrained weights, which a large rate would undo.
        batch_size: support images per step; ``None`` uses the whole support set.
        optimizer: ``"adam"`` or ``"sgd"`` (with momentum 0.9).
        tune: backbone submodule names whose parameters are fine-tuned too (for example
            ``["layer4"]`` for a ResNet's last block), or ``"all"`` for every parameter.
            The default, ``()``, trains the head only, on features computed once.
        tune_film: also learn a per-channel FiLM scale and shift after every normalisation
            layer, starting from the identity (γ = 1, β = 0).
        seed: seeds the head's initialisation and the minibatch order, so the same task gives
            the same logits.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` for the backbone's passes
            (`litekit.precision`); the head and the tuned copies stay float32, and float16
            fine-tuning scales its loss with a fresh gradient scaler per task.
        channels_last: run the backbone on channels-last images.
        weights: pretrained backbone weights, as for every learner (`Learner`).

    ``learner(support_images, support_labels, query_images, lite=None) -> logits``, as for
    every learner; ``lite`` only sets the chunk size of no-grad feature passes.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        steps: int = 50,
        lr: float = 0.01,
        backbone_lr: float | None = None,
        batch_size: int | None = None,
        optimizer: str = "adam",
        tune: Sequence[str] | str = (),
        tune_film: bool = False,
        seed: int = 0,
        precision: str = "fp32",
        channels_last: bool = False,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        self.backbone = as_backbone(backbone, weights)
        self.steps = check_int("steps", steps, minimum=1)
        if not lr > 0:
            raise bad_argument("lr", lr, "pass a positive learning rate, e.g. 0.01.")
        self.lr = float(lr)
        if backbone_lr is not None and not backbone_lr > 0:
            raise bad_argument(
                "backbone_lr", backbone_lr, "pass a positive learning rate, or None to use lr."
            )
        self.backbone_lr = self.lr if backbone_lr is None else float(backbone_lr)
        self.batch_size = (
            None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        )
        self.optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
        self.tuned_names = self._tuned_parameter_names(tune)
        self.film_layers = find_film_layers(self.backbone) if tune_film else []
        self.seed = check_int("seed", seed, minimum=0)
        self.precision = check_precision(precision)
        self.channels_last = bool(channels_last)
        self.backbone.eval()

    def _tuned_parameter_names(self, tune: Sequence[str] | str) -> list[str]:
        names = [n for n, _ in self.backbone.named_parameters()]
        if tune == "all":
            return names
        if isinstance(tune, str):
            tune = [tune]
        modules = dict(self.backbone.named_modules())
        unknown = [t for t in tune if t not in modules]
        if unknown:
            raise bad_argument(
                "tune",
                list(tune),
                f"{unknown} are not submodules of the backbone; pass names from "
                "backbone.named_modules() (e.g. 'layer4'), or 'all'.",
            )
        return [n for n in names if any(n.startswith(f"{t}.") for t in tune)]

    def train(self, mode: bool = True) -> FineTuner:
        super().train(mode)
        self.backbone.eval()  # fine-tuning never uses batch statistics
        return self

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def _layout(self) -> dict:
        """Precision and memory layout, as keywords of `litekit.lite.run_encoder`."""
        return {"precision": self.precision, "channels_last": self.channels_last}

    def forward(
        self,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        query_images: torch.Tensor,
        lite: Lite | None = None,
    ) -> torch.Tensor:
        check_task_tensors(support_images, support_labels, query_images)
        return self.adapt(support_images, support_labels, lite)(query_images)

    def adapt(
        self, support_images: torch.Tensor, support_labels: torch.Tensor, lite: Lite | None = None
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Fine-tune on one task's support set once; returns ``classify(query_images) ->
        logits``, to call on as many query batches as needed (one large task's query set
        scored in batches, `litekit.train.one_task`). ``learner(support, labels, query)``
        is ``learner.adapt(support, labels)(query)``."""
        check_task_tensors(support_images, support_labels, support_images[:1])
        way = check_labels(support_labels)
        chunk = lite.chunk_size if lite is not None else 64
        labels = support_labels.to(self.device)
        generator = torch.Generator().manual_seed(self.seed)
        with torch.enable_grad():
            if not self.tuned_names and not self.film_layers:
                return self._head_only(support_images, labels, way, chunk, generator)
            return self._tune_backbone(support_images, labels, way, chunk, generator)

    # --- head only: features once, then a logistic regression ----------------------------

    def _features(self, images: torch.Tensor, chunk: int) -> torch.Tensor:
        return self._without_grad(lambda x: self.backbone(x).flatten(1), images, chunk)

    def _without_grad(self, encode, images: torch.Tensor, chunk: int) -> torch.Tensor:
        return embed_without_grad(encode, images, chunk, self.device, **self._layout)

    def _new_head(self, dim: int, way: int, generator: torch.Generator) -> nn.Linear:
        head = nn.Linear(dim, way)
        bound = 1.0 / dim**0.5
        with torch.no_grad():
            head.weight.copy_(torch.rand(way, dim, generator=generator) * 2 * bound - bound)
            head.bias.zero_()
        dtype = next(self.backbone.parameters()).dtype
        return head.to(device=self.device, dtype=dtype)

    def _make_optimizer(
        self, head: list[torch.Tensor], backbone: Sequence[torch.Tensor] = ()
    ) -> torch.optim.Optimizer:
        """The optimiser: the head at ``lr``, tuned backbone and FiLM tensors at ``backbone_lr``."""
        groups = [{"params": list(head), "lr": self.lr}]
        if backbone:
            groups.append({"params": list(backbone), "lr": self.backbone_lr})
        if self.optimizer == "adam":
            return torch.optim.Adam(groups, lr=self.lr)
        return torch.optim.SGD(groups, lr=self.lr, momentum=0.9)

    def _batches(self, n: int, generator: torch.Generator):
        """Row indices for each step: epochs of a fresh random order, ``batch_size`` rows at a
        time; the rows an epoch has left over (fewer than a batch) are dropped."""
        size = n if self.batch_size is None else min(self.batch_size, n)
        order, start = torch.randperm(n, generator=generator), 0
        for _ in range(self.steps):
            if start + size > n:
                order, start = torch.randperm(n, generator=generator), 0
            yield order[start : start + size]
            start += size

    def _head_only(self, support, labels, way, chunk, generator) -> Classifier:
        features = self._features(support, chunk)
        head = self._new_head(features.shape[1], way, generator)
        optimizer = self._make_optimizer(list(head.parameters()))
        for rows in self._batches(features.shape[0], generator):
            rows = rows.to(self.device)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(head(features[rows]), labels[rows]).backward()
            optimizer.step()

        @torch.no_grad()
        def classify(query: torch.Tensor) -> torch.Tensor:
            return head(self._features(query, chunk))

        return classify

    # --- fine-tuning backbone parameters and/or FiLM on copies ---------------------------

    def _tune_backbone(self, support, labels, way, chunk, generator) -> Classifier:
        # Detached views of every parameter (so no gradient reaches the caller's tensors),
        # with fresh copies for the ones being tuned.
        params = {n: p.detach() for n, p in self.backbone.named_parameters()}
        tuned = {n: params[n].clone().requires_grad_() for n in self.tuned_names}
        params.update(tuned)
        options = {"device": self.device, "dtype": next(self.backbone.parameters()).dtype}
        film = [
            (
                torch.ones(c, **options, requires_grad=True),
                torch.zeros(c, **options, requires_grad=True),
            )
            for c in film_channels(self.backbone, self.film_layers)
        ]

        def backbone_pass(images: torch.Tensor) -> torch.Tensor:
            with film_applied(self.backbone, self.film_layers, film):
                return functional_call(self.backbone, params, (images,)).flatten(1)

        def encode(images: torch.Tensor) -> torch.Tensor:
            return run_encoder(backbone_pass, images, self.device, **self._layout)

        with torch.no_grad():
            dim = encode(support[:1].to(self.device)).shape[1]
        head = self._new_head(dim, way, generator)
        backbone = [*tuned.values(), *(t for pair in film for t in pair)]
        optimizer = self._make_optimizer(list(head.parameters()), backbone)
        scaler = grad_scaler(self.precision, self.device)
        for rows in self._batches(support.shape[0], generator):
            optimizer.zero_grad(set_to_none=True)
            images = support[rows.to(support.device)]
            loss = F.cross_entropy(head(encode(images)), labels[rows.to(self.device)])
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()

        @torch.no_grad()
        def classify(query: torch.Tensor) -> torch.Tensor:
            return head(self._without_grad(backbone_pass, query, chunk))

        return classify
