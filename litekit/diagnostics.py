"""Gradient diagnostics: the per-image split of the task gradient, and LITE's estimator.

Notation (Bronskill et al., 2021, §3). A task has N support images x_n and a query loss L.
When every image is embedded on its own, e_n = f_θ(x_n), the task gradient splits exactly:

    dL/dθ = g_Q + Σ_{n=1..N} g_n,    g_n = (∂L/∂e_n)(∂e_n/∂θ),

g_Q being the gradient through the query path with every support embedding held at its
value. LITE back-propagates through a random subset H of h images and scales by N/h:

    ĝ = g_Q + (N/h) Σ_{n∈H} g_n,    E_H[ĝ] = dL/dθ,    tr Cov[ĝ] = N(N-h)/h · tr S²,

with S² = 1/(N-1) Σ_n (g_n - ḡ)(g_n - ḡ)ᵀ. This module computes each of these objects, so
that notebooks and tests can check the identities on real models:

- `per_image_gradients`: g_Q and the g_n (torch.func vmap where the model allows, a loop of
  LITE gradients with fixed one-image subsets otherwise);
- `exact_expectation`: E_H[ĝ] and tr Cov[ĝ] by enumerating every subset (small N only);
- `estimator_stats`: Monte-Carlo bias, variance, cosine and signal-to-noise against h, for
  each convention, next to the theory line;
- `running_mean_error`: how the mean of many LITE draws approaches the full gradient;
- `measure_step` / `cost_vs_h`: time and memory of one training step against h;
- `demo_task`: a small seeded learner and task on the embedded procedural dataset.

Models with a set encoder (CNAPs, Simple CNAPs) use the support set twice: codes
s_n = s_φ(x_n) are averaged into z = (1/N) Σ_n s_n, which generates FiLM parameters for the
backbone, e_n = f_θ(x_n; z). Their per-image term has two parts, g_n = g_n^set + g_n^features:

    g_n^features = (∂L/∂e_n)(∂e_n/∂θ)            (z held at its value),
    g_n^set      = (dL/dz)(1/N)(∂s_n/∂φ)          (dL/dz total: through the queries and
                                                   through every support embedding e_m),

and g_Q + Σ_n g_n is again the full gradient exactly. LITE's estimate for these models is
not linear in the g_n: the set-encoder gradient is a product of two sampled sums, one per
subset, Â(H_set) · B̂(H_features). With independent subsets it stays exactly unbiased, and its
variance is N(N-h)/h · tr S² (the "linearised" value: what it would be if B̂ were exact) plus
two non-negative terms, so the formula is an exact *lower bound* there (see `theory_kind`).
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from litekit._checks import bad_argument, check_choice, check_int
from litekit.episodes import Episode
from litekit.learners.base import Learner, check_labels
from litekit.learners.build import LEARNERS
from litekit.learners.cnaps import FilmLearner
from litekit.learners.protonets import ProtoNets
from litekit.lite import Lite
from litekit.memory import median_seconds
from litekit.train import accumulate_task_gradient

METHODS = ("auto", "vmap", "loop")
#: Estimator conventions: name -> (Lite scaling, independent subsets per support path).
#: "unbiased" is litekit's default; "none" is the VTAB+MD code (no N/h); "loss" is the ORBIT
#: code (N/h on the whole loss); "same_subset" shares one subset between the set encoder and
#: the feature extractor (biased for CNAPs-style models, the same as "unbiased" otherwise).
CONVENTIONS: dict[str, tuple[str, bool]] = {
    "unbiased": ("unbiased", True),
    "none": ("none", True),
    "loss": ("loss", True),
    "same_subset": ("unbiased", False),
}


# --- small helpers ------------------------------------------------------------------------


def _check_learner_and_episode(learner: Any, episode: Any) -> None:
    if not isinstance(learner, Learner):
        raise bad_argument(
            "learner",
            type(learner).__name__,
            "pass a litekit learner (ProtoNets, SimpleCNAPs, CNAPs or a Learner subclass).",
        )
    if not isinstance(episode, Episode):
        raise bad_argument("episode", type(episode).__name__, "pass a litekit.Episode.")
    check_labels(episode.support_labels)


def _check_h(h: Any, n: int, *, minimum: int = 1) -> int:
    h = check_int("h", h, minimum=minimum, fix=f"pass an integer h with {minimum} <= h <= N={n}.")
    if h > n:
        raise bad_argument("h", h, f"the support set has N={n} images; pass h <= {n}.")
    return h


def _flat_grad(learner: nn.Module) -> torch.Tensor:
    """All parameters' ``.grad`` as one vector, in ``learner.parameters()`` order (0 if None)."""
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
            for p in learner.parameters()
        ]
    )


