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

Scaling conventions (``scaling=``):
- ``"unbiased"`` (default): s = N/h, the estimator above;
- ``"none"``: s = 1, as the VTAB+MD code does; the support path is h/N times too small;
- ``"loss"``: s = 1 here, and the training step multiplies the whole loss by N/h, as the ORBIT
  code does; that also inflates the exact query path g_Q by N/h.
Only ``"unbiased"`` estimates the task gradient without bias; the others are for teaching.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from litekit._checks import bad_argument, check_choice, check_int

Encoder = Callable[[torch.Tensor], torch.Tensor]
SCALINGS = ("unbiased", "none", "loss")


def embed_without_grad(
    encoder: Encoder,
    images: torch.Tensor,
    chunk_size: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """f(x_n) for every image, computed in chunks of ``chunk_size`` with no autograd graph.

    Peak memory is that of one chunk plus the (N, ...) output, whatever N is. Chunks move to
    ``device`` one at a time, so the images themselves may stay on the host.
    """
    device = images.device if device is None else torch.device(device)
    with torch.no_grad():
        parts = [
            encoder(images[start : start + chunk_size].to(device, non_blocking=True))
            for start in range(0, images.shape[0], chunk_size)
        ]
    return torch.cat(parts)


def attach_gradient(
    encoder: Encoder,
    images: torch.Tensor,
    embeddings: torch.Tensor,
    indices: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Give the constant ``embeddings`` a gradient path through rows ``indices``, times ``scale``.

    The value of the result equals ``embeddings`` exactly; the gradient of anything computed
    from it reaches the encoder's parameters as ``scale · Σ_{n∈indices} (∂L/∂e_n)(∂e_n/∂θ)``.
    """
    return attach_gradient_and_embed(encoder, images, embeddings, indices, scale, None)[0]


def attach_gradient_and_embed(
    encoder: Encoder,
    images: torch.Tensor,
    embeddings: torch.Tensor,
    indices: torch.Tensor,
    scale: float,
    extra: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`attach_gradient`, and ``encoder(extra)`` (a query batch) from the same encoder call.

    The h sampled rows and the query batch go through the encoder as one batch: one forward
    and one backward instead of two, which is what keeps a LITE step near its floor when h
    and the batch are small.
    """
    device = embeddings.device
    parts = [] if indices.numel() == 0 else [images[indices.to(images.device)]]
    if extra is not None:
        parts.append(extra)
    if not parts:
        return embeddings, None
    batch = torch.cat([p.to(device, non_blocking=True) for p in parts])
    out = encoder(batch)
    h = int(indices.numel())
    rows, extra_out = out[:h], (out[h:] if extra is not None else None)
    if h == 0:
        return embeddings, extra_out
    delta = (rows - rows.detach()) * scale
    return embeddings.index_add(0, indices.to(device), delta), extra_out


def draw_subset(n: int, h: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """h of range(n), uniformly without replacement, in increasing order (on the CPU)."""
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
) -> torch.Tensor:
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
            ``"loss"`` leave it at 1 (see the module docstring).
        indices: a fixed subset of h rows instead of a random one (exact enumeration).
        device: where the encoder runs; defaults to ``images.device``.

    Returns:
        (N, ...) tensor equal in value to ``encoder(images)``.
    """
    _check_h_and_chunk(h, chunk_size)
    check_choice("scaling", scaling, SCALINGS)
    n = images.shape[0]
    if n == 0:
        raise bad_argument("images", tuple(images.shape), "pass at least one image.")
    device = images.device if device is None else torch.device(device)
    if h >= n and indices is None:
        return encoder(images.to(device, non_blocking=True))
    subset = _as_subset("indices", indices, n, h) if indices is not None else None
    constant = embed_without_grad(encoder, images, chunk_size, device)
    if subset is None:
        subset = draw_subset(n, h, generator)
    scale = n / len(subset) if scaling == "unbiased" and len(subset) > 0 else 1.0
    return attach_gradient(encoder, images, constant, subset, scale)


def _as_subset(
    name: str, indices: Sequence[int] | torch.Tensor, n: int, h: int | None
) -> torch.Tensor:
    subset = torch.as_tensor(indices, dtype=torch.long).flatten()
    if h is not None and len(subset) != min(h, n):
        raise bad_argument(name, indices, f"a fixed subset must hold h={h} indices.")
    if len(subset) and (
        subset.min() < 0 or subset.max() >= n or subset.unique().numel() != len(subset)
    ):
        raise bad_argument(name, indices, f"pass distinct indices in 0..{n - 1}.")
    return subset


@dataclass
class Lite:
    """How a learner treats its support set: subset size, chunking, subsets and scaling.

    Learners call `draw` once per task (or per query batch) to get one subset per support
    path (``"features"`` for the backbone, ``"set"`` for a set encoder), then `embed`.

    Args:
        h: support images back-propagated through per path (the paper's |H|).
        chunk_size: images per no-grad forward call.
        generator: torch.Generator for the subsets; seed it for reproducibility.
        scaling: ``"unbiased"`` (default), ``"none"`` (VTAB+MD code) or ``"loss"`` (ORBIT
            code, applied by `litekit.train.meta_train_step`).
        independent_subsets: draw a separate subset for each support path. The product of
            two support sums (set encoder × feature extractor) is unbiased only when the
            two subsets are independent; ``False`` shares one subset (biased, for comparison).
        subsets: fixed subsets per path, for exact enumeration; overrides random draws. Each
            may have its own size (0..N); the N/|subset| scale is per path.
    """

    h: int
    chunk_size: int = 64
    generator: torch.Generator | None = None
    scaling: str = "unbiased"
    independent_subsets: bool = True
    subsets: Mapping[str, Sequence[int] | torch.Tensor] | None = field(default=None)

    def __post_init__(self) -> None:
        _check_h_and_chunk(self.h, self.chunk_size)
        check_choice("scaling", self.scaling, SCALINGS)

    def is_full(self, n: int) -> bool:
        """True when every support image keeps its gradient (h >= N): plain back-propagation."""
        return self.h >= n and self.subsets is None

    def support_scale(self, n: int, h: int) -> float:
        """Factor on each sampled row's gradient: N/h when unbiased, else 1."""
        return n / h if self.scaling == "unbiased" and 0 < h < n else 1.0

    def loss_scale(self, n: int) -> float:
        """Factor on the whole task loss: N/h under the ORBIT convention, else 1."""
        return n / self.h if self.scaling == "loss" and 0 < self.h < n else 1.0

    def draw(self, n: int, paths: Sequence[str]) -> dict[str, torch.Tensor]:
        """One subset of ``min(h, N)`` support rows per path (shared when not independent)."""
        if self.subsets is not None:
            missing = [p for p in paths if p not in self.subsets]
            if missing:
                raise bad_argument(
                    "subsets", dict(self.subsets), f"give a subset for every path {list(paths)}."
                )
            return {p: _as_subset(f"subsets[{p!r}]", self.subsets[p], n, None) for p in paths}
        h = min(self.h, n)
        if not self.independent_subsets:
            shared = draw_subset(n, h, self.generator)
            return {p: shared for p in paths}
        return {p: draw_subset(n, h, self.generator) for p in paths}

    def embed(
        self,
        encoder: Encoder,
        images: torch.Tensor,
        constant: torch.Tensor,
        subset: torch.Tensor,
        extra: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`attach_gradient_and_embed` with this convention's scale, on a no-grad pass.

        Returns the support embeddings and ``encoder(extra)`` (None without ``extra``).
        """
        n = images.shape[0]
        scale = self.support_scale(n, len(subset))
        return attach_gradient_and_embed(encoder, images, constant, subset, scale, extra)
