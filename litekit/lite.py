"""The LITE primitive: embed all N support images, back-propagate through h of them.

For an encoder f_θ applied to each image independently, the task gradient splits exactly
(Bronskill et al., 2021, §3):

    dL/dθ = g_Q + Σ_{n=1..N} g_n,    g_n = (∂L/∂e_n)(∂e_n/∂θ),    e_n = f_θ(x_n).

LITE returns embeddings whose *value* is f_θ(x_n) for every n (computed without gradient,
in chunks, so memory does not grow with N) and whose *gradient* reaches θ through a
uniformly random subset H of h rows only, each scaled by N/h. Back-propagating a loss
through them gives

    ĝ = g_Q + (N/h) Σ_{n∈H} g_n,    E_H[ĝ] = dL/dθ,    Cov[ĝ] = N(N-h)/h · S²,

with S² the sample covariance of the g_n. The trick that keeps values exact: the returned
tensor is ``E + s · (e_H - stop_gradient(e_H))`` at rows H, which adds exactly zero to the
value and ``s · ∂e_H/∂θ`` to the gradient.

The estimator has four parts, all in this module:

1. the no-grad pass, `embed_without_grad` (a learner's ``no_grad_support`` runs it once per
   task and support path, and caches it);
2. the subset draw, `Lite.draw` (through `draw_subset`; once per query batch);
3. the N/h-scaled rows, `embed_support`, the one place the formula above is written (a
   learner calls it once per support path and query batch);
4. the loss factor, `Lite.loss_scale` (N/h under ORBIT's convention, else 1), which
   `litekit.train.meta_train_step` puts on each task's loss.

They are split so that one no-grad pass over the N support images serves every query batch
of a task, each with its own fresh subset. `lite_forward` is the standalone form: it runs
parts 1 and 2 itself and calls `embed_support`. Every scale comes from the two scale rules,
`support_scale` (on the rows) and `loss_scale` (on the loss). `Lite` holds a learner's
settings (h, chunk size, subsets, scaling, precision and memory layout).

Scaling conventions (``scaling=``):

- ``"unbiased"`` (default): s = N/h, the estimator above;
- ``"none"``: s = 1, as the VTAB+MD code does; the support path is h/N times too small;
- ``"loss"``: s = 1 on the rows, and the whole loss is multiplied by N/h (`loss_scale`), as
  the ORBIT code does; that also inflates the exact query path g_Q by N/h.
  `litekit.train.meta_train_step` applies the loss factor; a caller of `lite_forward` must
  apply it to its own loss, or its ``"loss"`` is the same as ``"none"``.

Only ``"unbiased"`` estimates the task gradient without bias; the others are for teaching.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import torch

from litekit._checks import bad_argument, check_choice, check_int
from litekit._deprecated import old_names, renamed_keywords, warn_deprecated
from litekit.precision import autocast, check_precision, memory_layout

Encoder = Callable[[torch.Tensor], torch.Tensor]
SCALINGS = ("unbiased", "none", "loss")
FULL = 2**62  # an h no support set reaches: `Lite.full`, plain back-propagation


def support_scale(n: int, h: int, scaling: str) -> float:
    """The factor s on each sampled support row's gradient: N/h under ``"unbiased"``, else 1.

    With h = 0 there is no row to scale and with h >= N every row is kept, so s = 1 there.
    """
    return n / h if scaling == "unbiased" and 0 < h < n else 1.0


def loss_scale(n: int, h: int, scaling: str) -> float:
    """The factor on the whole task loss: N/h under the ORBIT convention (``"loss"``), else 1."""
    return n / h if scaling == "loss" and 0 < h < n else 1.0


def run_encoder(
    encoder: Encoder,
    images: torch.Tensor,
    device: torch.device | str,
    precision: str = "fp32",
    channels_last: bool = False,
) -> torch.Tensor:
    """``encoder(images)`` on ``device``, in ``precision`` and memory layout.

    Under bf16/fp16 the encoder runs in ``torch.autocast`` and its output comes back in the
    images' floating dtype (float32 for float32 images), so everything after the encoder
    computes as in full precision (`litekit.precision`).
    """
    batch = memory_layout(images.to(device, non_blocking=True), channels_last)
    if precision == "fp32":
        return encoder(batch)
    with autocast(precision, device):
        out = encoder(batch)
    return out.to(images.dtype if images.is_floating_point() else torch.float32)


def embed_without_grad(
    encoder: Encoder,
    images: torch.Tensor,
    chunk_size: int,
    device: torch.device | str | None = None,
    precision: str = "fp32",
    channels_last: bool = False,
) -> torch.Tensor:
    """f(x_n) for every image, computed in chunks of ``chunk_size`` with no autograd graph.

    Peak memory is that of one chunk plus the (N, ...) output, whatever N is. Chunks move to
    ``device`` one at a time, so the images themselves may stay on the host.
    """
    device = images.device if device is None else torch.device(device)
    with torch.no_grad():
        parts = [
            run_encoder(
                encoder, images[start : start + chunk_size], device, precision, channels_last
            )
            for start in range(0, images.shape[0], chunk_size)
        ]
    return torch.cat(parts)


def draw_subset(n: int, h: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """h of range(n), uniformly without replacement, in increasing order (on the CPU).

    The only source of LITE's randomness: `Lite.draw` calls it once per support path (and
    `lite_forward` once).
    """
    return torch.randperm(n, generator=generator)[:h].sort().values


def _check_h_and_chunk(h: int, chunk_size: int) -> None:
    check_int(
        "h",
        h,
        minimum=0,
        fix="h is the number of support images to back-propagate through: use 0 for none, "
        "N (or more) for full back-propagation, anything between for LITE.",
    )
    check_int("chunk_size", chunk_size, minimum=1, fix="pass chunk_size >= 1 (e.g. 64).")


def as_subset(
    name: str, indices: Sequence[int] | torch.Tensor, n: int, h: int | None = None
) -> torch.Tensor:
    """``indices`` as a LongTensor of distinct rows in 0..n-1 (of length min(h, n) if h given)."""
    subset = torch.as_tensor(indices, dtype=torch.long).flatten()
    if h is not None and len(subset) != min(h, n):
        raise bad_argument(name, indices, f"a fixed subset must hold h={h} indices.")
    if len(subset) and (
        subset.min() < 0 or subset.max() >= n or subset.unique().numel() != len(subset)
    ):
        raise bad_argument(name, indices, f"pass distinct indices in 0..{n - 1}.")
    return subset


class Embedded(NamedTuple):
    """What `embed_support` gives: the support embeddings (N, ...), and the query batch's
    embeddings when one was passed (else None)."""

    support: torch.Tensor
    queries: torch.Tensor | None = None


def embed_support(
    encoder: Encoder,
    images: torch.Tensor,
    lite: Lite | None,
    device: torch.device,
    *,
    cached: torch.Tensor | None = None,
    subset: torch.Tensor | None = None,
    queries: torch.Tensor | None = None,
) -> Embedded:
    """The N/h-scaled rows: the one place LITE's estimator is written.

    Without ``cached``, every support image keeps its graph: ``encoder(images)``, plain
    back-propagation. With ``cached`` (the support set embedded earlier without gradient)
    and a ``subset`` H of h of its rows, the value is ``cached`` and the gradient reaches the
    encoder through the rows of H only, each scaled by s = `support_scale` (N/h under
    ``"unbiased"``, 1 otherwise):

        cached + s · (e_H - stop_gradient(e_H))  at the rows of H,

    which adds exactly zero to the value. ``queries``, a query batch, go through the same
    encoder call as the rows of H: one forward and one backward instead of two, which keeps
    a step near its floor when h and the query batch are small.

    The learners call it once per support path and query batch, and `lite_forward` wraps it
    for standalone use. It checks nothing (its callers checked their settings once): ``lite``
    gives the scaling, precision and memory layout (None: fp32, only without ``cached``).
    """
    rows = images if cached is None else images[subset.to(images.device)]
    if cached is not None and len(rows) == 0 and queries is None:
        return Embedded(cached)  # no row carries gradient, and nothing else to embed
    layout = {} if lite is None else lite.layout
    parts = [rows] if queries is None else [rows, queries]
    batch = torch.cat([part.to(device, non_blocking=True) for part in parts])
    out = run_encoder(encoder, batch, device, **layout)
    embedded = out[: len(rows)]
    query_embeddings = out[len(rows) :] if queries is not None else None
    if cached is None:
        return Embedded(embedded, query_embeddings)
    support = cached
    if len(rows):
        scale = support_scale(len(images), len(rows), lite.scaling)
        delta = (embedded - embedded.detach()) * scale
        support = cached.index_add(0, subset.to(cached.device), delta)
    return Embedded(support, query_embeddings)


@renamed_keywords(indices="subset")
def lite_forward(
    encoder: Encoder,
    images: torch.Tensor,
    h: int,
    *,
    chunk_size: int = 64,
    generator: torch.Generator | None = None,
    scaling: str = "unbiased",
    subset: Sequence[int] | torch.Tensor | None = None,
    device: torch.device | str | None = None,
    cached: torch.Tensor | None = None,
    precision: str = "fp32",
    channels_last: bool = False,
    queries: torch.Tensor | None = None,
) -> torch.Tensor:
    """Embeddings of all N images, in input order, with gradient through h random rows.

    The standalone form of the estimator: it checks its arguments, runs the no-grad pass
    (`embed_without_grad`) and draws the subset (`draw_subset`) unless they are given, then
    calls `embed_support`. (The learners make those two parts once per task and per query
    batch themselves, and call `embed_support` directly.)

    Args:
        encoder: maps a batch of images to a batch of embeddings, each image on its own (no
            batch statistics), so that the per-image split of the gradient is exact.
        images: (N, ...) batch; may live on the host while the encoder is on a GPU.
        h: rows that carry gradient. ``h >= N`` is the plain forward ``encoder(images)``;
            ``h = 0`` gives no gradient through the images.
        chunk_size: images per no-grad forward call (bounds peak memory).
        generator: source of the random subset (seed it for reproducible subsets).
        scaling: ``"unbiased"`` scales the sampled rows' gradient by N/h; ``"none"`` and
            ``"loss"`` leave it at 1 (see the module docstring: under ``"loss"`` the caller
            multiplies its loss by `loss_scale`, and a warning says so).
        subset: a fixed subset of h rows instead of a random one (exact enumeration); its
            old name ``indices=`` still works, with a warning.
        device: where the encoder runs; defaults to ``images.device``.
        cached: ``encoder(images)`` computed earlier without gradient; computed here when
            None.
        precision: ``"fp32"``, or ``"bf16"``/``"fp16"`` to run both passes (no-grad and
            gradient) under ``torch.autocast``; embeddings come back in the images' dtype.
        channels_last: run the encoder on channels-last images (`litekit.precision`).
        queries: deprecated: a query batch to embed in the same encoder call; then the
            result is an `Embedded` pair. Call `embed_support` for that.

    Returns:
        (N, ...) tensor equal in value to ``encoder(images)``.
    """
    lite = Lite(h, chunk_size, generator, scaling, precision=precision, channels_last=channels_last)
    n = images.shape[0]
    if n == 0:
        raise bad_argument("images", tuple(images.shape), "pass at least one image.")
    if cached is not None and cached.shape[0] != n:
        raise bad_argument("cached", tuple(cached.shape), f"pass one embedding per image ({n}).")
    if subset is not None:
        subset = as_subset("subset", subset, n, h)
    if scaling == "loss" and 0 < h < n:
        warnings.warn(
            "lite_forward(scaling='loss') scales no rows: multiply your loss by "
            "litekit.lite.loss_scale(N, h, 'loss') (meta_train_step does), or pass "
            "scaling='none' to say you mean no scaling.",
            UserWarning,
            stacklevel=3,
        )
    if queries is not None:
        warn_deprecated(
            "lite_forward(queries=...)", "call litekit.lite.embed_support", stacklevel=4
        )
    device = images.device if device is None else torch.device(device)
    if h < n or subset is not None or cached is not None:  # LITE: the two parts it needs
        if cached is None:
            cached = embed_without_grad(encoder, images, chunk_size, device, **lite.layout)
        if subset is None:
            subset = draw_subset(n, min(h, n), generator)
    embedded = embed_support(
        encoder, images, lite, device, cached=cached, subset=subset, queries=queries
    )
    return embedded.support if queries is None else embedded


def with_precision(
    lite: Lite | None, precision: str | None = None, channels_last: bool | None = None
) -> Lite | None:
    """``lite`` with ``precision`` and ``channels_last`` where given (None keeps its own);
    without a ``lite``, full back-propagation (`Lite.full`) in them, or None when neither is
    given."""
    changes: dict = {}
    if precision is not None:
        changes["precision"] = check_precision(precision)
    if channels_last is not None:
        changes["channels_last"] = bool(channels_last)
    if not changes:
        return lite
    return Lite.full(**changes) if lite is None else replace(lite, **changes)


@dataclass
class Lite:
    """How a learner treats its support set: subset size, chunking, subsets and scaling.

    A learner runs the no-grad pass over its support set once per task (`embed_without_grad`
    in ``chunk_size`` chunks), calls `draw` once per query batch for one subset per support
    path (``"features"`` for the backbone, ``"set"`` for a set encoder), and passes each to
    `embed_support` with that path's cached embeddings. The training step multiplies the
    task loss by `loss_scale` (N/h under ``"loss"`` only).

    Args:
        h: support images back-propagated through per path (the paper's size of H). ``h = 0``
            trains the query path only (`litekit.train.meta_train_step` warns about it).
        chunk_size: images per no-grad forward call.
        generator: torch.Generator for the subsets; seed it for reproducibility.
        scaling: ``"unbiased"`` (default), ``"none"`` (VTAB+MD code) or ``"loss"`` (ORBIT
            code, applied by `litekit.train.meta_train_step`).
        independent_subsets: draw a separate subset for each support path. The product of
            two support sums (set encoder × feature extractor) is unbiased only when the
            two subsets are independent; ``False`` shares one subset (biased, for comparison).
        subsets: fixed subsets per path, for exact enumeration; overrides random draws. Each
            may have its own size (0..N); the N/(subset size) scale is per path.
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"``: the backbone's passes
            under ``torch.autocast`` (`litekit.precision`); fp16 steps need a GradScaler.
        channels_last: run the backbone's passes on channels-last images.
    """

    h: int
    chunk_size: int = 64
    generator: torch.Generator | None = None
    scaling: str = "unbiased"
    independent_subsets: bool = True
    subsets: Mapping[str, Sequence[int] | torch.Tensor] | None = field(default=None)
    precision: str = "fp32"
    channels_last: bool = False

    def __post_init__(self) -> None:
        _check_h_and_chunk(self.h, self.chunk_size)
        check_choice("scaling", self.scaling, SCALINGS)
        check_precision(self.precision)

    @classmethod
    def full(cls, chunk_size: int = 64, **settings) -> Lite:
        """Full back-propagation (every support image keeps its gradient) with these
        settings, e.g. ``Lite.full(precision="bf16")``."""
        return cls(FULL, chunk_size, **settings)

    def is_full(self, n: int) -> bool:
        """True when every support image keeps its gradient (h >= N): plain back-propagation."""
        return self.h >= n and self.subsets is None

    def loss_scale(self, n: int) -> float:
        """Factor on the whole task loss: N/h under the ORBIT convention, else 1."""
        return loss_scale(n, self.h, self.scaling)

    @property
    def layout(self) -> dict[str, Any]:
        """The encoder's precision and memory layout, as keyword arguments of
        `run_encoder` and `embed_without_grad`."""
        return {"precision": self.precision, "channels_last": self.channels_last}

    @property
    def row_scaling(self) -> str:
        """The ``scaling`` the rows get. Deprecated, because `support_scale` already gives
        the rows no factor under ``"loss"``, so ``scaling`` itself is what to pass."""
        warn_deprecated("Lite.row_scaling", "use Lite.scaling (support_scale handles 'loss')")
        return "none" if self.scaling == "loss" else self.scaling

    def draw(self, n: int, paths: Sequence[str]) -> dict[str, torch.Tensor]:
        """One subset of ``min(h, N)`` support rows per path (shared when not independent)."""
        if self.subsets is not None:
            missing = [p for p in paths if p not in self.subsets]
            if missing:
                raise bad_argument(
                    "subsets", dict(self.subsets), f"give a subset for every path {list(paths)}."
                )
            return {p: as_subset(f"subsets[{p!r}]", self.subsets[p], n) for p in paths}
        h = min(self.h, n)
        if not self.independent_subsets:
            shared = draw_subset(n, h, self.generator)
            return {p: shared for p in paths}
        return {p: draw_subset(n, h, self.generator) for p in paths}


__getattr__ = old_names(__name__, {"with_layout": ("use with_precision", with_precision)})
