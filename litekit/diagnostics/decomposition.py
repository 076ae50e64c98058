"""The task gradient split into a query term and one term per support image (and path).

    dL/dθ = g_Q + Σ_{n=1..N} g_n,    g_n = (∂L/∂e_n)(∂e_n/∂θ)

(see `litekit.diagnostics` for the notation, and for the two paths of CNAPs-style models).
`per_image_gradients` computes g_Q and every g_n: with torch.func.vmap over per-image
vector-Jacobian products where the model allows (`vmap_supported`), or as LITE gradients
with fixed one-image subsets otherwise. `GradientDecomposition` holds the terms and the
closed forms that follow from them (the spread tr S², LITE's covariance trace and mean).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from litekit._checks import bad_argument, check_choice, check_int
from litekit.diagnostics.common import (
    check_h,
    check_learner_and_episode,
    check_scaling,
    fixed_subset_lite,
    preserved_state,
    task_gradient,
)
from litekit.episodes import Episode
from litekit.learners.base import Learner
from litekit.lite import Encoder, Lite, loss_scale

METHODS = ("auto", "vmap", "loop")


def _isolating_subsets(paths: Sequence[str], i: int, chosen: Sequence[int], n: int) -> dict:
    """Fixed subsets that isolate path ``i``'s terms: paths before ``i`` empty (held
    constant), path ``i`` = ``chosen``, paths after ``i`` complete (full gradient)."""
    return {
        p: (list(chosen) if j == i else [] if j < i else list(range(n)))
        for j, p in enumerate(paths)
    }


@dataclass
class GradientDecomposition:
    """The task gradient split into a query term and one term per support image and path.

    Attributes:
        query: g_Q, shape (P,): the gradient with every support embedding held constant.
        paths: support path -> (N, P) per-image terms; ``"features"`` holds g_n^features,
            ``"set"`` (CNAPs-style models) holds g_n^set.
        full: dL/dθ by plain back-propagation through every image, shape (P,).
        cotangents: support path -> (N, D) the cotangents ∂L/∂e_n (features) and dL/ds_n
            (set codes, = (1/N) dL/dz) that multiply each image's Jacobian.
        names, shapes: parameter names and shapes, in the order of the flat vectors.
        loss: the task loss L.
        method: ``"vmap"`` or ``"loop"``, how the per-image terms were computed.
        support_labels: the episode's support labels (for plots).
    """

    query: torch.Tensor
    paths: dict[str, torch.Tensor]
    full: torch.Tensor
    cotangents: dict[str, torch.Tensor]
    names: list[str]
    shapes: list[torch.Size]
    loss: float
    method: str
    support_labels: torch.Tensor

    @property
    def n(self) -> int:
        """Support-set size N."""
        return int(next(iter(self.paths.values())).shape[0])

    @property
    def per_image(self) -> torch.Tensor:
        """g_n = Σ over paths of each image's terms, shape (N, P)."""
        return sum(self.paths.values())

    @property
    def total(self) -> torch.Tensor:
        """g_Q + Σ_n g_n, which equals `full` when the split is exact."""
        return self.query + self.per_image.sum(0)

    def residual(self) -> float:
        """||g_Q + Σ_n g_n - dL/dθ|| / ||dL/dθ||: ~1e-16 in float64 when the split is exact."""
        return float((self.total - self.full).norm() / self.full.norm())

    def spread(self) -> float:
        """tr S² = 1/(N-1) Σ_n ||g_n - ḡ||², the spread of the per-image terms (0 if N = 1)."""
        g = self.per_image
        if g.shape[0] < 2:
            return 0.0
        return float((g - g.mean(0)).pow(2).sum() / (g.shape[0] - 1))

    def theory_trace(self, h: int, scaling: str = "unbiased") -> float:
        """tr Cov[ĝ] of the linear estimator g_Q + c·Σ_{n∈H} g_n, H of size h.

        c = N/h ("unbiased", "same_subset", and "loss", whose extra N/h on g_Q does not change
        the covariance): N(N-h)/h · tr S². c = 1 ("none"): h(N-h)/N · tr S². Exact for
        single-path learners (ProtoNets); for CNAPs-style models see `theory_kind`.
        """
        check_scaling(scaling)
        h = check_h(h, self.n)
        base = self.n * (self.n - h) / h * self.spread()
        return base * (h / self.n) ** 2 if scaling == "none" else base

    def expected(self, h: int, scaling: str = "unbiased") -> torch.Tensor:
        """E_H[ĝ] in closed form, for single-path learners (ProtoNets), where ĝ is linear.

        unbiased: g_Q + Σ g_n (the full gradient); none: g_Q + (h/N) Σ g_n (support path
        h/N too small); loss: (N/h) g_Q + Σ g_n (query path N/h too large).
        """
        check_scaling(scaling)
        h = check_h(h, self.n)
        if len(self.paths) != 1:
            raise bad_argument(
                "scaling",
                scaling,
                "closed forms hold for single-path learners (ProtoNets) only; with a set "
                "encoder the estimate is a product of two sums: use exact_expectation.",
            )
        support = self.per_image.sum(0)
        if scaling == "none":
            return self.query + (h / self.n) * support
        if scaling == "loss":
            return loss_scale(self.n, h, "loss") * self.query + support
        return self.query + support

    def parameter_mask(self, prefix: str) -> torch.Tensor:
        """Boolean (P,) mask of the flat entries whose parameter name starts with ``prefix``."""
        parts = [
            torch.full((math.prod(shape),), name.startswith(prefix), dtype=torch.bool)
            for name, shape in zip(self.names, self.shapes, strict=True)
        ]
        return torch.cat(parts)


