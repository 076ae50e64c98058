"""Seeded random generators: one derivation from integer keys for every stream in litekit.

A stream is named by a few non-negative integers (a run's seed, a task's position, a
subset size, a constant that sets one kind of stream apart from another). numpy's
SeedSequence hashes them, so neighbouring keys give unrelated streams, and the generator
depends on the key alone: not on the process, the order of calls or torch's global state.
"""

from __future__ import annotations

import numpy as np
import torch

from litekit._checks import bad_argument


def seeded_generator(*key: int) -> torch.Generator:
    """A CPU ``torch.Generator`` whose stream is a function of ``key`` alone.

    Its seed is the first 64-bit word of ``SeedSequence(key)``, less its top bit.
    """
    if not key or any(
        isinstance(word, bool) or not isinstance(word, int | np.integer) or word < 0 for word in key
    ):
        raise bad_argument("key", key, "pass one or more non-negative integers.")
    word = np.random.SeedSequence([int(w) for w in key]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(word) & (2**63 - 1))
