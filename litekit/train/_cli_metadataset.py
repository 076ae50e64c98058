"""``python -m litekit.train --metadataset ROOT --sources a,b,...``: Meta-Dataset episodes.

Training tasks come from the TRAIN split of the named sources (by default the LITE
paper's eight, `litekit.md_episodes.TRAINING_SOURCES`), each episode from one source drawn
uniformly (`litekit.md_episodes.MultiSourceSampler`) with Meta-Dataset's sampler and its
constants (way 5 to 50, at most 500 support images, 100 per class in the size rule, 10
queries per class; Omniglot one alphabet per task). Validation tasks
(``--validation-tasks``) are multi-source episodes of the VALID split of those sources
that have at least 5 validation classes (MNIST and ImageNet have none in the LITE paper's
set-up); with none, there is no validation.

Images are decoded as Meta-Dataset decodes them and normalised as ``--md-normalization``
says: ``metadataset`` ([-1, 1], Meta-Dataset's and the LITE code's) by default; with
``--weights``, by default ``weights``: what those weights expect (ImageNet's statistics for
torchvision's, a timm model's own: `litekit.learners.pretrained.normalization`); or
``imagenet``, or ``none`` ([0, 1]). The resolved choice is in the run's summary
(``options``), and the values in the checkpoint's model record, so that ``python -m
litekit.evaluate`` reads images the same way.

Every source is opened before training (its spec, every record file's CRCs and records
checked; errors name the file or ``--sources``), and the record indexes are made then.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from litekit._checks import bad_argument
from litekit.data.metadataset import resolve_normalization
from litekit.episodes import episode_loader
from litekit.learners.pretrained import normalization
from litekit.md_episodes import TRAINING_SOURCES, MultiSourceSampler, concat_sources
from litekit.train.metadataset import open_sources


def check_metadataset_options(args: argparse.Namespace) -> None:
    """``--metadataset`` makes its own tasks: no folder data, no ORBIT, no --variable (its
    tasks already vary as Meta-Dataset's do). Resolves ``--md-normalization``."""
    for option, clash in (("--data", args.data), ("--orbit", args.orbit),
                          ("--variable", args.variable)):  # fmt: skip
        if clash:
            raise bad_argument(
                "--metadataset",
                args.metadataset,
                f"Meta-Dataset's sources make the tasks; pass --metadataset or {option}, not both.",
            )
    if args.sources is None:
        args.sources = list(TRAINING_SOURCES)
    if args.md_normalization is None:
        args.md_normalization = "weights" if args.weights is not None else "metadataset"
    if args.md_normalization == "weights" and args.weights is None:
        raise bad_argument(
            "--md-normalization",
            "weights",
            "normalises as pretrained weights expect; pass --weights too, or name another "
            "normalisation (metadataset, imagenet, none).",
        )


def check_without_metadataset(args: argparse.Namespace) -> None:
    """The Meta-Dataset options mean nothing without ``--metadataset``."""
    given = (("--sources", args.sources), ("--md-normalization", args.md_normalization))
    for option, value in given:
        if value is not None:
            shown = ",".join(value) if isinstance(value, list) else value
            raise bad_argument(option, shown, "pass --metadataset ROOT too (the sources' folder).")


def input_normalization(args: argparse.Namespace):
    """The (mean, std) the images get (for the model record), or None for [0, 1]."""
    if getattr(args, "metadataset", None) is None or args.md_normalization == "none":
        return None
    if args.md_normalization == "weights":
        return normalization(args.weights, args.backbone)
    return resolve_normalization(args.md_normalization)


#: Meta-Dataset's smallest way: a split with fewer classes makes no task.
MIN_WAY = 5


@dataclass
class MetaDatasetData:
    train: Any
    sampler: MultiSourceSampler
    validation: Any


def metadataset_data(args: argparse.Namespace, episodes: int) -> MetaDatasetData:
    """The training sources and their multi-source sampler, and validation episodes."""
    values = input_normalization(args)
    options = {"normalization": "none" if values is None else values, "argument": "--sources"}
    sources = open_sources(args.metadataset, args.sources, "TRAIN", args.image_size, **options)
    for source in sources:
        if len(source.classes) < MIN_WAY:
            raise bad_argument(
                "--sources",
                source.name,
                f"its TRAIN split has {len(source.classes)} classes and Meta-Dataset's tasks "
                f"take at least {MIN_WAY}; leave it out of --sources.",
            )
    validation = None
    if args.validation_tasks > 0:
        names = [s.name for s in sources if len(s.spec.split_classes["VALID"]) >= MIN_WAY]
        if names:
            held_out = open_sources(args.metadataset, names, "VALID", args.image_size, **options)
            validation = episode_loader(
                concat_sources(held_out),
                MultiSourceSampler(held_out, args.validation_tasks, args.seed + 1),
                num_workers=args.workers,
            )
    sampler = MultiSourceSampler(sources, episodes, args.seed)
    return MetaDatasetData(concat_sources(sources), sampler, validation)