def vmap_supported(learner: Learner) -> tuple[bool, str]:
    """Whether `per_image_gradients` can use torch.func.vmap on this learner, and why not.

    vmap needs each support path's per-image encoder, which a learner describes in
    `Learner.path_encoders` (ProtoNets and CNAPs-style learners do), and a model whose
    per-image computation does not depend on the batch: batch norm with batch statistics
    (in training mode, or built with track_running_stats=False, which uses them in eval mode
    too) or active dropout rule it out (the loop is used instead).
    """
    if type(learner).path_encoders is Learner.path_encoders:
        return False, f"{type(learner).__name__} describes no per-image encoders (path_encoders)"
    coupled = learner.batch_coupled_layers()
    if coupled:
        return False, f"{coupled[0]} is batch norm with batch statistics"
    for name, module in learner.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.training and module.p > 0:
            return False, f"{name} is active dropout"
    return True, ""


class _PathModule(nn.Module):
    """``learner`` as a module whose forward is one path's per-image encoder."""

    def __init__(self, learner: Learner, encoder: Encoder):
        super().__init__()
        self.learner = learner
        # A plain tuple, not an attribute: registering a submodule of ``learner`` a second
        # time would make functional_call treat its weights as tied and, on restoring them,
        # leave the learner holding plain tensors instead of its parameters.
        self._encoder = (encoder,)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self._encoder[0](image.unsqueeze(0)).squeeze(0)


def _vmap_terms(
    learner: Learner,
    encoder: Encoder,
    images: torch.Tensor,
    cotangents: torch.Tensor,
    chunk: int | None,
) -> torch.Tensor:
    """(N, P) per-image vector-Jacobian products u_n · ∂e_n/∂θ, all images in one vmap."""
    from torch.func import functional_call, vjp, vmap

    module = _PathModule(learner, encoder)
    primals = {
        f"learner.{name}": p.detach() for name, p in learner.named_parameters() if p.requires_grad
    }

    def one(image: torch.Tensor, cotangent: torch.Tensor) -> dict[str, torch.Tensor]:
        _, pullback = vjp(lambda params: functional_call(module, params, (image,)), primals)
        return pullback(cotangent)[0]

    terms = vmap(one, chunk_size=chunk)(images, cotangents)
    n = images.shape[0]
    return torch.cat(
        [
            terms[f"learner.{name}"].reshape(n, -1)
            if p.requires_grad
            else p.new_zeros(n, p.numel())
            for name, p in learner.named_parameters()
        ],
        dim=1,
    )


def _resolved_method(learner: Learner, method: str) -> str:
    """``"vmap"`` or ``"loop"``: ``"auto"`` resolved, ``"vmap"`` refused where impossible."""
    supported, reason = vmap_supported(learner)
    if method == "vmap" and not supported:
        raise bad_argument("method", method, f"vmap is not possible here ({reason}); use 'loop'.")
    return method if method != "auto" else ("vmap" if supported else "loop")