@contextmanager
def _preserved(learner: nn.Module) -> Iterator[None]:
    """Leave the learner's ``.grad`` tensors and buffers (e.g. batch-norm statistics) as found."""
    grads = [p.grad for p in learner.parameters()]
    buffers = [b.detach().clone() for b in learner.buffers()]
    try:
        yield
    finally:
        for p, g in zip(learner.parameters(), grads, strict=True):
            p.grad = g
        with torch.no_grad():
            for b, saved in zip(learner.buffers(), buffers, strict=True):
                b.copy_(saved)


def _task_gradient(
    learner: Learner,
    episode: Episode,
    lite: Lite | None,
    cache: dict[str, torch.Tensor] | None,
    loss_scale: float = 1.0,
) -> tuple[torch.Tensor, float]:
    """One (estimated) task gradient and the task loss, reusing the no-grad support ``cache``.

    The same computation as `litekit.train.accumulate_task_gradient` with the whole query set
    in one batch (L = mean cross-entropy, times ``loss_scale``), but the support pass is done
    once by the caller instead of once per call.
    """
    learner.zero_grad(set_to_none=True)
    logits = learner.task_logits(
        episode.support_images, episode.support_labels, episode.query_images, lite, cache
    )
    loss = F.cross_entropy(logits, episode.query_labels.to(learner.device))
    (loss * loss_scale).backward()
    return _flat_grad(learner), float(loss.detach())


def _fixed(subsets: dict[str, Sequence[int]], chunk_size: int, h: int = 0, scaling: str = "none"):
    return Lite(h, chunk_size=chunk_size, scaling=scaling, subsets=subsets)


def _path_subsets(paths: Sequence[str], i: int, chosen: Sequence[int], n: int) -> dict:
    """Paths before ``i`` empty, path ``i`` = ``chosen``, paths after ``i`` complete."""
    return {
        p: (list(chosen) if j == i else [] if j < i else list(range(n)))
        for j, p in enumerate(paths)
    }


# --- the per-image decomposition ----------------------------------------------------------


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

    def theory_trace(self, h: int, convention: str = "unbiased") -> float:
        """tr Cov[ĝ] of the linear estimator g_Q + c·Σ_{n∈H} g_n, |H| = h.

        c = N/h ("unbiased", "same_subset", and "loss", whose extra N/h on g_Q does not change
        the covariance): N(N-h)/h · tr S². c = 1 ("none"): h(N-h)/N · tr S². Exact for
        single-path learners (ProtoNets); for CNAPs-style models see `theory_kind`.
        """
        check_choice("convention", convention, tuple(CONVENTIONS))
        h = _check_h(h, self.n)
        base = self.n * (self.n - h) / h * self.spread()
        return base * (h / self.n) ** 2 if convention == "none" else base

    def expected(self, h: int, convention: str = "unbiased") -> torch.Tensor:
        """E_H[ĝ] in closed form, for single-path learners (ProtoNets), where ĝ is linear.

        unbiased: g_Q + Σ g_n (the full gradient); none: g_Q + (h/N) Σ g_n (support path
        h/N too small); loss: (N/h) g_Q + Σ g_n (query path N/h too large).
        """
        check_choice("convention", convention, tuple(CONVENTIONS))
        h = _check_h(h, self.n)
        if len(self.paths) != 1:
            raise bad_argument(
                "convention",
                convention,
                "closed forms hold for single-path learners (ProtoNets) only; with a set "
                "encoder the estimate is a product of two sums: use exact_expectation.",
            )
        support = self.per_image.sum(0)
        if convention == "none":
            return self.query + (h / self.n) * support
        if convention == "loss":
            return (self.n / h if h < self.n else 1.0) * self.query + support
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

    vmap needs to know each support path's per-image encoder (ProtoNets and CNAPs-style
    learners) and a model whose per-image computation does not depend on the batch: batch
    norm with batch statistics or active dropout rule it out (the loop is used instead).
    """
    if not isinstance(learner, ProtoNets | FilmLearner):
        return False, f"{type(learner).__name__} has no known per-image encoders"
    for name, module in learner.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
            return False, f"{name} is batch norm with batch statistics (training mode)"
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.training and module.p > 0:
            return False, f"{name} is active dropout"
    return True, ""


def _path_encoders(
    learner: Learner, cache: dict[str, torch.Tensor]
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Each support path's map from a batch of images to their embeddings (or codes)."""
    if isinstance(learner, FilmLearner):
        z = cache["set"].mean(0)  # the set encoding, held at its value on the feature path

        def features(images: torch.Tensor) -> torch.Tensor:
            return learner.film_encoder(learner.film(z))(images)

        return {"set": learner.set_encoder, "features": features}
    return {"features": learner.embed}


