"""The LITE primitive: embed all N support images, back-propagate through h of them.

For an encoder f_θ applied to each image independently, the task gradient splits exactly
(Bronskill et al., 2021, §3):

    dL/dθ = g_Q + Σ_{n=1..N} g_n,    g_n = (∂L/∂e_n)(∂e_n/∂θ),    e_n = f_θ(x_n).

`lite_forward` returns embeddings whose *value* is f_θ(x_n) for every n (computed without
gradient, in chunks, so memory does not grow with N) and whose *gradient* reaches θ through
a uniformly random subset H of h rows only, each scaled by N/h. Back-propagating a loss
through them gives

    ĝ = g_Q + (N/h) Σ_{n∈H} g_n,    E_H[ĝ] = dL/dθ,    Cov[ĝ] = N(N-h)/h · S²,

with S² the sample covariance of the g_n. The trick that keeps values exact: the returned
tensor is ``E + s · (e_H - stop_gradient(e_H))`` at rows H, which adds exactly zero to the
value and ``s · ∂e_H/∂θ`` to the gradient.

Every learner reaches its support images through `lite_forward`: it is the only place the
estimator is written. `Lite` holds a learner's settings (h, chunk size, subsets, scaling,
precision and memory layout) and draws the subsets; `support_scale` and `loss_scale` are
the two scale rules.

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

import torch

from litekit._checks import bad_argument, check_choice, check_int
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

    The only source of LITE's randomness: `Lite.draw` calls it once per support path.
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


def _encode_together(
    encoder: Encoder,
    images: torch.Tensor,
    queries: torch.Tensor | None,
    device: torch.device,
    precision: str,
    channels_last: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``encoder`` on the support rows and the query batch in ONE call: one forward and one
    backward instead of two, which is what keeps a step near its floor when h and the query
    batch are small. Returns (support rows, queries or None)."""
    parts = [images] if queries is None else [images, queries]
    batch = torch.cat([p.to(device, non_blocking=True) for p in parts])
    out = run_encoder(encoder, batch, device, precision, channels_last)
    n = images.shape[0]
    return out[:n], (out[n:] if queries is not None else None)


def lite_forward(
    encoder: Encoder,
    images: torch.Tensor,
    h: int,
    *,
    chunk_size: int = 64,
    generator: torch.Generator | None = None,
    scaling: str = "unbiased",
    indices: Sequence[int] | torch.Tensor | None = None,
    device: torch.device | str | None = None,
    cached: torch.Tensor | None = None,
    queries: torch.Tensor | None = None,
    precision: str = "fp32",
    channels_last: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of all N images, in input order, with gradient through h random rows.

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
        indices: a fixed subset of h rows instead of a random one (exact enumeration).
        device: where the encoder runs; defaults to ``images.device``.
        cached: ``encoder(images)`` computed earlier without gradient (a learner computes it
            once per task and reuses it for every query batch); computed here when None.
        queries: a query batch to embed in the same encoder call as the sampled rows.
        precision: ``"fp32"``, or ``"bf16"``/``"fp16"`` to run both passes (no-grad and
            gradient) under ``torch.autocast``; embeddings come back in the images' dtype.
        channels_last: run the encoder on channels-last images (`litekit.precision`).

    Returns:
        (N, ...) tensor equal in value to ``encoder(images)``; with ``queries``, the pair
        (that tensor, ``encoder(queries)``).
    """
    _check_h_and_chunk(h, chunk_size)
    check_choice("scaling", scaling, SCALINGS)
    check_precision(precision)
    n = images.shape[0]
    if n == 0:
        raise bad_argument("images", tuple(images.shape), "pass at least one image.")
    if cached is not None and cached.shape[0] != n:
        raise bad_argument("cached", tuple(cached.shape), f"pass one embedding per image ({n}).")
    if scaling == "loss" and 0 < h < n:
        warnings.warn(
            "lite_forward(scaling='loss') scales no rows: multiply your loss by "
            "litekit.lite.loss_scale(N, h, 'loss') (meta_train_step does), or pass "
            "scaling='none' to say you mean no scaling.",
            UserWarning,
            stacklevel=2,
        )
    device = images.device if device is None else torch.device(device)
    layout = (precision, channels_last)
    if h >= n and indices is None and cached is None:  # plain back-propagation
        support, embedded = _encode_together(encoder, images, queries, device, *layout)
        return support if queries is None else (support, embedded)
    subset = as_subset("indices", indices, n, h) if indices is not None else None
    if cached is None:
        cached = embed_without_grad(encoder, images, chunk_size, device, *layout)
    if subset is None:
        subset = draw_subset(n, min(h, n), generator)
    support, embedded = cached, None
    if len(subset) or queries is not None:
        rows, embedded = _encode_together(
            encoder, images[subset.to(images.device)], queries, device, *layout
        )
        if len(subset):
            delta = (rows - rows.detach()) * support_scale(n, len(subset), scaling)
            support = cached.index_add(0, subset.to(cached.device), delta)
    return support if queries is None else (support, embedded)


def with_layout(
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

    A learner calls `draw` once per task (or per query batch) to get one subset per support
    path (``"features"`` for the backbone, ``"set"`` for a set encoder), and passes each to
    `lite_forward` with the cached no-grad embeddings of that path.

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
    def row_scaling(self) -> str:
        """The ``scaling`` to hand `lite_forward`: under ``"loss"`` the rows get no factor
        ("none") because the training step scales the whole loss instead."""
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
