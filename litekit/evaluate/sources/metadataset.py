"""Source ``metadataset``: Meta-Dataset's test tasks, per source.

    python -m litekit.evaluate metadataset --checkpoint runs/md.pt --root data/meta-dataset \\
        --sources omniglot,aircraft --tasks 600 --out runs/md-test.json

For each source named in ``--sources`` (folders under ``--root`` holding a converted
source: `litekit.data.MetaDatasetSource`), ``--tasks`` episodes of its ``--split`` (TEST by
default) drawn by Meta-Dataset's sampler (`litekit.md_episodes.MetaDatasetEpisodeSampler`;
Omniglot's alphabets one per task), read at the checkpoint's image size and normalisation.
Each task's record holds its source, number, way, support and query sizes and query
accuracy; the aggregate per source is the mean accuracy with the 95% interval
1.96 · s / √n, s the sample standard deviation (ddof = 1) over its n tasks. Every source is
opened and checked (its spec, every record file's CRCs and records) before any task is
scored.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from litekit._cli_types import TWO_CLASSES, _choice, _folder, _integer
from litekit.data.md_spec import SPLITS
from litekit.data.metadataset import MetaDatasetSource
from litekit.episodes import episode_loader
from litekit.evaluate.model import Model
from litekit.evaluate.sources import Run, Scored
from litekit.lite import Lite
from litekit.md_episodes import TEST_TASKS_PER_SOURCE, MetaDatasetEpisodeSampler
from litekit.train.evaluation import INTERVAL_NOTE, confidence_interval, evaluate
from litekit.train.metadataset import model_normalization, open_sources, sources_option

HELP = "Meta-Dataset's test tasks per source (--root, --sources)"


def add_options(group: Any) -> None:
    group.add_argument(
        "--root", type=_folder("--root"), required=True,
        help="the folder holding one converted Meta-Dataset source per folder",
    )  # fmt: skip
    group.add_argument(
        "--sources", type=sources_option("--sources"), required=True,
        help="comma-separated source folders under --root, e.g. omniglot,aircraft",
    )  # fmt: skip
    group.add_argument("--split", type=_choice("--split", SPLITS), default="TEST",
                       help="the sources' split to draw tasks from")  # fmt: skip
    group.add_argument(
        "--tasks", type=_integer("--tasks", 1), default=TEST_TASKS_PER_SOURCE,
        help="tasks per source (600 in the LITE paper)",
    )  # fmt: skip
    group.add_argument("--min-way", type=_integer("--min-way", 2, TWO_CLASSES), default=5,
                       help="fewest classes in a task")  # fmt: skip
    group.add_argument("--max-way", type=_integer("--max-way", 2, TWO_CLASSES), default=50,
                       help="most classes in a task")  # fmt: skip
    group.add_argument("--max-query", type=_integer("--max-query", 1), default=10,
                       help="most query images per class")  # fmt: skip
    group.add_argument("--max-support", type=_integer("--max-support", 1), default=500,
                       help="most support images in a task")  # fmt: skip
    group.add_argument(
        "--verify-images", action="store_true",
        help="decode every image once while the record files are indexed",
    )  # fmt: skip


@dataclass
class Prepared:
    sources: list[MetaDatasetSource]
    samplers: list[MetaDatasetEpisodeSampler]


def prepare(args: argparse.Namespace, model: Model) -> Prepared:
    """Every source opened and checked at the checkpoint's image size and normalisation,
    and a sampler per source (errors name the option, folder or file)."""
    sources = open_sources(
        args.root, args.sources, args.split, model.record["image_size"],
        normalization=model_normalization(model.normalization), verify=args.verify_images,
        argument="--sources",
    )  # fmt: skip
    options = {
        "min_way": args.min_way, "max_way": args.max_way, "max_query": args.max_query,
        "max_support": args.max_support,
    }  # fmt: skip
    samplers = [MetaDatasetEpisodeSampler(s, args.tasks, args.seed, **options) for s in sources]
    return Prepared(sources, samplers)


def score(prepared: Prepared, learner: Any, run: Run) -> Scored:
    """Query accuracy on each task of each source; per source, the mean and its interval."""
    lite = Lite(0, chunk_size=run.compute.chunk_size)
    layout = {"precision": run.compute.precision, "channels_last": run.compute.channels_last}
    records, aggregates, rows = [], {}, []
    for source, sampler in zip(prepared.sources, prepared.samplers, strict=True):
        loader = episode_loader(source, sampler, num_workers=run.workers)
        accuracies = []
        for k, episode in enumerate(loader):
            accuracy = evaluate(learner, [episode], lite, **layout).accuracies[0]
            accuracies.append(accuracy)
            records.append(
                {"source": source.name, "task": k, "way": episode.way,
                 "support": episode.n_support, "query": episode.n_query,
                 "classes": [int(c) for c in episode.class_ids], "accuracy": accuracy}
            )  # fmt: skip
        mean, ci95 = confidence_interval(accuracies)
        aggregates[source.name] = {"mean": mean, "ci95": ci95, "n": len(accuracies)}
        rows.append(
            {"source": source.name, "accuracy (%) ± 95% interval":
             f"{100 * mean:.2f} ± {100 * ci95:.2f}", "tasks": str(len(accuracies))}
        )  # fmt: skip
    summary = {
        "sources": [s.describe() for s in prepared.sources],
        "tasks_per_source": len(records) // max(len(prepared.sources), 1),
        "notes": [INTERVAL_NOTE],
    }
    return Scored(aggregates, rows, summary, {"tasks": records})