class _PathModule(nn.Module):
    """``learner`` as a module whose forward is one path's per-image encoder."""

    def __init__(self, learner: Learner, encoder: Callable[[torch.Tensor], torch.Tensor]):
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
    encoder: Callable[[torch.Tensor], torch.Tensor],
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
    _check_learner_and_episode(learner, episode)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    supported, reason = vmap_supported(learner)
    if method == "vmap" and not supported:
        raise bad_argument("method", method, f"vmap is not possible here ({reason}); use 'loop'.")
    resolved = method if method != "auto" else ("vmap" if supported else "loop")
    n, paths = episode.n_support, learner.support_paths

    with _preserved(learner):
        full, loss = _task_gradient(learner, episode, None, None)
        cache = learner.cache_support(episode.support_images, Lite(0, chunk_size=chunk_size))
        bases, cotangents = {}, {}
        for i, path in enumerate(paths):
            # Path i's baseline: earlier paths constant, path i constant, later paths complete.
            leaves = {p: c.detach().clone().requires_grad_(True) for p, c in cache.items()}
            lite = _fixed(_path_subsets(paths, i, [], n), chunk_size)
            bases[path] = _task_gradient(learner, episode, lite, leaves)[0]
            grad = leaves[path].grad
            cotangents[path] = (
                grad if grad is not None else torch.zeros_like(leaves[path])
            ).detach()
        query = bases[paths[-1]]

        terms: dict[str, torch.Tensor] = {}
        if resolved == "vmap":
            encoders = _path_encoders(learner, cache)
            images = episode.support_images.to(learner.device)
            for path in paths:
                terms[path] = _vmap_terms(
                    learner, encoders[path], images, cotangents[path], vmap_chunk_size
                )
        else:
            from tqdm.auto import tqdm

            for i, path in enumerate(paths):
                rows = []
                for m in tqdm(range(n), desc=f"g_n ({path})", disable=not progress, leave=False):
                    lite = _fixed(_path_subsets(paths, i, [m], n), chunk_size)
                    rows.append(_task_gradient(learner, episode, lite, cache)[0] - bases[path])
                terms[path] = torch.stack(rows)

    named = list(learner.named_parameters())
    return GradientDecomposition(
        query=query.detach(),
        paths={p: t.detach() for p, t in terms.items()},
        full=full.detach(),
        cotangents=cotangents,
        names=[name for name, _ in named],
        shapes=[p.shape for _, p in named],
        loss=loss,
        method=resolved,
        support_labels=episode.support_labels.detach().cpu(),
    )


# --- exact enumeration --------------------------------------------------------------------


@dataclass(frozen=True)
class ExactMoments:
    """E_H[ĝ] and tr Cov[ĝ] over every equally likely subset (or pair of subsets).

    Attributes:
        mean: the exact mean LITE gradient E_H[ĝ], shape (P,).
        trace_covariance: the exact tr Cov[ĝ] (population variance over the subsets).
        count: how many subset configurations were enumerated.
        h, n: subset size and support size; convention: the estimator convention.
    """

    mean: torch.Tensor
    trace_covariance: float
    count: int
    h: int
    n: int
    convention: str


