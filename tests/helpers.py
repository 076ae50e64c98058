"""Tiny float64 models and tasks for exact tests."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from litekit import CNAPs, Episode, Lite, ProtoNets, SimpleCNAPs
from litekit.learners import SetEncoder
from litekit.train import accumulate_task_gradient

IMAGE_SHAPE = (3, 6, 6)


def tiny_backbone(seed: int = 0) -> nn.Module:
    """Conv → GroupNorm → ReLU → pool → Linear: every image embedded on its own."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.GroupNorm(2, 4),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def make_learner(kind: str, seed: int = 0) -> nn.Module:
    """A tiny float64 learner of the given kind ('protonets', 'simple_cnaps', 'cnaps')."""
    backbone = tiny_backbone(seed)
    if kind == "protonets":
        learner = ProtoNets(backbone)
    else:
        torch.manual_seed(seed + 1)
        options = dict(set_encoder=SetEncoder(3, dim=4, width=4, depth=2), set_dim=4, film_hidden=5)
        if kind == "simple_cnaps":
            learner = SimpleCNAPs(backbone, **options)
        elif kind == "cnaps":
            learner = CNAPs(backbone, feature_dim=3, classifier_hidden=5, **options)
        else:
            raise ValueError(kind)
        # Make the FiLM modulation strong enough that the set path matters in the tests.
        for head in learner.film.heads:
            nn.init.normal_(head.weight, std=0.5)
    return learner.double()


def make_episode(n_support: int = 6, way: int = 3, n_query: int = 5, seed: int = 0) -> Episode:
    """A random float64 task: support labels cycle through the classes."""
    g = torch.Generator().manual_seed(seed)
    return Episode(
        support_images=torch.randn(n_support, *IMAGE_SHAPE, generator=g, dtype=torch.float64),
        support_labels=torch.arange(n_support) % way,
        query_images=torch.randn(n_query, *IMAGE_SHAPE, generator=g, dtype=torch.float64),
        query_labels=torch.arange(n_query) % way,
        class_ids=torch.arange(way) + 10,
    )


def gradient(
    learner: nn.Module, episode: Episode, lite: Lite | None = None, query_batch: int | None = None
) -> torch.Tensor:
    """The (estimated) task gradient as one flat vector, via the training step's path."""
    learner.zero_grad(set_to_none=True)
    learner.train()
    accumulate_task_gradient(learner, episode, lite, query_batch)
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
            for p in learner.parameters()
        ]
    )


def subsets(n: int, h: int):
    return [list(c) for c in itertools.combinations(range(n), h)]


def relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    return float((estimate - truth).norm() / truth.norm())


def permissions_bind() -> bool:
    """True if this process is refused writing to a read-only (0o555) folder: not so for
    root with its usual capabilities, which tests of read-only folders then skip."""
    import os
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        locked = Path(folder) / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            return not os.access(locked, os.W_OK)
        finally:
            locked.chmod(0o755)