def _baselines(
    learner: Learner, episode: Episode, cache: dict[str, torch.Tensor], chunk_size: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Each path's baseline gradient and its cotangents (∂L/∂e_n or dL/ds_n).

    Path i's baseline holds earlier paths and path i constant (empty subsets) and keeps the
    later paths complete; the last path's baseline is g_Q. The cotangents are the gradient
    reaching path i's cached rows, made leaf tensors for the purpose.
    """
    n, paths = episode.n_support, learner.support_paths
    bases, cotangents = {}, {}
    for i, path in enumerate(paths):
        leaves = {p: c.detach().clone().requires_grad_(True) for p, c in cache.items()}
        lite = fixed_subset_lite(_isolating_subsets(paths, i, [], n), chunk_size)
        bases[path] = task_gradient(learner, episode, lite, leaves)[0]
        grad = leaves[path].grad
        cotangents[path] = (grad if grad is not None else torch.zeros_like(leaves[path])).detach()
    return bases, cotangents


def _loop_terms(
    learner: Learner,
    episode: Episode,
    cache: dict[str, torch.Tensor],
    bases: dict[str, torch.Tensor],
    chunk_size: int,
    progress: bool,
) -> dict[str, torch.Tensor]:
    """(N, P) terms per path: the LITE gradient with the fixed subset {n} minus the baseline."""
    from tqdm.auto import tqdm

    n, paths = episode.n_support, learner.support_paths
    terms = {}
    for i, path in enumerate(paths):
        rows = []
        for m in tqdm(range(n), desc=f"g_n ({path})", disable=not progress, leave=False):
            lite = fixed_subset_lite(_isolating_subsets(paths, i, [m], n), chunk_size)
            rows.append(task_gradient(learner, episode, lite, cache)[0] - bases[path])
        terms[path] = torch.stack(rows)
    return terms


def per_image_gradients(
    learner: Learner,
    episode: Episode,
    *,
    method: str = "auto",
    chunk_size: int = 64,
    vmap_chunk_size: int | None = None,
    progress: bool = False,
) -> GradientDecomposition:
    """Split the task gradient into g_Q and one term g_n per support image (and path).

    Args:
        learner: ProtoNets, SimpleCNAPs, CNAPs (or any `Learner` with the loop). Its current
            train/eval mode is used; its ``.grad`` tensors and buffers are left as found.
        episode: the task; the loss is the mean cross-entropy over all its queries.
        method: ``"vmap"`` computes every g_n in one torch.func.vmap over per-image
            vector-Jacobian products (cotangents ∂L/∂e_n from one backward to the embedding
            matrix); ``"loop"`` computes g_n as the LITE gradient with the fixed subset {n}
            (scale 1) minus the one with the empty subset, image by image; ``"auto"`` uses
            vmap where `vmap_supported` allows, the loop otherwise.
        chunk_size: images per no-grad forward call.
        vmap_chunk_size: images per vmap chunk (None: all at once).
        progress: show a progress bar over images in the loop.

    For CNAPs-style learners the paths are taken in order (set, then features): g_n^set is
    computed with every feature row carrying gradient (so dL/dz is the total derivative) and
    g_n^features with the set code held constant; see the module docstring.
    """
    check_choice("method", method, METHODS)
    check_learner_and_episode(learner, episode)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    resolved, paths = _resolved_method(learner, method), learner.support_paths

    with preserved_state(learner):
        full, loss = task_gradient(learner, episode, None, None)
        cache = learner.cache_support(episode.support_images, Lite(0, chunk_size=chunk_size))
        bases, cotangents = _baselines(learner, episode, cache, chunk_size)
        if resolved == "vmap":
            encoders = learner.path_encoders(cache)
            images = episode.support_images.to(learner.device)
            terms = {
                p: _vmap_terms(learner, encoders[p], images, cotangents[p], vmap_chunk_size)
                for p in paths
            }
        else:
            terms = _loop_terms(learner, episode, cache, bases, chunk_size, progress)

    named = list(learner.named_parameters())
    return GradientDecomposition(
        query=bases[paths[-1]].detach(),
        paths={p: t.detach() for p, t in terms.items()},
        full=full.detach(),
        cotangents=cotangents,
        names=[name for name, _ in named],
        shapes=[p.shape for _, p in named],
        loss=loss,
        method=resolved,
        support_labels=episode.support_labels.detach().cpu(),
    )
