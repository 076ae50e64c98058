"""Episodes (few-shot tasks) and the samplers that draw them.

An episode is one classification task: a support set of N labelled images that the learner
adapts to, and a query set it is scored on. Samplers work on labels alone and never load an
image; `episode_loader` turns their index lists into `Episode` tensors.

Invariants every sampler keeps (and the tests check):

- episode ``k`` depends only on ``(seed, k)``, so the same seed gives the same episodes in any
  order, in any worker process, with any number of workers;
- support and query indices are disjoint, and every index belongs to one of ``class_ids``;
- episode labels are ``0..way-1``; label ``j`` means original class ``class_ids[j]``, and the
  assignment is a fresh random permutation in every episode;
- every class in an episode has at least one support and one query image.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from litekit._checks import as_label_array, bad_argument, check_int
from litekit._deprecated import renamed_keywords, warn_deprecated
from litekit.learners.checks import check_task_tensors
from litekit.seeding import numpy_generator


@dataclass
class Episode:
    """One few-shot task: support and query images with episode labels ``0..way-1``.

    ``class_ids[j]`` is the dataset's original class id for episode label ``j``.
    """

    support_images: torch.Tensor
    support_labels: torch.Tensor
    query_images: torch.Tensor
    query_labels: torch.Tensor
    class_ids: torch.Tensor

    def __post_init__(self) -> None:
        check_task_tensors(self.support_images, self.support_labels, self.query_images)
        if self.query_labels.shape != (self.query_images.shape[0],):
            raise bad_argument(
                "query_labels",
                tuple(self.query_labels.shape),
                f"pass one label per query image, shape ({self.query_images.shape[0]},).",
            )

    @property
    def way(self) -> int:
        """Number of classes in the task."""
        return int(self.class_ids.numel())

    @property
    def n_support(self) -> int:
        """Support-set size N (the paper's N, the number of images LITE samples from)."""
        return int(self.support_images.shape[0])

    @property
    def n_query(self) -> int:
        """Number of query images."""
        return int(self.query_images.shape[0])

    def pin_memory(self) -> Episode:
        """Return a copy in page-locked memory (DataLoader's ``pin_memory=True`` calls this)."""
        return Episode(*(t.pin_memory() for t in self._tensors()))

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return (
            self.support_images,
            self.support_labels,
            self.query_images,
            self.query_labels,
            self.class_ids,
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Episode:
        """Return a copy with every tensor on ``device``."""
        return Episode(*(t.to(device, non_blocking=non_blocking) for t in self._tensors()))


@dataclass(frozen=True)
class EpisodeIndices:
    """Which dataset items make up one episode, before any image is loaded: the items'
    indices in the dataset and their episode labels, for the support and the query set."""

    support_indices: np.ndarray
    support_labels: np.ndarray
    query_indices: np.ndarray
    query_labels: np.ndarray
    class_ids: np.ndarray

    @property
    def support(self) -> np.ndarray:
        """Deprecated name of ``support_indices``."""
        warn_deprecated("EpisodeIndices.support", "use EpisodeIndices.support_indices")
        return self.support_indices

    @property
    def query(self) -> np.ndarray:
        """Deprecated name of ``query_indices``."""
        warn_deprecated("EpisodeIndices.query", "use EpisodeIndices.query_indices")
        return self.query_indices


def labels_of(source: Any) -> np.ndarray:
    """Class labels of a dataset without loading its images.

    ``source`` is a sequence of ints, or a dataset with ``.targets`` (torchvision's
    ``ImageFolder``, CIFAR, MNIST) or ``.labels``.
    """
    for attribute in ("targets", "labels"):
        if hasattr(source, attribute) and not isinstance(source, np.ndarray | torch.Tensor):
            return as_label_array(f"labels (from .{attribute})", getattr(source, attribute))
    if isinstance(source, Dataset) and not isinstance(source, Sequence):
        raise bad_argument(
            "labels",
            type(source).__name__,
            "pass a sequence of ints or a dataset with a .targets or .labels attribute.",
        )
    return as_label_array("labels", source)


_AT_LEAST_TWO_CLASSES = "a task tells classes apart, so it needs at least 2; pass an integer >= 2."


def _check_class_count(classes: np.ndarray) -> None:
    """A task needs two classes; labels of one class can make none (whatever ``way`` is)."""
    if len(classes) < 2:
        raise bad_argument(
            "labels",
            f"all of class {int(classes[0])}",
            "a task needs at least 2 classes and these labels hold 1; add items of other classes.",
        )


def _class_table(labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    classes, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    return classes, members


def _build_episode(
    rng: np.random.Generator,
    classes: np.ndarray,
    members: list[np.ndarray],
    chosen: np.ndarray,
    shot_counts: np.ndarray,
    query_counts: np.ndarray,
) -> EpisodeIndices:
    """Draw ``shot_counts[j]`` support and ``query_counts[j]`` query items of class
    ``chosen[j]``."""
    support, support_labels, query, query_labels = [], [], [], []
    counts = zip(chosen, shot_counts, query_counts, strict=True)
    for label, (position, shots, queries) in enumerate(counts):
        picked = rng.choice(members[position], size=int(shots + queries), replace=False)
        support.append(picked[:shots])
        query.append(picked[shots:])
        support_labels.append(np.full(shots, label))
        query_labels.append(np.full(queries, label))
    support_order = rng.permutation(int(np.sum(shot_counts)))
    query_order = rng.permutation(int(np.sum(query_counts)))
    return EpisodeIndices(
        support_indices=np.concatenate(support)[support_order],
        support_labels=np.concatenate(support_labels)[support_order].astype(np.int64),
        query_indices=np.concatenate(query)[query_order],
        query_labels=np.concatenate(query_labels)[query_order].astype(np.int64),
        class_ids=classes[chosen].astype(np.int64),
    )


class Sampler(ABC):
    """What every episode sampler is: a fixed number of episodes, each a pure function of
    (seed, k). `EpisodeSampler`, `VariableEpisodeSampler` and ORBIT's
    `litekit.data.OrbitTaskSampler` are samplers; `episode_loader` takes any of them."""

    episodes: int
    seed: int

    def __len__(self) -> int:
        return self.episodes

    def __iter__(self) -> Iterator[EpisodeIndices]:
        for index in range(self.episodes):
            yield self.episode(index)

    @abstractmethod
    def episode(self, index: int) -> EpisodeIndices:
        """The indices of episode ``index``: a pure function of ``(seed, index)``."""


class EpisodeSampler(Sampler):
    """Fixed way, shot and query size: the classic N-way K-shot task.

    Args:
        labels: class label of every dataset item, or a dataset with ``.targets``/``.labels``.
        way: classes per episode (at least 2).
        shot: support images per class (the support set has N = way * shot images).
        query_per_class: query images per class (its old name ``query=`` still works, with
            a warning).
        episodes: how many episodes one pass yields.
        seed: episode ``k`` is a function of ``(seed, k)`` only.
        skip_small_classes: classes with fewer than ``shot + query_per_class`` items are an
            error by default; set True to leave them out instead.
    """

    @renamed_keywords(query="query_per_class")
    def __init__(
        self,
        labels: Any,
        way: int,
        shot: int,
        query_per_class: int,
        episodes: int,
        seed: int = 0,
        *,
        skip_small_classes: bool = False,
    ) -> None:
        self.way = check_int("way", way, minimum=2, fix=_AT_LEAST_TWO_CLASSES)
        self.shot = check_int("shot", shot, minimum=1)
        self.query_per_class = check_int("query_per_class", query_per_class, minimum=1)
        self.episodes = check_int("episodes", episodes, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        classes, members = _class_table(labels_of(labels))
        _check_class_count(classes)
        if way > len(classes):
            raise bad_argument(
                "way",
                way,
                f"the labels hold only {len(classes)} classes; use way <= {len(classes)}, or add "
                "classes.",
            )
        sizes = np.array([len(m) for m in members])
        need = self.shot + self.query_per_class
        eligible = np.flatnonzero(sizes >= need)
        if len(eligible) < len(classes) and not skip_small_classes:
            small = classes[sizes < need][:5].tolist()
            raise bad_argument(
                "shot + query_per_class",
                need,
                f"classes {small} have only {int(sizes.min())} item(s); lower shot or "
                "query_per_class, "
                "or pass skip_small_classes=True to leave such classes out.",
            )
        if len(eligible) < self.way:
            raise bad_argument(
                "way",
                way,
                f"only {len(eligible)} classes have shot + query_per_class = {need} items; "
                "lower way, shot or query_per_class.",
            )
        self._classes, self._members, self._eligible = classes, members, eligible

    def episode(self, index: int) -> EpisodeIndices:
        """The indices of episode ``index`` (a pure function of ``(seed, index)``)."""
        rng = numpy_generator(self.seed, index)
        chosen = rng.choice(self._eligible, size=self.way, replace=False)
        shot_counts = np.full(self.way, self.shot)
        query_counts = np.full(self.way, self.query_per_class)
        return _build_episode(rng, self._classes, self._members, chosen, shot_counts, query_counts)

    @property
    def query(self) -> int:
        """Deprecated name of ``query_per_class``."""
        warn_deprecated("EpisodeSampler.query", "use EpisodeSampler.query_per_class")
        return self.query_per_class


def set_variable_constants(
    sampler: Sampler,
    *,
    min_way: int,
    max_way: int,
    max_query: int,
    max_support: int,
    max_support_per_class: int,
    min_log_weight: float,
    max_log_weight: float,
) -> None:
    """Check the constants of Meta-Dataset's variable way and shot, and set them on ``sampler``
    (`VariableEpisodeSampler` and `litekit.md_episodes.MetaDatasetEpisodeSampler` share them).

    Invariants after the call: 2 <= min_way <= max_way <= max_support (every class gets at
    least one shot), max_query >= 1, max_support_per_class >= 1, and min_log_weight <=
    max_log_weight (the range of a class's log importance weight).
    """
    sampler.min_way = check_int("min_way", min_way, minimum=2, fix=_AT_LEAST_TWO_CLASSES)
    sampler.max_way = check_int(
        "max_way", max_way, minimum=sampler.min_way, fix=f"pass max_way >= min_way={min_way}."
    )
    sampler.max_query = check_int("max_query", max_query, minimum=1)
    sampler.max_support = check_int(
        "max_support",
        max_support,
        minimum=sampler.max_way,
        fix=f"every class needs one shot; pass max_support >= max_way={max_way}.",
    )
    sampler.max_support_per_class = check_int(
        "max_support_per_class", max_support_per_class, minimum=1
    )
    if not min_log_weight <= max_log_weight:
        raise bad_argument(
            "min_log_weight", min_log_weight, f"must be <= max_log_weight={max_log_weight}."
        )
    sampler.min_log_weight, sampler.max_log_weight = float(min_log_weight), float(max_log_weight)


class VariableEpisodeSampler(Sampler):
    """Meta-Dataset-style tasks of varying way and shot, including large, imbalanced ones.

    Per episode (Triantafillou et al., 2020, the procedure the LITE paper trains with):

    1. way ~ Uniform{min_way, ..., min(max_way, number of usable classes)};
    2. query per class q = min(max_query, floor(min class size / 2));
    3. total support size S = min(max_support, Σ_k ceil(β · min(max_support_per_class,
       n_k - q))) with β ~ Uniform(0, 1), n_k the size of class k, and at least one image
       per class;
    4. shares: r_k = exp(Uniform(min_log_weight, max_log_weight)) jitters class size, and
       class k gets 1 + floor(r_k n_k / Σ_j r_j n_j · (S - way)) images, capped at what
       class k has left after its query images.

    Invariants: way within its bounds; 1 <= q <= max_query; every class has >= 1 shot;
    N = Σ shots <= max_support.

    This is Meta-Dataset's distribution (step 3's ceiling equals its ⌊β·x⌋ + 1 but on a
    set of probability zero; the tests compare the two samplers' support sizes). For
    Meta-Dataset's sampler itself, with its bi-level (Omniglot) step, each episode's draws
    exposed, and several sources at once, see `litekit.md_episodes`.
    """

    def __init__(
        self,
        labels: Any,
        episodes: int,
        seed: int = 0,
        *,
        min_way: int = 5,
        max_way: int = 50,
        max_query: int = 10,
        max_support: int = 500,
        max_support_per_class: int = 100,
        min_log_weight: float = math.log(0.5),
        max_log_weight: float = math.log(2.0),
    ) -> None:
        self.episodes = check_int("episodes", episodes, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        set_variable_constants(
            self,
            min_way=min_way,
            max_way=max_way,
            max_query=max_query,
            max_support=max_support,
            max_support_per_class=max_support_per_class,
            min_log_weight=min_log_weight,
            max_log_weight=max_log_weight,
        )
        classes, members = _class_table(labels_of(labels))
        _check_class_count(classes)
        sizes = np.array([len(m) for m in members])
        eligible = np.flatnonzero(sizes >= 2)
        if len(eligible) < self.min_way:
            raise bad_argument(
                "min_way",
                min_way,
                f"only {len(eligible)} classes have the 2 items a task needs (one support, one "
                "query); lower min_way or add data.",
            )
        self._classes, self._members, self._sizes, self._eligible = (
            classes,
            members,
            sizes,
            eligible,
        )

    def episode(self, index: int) -> EpisodeIndices:
        """The indices of episode ``index`` (a pure function of ``(seed, index)``)."""
        rng = numpy_generator(self.seed, index)
        top = min(self.max_way, len(self._eligible))
        way = int(rng.integers(self.min_way, top + 1))
        chosen = rng.choice(self._eligible, size=way, replace=False)
        sizes = self._sizes[chosen]
        query_per_class = min(self.max_query, int(sizes.min()) // 2)
        remaining = sizes - query_per_class
        beta = rng.uniform()
        contributions = np.minimum(self.max_support_per_class, remaining)
        total = min(self.max_support, int(np.ceil(beta * contributions).sum()))
        total = max(total, way)
        weights = np.exp(rng.uniform(self.min_log_weight, self.max_log_weight, size=way)) * sizes
        shares = np.floor(weights / weights.sum() * (total - way)).astype(np.int64) + 1
        shot_counts = np.minimum(shares, remaining)
        query_counts = np.full(way, query_per_class)
        return _build_episode(rng, self._classes, self._members, chosen, shot_counts, query_counts)


def _load(dataset: Any, index: int) -> torch.Tensor:
    item = dataset[int(index)]
    image = item[0] if isinstance(item, tuple | list) else item
    if not isinstance(image, torch.Tensor):
        raise bad_argument(
            "dataset",
            type(image).__name__,
            f"dataset[{int(index)}] gave a {type(image).__name__}, not a tensor; add "
            "transform=torchvision.transforms.ToTensor() (or v2.ToImage + ToDtype).",
        )
    return image


class EpisodeDataset(Dataset):
    """Map-style view of a sampler: item ``k`` is episode ``k`` with its images loaded.

    Picklable, so a DataLoader can hand it to worker processes; each worker builds whole
    episodes, and episode ``k`` is the same whichever worker builds it.
    """

    def __init__(self, dataset: Any, sampler: Sampler) -> None:
        self.dataset = dataset
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, index: int) -> Episode:
        indices = self.sampler.episode(index)
        support = torch.stack([_load(self.dataset, i) for i in indices.support_indices])
        query = torch.stack([_load(self.dataset, i) for i in indices.query_indices])
        return Episode(
            support_images=support,
            support_labels=torch.from_numpy(indices.support_labels),
            query_images=query,
            query_labels=torch.from_numpy(indices.query_labels),
            class_ids=torch.from_numpy(indices.class_ids),
        )


def _identity(episode: Episode) -> Episode:
    return episode


def episode_loader(
    dataset: Any,
    sampler: Sampler,
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
    episode_ids: Sequence[int] | None = None,
) -> DataLoader:
    """A DataLoader that yields `Episode` objects, one per sampler episode, in order.

    ``dataset[i]`` must return ``(image_tensor, label)`` or an image tensor. Episodes are the
    same for any ``num_workers``, because each one depends only on ``(seed, k)``.
    ``episode_ids`` picks a subset of episode numbers (for sharding over processes).
    """
    check_int("num_workers", num_workers, minimum=0)
    episodes = EpisodeDataset(dataset, sampler)
    # A range, not a list: a sampler may number a practically endless stream of episodes.
    order: Sequence[int] = range(len(episodes)) if episode_ids is None else list(episode_ids)
    if episode_ids is not None:
        for k in order:
            if not 0 <= int(k) < len(episodes):
                raise bad_argument(
                    "episode_ids", k, f"episode numbers run from 0 to {len(episodes) - 1}."
                )
    return DataLoader(
        episodes,
        batch_size=None,
        sampler=order,
        num_workers=num_workers,
        collate_fn=_identity,
        pin_memory=pin_memory,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        persistent_workers=False,
    )


_SamplerBase = Sampler  # its old, private name