def _convention(name: str) -> tuple[str, bool]:
    return CONVENTIONS[check_choice("convention", name, tuple(CONVENTIONS))]


def subset_configurations(n: int, h: int, paths: int, independent: bool) -> int:
    """How many equally likely subset configurations LITE draws from: C(N, h) per path."""
    return math.comb(n, h) ** (paths if independent else 1)


def exact_expectation(
    learner: Learner,
    episode: Episode,
    h: int,
    *,
    convention: str = "unbiased",
    limit: int = 5000,
    chunk_size: int = 64,
    progress: bool = False,
) -> ExactMoments:
    """The exact mean (and covariance trace) of LITE's gradient, by enumerating all subsets.

    Every subset H of size h is equally likely, so E_H[ĝ] is the plain average over all
    C(N, h) of them; with independent subsets per support path (CNAPs-style learners, the
    default) the average runs over all C(N, h)² pairs. ``convention`` picks the estimator
    (see `CONVENTIONS`). Refuses, before any work, when there are more than ``limit``
    configurations: use `estimator_stats` (Monte Carlo) for those.
    """
    scaling, independent = _convention(convention)
    _check_learner_and_episode(learner, episode)
    n, paths = episode.n_support, learner.support_paths
    h = _check_h(h, n, minimum=0)
    limit = check_int("limit", limit, minimum=1)
    count = subset_configurations(n, h, len(paths), independent and len(paths) > 1)
    if count > limit:
        raise bad_argument(
            "h",
            h,
            f"enumerating every subset needs {count:,} LITE gradients (C({n}, {h}) = "
            f"{math.comb(n, h):,} per path) but limit={limit:,}; use estimator_stats "
            "(Monte Carlo) instead, a smaller N, or raise limit.",
        )
    per_path = list(itertools.combinations(range(n), h))
    if independent and len(paths) > 1:
        configurations: Iterable = itertools.product(per_path, repeat=len(paths))
    else:
        configurations = ((subset,) * len(paths) for subset in per_path)

    from tqdm.auto import tqdm

    mean, m2 = None, 0.0
    with _preserved(learner):
        cache = learner.cache_support(episode.support_images, Lite(0, chunk_size=chunk_size))
        for k, chosen in enumerate(
            tqdm(configurations, total=count, desc="subsets", disable=not progress), start=1
        ):
            lite = _fixed(dict(zip(paths, chosen, strict=True)), chunk_size, h, scaling)
            g = _task_gradient(learner, episode, lite, cache, lite.loss_scale(n))[0]
            mean, m2 = _welford(mean, m2, g, k)
    return ExactMoments(mean.detach(), m2 / count, count, h, n, convention)


def _welford(
    mean: torch.Tensor | None, m2: float, x: torch.Tensor, k: int
) -> tuple[torch.Tensor, float]:
    """One step of Welford's running mean and sum of squared deviations (k = 1, 2, ...)."""
    x = x.detach().double()
    if mean is None:
        return x.clone(), 0.0
    delta = x - mean
    mean = mean + delta / k
    return mean, m2 + float(delta @ (x - mean))


# --- Monte Carlo --------------------------------------------------------------------------


def _generator(seed: int, h: int, convention: str) -> torch.Generator:
    """The subset stream of one (h, convention) cell: a function of (seed, h, convention)."""
    key = [seed, h, list(CONVENTIONS).index(convention)]
    state = np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def theory_kind(learner: Learner, convention: str) -> str:
    """What the theory column means for this learner and convention.

    ``"exact"``: single-path learners (ProtoNets), where ĝ is linear in the g_n.
    ``"lower bound"``: CNAPs-style learners with the unbiased, independent-subset estimator:
    tr Cov[ĝ] = N(N-h)/h tr S² + E||Â δB||² + E||δA δB||² (both extra terms ≥ 0), where the
    extra terms come from the set path's dL/dz being itself estimated from a subset.
    ``"linearised"``: CNAPs-style learners under the biased conventions; the formula is a
    reference line only.
    """
    if len(learner.support_paths) == 1:
        return "exact"
    return "lower bound" if convention == "unbiased" else "linearised"


