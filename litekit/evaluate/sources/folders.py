"""Source ``folders``: episodes from a class-per-folder dataset.

    python -m litekit.evaluate folders --checkpoint runs/b0.pt --data data/mini-imagenet/test \\
        --way 5 --shot 5 --query 15 --episodes 600 --out runs/b0-test.json

Tasks are ``--episodes`` episodes of a sampler seeded by ``--seed`` (fixed way/shot/query, or
Meta-Dataset-style with ``--variable``), from the folder's images at the checkpoint's image
size and normalisation. Each task's record holds its number, way, support and query sizes,
class folder names and query accuracy; the aggregate is the mean accuracy with the 95%
interval 1.96 · s / √n, s the sample standard deviation (ddof = 1) over the n tasks, as
`litekit.train.evaluate` computes it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from litekit._cli_types import TWO_CLASSES, _folder, _integer
from litekit.data import ImageFolderDataset
from litekit.episodes import EpisodeSampler, VariableEpisodeSampler, episode_loader, labels_of
from litekit.evaluate.model import Model
from litekit.evaluate.sources import Run, Scored
from litekit.lite import Lite
from litekit.train._cli_build import _check_folder_tasks
from litekit.train.evaluation import INTERVAL_NOTE, confidence_interval, evaluate

HELP = "episodes from a class-per-folder dataset (--data)"


def add_options(group: Any) -> None:
    integer = _integer
    group.add_argument(
        "--data", type=_folder("--data"), required=True, help="class-per-folder images"
    )
    group.add_argument(
        "--class-depth", type=integer("--class-depth", 1), default=1,
        help="folder levels from --data down to a class",
    )  # fmt: skip
    group.add_argument(
        "--skip-small-classes", action="store_true",
        help="leave out classes with fewer than shot + query images",
    )  # fmt: skip
    group.add_argument("--way", type=integer("--way", 2, TWO_CLASSES), default=5,
                       help="classes per task")  # fmt: skip
    group.add_argument("--shot", type=integer("--shot", 1), default=5,
                       help="support images per class")  # fmt: skip
    group.add_argument("--query", type=integer("--query", 1), default=15,
                       help="query images per class")  # fmt: skip
    group.add_argument(
        "--variable", action="store_true", help="Meta-Dataset-style tasks of varying way/shot"
    )
    group.add_argument("--min-way", type=integer("--min-way", 2, TWO_CLASSES), default=5,
                       help="with --variable")  # fmt: skip
    group.add_argument("--max-way", type=integer("--max-way", 2, TWO_CLASSES), default=50,
                       help="with --variable")  # fmt: skip
    group.add_argument("--max-query", type=integer("--max-query", 1), default=10,
                       help="with --variable, per class")  # fmt: skip
    group.add_argument("--max-support", type=integer("--max-support", 1), default=500,
                       help="with --variable")  # fmt: skip
    group.add_argument(
        "--episodes", type=integer("--episodes", 1), default=600, help="tasks to score"
    )


@dataclass
class Prepared:
    dataset: ImageFolderDataset
    sampler: Any


def prepare(args: argparse.Namespace, model: Model) -> Prepared:
    """The folder read at the checkpoint's image size and normalisation, and a sampler
    that can make the asked tasks (checked, naming the option to change)."""
    dataset = ImageFolderDataset(
        args.data,
        model.record["image_size"],
        class_depth=args.class_depth,
        argument="--data",
        normalization=model.normalization,
    )
    _check_folder_tasks("--data", args.data, labels_of(dataset), args)
    if args.variable:
        sampler = VariableEpisodeSampler(
            dataset, args.episodes, args.seed, min_way=args.min_way, max_way=args.max_way,
            max_query=args.max_query, max_support=args.max_support,
        )  # fmt: skip
    else:
        sampler = EpisodeSampler(
            dataset, args.way, args.shot, args.query, args.episodes, args.seed,
            skip_small_classes=args.skip_small_classes,
        )  # fmt: skip
    return Prepared(dataset, sampler)


def score(prepared: Prepared, learner: Any, run: Run) -> Scored:
    """Query accuracy on each task, the mean and its interval."""
    lite = Lite(0, chunk_size=run.compute.chunk_size)
    layout = {"precision": run.compute.precision, "channels_last": run.compute.channels_last}
    records = []
    loader = episode_loader(prepared.dataset, prepared.sampler, num_workers=run.workers)
    for k, episode in enumerate(loader):
        accuracy = evaluate(learner, [episode], lite, **layout).accuracies[0]
        records.append(
            {
                "task": k,
                "way": episode.way,
                "support": episode.n_support,
                "query": episode.n_query,
                "classes": [prepared.dataset.classes[int(c)] for c in episode.class_ids],
                "accuracy": accuracy,
            }
        )
    mean, ci95 = confidence_interval([r["accuracy"] for r in records])
    aggregates = {"accuracy": {"mean": mean, "ci95": ci95, "n": len(records)}}
    row = {"metric": "accuracy", "mean ± 95% interval": f"{100 * mean:.2f} ± {100 * ci95:.2f}"}
    row["tasks"] = str(len(records))
    return Scored(
        aggregates, [row], {"tasks": len(records), "notes": [INTERVAL_NOTE]}, {"tasks": records}
    )
