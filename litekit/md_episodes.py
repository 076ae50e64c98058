"""Meta-Dataset's episode sampler, exactly, and episodes drawn from several sources.

`MetaDatasetEpisodeSampler` follows the procedure of Meta-Dataset's ``sampling.py``
(Triantafillou et al., 2020), which the LITE paper meta-trains and tests with. For an
episode, with n_c the number of images of class c:

1. **way** ~ Uniform{min_way, ..., min(max_way, C)}, C the classes to draw from; the classes
   are drawn uniformly without replacement. With a bi-level spec (Omniglot) a superclass
   (alphabet) is drawn uniformly first, and C is its number of classes.
2. **query per class** q = min(max_query, min_c ⌊n_c / 2⌋), the same for every class.
3. **support size** S = min(max_support, Σ_c ⌊β · min(max_support_per_class, r_c)⌋ + 1 summed
   per class), with r_c = n_c − q the images class c has left and β ~ Uniform(0, 1) drawn
   once per episode. (Meta-Dataset writes ⌊β·x + 1⌋, the same number.)
4. **support per class** k_c = min(r_c, ⌊p_c · (S − way)⌋ + 1), with
   p_c ∝ n_c · exp(u_c), u_c ~ Uniform(min_log_weight, max_log_weight) = (log ½, log 2).

Defaults are Meta-Dataset's (and the LITE code's): min_way 5, max_way 50, max_query 10,
max_support 500, max_support_per_class 100. Images are then drawn uniformly without
replacement within each class: Meta-Dataset approximates that with a shuffle buffer per
class; here it is exact.

`litekit.VariableEpisodeSampler` draws the same distribution from labels alone (it writes
step 3 as a ceiling, equal except on a set of probability zero) but has no bi-level step;
this sampler also exposes each episode's random draws (`describe`), so the tests check
every step above against the formula, episode by episode.

Meta-Dataset can also sample ImageNet's classes along the WordNet graph; the LITE code turns
that off for training, and litekit does not implement it (ImageNet's classes are drawn
uniformly).

`MultiSourceSampler` draws each episode from one source, chosen uniformly (as Meta-Dataset's
``sample_from_datasets`` over its sources), over the concatenation of the sources
(`concat_sources`). Episode k is a function of ``(seed, k)`` alone, for both samplers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset

from litekit._checks import bad_argument, check_int
from litekit.episodes import (
    EpisodeIndices,
    Sampler,
    _build_episode,
    _class_table,
    labels_of,
    set_variable_constants,
)
from litekit.seeding import numpy_generator

#: The eight sources the LITE paper meta-trains on (Meta-Dataset's folder names).
TRAINING_SOURCES = (
    "ilsvrc_2012",
    "omniglot",
    "aircraft",
    "cu_birds",
    "dtd",
    "quickdraw",
    "fungi",
    "mnist",
)
#: Test tasks per source in the paper's protocol.
TEST_TASKS_PER_SOURCE = 600


@dataclass(frozen=True)
class EpisodeDescription:
    """One episode's composition and the random draws that made it.

    ``classes`` are positions in the sampler's class table (``class_ids[classes]`` are the
    labels); ``shots[j]`` support and ``query`` query images of class ``classes[j]``;
    ``beta`` and ``log_weights`` are the draws of steps 3 and 4; ``superclass`` is the
    superclass's position (bi-level only); ``source`` the source's position (multi-source).
    """

    classes: np.ndarray
    shots: np.ndarray
    query: int
    beta: float
    log_weights: np.ndarray
    superclass: int | None = None
    source: int = 0

    @property
    def way(self) -> int:
        return len(self.classes)

    @property
    def support_size(self) -> int:
        return int(self.shots.sum())


class MetaDatasetEpisodeSampler(Sampler):
    """Meta-Dataset's variable-way, variable-shot episodes (see the module's steps 1-4).

    Args:
        labels: class label of every item, or a dataset with ``.targets`` (a
            `litekit.data.MetaDatasetSource`).
        episodes: how many episodes one pass yields.
        seed: episode k depends only on ``(seed, k)``.
        superclasses: groups of class labels to draw one from per episode (bi-level); by
            default a dataset's ``.superclasses`` when ``bilevel`` is True.
        bilevel: use the dataset's superclasses when it has them (Omniglot).

    ``min_way``, ``max_way``, ``max_query``, ``max_support``, ``max_support_per_class``,
    ``min_log_weight`` and ``max_log_weight`` are the procedure's constants (defaults:
    Meta-Dataset's).
    """

    def __init__(
        self,
        labels: Any,
        episodes: int,
        seed: int = 0,
        *,
        superclasses: Sequence[Sequence[int]] | None = None,
        bilevel: bool = True,
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
        if superclasses is None and bilevel:
            superclasses = getattr(labels, "superclasses", None)
        self.class_ids, self._members = _class_table(labels_of(labels))
        self.sizes = np.array([len(m) for m in self._members], dtype=np.int64)
        small = self.class_ids[self.sizes < 2]
        if len(small):
            raise bad_argument(
                "labels",
                f"classes {small[:5].tolist()} with {int(self.sizes.min())} item",
                "every class needs 2 items (a support and a query image); remove such classes.",
            )
        self.superclasses = None if superclasses is None else self._groups(superclasses)
        if self.superclasses is None and len(self.class_ids) < self.min_way:
            raise bad_argument(
                "min_way",
                min_way,
                f"the labels hold only {len(self.class_ids)} classes; lower min_way or add "
                "classes.",
            )

    def _groups(self, superclasses: Sequence[Sequence[int]]) -> list[np.ndarray]:
        position = {int(c): i for i, c in enumerate(self.class_ids)}
        groups = []
        for number, group in enumerate(superclasses):
            unknown = [int(c) for c in group if int(c) not in position]
            if unknown:
                raise bad_argument(
                    "superclasses",
                    f"superclass {number} with classes {unknown[:5]}",
                    "name only classes that the labels hold.",
                )
            if len(group) < self.min_way:
                raise bad_argument(
                    "superclasses",
                    f"superclass {number} of {len(group)} classes",
                    f"every superclass needs min_way={self.min_way} classes (Meta-Dataset's "
                    "rule); lower min_way, or pass bilevel=False.",
                )
            groups.append(np.array([position[int(c)] for c in group], dtype=np.int64))
        if not groups:
            raise bad_argument("superclasses", [], "pass at least one superclass, or None.")
        return groups

    # --- the procedure ----------------------------------------------------------------------

    def describe_with(self, rng: np.random.Generator, source: int = 0) -> EpisodeDescription:
        """Steps 1-4 with the random stream ``rng``."""
        superclass = None
        pool = np.arange(len(self.class_ids))
        if self.superclasses is not None:
            superclass = int(rng.integers(len(self.superclasses)))
            pool = self.superclasses[superclass]
        way = int(rng.integers(self.min_way, min(self.max_way, len(pool)) + 1))
        classes = rng.choice(pool, size=way, replace=False)
        sizes = self.sizes[classes]
        query = min(self.max_query, int((sizes // 2).min()))
        remaining = sizes - query
        beta = float(rng.uniform())
        contributions = np.minimum(self.max_support_per_class, remaining)
        support = min(self.max_support, int(np.floor(beta * contributions + 1).sum()))
        log_weights = rng.uniform(self.min_log_weight, self.max_log_weight, size=way)
        weights = sizes * np.exp(log_weights)
        desired = np.floor(weights / weights.sum() * (support - way)).astype(np.int64) + 1
        shots = np.minimum(desired, remaining)
        return EpisodeDescription(classes, shots, query, beta, log_weights, superclass, source)

    def describe(self, index: int) -> EpisodeDescription:
        """The composition of episode ``index`` (the draws `episode` makes first)."""
        return self.describe_with(numpy_generator(self.seed, index))

    def indices_for(
        self, rng: np.random.Generator, description: EpisodeDescription
    ) -> EpisodeIndices:
        """Draw the items of an episode: uniformly without replacement in each class."""
        queries = np.full(description.way, description.query)
        return _build_episode(
            rng, self.class_ids, self._members, description.classes, description.shots, queries
        )

    def episode(self, index: int) -> EpisodeIndices:
        """The indices of episode ``index`` (a pure function of ``(seed, index)``)."""
        rng = numpy_generator(self.seed, index)
        return self.indices_for(rng, self.describe_with(rng))


def concat_sources(sources: Sequence[Any]) -> ConcatDataset:
    """One dataset of several sources, in order: item ``offset[s] + i`` is source s's item i
    (the indices `MultiSourceSampler` gives)."""
    return ConcatDataset(list(sources))


class MultiSourceSampler(Sampler):
    """Each episode from one source, chosen uniformly; indices into `concat_sources(sources)`.

    Args:
        sources: datasets with ``.targets`` (and ``.superclasses`` for bi-level sampling),
            e.g. `litekit.data.MetaDatasetSource` for each of `TRAINING_SOURCES`.
        episodes: how many episodes one pass yields.
        seed: episode k depends only on ``(seed, k)``.
        **options: `MetaDatasetEpisodeSampler`'s constants and ``bilevel``.

    ``class_ids`` of an episode are the sources' own labels; ``source_of(k)`` says which
    source episode k came from.
    """

    def __init__(self, sources: Sequence[Any], episodes: int, seed: int = 0, **options: Any):
        if len(sources) == 0:
            raise bad_argument("sources", [], "pass at least one source.")
        self.episodes = check_int("episodes", episodes, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        self.samplers = [MetaDatasetEpisodeSampler(s, 1, 0, **options) for s in sources]
        self.offsets = np.cumsum([0, *(len(s) for s in sources)])[:-1]
        self.names = [str(getattr(s, "name", i)) for i, s in enumerate(sources)]

    def describe(self, index: int) -> EpisodeDescription:
        """The source and composition of episode ``index``."""
        rng = numpy_generator(self.seed, index)
        source = int(rng.integers(len(self.samplers)))
        return self.samplers[source].describe_with(rng, source)

    def source_of(self, index: int) -> str:
        """The name of the source episode ``index`` is drawn from."""
        return self.names[self.describe(index).source]

    def episode(self, index: int) -> EpisodeIndices:
        rng = numpy_generator(self.seed, index)
        source = int(rng.integers(len(self.samplers)))
        sampler = self.samplers[source]
        found = sampler.indices_for(rng, sampler.describe_with(rng, source))
        offset = self.offsets[source]
        return EpisodeIndices(
            support_indices=found.support_indices + offset,
            support_labels=found.support_labels,
            query_indices=found.query_indices + offset,
            query_labels=found.query_labels,
            class_ids=found.class_ids,
        )
