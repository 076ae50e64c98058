"""Evaluate a learner on one large task: up to 1000 support images, a whole query folder.

This is the case LITE exists for (VTAB-1k: N = 1000 support images at 224 px). Memory stays
flat in N and in the size of the query set:

- the support set is embedded once, without gradient, in chunks of ``chunk_size`` images
  (`litekit.lite.embed_without_grad` through the learner's ``cache_support``): only the
  N embeddings are kept, never N images' activations, and images reach the learner's
  device one chunk at a time;
- the query set is read from disk and scored in batches of ``query_batch`` against that
  one cache (``task_logits``), so its images are never all in memory.

A `FineTuner` trains on the support set once (``adapt``) and then scores the query batches
the same way. Any other learner is called on each query batch with the whole support set.
A learner whose encoders use batch statistics embeds the support set in one pass (chunks
would change its values), as `litekit.train.evaluate` does.

The score is top-1 accuracy over every query image (no interval: one task), with the
count of correct images per class.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from litekit._checks import bad_argument, check_int
from litekit.learners.base import Learner
from litekit.learners.finetuner import FineTuner
from litekit.lite import Lite
from litekit.measure.peak import cuda_peak
from litekit.measure.tensors import CreatedTensorMemory
from litekit.precision import check_precision


@dataclass(frozen=True)
class TaskResult:
    """Top-1 accuracy on one task's query set, with its counts."""

    accuracy: float
    correct: int
    total: int
    n_support: int
    way: int
    per_class_correct: list[int]
    per_class_total: list[int]
    seconds: float

    def __str__(self) -> str:
        return (
            f"{100 * self.accuracy:.2f}% top-1 ({self.correct}/{self.total} query images, "
            f"{self.way} classes, N = {self.n_support} support images)"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _query_batches(
    query: Dataset | Iterable, query_batch: int, num_workers: int
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(query, Dataset):
        return DataLoader(
            query,
            batch_size=query_batch,
            shuffle=False,
            num_workers=num_workers,
            persistent_workers=False,
        )
    return query


def _classifier(learner: Any, support: torch.Tensor, labels: torch.Tensor, lite: Lite):
    """``classify(query_batch) -> logits`` for the task the support set defines."""
    if isinstance(learner, FineTuner):
        return learner.adapt(support, labels, lite)
    if isinstance(learner, Learner):
        learner.check_task(support, labels, support[:1])
        if learner.batch_coupled_layers():
            lite = Lite.full(
                chunk_size=lite.chunk_size,
                precision=lite.precision,
                channels_last=lite.channels_last,
            )
        cache = learner.cache_support(support, lite)
        return lambda query: learner.task_logits(support, labels, query, lite, cache)
    return lambda query: learner(support, labels, query)


@torch.no_grad()
def evaluate_task(
    learner: Any,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    query: Dataset | Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    chunk_size: int = 64,
    query_batch: int = 100,
    num_workers: int = 0,
    precision: str = "fp32",
    channels_last: bool = False,
) -> TaskResult:
    """Top-1 accuracy of ``learner`` on one task whose query set is scored in batches.

    Args:
        learner: a `litekit.learners.base.Learner`, a `FineTuner`, or any callable
            ``learner(support, labels, query) -> logits``.
        support_images, support_labels: the whole support set (labels 0..K-1, each present).
        query: a dataset of ``(image, label)`` (read in batches by a DataLoader), or an
            iterable of ``(images, labels)`` batches.
        chunk_size: support images per no-grad chunk.
        query_batch: query images per batch.
        num_workers: DataLoader workers reading the query set.
        precision, channels_last: how the backbone runs (`litekit.precision`).
    """
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    query_batch = check_int("query_batch", query_batch, minimum=1)
    check_int("num_workers", num_workers, minimum=0)
    lite = Lite(
        0,
        chunk_size=chunk_size,
        generator=torch.Generator(),
        precision=check_precision(precision),
        channels_last=bool(channels_last),
    )
    start = time.perf_counter()
    was_training = getattr(learner, "training", False)
    if hasattr(learner, "eval"):
        learner.eval()
    try:
        classify = _classifier(learner, support_images, support_labels, lite)
        way = int(support_labels.max()) + 1
        correct = torch.zeros(way, dtype=torch.long)
        total = torch.zeros(way, dtype=torch.long)
        for images, labels in _query_batches(query, query_batch, num_workers):
            labels = torch.as_tensor(labels, dtype=torch.long)
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= way):
                raise bad_argument(
                    "query labels",
                    sorted(set(labels.tolist()) - set(range(way)))[:5],
                    f"the support set has classes 0..{way - 1}; give the query set only those.",
                )
            predicted = classify(images).argmax(1).cpu()
            total += torch.bincount(labels, minlength=way)[:way]
            correct += torch.bincount(labels[predicted == labels], minlength=way)[:way]
    finally:
        if hasattr(learner, "train"):
            learner.train(was_training)
    hits, count = int(correct.sum()), int(total.sum())
    return TaskResult(
        accuracy=hits / max(count, 1),
        correct=hits,
        total=count,
        n_support=int(support_images.shape[0]),
        way=way,
        per_class_correct=correct.tolist(),
        per_class_total=total.tolist(),
        seconds=time.perf_counter() - start,
    )


def task_peak_memory(
    learner: Any,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    query: Dataset | Iterable[tuple[torch.Tensor, torch.Tensor]],
    **settings: Any,
) -> int:
    """Peak bytes that `evaluate_task` adds while scoring the task (``settings`` as there):
    on CUDA the allocator's peak above what was allocated before; elsewhere the peak of the
    tensors the call creates (`litekit.measure.tensors.CreatedTensorMemory`). The support
    images themselves exist before the call and are not counted."""
    device = getattr(learner, "device", torch.device("cpu"))
    if isinstance(device, torch.device) and device.type == "cuda":
        with cuda_peak(device) as reading:
            evaluate_task(learner, support_images, support_labels, query, **settings)
        return int(reading.above_rest)
    with CreatedTensorMemory() as created:
        evaluate_task(learner, support_images, support_labels, query, **settings)
    return int(created.peak)


def task_memory_rows(
    learner: Any,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    query: Dataset | Iterable[tuple[torch.Tensor, torch.Tensor]],
    sizes: Iterable[int],
    *,
    chunk_size: int = 50,
    query_batch: int = 100,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Memory and time of scoring the task on its first N support images, for each N in
    ``sizes``: embedded in chunks of ``chunk_size`` (``kind="lite"``, as LITE does) and in
    one pass (``kind="full"``). Rows ``{"kind", "n", "mib", "seconds", "seconds_min",
    "seconds_max", "accuracy"}``, for `litekit.plots.memory_and_time`; ``mib`` from
    `task_peak_memory`, whose run is also the warm-up, then ``seconds`` the median of
    ``repeats`` more runs and ``seconds_min``/``seconds_max`` their range, so that a busy
    machine shows as spread. Every class must have an image among the first N."""
    repeats = check_int("repeats", repeats, minimum=1)
    sizes = [check_int("sizes", n, minimum=1) for n in sizes]
    rows = []
    for n in sizes:
        images, labels = support_images[:n], support_labels[:n]
        for kind, chunk in (("lite", min(chunk_size, n)), ("full", n)):
            settings = {"chunk_size": chunk, "query_batch": query_batch}
            peak = task_peak_memory(learner, images, labels, query, **settings)
            results = [
                evaluate_task(learner, images, labels, query, **settings) for _ in range(repeats)
            ]
            times = sorted(result.seconds for result in results)
            rows.append(
                {
                    "kind": kind,
                    "n": n,
                    "mib": peak / 2**20,
                    "seconds": float(statistics.median(times)),
                    "seconds_min": times[0],
                    "seconds_max": times[-1],
                    "accuracy": results[-1].accuracy,
                }
            )
    return rows


def load_support(support: Dataset, num_workers: int = 0, batch: int = 100) -> tuple:
    """All of a support dataset as (images, labels) tensors, read in batches."""
    images, labels = [], []
    loader = DataLoader(support, batch_size=batch, num_workers=num_workers)
    for x, y in loader:
        images.append(x)
        labels.append(torch.as_tensor(y, dtype=torch.long))
    return torch.cat(images), torch.cat(labels)
