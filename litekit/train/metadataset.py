"""Meta-Dataset's protocol: multi-source training episodes and per-source test tasks.

- `training_episodes`: one `MultiSourceSampler` over the TRAIN split of each named source
  (the LITE paper's eight, `litekit.md_episodes.TRAINING_SOURCES`, by default), with the
  dataset it indexes. Each episode comes from one source chosen uniformly.
- `evaluate_sources`: ``tasks`` test tasks per source (600 in the paper), each a
  Meta-Dataset episode of that source alone, scored by `litekit.train.evaluate`: mean
  accuracy with a 95% interval (1.96 · s / √n) per source.

Every source is opened (its spec read, its record files checked and indexed) before any
episode is drawn, so a missing source or a damaged file is reported before any work.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import Any

from torch.utils.data import ConcatDataset, DataLoader

from litekit._checks import bad_argument, check_int
from litekit.data.md_spec import load_spec
from litekit.data.metadataset import MetaDatasetSource, Normalization, source_folder
from litekit.episodes import episode_loader
from litekit.lite import Lite
from litekit.md_episodes import (
    TEST_TASKS_PER_SOURCE,
    MetaDatasetEpisodeSampler,
    MultiSourceSampler,
    concat_sources,
)
from litekit.train.evaluation import Evaluation, evaluate


def check_source_names(sources: Sequence[str] | str, argument: str = "sources") -> list[str]:
    """Source names from a list or a comma-separated string: at least one, each a folder name
    of letters, digits and ``_`` (as Meta-Dataset's are), none twice."""
    names = [s.strip() for s in sources.split(",")] if isinstance(sources, str) else list(sources)
    if not names or any(not n for n in names):
        raise bad_argument(argument, sources, "name one or more sources, e.g. omniglot,aircraft.")
    odd = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_]+", n)]
    if odd:
        raise bad_argument(
            argument,
            sources,
            f"{odd[:3]} is not a source's folder name (letters, digits and _, as Meta-Dataset "
            "names them: ilsvrc_2012, omniglot, ...); separate names with commas.",
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise bad_argument(argument, sources, f"{repeated} named twice; name each source once.")
    return names


def sources_option(option: str = "--sources"):
    """An argparse ``type``: comma-separated source names, checked by `check_source_names`
    (whether each is under the root is checked when the sources are opened)."""

    def convert(text: str) -> list[str]:
        try:
            return check_source_names(text, option)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def model_normalization(
    normalization: tuple[Sequence[float], Sequence[float]] | None,
) -> str | tuple[Sequence[float], Sequence[float]]:
    """The normalisation a model was trained with, as the readers name it: its (mean, std),
    or ``"none"`` for [0, 1] pixels."""
    return "none" if normalization is None else normalization


def open_sources(
    root: str | os.PathLike,
    sources: Sequence[str] | str,
    split: str,
    image_size: int,
    *,
    normalization: Normalization,
    cache_dir: str | os.PathLike | None = None,
    verify: bool = False,
    argument: str = "sources",
) -> list[MetaDatasetSource]:
    """Every named source's split, opened and checked, in order. Every source's folder and
    spec are checked before any record file is read."""
    names = check_source_names(sources, argument)
    for name in names:
        load_spec(source_folder(root, name, argument), argument)
    return [
        MetaDatasetSource(
            root,
            name,
            split,
            image_size,
            normalization=normalization,
            cache_dir=cache_dir,
            verify=verify,
            argument=argument,
        )
        for name in names
    ]


def training_episodes(
    sources: Sequence[MetaDatasetSource], episodes: int, seed: int = 0, **options: Any
) -> tuple[ConcatDataset, MultiSourceSampler]:
    """(dataset, sampler) of multi-source training episodes, for `litekit.episode_loader`."""
    return concat_sources(sources), MultiSourceSampler(sources, episodes, seed, **options)


def source_tasks(
    source: MetaDatasetSource,
    tasks: int = TEST_TASKS_PER_SOURCE,
    seed: int = 0,
    *,
    num_workers: int = 0,
    **options: Any,
) -> DataLoader:
    """``tasks`` episodes of one source: the same seed gives the same tasks."""
    sampler = MetaDatasetEpisodeSampler(source, tasks, seed, **options)
    return episode_loader(source, sampler, num_workers=num_workers)


def evaluate_sources(
    learner: Any,
    sources: Sequence[MetaDatasetSource],
    tasks: int = TEST_TASKS_PER_SOURCE,
    seed: int = 0,
    *,
    num_workers: int = 0,
    chunk_size: int = 64,
    **options: Any,
) -> dict[str, Evaluation]:
    """Per source: accuracy on ``tasks`` of its episodes, mean and 95% interval."""
    tasks = check_int("tasks", tasks, minimum=1)
    results = {}
    for source in sources:
        loader = source_tasks(source, tasks, seed, num_workers=num_workers, **options)
        results[source.name] = evaluate(learner, loader, Lite(0, chunk_size=chunk_size))
    return results
