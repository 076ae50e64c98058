"""litekit.seeding: one derivation of seeded generators for every stream."""

from __future__ import annotations

import pytest
import torch

from litekit.seeding import seeded_generator
from litekit.train import subset_generator

SUBSET_STREAM = 0x4C495445  # the training loop's constant for LITE subset streams


def draws(generator: torch.Generator) -> list[int]:
    return torch.randperm(50, generator=generator)[:10].tolist()


def test_a_stream_is_a_function_of_its_key_alone():
    torch.manual_seed(1)
    first = draws(seeded_generator(0, 4, 1))
    torch.manual_seed(2)
    assert draws(seeded_generator(0, 4, 1)) == first
    assert draws(seeded_generator(0, 4, 2)) != first
    assert draws(seeded_generator(1, 4, 1)) != first


def test_the_training_loops_subset_streams_are_keyed_streams():
    """subset_generator(seed, p) is seeded_generator(seed, p, SUBSET_STREAM): one derivation."""
    for seed, position in [(0, 0), (7, 123), (2**31, 5)]:
        ours = seeded_generator(seed, position, SUBSET_STREAM)
        assert draws(ours) == draws(subset_generator(seed, position))


@pytest.mark.parametrize("key", [(), (-1,), (1.5,), (True,)])
def test_bad_keys_are_named(key):
    with pytest.raises(ValueError, match="^key="):
        seeded_generator(*key)
