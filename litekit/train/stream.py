"""Episodes by position, so that a run can resume mid-way and be split over processes.

Training and validation tasks are numbered 0, 1, 2, ...: `fit`'s step s (counted from 1)
uses positions (s-1)·T .. s·T - 1 (T tasks per step), and under torchrun each rank reads
only its share of them (`litekit.distributed.shard`). An `EpisodeStream` reads the episodes
at given positions:
- a loader from `episode_loader`: a new `episode_loader` over the episodes at those
  positions only, with the same dataset, sampler and workers, so episode k is the one the
  sampler defines for k, and a rank loads only its own tasks;
- a sequence (a list of Episodes, or anything with ``len`` and indexing);
- any other iterable: read in order, keeping the positions asked for (every rank reads it
  all).
Indexable sources wrap around (position p is element p mod len); a plain iterable that runs
out is an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from torch.utils.data import DataLoader

from litekit._checks import bad_argument
from litekit.episodes import Episode, EpisodeDataset, episode_loader


class EpisodeStream:
    """Read the episodes of ``episodes`` at chosen positions (see the module docstring)."""

    def __init__(self, episodes: Any, name: str = "episodes") -> None:
        self.episodes = episodes
        self.name = name
        self.loader = isinstance(episodes, DataLoader) and isinstance(
            episodes.dataset, EpisodeDataset
        )
        self.indexable = not self.loader and hasattr(episodes, "__getitem__")
        if self.loader or self.indexable:
            size = len(self._order()) if self.loader else len(episodes)
            if size == 0:
                raise bad_argument(name, episodes, "pass at least one episode.")
            self.size: int | None = size
        elif isinstance(episodes, Iterable):
            self.size = None
        else:
            raise bad_argument(
                name,
                type(episodes).__name__,
                "pass an episode_loader(...), a list of Episodes, or an iterable of Episodes.",
            )

    def _order(self) -> Sequence[int]:
        """A loader's episode numbers (its sampler: a range or list from `episode_loader`)."""
        sampler = self.episodes.sampler
        return sampler if isinstance(sampler, Sequence) else list(sampler)

    def at(self, positions: Sequence[int]) -> Iterator[Episode]:
        """The episodes at ``positions`` (increasing), in that order."""
        if self.loader:
            order = self._order()
            loader = self.episodes
            yield from episode_loader(
                loader.dataset.dataset,
                loader.dataset.sampler,
                num_workers=loader.num_workers,
                pin_memory=loader.pin_memory,
                prefetch_factor=loader.prefetch_factor if loader.num_workers > 0 else None,
                episode_ids=[order[p % len(order)] for p in positions],
            )
        elif self.indexable:
            for p in positions:
                yield self.episodes[p % self.size]
        else:
            wanted = iter(positions)
            target = next(wanted, None)
            iterator = iter(self.episodes)
            p = 0
            while target is not None:
                try:
                    episode = next(iterator)
                except StopIteration:
                    raise bad_argument(
                        self.name,
                        f"{p} episodes",
                        f"the episodes ran out after {p}, and episode {target} (counting from "
                        "0) was needed; pass at least steps × tasks_per_step of them (e.g. a "
                        "sampler with more episodes), or a list or episode_loader, which fit "
                        "cycles through.",
                    ) from None
                if p == target:
                    yield episode
                    target = next(wanted, None)
                p += 1

    def all_with_positions(self, keep) -> Iterator[tuple[int, Episode]]:
        """(position, episode) for every position p of a finite source with ``keep(p)``."""
        if self.size is not None:
            positions = [p for p in range(self.size) if keep(p)]
            yield from zip(positions, self.at(positions), strict=True)
        else:
            for p, episode in enumerate(self.episodes):
                if keep(p):
                    yield p, episode
