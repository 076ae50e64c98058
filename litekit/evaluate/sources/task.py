"""Source ``task``: one large task (VTAB-1k style), scored by top-1 accuracy.

    python -m litekit.evaluate task --checkpoint runs/md.pt \\
        --support data/vtab/eurosat/train800val200 --query data/vtab/eurosat/test \\
        --out runs/eurosat.json

The support set is the whole ``--support`` folder (class folders of images; at most
``--max-support``, 1000 by default, VTAB-1k's N; ``--first N`` takes the first N images in
file-name order, as the LITE code takes the first 1000 training examples), the query set
the whole ``--query`` folder, whose class folders must be among the support's. Images are
resized to the checkpoint's image size (square, Lanczos) and normalised as it was trained.

The support set is embedded once, without gradient, in chunks of ``--chunk-size``; the
query set is read and scored in batches of ``--query-batch`` (`litekit.train.one_task`),
so memory stays flat in both. ``--finetuner-steps S`` also scores a `FineTuner` (a new
linear head on the checkpoint's backbone, S Adam steps at ``--finetuner-lr``) on the same
task, for comparison. One record per scored learner: accuracy, counts per class, time.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import torch

from litekit._cli_types import _folder, _integer, _positive_number
from litekit.data.task_folder import VTAB_SUPPORT_SIZE, TaskFolder, check_support_classes
from litekit.evaluate.model import Model
from litekit.evaluate.sources import Run, Scored
from litekit.learners.finetuner import FineTuner
from litekit.train.metadataset import model_normalization
from litekit.train.one_task import evaluate_task, load_support

HELP = "one large task: a whole support folder and a whole query folder (--support, --query)"


def add_options(group: Any) -> None:
    group.add_argument("--support", type=_folder("--support"), required=True,
                       help="class folders of the support images")  # fmt: skip
    group.add_argument("--query", type=_folder("--query"), required=True,
                       help="class folders of the query images (the whole test split)")  # fmt: skip
    group.add_argument("--first", type=_integer("--first", 1), default=None,
                       help="take the first N support images in file-name order "
                       "(default: all of them)")  # fmt: skip
    group.add_argument("--max-support", type=_integer("--max-support", 1),
                       default=VTAB_SUPPORT_SIZE,
                       help="refuse a support folder of more images (default: 1000)")  # fmt: skip
    group.add_argument("--query-batch", type=_integer("--query-batch", 1), default=100,
                       help="query images per batch")  # fmt: skip
    group.add_argument("--finetuner-steps", type=_integer("--finetuner-steps", 1), default=None,
                       help="also score a FineTuner (linear head) of this many steps "
                       "(default: none)")  # fmt: skip
    group.add_argument("--finetuner-lr", type=_positive_number("--finetuner-lr", "0.01"),
                       default=0.01, help="the FineTuner's learning rate")  # fmt: skip


@dataclass
class Prepared:
    support: TaskFolder
    query: TaskFolder
    finetuner_steps: int | None
    finetuner_lr: float
    query_batch: int


def prepare(args: argparse.Namespace, model: Model) -> Prepared:
    """Both folders listed and checked (the support's size against its limit, the query's
    classes against the support's); no image is decoded yet."""
    options = {"normalization": model_normalization(model.normalization)}
    size = model.record["image_size"]
    support = TaskFolder(args.support, size, first=args.first, max_images=args.max_support,
                         argument="--support", **options)  # fmt: skip
    check_support_classes(support)
    query = TaskFolder(args.query, size, classes=support.classes, argument="--query", **options)
    return Prepared(support, query, args.finetuner_steps, args.finetuner_lr, args.query_batch)


def score(prepared: Prepared, learner: Any, run: Run) -> Scored:
    """Top-1 accuracy of the learner (and of a FineTuner, when asked) on the task."""
    images, labels = load_support(prepared.support, num_workers=run.workers)
    settings = {
        "chunk_size": run.compute.chunk_size, "query_batch": prepared.query_batch,
        "num_workers": run.workers, "precision": run.compute.precision,
        "channels_last": run.compute.channels_last,
    }  # fmt: skip
    scored = {"learner": evaluate_task(learner, images, labels, prepared.query, **settings)}
    if prepared.finetuner_steps is not None:
        torch.manual_seed(run.seed)
        tuner = FineTuner(learner.backbone, steps=prepared.finetuner_steps,
                          lr=prepared.finetuner_lr, seed=run.seed).to(run.device)  # fmt: skip
        scored["finetuner"] = evaluate_task(tuner, images, labels, prepared.query, **settings)
    records, rows, aggregates = [], [], {}
    for name, result in scored.items():
        records.append({"learner": name, **result.as_dict(), "classes": prepared.support.classes})
        aggregates[name] = {"top1": result.accuracy, "correct": result.correct,
                            "total": result.total}  # fmt: skip
        rows.append(
            {"learner": name, "top-1 (%)": f"{100 * result.accuracy:.2f}",
             "correct": f"{result.correct}/{result.total}",
             "support N": str(result.n_support), "seconds": f"{result.seconds:.1f}"}
        )  # fmt: skip
    summary = {
        "support": str(prepared.support.folder), "query": str(prepared.query.folder),
        "way": len(prepared.support.classes), "n_support": len(prepared.support),
        "n_query": len(prepared.query),
        "notes": ["one task: top-1 accuracy over every query image, no interval"],
    }  # fmt: skip
    return Scored(aggregates, rows, summary, {"tasks": records})
