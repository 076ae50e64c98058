"""Classifier heads: from support embeddings and labels to query logits.

Each head is a pure function of the support embeddings e (N, D), their labels y (N,) in
0..K-1 and the query embeddings q (M, D); it returns logits (M, K). Gradients flow to e, so
LITE's per-image split applies to whatever a head does with the support set.
"""

from __future__ import annotations

import torch
from torch import nn


def class_counts(labels: torch.Tensor, way: int) -> torch.Tensor:
    """n_k, the number of support images of each class."""
    return torch.bincount(labels, minlength=way)


def class_means(embeddings: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Prototypes μ_k = (1/n_k) Σ_{n: y_n = k} e_n, shape (K, D)."""
    sums = embeddings.new_zeros(way, embeddings.shape[1]).index_add(0, labels, embeddings)
    counts = class_counts(labels, way).to(embeddings.dtype)
    return sums / counts.unsqueeze(1)


def prototype_logits(
    embeddings: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, way: int
) -> torch.Tensor:
    """ProtoNets: logits = -||q - μ_k||², the negative squared Euclidean distance."""
    means = class_means(embeddings, labels, way)
    return -(queries.unsqueeze(1) - means.unsqueeze(0)).pow(2).sum(-1)


def _covariance(centred: torch.Tensor) -> torch.Tensor:
    """Σ c_n c_nᵀ / max(n - 1, 1): the unbiased sample covariance (zero for one sample)."""
    return centred.T @ centred / max(centred.shape[0] - 1, 1)


def mahalanobis_logits(
    embeddings: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, way: int
) -> torch.Tensor:
    """Simple CNAPs: logits = -(q - μ_k)ᵀ Q_k⁻¹ (q - μ_k).

    Q_k = λ_k Σ_k + (1 - λ_k) Σ_task + I with λ_k = n_k / (n_k + 1): a class covariance
    shrunk toward the task covariance (more so when the class has few shots), plus the
    identity so that Q_k is always invertible.
    """
    means = class_means(embeddings, labels, way)
    counts = class_counts(labels, way).to(embeddings.dtype)
    task_cov = _covariance(embeddings - embeddings.mean(0))
    identity = torch.eye(embeddings.shape[1], dtype=embeddings.dtype, device=embeddings.device)
    covariances = []
    for k in range(way):
        members = embeddings[labels == k]
        lam = counts[k] / (counts[k] + 1)
        covariances.append(lam * _covariance(members - means[k]) + (1 - lam) * task_cov + identity)
    chol, failed = torch.linalg.cholesky_ex(torch.stack(covariances))  # (K, D, D)
    if bool(failed.any()):
        # Q_k >= I, so only non-finite embeddings (a NaN pixel) make it fail: NaN logits,
        # which the training step reports as a non-finite loss naming the input.
        return (queries @ means.T) * float("nan")  # NaN, still on the graph for backward
    diff = queries.unsqueeze(0) - means.unsqueeze(1)  # (K, M, D)
    solved = torch.cholesky_solve(diff.transpose(1, 2), chol)  # (K, D, M)
    distances = (diff.transpose(1, 2) * solved).sum(1)  # (K, M)
    return -distances.T


class LinearClassifierGenerator(nn.Module):
    """CNAPs: a linear classifier generated from each class mean, w_k, b_k = g(μ_k).

    g is a small MLP with a residual to the mean: w_k = μ_k + W₂ ReLU(W₁ μ_k) and
    b_k = w_b · ReLU(W₁ μ_k) - ||μ_k||²/2. At initialisation (W₂ ≈ 0) this is the prototype
    classifier q·μ_k - ||μ_k||²/2, which ranks classes as ProtoNets does, and training moves
    it from there.
    """

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.weight = nn.Linear(hidden, dim)
        self.bias = nn.Linear(hidden, 1)
        nn.init.normal_(self.weight.weight, std=0.1 / hidden**0.5)
        nn.init.zeros_(self.weight.bias)

    def forward(
        self, embeddings: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, way: int
    ) -> torch.Tensor:
        means = class_means(embeddings, labels, way)
        hidden = self.trunk(means)
        weights = means + self.weight(hidden)
        bias = self.bias(hidden).squeeze(1) - 0.5 * means.pow(2).sum(1)
        return queries @ weights.T + bias