def _check_draw_args(hs: Any, draws: Any, seed: Any, scalings: Any, n: int) -> tuple:
    if isinstance(hs, int | np.integer) or not isinstance(hs, Iterable):
        raise bad_argument("hs", hs, "pass a list of subset sizes, e.g. [1, 2, 4, 8].")
    hs = list(hs)
    if not hs:
        raise bad_argument("hs", hs, "pass at least one subset size.")
    hs = [_check_h(h, n) for h in hs]
    draws = check_int("draws", draws, minimum=4, fix="pass draws >= 4 (e.g. 100).")
    seed = check_int("seed", seed, minimum=0)
    if isinstance(scalings, str) or not isinstance(scalings, Iterable) or not list(scalings):
        raise bad_argument(
            "scalings", scalings, f"pass a non-empty list drawn from {list(CONVENTIONS)}."
        )
    scalings = [check_choice("scalings", s, tuple(CONVENTIONS)) for s in scalings]
    return hs, draws, seed, scalings


def _draws(
    learner: Learner,
    episode: Episode,
    h: int,
    convention: str,
    draws: int,
    seed: int,
    chunk_size: int,
    cache: dict[str, torch.Tensor] | None,
) -> Iterator[torch.Tensor]:
    """``draws`` LITE gradients with fresh random subsets, seeded by (seed, h, convention)."""
    scaling, independent = CONVENTIONS[convention]
    lite = Lite(
        h,
        chunk_size=chunk_size,
        generator=_generator(seed, h, convention),
        scaling=scaling,
        independent_subsets=independent,
    )
    for _ in range(draws):
        yield _task_gradient(learner, episode, lite, cache, lite.loss_scale(episode.n_support))[0]


