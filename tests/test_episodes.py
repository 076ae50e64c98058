"""Samplers and episodes: invariants, determinism, workers, pickling and bad inputs."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import Dataset

from litekit import Episode, EpisodeSampler, VariableEpisodeSampler, episode_loader

LABELS = np.repeat(np.arange(12), 10).tolist()


class LabelledTensors(Dataset):
    """Item i is a (1, 2, 2) image filled with i, so loaded episodes can be traced back."""

    def __init__(self, labels):
        self.targets = list(labels)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return torch.full((1, 2, 2), float(index)), self.targets[index]


class NoImages(LabelledTensors):
    def __getitem__(self, index):
        raise AssertionError("a sampler must not load images to learn labels")


def check_invariants(indices, labels, way=None):
    labels = np.asarray(labels)
    assert set(indices.support_indices).isdisjoint(indices.query_indices)
    assert len(set(indices.support_indices)) == len(indices.support_indices)
    assert len(set(indices.query_indices)) == len(indices.query_indices)
    k = len(indices.class_ids)
    if way is not None:
        assert k == way
    assert len(set(indices.class_ids.tolist())) == k
    for positions, episode_labels in (
        (indices.support_indices, indices.support_labels),
        (indices.query_indices, indices.query_labels),
    ):
        assert set(episode_labels.tolist()) == set(range(k)), "every class has items"
        np.testing.assert_array_equal(labels[positions], indices.class_ids[episode_labels])


def test_fixed_sampler_invariants():
    sampler = EpisodeSampler(LABELS, way=5, shot=3, query_per_class=2, episodes=20, seed=0)
    for indices in sampler:
        check_invariants(indices, LABELS, way=5)
        assert len(indices.support_indices) == 15 and len(indices.query_indices) == 10
        assert np.bincount(indices.support_labels).tolist() == [3] * 5


def test_same_seed_same_episodes_other_seed_other_episodes():
    a = list(EpisodeSampler(LABELS, 5, 2, 2, episodes=5, seed=1))
    b = list(EpisodeSampler(LABELS, 5, 2, 2, episodes=5, seed=1))
    c = list(EpisodeSampler(LABELS, 5, 2, 2, episodes=5, seed=2))
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.support_indices, y.support_indices) and np.array_equal(
            x.query_indices, y.query_indices
        )
        assert np.array_equal(x.class_ids, y.class_ids)
    assert any(
        not np.array_equal(x.support_indices, z.support_indices) for x, z in zip(a, c, strict=True)
    )


def test_episode_k_does_not_depend_on_order_of_requests():
    sampler = EpisodeSampler(LABELS, 5, 2, 2, episodes=10, seed=4)
    forwards = [sampler.episode(k).support_indices for k in range(10)]
    backwards = [sampler.episode(k).support_indices for k in reversed(range(10))][::-1]
    assert all(np.array_equal(x, y) for x, y in zip(forwards, backwards, strict=True))


def test_labels_are_permuted_per_episode():
    """Episode label j maps to class_ids[j], and the mapping changes between episodes."""
    sampler = EpisodeSampler(
        np.repeat(np.arange(5), 4), way=5, shot=1, query_per_class=1, episodes=30, seed=0
    )
    orders = {tuple(e.class_ids.tolist()) for e in sampler}
    assert len(orders) > 10


def test_labels_from_targets_attribute_without_loading_images():
    sampler = EpisodeSampler(NoImages(LABELS), 5, 2, 2, episodes=3, seed=0)
    assert len(list(sampler)) == 3


def test_labels_from_labels_attribute_and_tensor():
    class WithLabels:
        labels = torch.tensor(LABELS)

    EpisodeSampler(WithLabels(), 3, 1, 1, episodes=1)
    EpisodeSampler(torch.tensor(LABELS), 3, 1, 1, episodes=1)


def test_imagefolder_targets_are_used(tmp_path):
    from PIL import Image
    from torchvision.datasets import ImageFolder

    for name in ("cat", "dog", "owl"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (4, 4)).save(tmp_path / name / f"{i}.png")
    folder = ImageFolder(tmp_path)
    sampler = EpisodeSampler(folder, way=3, shot=1, query_per_class=2, episodes=2, seed=0)
    check_invariants(sampler.episode(0), folder.targets, way=3)


def test_loader_yields_episodes_matching_sampler():
    dataset = LabelledTensors(LABELS)
    sampler = EpisodeSampler(dataset, 4, 2, 3, episodes=4, seed=7)
    for k, episode in enumerate(episode_loader(dataset, sampler)):
        assert isinstance(episode, Episode)
        indices = sampler.episode(k)
        assert (
            episode.support_images[:, 0, 0, 0].long().tolist() == indices.support_indices.tolist()
        )
        assert episode.query_images[:, 0, 0, 0].long().tolist() == indices.query_indices.tolist()
        assert (episode.way, episode.n_support, episode.n_query) == (4, 8, 12)
        assert episode.class_ids.tolist() == indices.class_ids.tolist()


def flatten(episodes):
    return [
        (
            e.support_images.sum().item(),
            e.query_images.sum().item(),
            e.support_labels.tolist(),
            e.class_ids.tolist(),
        )
        for e in episodes
    ]


def test_same_episodes_with_any_number_of_workers():
    dataset = LabelledTensors(LABELS)
    sampler = EpisodeSampler(dataset, 5, 2, 2, episodes=6, seed=3)
    serial = flatten(episode_loader(dataset, sampler, num_workers=0))
    parallel = flatten(episode_loader(dataset, sampler, num_workers=2))
    assert serial == parallel


def test_variable_sampler_with_workers_and_sharding():
    dataset = LabelledTensors(LABELS)
    sampler = VariableEpisodeSampler(dataset, episodes=6, seed=3, min_way=3, max_way=6)
    everything = flatten(episode_loader(dataset, sampler, num_workers=2))
    odd = flatten(episode_loader(dataset, sampler, episode_ids=[1, 3, 5]))
    assert odd == everything[1::2]


@pytest.mark.parametrize(
    "sampler",
    [
        EpisodeSampler(LABELS, 5, 2, 2, episodes=3, seed=5),
        VariableEpisodeSampler(LABELS, episodes=3, seed=5, min_way=2, max_way=8),
    ],
)
def test_samplers_pickle_to_the_same_episodes(sampler):
    clone = pickle.loads(pickle.dumps(sampler))
    for a, b in zip(sampler, clone, strict=True):
        assert np.array_equal(a.support_indices, b.support_indices) and np.array_equal(
            a.query_indices, b.query_indices
        )


@settings(max_examples=60, deadline=None)
@given(
    class_sizes=st.lists(st.integers(2, 60), min_size=5, max_size=40),
    min_way=st.integers(2, 5),
    extra_way=st.integers(0, 30),
    max_query=st.integers(1, 12),
    max_support=st.integers(30, 300),
    max_support_per_class=st.integers(1, 40),
    seed=st.integers(0, 2**31),
)
def test_variable_sampler_respects_meta_dataset_bounds(
    class_sizes, min_way, extra_way, max_query, max_support, max_support_per_class, seed
):
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    max_way = min_way + extra_way
    sampler = VariableEpisodeSampler(
        labels,
        episodes=4,
        seed=seed,
        min_way=min_way,
        max_way=max_way,
        max_query=max_query,
        max_support=max(max_support, max_way),
        max_support_per_class=max_support_per_class,
    )
    for indices in sampler:
        check_invariants(indices, labels)
        way = len(indices.class_ids)
        assert min_way <= way <= min(max_way, len(class_sizes))
        sizes = np.asarray(class_sizes)[indices.class_ids]
        query = np.bincount(indices.query_labels, minlength=way)
        assert len(set(query.tolist())) == 1, "same query size for every class"
        assert 1 <= query[0] <= min(max_query, sizes.min() // 2)
        shots = np.bincount(indices.support_labels, minlength=way)
        assert (shots >= 1).all() and (shots + query <= sizes).all()
        assert shots.sum() <= max(max_support, max_way)


def test_variable_sampler_way_and_support_vary():
    labels = np.repeat(np.arange(60), 40)
    sampler = VariableEpisodeSampler(labels, episodes=40, seed=0)
    ways = {len(e.class_ids) for e in sampler}
    sizes = {len(e.support_indices) for e in sampler}
    assert len(ways) > 10 and len(sizes) > 20


# --- bad inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "starts"),
    [
        (lambda: EpisodeSampler(LABELS, way=13, shot=1, query_per_class=1, episodes=1), "way=13"),
        (
            lambda: EpisodeSampler(LABELS, way=5, shot=8, query_per_class=3, episodes=1),
            "shot + query_per_class=11",
        ),
        (lambda: EpisodeSampler([0.5, 1.5, 2.0], 2, 1, 1, episodes=1), "labels="),
        (lambda: EpisodeSampler(["a", "b"], 2, 1, 1, episodes=1), "labels="),
        (lambda: EpisodeSampler(LABELS, way=0, shot=1, query_per_class=1, episodes=1), "way=0"),
        (lambda: EpisodeSampler(LABELS, way=1, shot=1, query_per_class=1, episodes=1), "way=1"),
        (lambda: VariableEpisodeSampler(LABELS, episodes=1, min_way=1), "min_way=1"),
        (
            lambda: EpisodeSampler(LABELS, way=2, shot=1, query_per_class=1, episodes=0),
            "episodes=0",
        ),
        (lambda: VariableEpisodeSampler(LABELS, episodes=1, min_way=20), "min_way=20"),
        (lambda: VariableEpisodeSampler(LABELS, episodes=1, max_way=3, min_way=5), "max_way=3"),
        (lambda: VariableEpisodeSampler(LABELS, episodes=1, max_support=10), "max_support=10"),
    ],
)
def test_bad_sampler_arguments(call, starts):
    with pytest.raises(ValueError, match="^" + re.escape(starts)) as error:
        call()
    assert len(str(error.value)) > len(starts) + 15, "the message says how to fix it"


@pytest.mark.parametrize(
    "make",
    [
        lambda labels: EpisodeSampler(labels, way=5, shot=1, query_per_class=1, episodes=1),
        lambda labels: VariableEpisodeSampler(labels, episodes=1),
    ],
)
def test_labels_of_one_class_ask_for_more_classes_not_a_smaller_way(make):
    with pytest.raises(ValueError) as error:
        make([7] * 10)
    message = str(error.value)
    assert message.startswith("labels=") and "at least 2 classes" in message, message
    assert "add items of other classes" in message and "way <=" not in message


def test_small_classes_can_be_skipped_on_request():
    labels = [0] * 10 + [1] * 10 + [2] * 2 + [3] * 10
    with pytest.raises(ValueError, match="skip_small_classes"):
        EpisodeSampler(labels, 3, 3, 2, episodes=1)
    sampler = EpisodeSampler(labels, 3, 3, 2, episodes=5, skip_small_classes=True)
    assert all(2 not in e.class_ids for e in sampler)


def test_episode_rejects_bad_tensors():
    images = torch.zeros(4, 3, 8, 8)
    labels = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="^query_images="):
        Episode(images, labels, torch.zeros(2, 3, 9, 9), torch.tensor([0, 1]), torch.arange(2))
    with pytest.raises(ValueError, match="^support_images="):
        Episode(images[:0], labels[:0], images, labels, torch.arange(2))
    with pytest.raises(ValueError, match="^support_labels="):
        Episode(images, labels.float(), images, labels, torch.arange(2))


def test_loader_explains_non_tensor_items():
    class Pillow(LabelledTensors):
        def __getitem__(self, index):
            from PIL import Image

            return Image.new("RGB", (2, 2)), self.targets[index]

    dataset = Pillow(LABELS)
    loader = episode_loader(dataset, EpisodeSampler(dataset, 2, 1, 1, episodes=1))
    with pytest.raises(ValueError, match="ToTensor"):
        next(iter(loader))


def test_episode_to_device_keeps_everything():
    e = next(
        iter(episode_loader(LabelledTensors(LABELS), EpisodeSampler(LABELS, 3, 2, 1, episodes=1)))
    )
    moved = e.to("cpu")
    assert torch.equal(moved.support_images, e.support_images) and moved.way == 3
