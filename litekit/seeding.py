"""Seeded random generators: one derivation from integer keys for every stream in litekit.

A stream is named by a few non-negative integers (a run's seed, a task's position, a
subset size, a constant that sets one kind of stream apart from another). numpy's
SeedSequence hashes them, so neighbouring keys give unrelated streams, and the generator
depends on the key alone: not on the process, the order of calls or torch's global state.
`seeded_generator` gives a torch generator, `numpy_generator` a numpy one; `name_key` turns a
name into a key word.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from litekit._checks import bad_argument


def _check_key(key: tuple) -> None:
    if not key or any(
        isinstance(word, bool) or not isinstance(word, int | np.integer) or word < 0 for word in key
    ):
        raise bad_argument("key", key, "pass one or more non-negative integers.")


def seeded_generator(*key: int) -> torch.Generator:
    """A CPU ``torch.Generator`` whose stream is a function of ``key`` alone.

    Its seed is the first 64-bit word of ``SeedSequence(key)``, less its top bit.
    """
    _check_key(key)
    word = np.random.SeedSequence([int(w) for w in key]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(word) & (2**63 - 1))


def numpy_generator(*key: int) -> np.random.Generator:
    """A numpy ``Generator`` whose stream is a function of ``key`` alone (non-negative
    integers, as for `seeded_generator`): ``default_rng(SeedSequence(key))``."""
    _check_key(key)
    return np.random.default_rng(np.random.SeedSequence([int(w) for w in key]))


def name_key(name: str) -> int:
    """A stable non-negative integer for a name (the first 8 bytes of its SHA-256), so that
    a stream can be keyed by a name (a user's folder) rather than by its position in a
    list that may grow."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") >> 1
