"""The paper's two protocols in miniature: multi-source Meta-Dataset episodes (train,
evaluate per source) and one large VTAB-style task, on trees written by `md_writer`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from md_writer import write_task_folder, write_tiny_metadataset
from torch import nn

from litekit import FineTuner, Lite, ProtoNets, episode_loader, fit
from litekit.data.task_folder import TaskFolder, task_folders
from litekit.train.metadataset import evaluate_sources, open_sources, training_episodes
from litekit.train.one_task import evaluate_task, load_support, task_peak_memory


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_tiny_metadataset(tmp_path_factory.mktemp("md"))


def small_backbone() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.GroupNorm(2, 8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


class Recording(nn.Module):
    """Wraps a backbone and records the batch size of every call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        return self.inner(x)


def test_multi_source_training_and_per_source_evaluation(tree):
    sources = open_sources(tree, "birds,letters", "TRAIN", 32, normalization="metadataset")
    data, sampler = training_episodes(sources, episodes=4, seed=0)
    names = {sampler.source_of(k) for k in range(40)}
    assert names == {"birds", "letters"}
    learner = ProtoNets(small_backbone())
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in learner.parameters()]
    history = fit(
        learner,
        episode_loader(data, sampler),
        optimizer,
        steps=2,
        lite=Lite(4, chunk_size=8, generator=torch.Generator().manual_seed(0)),
        progress=False,
    )
    assert history.step == [1, 2]
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.parameters(), strict=True))
    tests = open_sources(tree, ["birds", "letters"], "TEST", 32, normalization="metadataset")
    results = evaluate_sources(learner, tests, tasks=5, seed=1)
    assert list(results) == ["birds", "letters"]
    for result in results.values():
        assert len(result.accuracies) == 5 and 0 <= result.mean <= 1
        s = np.std(result.accuracies, ddof=1)
        assert math.isclose(result.ci95, 1.96 * s / math.sqrt(5), rel_tol=1e-9, abs_tol=1e-12)
    again = evaluate_sources(learner, tests, tasks=5, seed=1)
    assert again["birds"].accuracies == results["birds"].accuracies  # the same seed, the same tasks


@pytest.mark.parametrize("layout", ["train800val200", "train"])
def test_one_task_support_in_chunks_query_in_batches(tmp_path, layout):
    root = write_task_folder(tmp_path / "task", classes=3, per_class=7, test_per_class=5,
                             layout=layout)  # fmt: skip
    support_dir, query_dir = task_folders(root, layout)
    support = TaskFolder(support_dir, 32, normalization="metadataset", max_images=1000)
    query = TaskFolder(query_dir, 32, normalization="metadataset", classes=support.classes)
    assert len(support) == 21 and len(query) == 15
    images, labels = load_support(support)
    recording = Recording(small_backbone())
    learner = ProtoNets(recording)
    recording.batches.clear()
    result = evaluate_task(learner, images, labels, query, chunk_size=4, query_batch=6)
    assert max(recording.batches) <= 6  # chunks of 4 support images, batches of 6 queries
    assert sum(recording.batches) == 21 + 15  # each image embedded once
    whole = learner(images, labels, torch.stack([query[i][0] for i in range(len(query))]))
    targets = torch.tensor(query.targets)
    assert result.correct == int((whole.argmax(1) == targets).sum())
    assert result.total == 15 and result.per_class_total == [5, 5, 5]
    assert result.accuracy == result.correct / 15


def test_first_n_of_train_and_the_finetuner(tmp_path):
    root = write_task_folder(tmp_path / "task", classes=3, per_class=8, test_per_class=4,
                             layout="train")  # fmt: skip
    support_dir, query_dir = task_folders(root, "train")
    support = TaskFolder(support_dir, 32, normalization="imagenet", first=12)
    # files are named by position in the split: the first 12 by name, whatever their class
    assert [item.path.name for item in support.items] == [f"{i:05d}.jpg" for i in range(12)]
    assert np.bincount(support.targets).tolist() == [4, 4, 4]
    query = TaskFolder(query_dir, 32, normalization="imagenet", classes=support.classes)
    images, labels = load_support(support)
    tuner = FineTuner(small_backbone(), steps=5, lr=0.05)
    result = evaluate_task(tuner, images, labels, query, query_batch=5)
    assert result.way == 3 and result.total == 12
    direct = tuner(images, labels, torch.stack([query[i][0] for i in range(12)]))
    assert result.correct == int((direct.argmax(1) == torch.tensor(query.targets)).sum())


def test_one_task_memory_is_flat_in_n_with_chunks():
    """Chunked, the peak grows only by the N embeddings (N · D · 4 bytes); in one pass it
    grows with N's activations."""
    torch.manual_seed(0)
    learner = ProtoNets(small_backbone())
    query = [(torch.randn(10, 3, 48, 48), torch.arange(10) % 5)]
    chunked, whole = {}, {}
    for n in (50, 200):
        images, labels = torch.randn(n, 3, 48, 48), torch.arange(n) % 5
        chunked[n] = task_peak_memory(learner, images, labels, query, chunk_size=10)
        whole[n] = task_peak_memory(learner, images, labels, query, chunk_size=n)
    embedding_bytes = 8 * 4  # D = 8 floats per image
    assert chunked[200] - chunked[50] <= 150 * embedding_bytes * 2
    assert whole[200] > 3 * whole[50] > 3 * chunked[50]


def test_memory_rows_for_the_plot():
    from litekit import plots
    from litekit.plots import cost
    from litekit.train.one_task import task_memory_rows

    learner = ProtoNets(small_backbone())
    images, labels = torch.randn(60, 3, 32, 32), torch.arange(60) % 3
    query = [(torch.randn(6, 3, 32, 32), torch.arange(6) % 3)]
    rows = task_memory_rows(learner, images, labels, query, [20, 60], chunk_size=10, repeats=3)
    assert [(r["kind"], r["n"]) for r in rows] == [("lite", 20), ("full", 20), ("lite", 60),
                                                   ("full", 60)]  # fmt: skip
    lite = {r["n"]: r["mib"] for r in rows if r["kind"] == "lite"}
    full = {r["n"]: r["mib"] for r in rows if r["kind"] == "full"}
    assert full[60] > 2 * full[20] and lite[60] < 1.2 * lite[20] + 0.01
    assert len({r["accuracy"] for r in rows if r["n"] == 60}) == 1  # chunks change nothing
    # times: the median of the repeats after the memory run (the warm-up), with their range
    assert all(0 < r["seconds_min"] <= r["seconds"] <= r["seconds_max"] for r in rows)
    chart = cost.memory_and_time_chart(rows, time_label="seconds to score the task")
    memory, timed = chart.panels
    assert timed.y.label == "seconds to score the task" and timed.title == cost.TIME_TITLE
    assert all(series.y_range is not None for series in timed.series)  # the repeats' range
    assert plots.memory_and_time(rows) is not None
    with pytest.raises(ValueError, match="^repeats=0"):
        task_memory_rows(learner, images, labels, query, [20], repeats=0)


def test_procedural_task_folder(tmp_path):
    from litekit.data.md_convert import procedural_task

    root = procedural_task(tmp_path / "t", 4, 5, 2, image_size=32)
    support_dir, query_dir = task_folders(root)
    support = TaskFolder(support_dir, 32, normalization="none", first=8)
    assert np.bincount(support.targets).tolist() == [2, 2, 2, 2]  # interleaved classes
    query = TaskFolder(query_dir, 32, normalization="none", classes=support.classes)
    assert len(query) == 8 and len(TaskFolder(support_dir, 32, normalization="none")) == 20
