"""Gradient diagnostics: the per-image split of the task gradient, and LITE's estimator.

Notation (Bronskill et al., 2021, §3). A task has N support images x_n and a query loss L.
When every image is embedded on its own, e_n = f_θ(x_n), the task gradient splits exactly:

    dL/dθ = g_Q + Σ_{n=1..N} g_n,    g_n = (∂L/∂e_n)(∂e_n/∂θ),

g_Q being the gradient through the query path with every support embedding held at its
value. LITE back-propagates through a random subset H of h images and scales by N/h:

    ĝ = g_Q + (N/h) Σ_{n∈H} g_n,    E_H[ĝ] = dL/dθ,    tr Cov[ĝ] = N(N-h)/h · tr S²,

with S² = 1/(N-1) Σ_n (g_n - ḡ)(g_n - ḡ)ᵀ. This package computes each of these objects, so
that notebooks and tests can check the identities on real models, one idea per module:

- `decomposition`: `per_image_gradients`, g_Q and the g_n (torch.func vmap where the model
  allows, a loop of LITE gradients with fixed one-image subsets otherwise);
- `exact`: `exact_expectation`, E_H[ĝ] and tr Cov[ĝ] by enumerating every subset (small N);
- `monte_carlo`: `estimator_stats`, Monte-Carlo bias, variance, cosine and signal-to-noise
  against h for each scaling, next to the theory line; `running_mean_error`, how the mean
  of many LITE draws approaches the full gradient;
- `demo`: `demo_task`, a small seeded learner and task on the embedded procedural dataset;
- `tables`: `format_table`, rows printed as a plain-text table;
- `common`: the checks, the estimators compared (`SCALINGS`) and the one task gradient.

The estimators are named by their scaling (`SCALINGS`): litekit's unbiased N/h
(``"unbiased"``), the VTAB+MD code's none (``"none"``), the ORBIT code's N/h on the whole
loss (``"loss"``), and the unbiased scaling with one subset shared by both support paths
of a CNAPs-style model (``"same_subset"``). The time and memory of a step are measured by
`litekit.measure`.

Models with a set encoder (CNAPs, Simple CNAPs) use the support set twice: codes
s_n = s_φ(x_n) are averaged into z = (1/N) Σ_n s_n, which generates FiLM parameters for the
backbone, e_n = f_θ(x_n; z). Their per-image term has two parts, g_n = g_n^set + g_n^features::

    g_n^features = (∂L/∂e_n)(∂e_n/∂θ)            (z held at its value),
    g_n^set      = (dL/dz)(1/N)(∂s_n/∂φ)          (dL/dz total: through the queries and
                                                   through every support embedding e_m),

and g_Q + Σ_n g_n is again the full gradient exactly. LITE's estimate for these models is
not linear in the g_n: the set-encoder gradient is a product of two sampled sums, one per
subset, Â(H_set) · B̂(H_features). With independent subsets it stays exactly unbiased, and its
variance is N(N-h)/h · tr S² (the "linearised" value: what it would be if B̂ were exact) plus
two non-negative terms, so the formula is an exact *lower bound* there (see `theory_kind`).
"""

from litekit.diagnostics.common import SCALINGS
from litekit.diagnostics.decomposition import (
    METHODS,
    GradientDecomposition,
    per_image_gradients,
    vmap_supported,
)
from litekit.diagnostics.demo import demo_task
from litekit.diagnostics.exact import ExactMoments, exact_expectation, subset_configurations
from litekit.diagnostics.monte_carlo import estimator_stats, running_mean_error, theory_kind
from litekit.diagnostics.tables import format_table
from litekit.learners.build import LEARNERS

__all__ = [
    "LEARNERS",
    "METHODS",
    "SCALINGS",
    "ExactMoments",
    "GradientDecomposition",
    "demo_task",
    "estimator_stats",
    "exact_expectation",
    "format_table",
    "per_image_gradients",
    "running_mean_error",
    "subset_configurations",
    "theory_kind",
    "vmap_supported",
]