def estimator_stats(
    learner: Learner,
    episode: Episode,
    hs: Sequence[int],
    draws: int,
    seed: int,
    scalings: Sequence[str] = ("unbiased", "none", "loss"),
    *,
    chunk_size: int = 64,
    decomposition: GradientDecomposition | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Monte-Carlo bias, variance, cosine and signal-to-noise of LITE's gradient against h.

    For each h in ``hs`` and each convention in ``scalings`` (see `CONVENTIONS`), draws
    ``draws`` real LITE gradients ĝ_1..ĝ_D (the training step's computation, random subsets
    seeded by (seed, h, convention), so a row does not depend on which other rows are asked
    for) and compares them with the full gradient g = dL/dθ.

    Returns one dict per (h, convention), a table ``pandas.DataFrame(rows)`` reads, with:
    ``learner, n, h, convention, draws``; ``bias_norm`` ||ḡ - g|| and ``relative_bias``
    ||ḡ - g||/||g|| with ḡ the mean of the draws; ``bias_noise`` sqrt(tr Cov/D), the size of
    ||ḡ - E ĝ|| expected from Monte-Carlo noise alone; ``trace_cov`` the sample tr Cov[ĝ]
    (1/(D-1) Σ ||ĝ_i - ḡ||²); ``trace_stderr`` its standard error by batch means (the draws
    split into B = min(10, D // 2) batches: std of the B batch traces / √B); ``theory_trace`` from
    `GradientDecomposition.theory_trace` and ``theory`` (`theory_kind`: "exact", "lower
    bound" or "linearised"); ``mean_cosine`` the mean of cos(ĝ_i, g); ``snr`` ||ḡ|| / sqrt(tr
    Cov) (inf when the estimate is exact); ``full_norm`` ||g||.
    """
    _check_learner_and_episode(learner, episode)
    n = episode.n_support
    hs, draws, seed, scalings = _check_draw_args(hs, draws, seed, scalings, n)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    if decomposition is None:
        decomposition = per_image_gradients(learner, episode, chunk_size=chunk_size)
    g = decomposition.full.double()
    from tqdm.auto import tqdm

    rows = []
    cells = [(h, c) for h in hs for c in scalings]
    with _preserved(learner):
        cache = learner.cache_support(episode.support_images, Lite(0, chunk_size=chunk_size))
        for h, convention in tqdm(cells, desc="estimator_stats", disable=not progress):
            mean, m2, cosines = None, 0.0, []
            batches = min(10, draws // 2)  # >= 2 batches of >= 2 draws each
            batch_stats: list[tuple[torch.Tensor | None, float, int]] = [(None, 0.0, 0)] * batches
            draw_iter = _draws(learner, episode, h, convention, draws, seed, chunk_size, cache)
            for k, estimate in enumerate(draw_iter, start=1):
                estimate = estimate.double()
                mean, m2 = _welford(mean, m2, estimate, k)
                b = (k - 1) * batches // draws
                b_mean, b_m2, b_k = batch_stats[b]
                batch_stats[b] = (*_welford(b_mean, b_m2, estimate, b_k + 1), b_k + 1)
                cosines.append(float(F.cosine_similarity(estimate, g, dim=0)))
            batch_traces = [b_m2 / (b_k - 1) for _, b_m2, b_k in batch_stats]
            stderr = float(np.std(batch_traces, ddof=1) / math.sqrt(batches))
            rows.append(
                _row(learner, decomposition, h, convention, draws, mean, m2, cosines, stderr, g)
            )
    return rows


def _row(learner, decomposition, h, convention, draws, mean, m2, cosines, stderr, g) -> dict:
    trace = m2 / (draws - 1)
    bias = float((mean - g).norm())
    full_norm = float(g.norm())
    return {
        "learner": type(learner).__name__,
        "n": decomposition.n,
        "h": h,
        "convention": convention,
        "draws": draws,
        "bias_norm": bias,
        "relative_bias": bias / full_norm,
        "bias_noise": math.sqrt(trace / draws),
        "trace_cov": trace,
        "trace_stderr": stderr,
        "theory_trace": decomposition.theory_trace(h, convention),
        "theory": theory_kind(learner, convention),
        "mean_cosine": float(np.mean(cosines)),
        "snr": float(mean.norm()) / math.sqrt(trace) if trace > 0 else math.inf,
        "full_norm": full_norm,
    }


def running_mean_error(
    learner: Learner,
    episode: Episode,
    h: int,
    draws: int,
    seed: int,
    scalings: Sequence[str] = ("unbiased", "none", "loss"),
    *,
    chunk_size: int = 64,
    full: torch.Tensor | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """How the running mean of k LITE draws approaches the full gradient, k = 1..draws.

    Rows: ``convention, h, k, relative_error`` ||mean_k - g|| / ||g|| and ``cosine``
    cos(mean_k, g). For an unbiased estimator relative_error falls like 1/√k towards 0; a
    biased one levels off at its relative bias. Uses the same subsets as `estimator_stats`
    with the same seed, so its last row per convention is that table's ``relative_bias``.
    """
    _check_learner_and_episode(learner, episode)
    n = episode.n_support
    (h,), draws, seed, scalings = _check_draw_args([h], draws, seed, scalings, n)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    with _preserved(learner):
        g = (full if full is not None else _task_gradient(learner, episode, None, None)[0]).double()
        cache = learner.cache_support(episode.support_images, Lite(0, chunk_size=chunk_size))
        from tqdm.auto import tqdm

        rows = []
        for convention in tqdm(scalings, desc="running mean", disable=not progress):
            mean = None
            draw_iter = _draws(learner, episode, h, convention, draws, seed, chunk_size, cache)
            for k, estimate in enumerate(draw_iter, start=1):
                mean, _ = _welford(mean, 0.0, estimate, k)
                rows.append(
                    {
                        "convention": convention,
                        "h": h,
                        "k": k,
                        "relative_error": float((mean - g).norm() / g.norm()),
                        "cosine": float(F.cosine_similarity(mean, g, dim=0)),
                    }
                )
    return rows


# --- cost of a training step ----------------------------------------------------------------


@dataclass(frozen=True)
class StepCost:
    """Time and memory of one LITE task-gradient computation (no optimiser step).

    Attributes:
        seconds: median wall-clock time over the repeats.
        saved_bytes: the most bytes of activations autograd holds for backward at any one
            time (unique storages, parameters excluded): the memory LITE cuts. With query
            batching, that of one batch. Deterministic on any device.
        peak_bytes: on CUDA, torch.cuda.max_memory_allocated during the step minus the
            memory allocated before it; None on the CPU, where a whole-process peak needs a
            fresh process per measurement, which this in-process helper does not start.
    """

    seconds: float
    saved_bytes: int
    peak_bytes: int | None


class _Saved:
    """What autograd holds for one saved tensor while the counter watches (weak-referenceable)."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class _SavedTensorCounter:
    """The peak of bytes autograd holds for backward at once (unique storages, no parameters).

    Every tensor saved for backward passes through `pack`; its holder dies when the graph that
    saved it is freed (after its backward pass), and the storage's bytes are released when its
    last holder dies. With query batching the peak is that of one batch's graph.
    """

    def __init__(self, learner: nn.Module) -> None:
        self.excluded = {p.untyped_storage().data_ptr() for p in learner.parameters()}
        self.live: dict[int, list[int]] = {}  # storage address -> [holders, bytes]
        self.current = 0
        self.peak = 0

    def pack(self, tensor: torch.Tensor) -> _Saved:
        held = _Saved(tensor)
        try:
            storage = tensor.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage
            return held
        if key in self.excluded or size == 0:
            return held
        entry = self.live.setdefault(key, [0, size])
        if entry[0] == 0:
            self.current += size
            self.peak = max(self.peak, self.current)
        entry[0] += 1
        weakref.finalize(held, self._release, key)
        return held

    def _release(self, key: int) -> None:
        entry = self.live[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.live[key]

    @staticmethod
    def unpack(held: _Saved) -> torch.Tensor:
        return held.tensor


def measure_step(
    learner: Learner,
    episode: Episode,
    lite: Lite | None,
    *,
    repeats: int = 3,
    query_batch: int | None = None,
) -> StepCost:
    """Time and memory of `litekit.train.accumulate_task_gradient` for one task.

    A small in-process measurement for notebooks: the median time of ``repeats`` runs after
    warm-up runs (`litekit.memory.median_seconds`), the bytes autograd saves for backward
    (the activation memory that grows with h), and on CUDA the peak allocated memory. The
    learner's ``.grad`` is left as found.
    """
    _check_learner_and_episode(learner, episode)
    repeats = check_int("repeats", repeats, minimum=1)
    device = learner.device
    counter = _SavedTensorCounter(learner)

    def run() -> None:
        learner.zero_grad(set_to_none=True)
        accumulate_task_gradient(learner, episode, lite, query_batch)

    peak = None
    with _preserved(learner):
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
            run()  # one counted run: the bytes saved for backward
        learner.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        seconds = median_seconds(run, device, repeats)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) - before
    return StepCost(seconds, counter.peak, peak)


def cost_vs_h(
    learner: Learner,
    episode: Episode,
    hs: Sequence[int],
    *,
    repeats: int = 3,
    chunk_size: int = 64,
    seed: int = 0,
    query_batch: int | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """`measure_step` for LITE at each h, then for full back-propagation (h = N).

    Rows: ``h, method`` ("lite" or "full"), ``seconds, saved_bytes, peak_bytes``.
    """
    _check_learner_and_episode(learner, episode)
    hs, _, seed, _ = _check_draw_args(hs, 4, seed, ["unbiased"], episode.n_support)
    from tqdm.auto import tqdm

    rows = []
    runs = [(h, "lite") for h in hs] + [(episode.n_support, "full")]
    for h, method in tqdm(runs, desc="cost", disable=not progress):
        lite = None
        if method == "lite":
            lite = Lite(h, chunk_size=chunk_size, generator=torch.Generator().manual_seed(seed))
        cost = measure_step(learner, episode, lite, repeats=repeats, query_batch=query_batch)
        rows.append(
            {
                "h": h,
                "method": method,
                "seconds": cost.seconds,
                "saved_bytes": cost.saved_bytes,
                "peak_bytes": cost.peak_bytes,
            }
        )
    return rows


# --- a small seeded task ------------------------------------------------------------------


def _batch_norm_conv4(width: int, depth: int) -> nn.Sequential:
    """Conv-4 with BatchNorm2d in place of GroupNorm: images share batch statistics."""
    from litekit.learners import conv4

    layers = list(conv4(width=width, depth=depth))
    return nn.Sequential(
        *[nn.BatchNorm2d(width) if isinstance(m, nn.GroupNorm) else m for m in layers]
    )


def demo_task(
    learner: str = "protonets",
    *,
    n_support: int = 20,
    way: int = 5,
    n_query: int = 10,
    image_size: int = 32,
    seed: int = 0,
    width: int = 16,
    depth: int = 3,
    norm: str = "group",
    backbone_mode: str = "eval",
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> tuple[Learner, Episode]:
    """A freshly initialised learner and one task of the embedded procedural dataset.

    Support labels cycle through the ``way`` classes (class k has about N/way images), the
    classes are drawn from 64 generated ones, and everything (classes, images, weights) is a
    function of ``seed``; the global torch random state is left untouched. ``norm="batch"``
    swaps the Conv-4's GroupNorm for BatchNorm (to show what batch statistics do).
    """
    from litekit.data import ProceduralImages
    from litekit.learners import CNAPs, SetEncoder, SimpleCNAPs, conv4

    check_choice("learner", learner, LEARNERS)
    way = check_int("way", way, minimum=1)
    n_support = check_int(
        "n_support", n_support, minimum=way, fix=f"pass n_support >= way={way} (a shot each)."
    )
    n_query = check_int("n_query", n_query, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    check_choice("norm", norm, ("group", "batch"))
    per_class = -(-n_support // way) + -(-n_query // way)
    data = ProceduralImages(
        num_classes=64, images_per_class=max(per_class, 2), image_size=image_size, seed=seed
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    targets = np.asarray(data.targets)
    classes = rng.choice(np.unique(targets), size=way, replace=False)
    # Each class's items in a random order (only the dataset's labels and items are used).
    orders = [rng.permutation(np.flatnonzero(targets == c)) for c in classes]
    support_labels = np.arange(n_support) % way
    query_labels = np.arange(n_query) % way
    used = [0] * way  # support images come first, then queries: the two never overlap

    def take(k: int) -> torch.Tensor:
        used[k] += 1
        return data[int(orders[k][used[k] - 1])][0]

    support_images = torch.stack([take(int(k)) for k in support_labels])
    query_images = torch.stack([take(int(k)) for k in query_labels])
    episode = Episode(
        support_images=support_images.to(dtype),
        support_labels=torch.as_tensor(support_labels, dtype=torch.long),
        query_images=query_images.to(dtype),
        query_labels=torch.as_tensor(query_labels, dtype=torch.long),
        class_ids=torch.as_tensor(classes, dtype=torch.long),
    ).to(device)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = (
            conv4(width=width, depth=depth) if norm == "group" else _batch_norm_conv4(width, depth)
        )
        film = dict(
            set_encoder=SetEncoder(3, dim=16, width=8, depth=3),
            set_dim=16,
            film_hidden=16,
            backbone_mode=backbone_mode,
        )
        if learner == "protonets":
            model: Learner = ProtoNets(backbone, backbone_mode=backbone_mode)
        elif learner == "simple_cnaps":
            model = SimpleCNAPs(backbone, **film)
        else:
            model = CNAPs(backbone, feature_dim=width, classifier_hidden=16, **film)
    return model.to(device=device, dtype=dtype), episode


def format_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 3
) -> str:
    """Rows as an aligned plain-text table, floats to ``digits`` significant figures.

    For printing a diagnostics table without pandas (``pandas.DataFrame(rows)`` also works).
    """
    if not rows:
        raise bad_argument("rows", rows, "pass at least one row.")
    columns = list(columns or rows[0].keys())

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}g}"
        return str(value)

    body = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in body)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)),
        *("  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)) for line in body),
    ]
    return "\n".join(lines)
