"""A small seeded learner and task for the diagnostics, the notebooks and the widgets."""

from __future__ import annotations

import numpy as np
import torch

from litekit._checks import check_choice, check_int
from litekit.episodes import Episode
from litekit.learners.base import Learner
from litekit.learners.build import LEARNERS, backbone_from_name, learner_from_name
from litekit.seeding import numpy_generator

#: The set encoder, FiLM and classifier sizes of the small learners: a few thousand weights.
_SMALL_HEADS = dict(set_dim=16, set_width=8, set_depth=3, film_hidden=16, classifier_hidden=16)


def _demo_episode(
    n_support: int, way: int, n_query: int, image_size: int, seed: int, dtype: torch.dtype
) -> Episode:
    """``way`` classes of the embedded procedural dataset, support then query images."""
    from litekit.data import ProceduralImages

    per_class = -(-n_support // way) + -(-n_query // way)
    data = ProceduralImages(
        num_classes=64, images_per_class=max(per_class, 2), image_size=image_size, seed=seed
    )
    rng = numpy_generator(seed, 7)
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

    return Episode(
        support_images=torch.stack([take(int(k)) for k in support_labels]).to(dtype),
        support_labels=torch.as_tensor(support_labels, dtype=torch.long),
        query_images=torch.stack([take(int(k)) for k in query_labels]).to(dtype),
        query_labels=torch.as_tensor(query_labels, dtype=torch.long),
        class_ids=torch.as_tensor(classes, dtype=torch.long),
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
    function of ``seed``; the global torch random state is left untouched. The learner is
    built by `litekit.learners.learner_from_name` around a Conv-4 of ``width`` channels and
    ``depth`` blocks, with small set-encoder, FiLM and classifier sizes; ``norm="batch"``
    swaps the Conv-4's GroupNorm for BatchNorm (to show what batch statistics do).
    """
    check_choice("learner", learner, LEARNERS)
    way = check_int("way", way, minimum=1)
    n_support = check_int(
        "n_support", n_support, minimum=way, fix=f"pass n_support >= way={way} (a shot each)."
    )
    n_query = check_int("n_query", n_query, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    check_choice("norm", norm, ("group", "batch"))
    episode = _demo_episode(n_support, way, n_query, image_size, seed, dtype).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = backbone_from_name("conv4", width=width, depth=depth, norm=norm)
        model = learner_from_name(
            learner, backbone, image_size=image_size, backbone_mode=backbone_mode, **_SMALL_HEADS
        )
    return model.to(device=device, dtype=dtype), episode
