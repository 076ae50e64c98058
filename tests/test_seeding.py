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
