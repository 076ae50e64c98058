"""Seeded random generators: one derivation from integer keys for every stream in litekit.

A stream is named by a few non-negative integers (a run's seed, a task's position, a
subset size, a constant that sets one kind of stream apart from another). numpy's
SeedSequence hashes them, so neighbouring keys give unrelated streams, and the generator
depends on the key alone: not on the process, the order of calls or torch's global state.

The streams, by key:

- ``(seed, k)``: the episode samplers' episode k (`numpy_generator`; `litekit.episodes`,
  ORBIT's `litekit.data.OrbitTaskSampler`);
- ``(seed, p, SUBSET_STREAM)``: the LITE subsets of the task at position p of a training
  run (`subset_generator`, a torch generator);
- ``(seed, 1, code)``, ``(seed, 2)``, ``(seed, 3, label, instance)``, ``(seed, 4)``: the
  embedded dataset's class colours, class order, per-image nuisances and noise field
  (`litekit.data.ProceduralImages`);
- ``(seed, 7)``: which classes and images make the diagnostics' demo task
  (`litekit.diagnostics.demo_task`);
- ``(seed, name_key(user), k, 0x7A47)`` and ``(seed, name_key(user), 0x7A46)``: task k of
  an ORBIT test user, and the target videos its tasks share (`litekit.orbit.tasks`; a
  user's folder name, not its place in a list, so adding users changes no one else's
  tasks); ``(seed, object, 0x0B17)``: the miniature ORBIT tree's clutter
  (`litekit.orbit.write_orbit_tree`).

Initial weights are not drawn here: torch's modules draw them from torch's global stream,
which ``torch.manual_seed`` seeds (the command line, `litekit.diagnostics.demo_task` and
the measurement tools do so). A few single streams take the user's integer as their seed
directly, ``torch.Generator().manual_seed(seed)``, where there is one stream and no key to
combine: `litekit.learners.FineTuner`'s head initialisation, the measurement tools' fixed
task and subsets, and the quick start.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from litekit._checks import bad_argument

#: The constant in the key of every LITE subset stream ("LITE" in ASCII): it keeps them
#: apart from the samplers' streams, whose keys are also (seed, k).
SUBSET_STREAM = 0x4C495445


def _entropy(key: tuple[Any, ...]) -> list[int]:
    """``key`` as a list of ints, refused unless it is one or more non-negative integers."""
    if not key or any(
        isinstance(word, bool) or not isinstance(word, int | np.integer) or word < 0 for word in key
    ):
        raise bad_argument("key", key, "pass one or more non-negative integers.")
    return [int(word) for word in key]


def seeded_generator(*key: int) -> torch.Generator:
    """A CPU ``torch.Generator`` whose stream is a function of ``key`` alone.

    Its seed is the first 64-bit word of ``SeedSequence(key)``, less its top bit.
    """
    word = np.random.SeedSequence(_entropy(key)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(word) & (2**63 - 1))


def numpy_generator(*key: int) -> np.random.Generator:
    """A numpy ``Generator`` whose stream is a function of ``key`` alone:
    ``default_rng(SeedSequence(key))``."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(key)))


def subset_generator(seed: int, position: int) -> torch.Generator:
    """The LITE subset generator of the task at global position ``position`` of a run.

    A function of ``(seed, position)`` alone (with `SUBSET_STREAM` in its key, which sets
    these streams apart from the episode samplers', which also hash (seed, k)), so a task's
    subsets are the same whichever process trains it, and tasks get independent streams.
    """
    return seeded_generator(seed, position, SUBSET_STREAM)


def name_key(name: str) -> int:
    """A stable non-negative integer for a name (the first 8 bytes of its SHA-256, less the
    top bit), so that a stream can be keyed by a name (a user's folder) rather than by its
    position in a list that may grow."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") >> 1
