"""litekit.seeding: one derivation of seeded generators for every stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litekit.seeding import seeded_generator


def draws(generator: torch.Generator) -> list[int]:
    return torch.randperm(50, generator=generator)[:10].tolist()


def test_a_stream_is_a_function_of_its_key_alone():
    torch.manual_seed(1)
    first = draws(seeded_generator(0, 4, 1))
    torch.manual_seed(2)
    assert draws(seeded_generator(0, 4, 1)) == first
    assert draws(seeded_generator(np.int64(0), 4, 1)) == first
    assert draws(seeded_generator(0, 4, 2)) != first
    assert draws(seeded_generator(1, 4, 1)) != first
    assert draws(seeded_generator(0, 4)) != first


@pytest.mark.parametrize("key", [(), (-1,), (1.5,), (True,)])
def test_bad_keys_are_named(key):
    with pytest.raises(ValueError, match="^key="):
        seeded_generator(*key)


def test_numpy_streams_hash_their_key_as_the_samplers_always_did():
    from litekit.seeding import numpy_generator

    expected = np.random.default_rng(np.random.SeedSequence([3, 4])).integers(1000, size=8)
    assert np.array_equal(numpy_generator(3, 4).integers(1000, size=8), expected)
    assert np.array_equal(numpy_generator(np.int64(3), 4).integers(1000, size=8), expected)
    with pytest.raises(ValueError, match="^key="):
        numpy_generator(3, -4)


def test_subset_streams_are_set_apart_from_the_samplers_by_their_constant():
    from litekit.seeding import SUBSET_STREAM, subset_generator
    from litekit.train import loop

    assert loop.subset_generator is subset_generator  # still reachable where it was
    assert draws(subset_generator(2, 5)) == draws(seeded_generator(2, 5, SUBSET_STREAM))
    assert draws(subset_generator(2, 5)) != draws(seeded_generator(2, 5))
