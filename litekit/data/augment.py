"""Data augmentation of a task's images: a random resized crop and a horizontal flip.

With few images per class, a learner soon knows each one; showing it a random crop of each,
at a random scale and aspect, sometimes mirrored, makes every task new. `Augment` does that
to each image of a batch on its own, on tensors (any dataset, the embedded one included),
and draws everything from the generator it is given: `augment_episode` with a generator
seeded by (seed, task number) gives the same task the same crops in any process, at any
resume, with deterministic kernels too. Labels are unchanged (a crop keeps the class).

Support and query images are both augmented. Held-out tasks (validation, test) are not: a
score is measured on the images as they are. `augmented` wraps an `litekit.episode_loader`
so that episode k is augmented with the generator of (seed, k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from litekit._checks import bad_argument, check_int
from litekit.episodes import Episode, EpisodeDataset
from litekit.seeding import seeded_generator


@dataclass(frozen=True)
class Augment:
    """A random resized crop (area ``scale`` of the image, aspect ``ratio``, resized back to
    the image's size) and a horizontal flip with probability ``flip``, per image."""

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5

    def __post_init__(self) -> None:
        low, high = self.scale
        if not 0 < low <= high <= 1:
            raise bad_argument("scale", self.scale, "pass (low, high) with 0 < low <= high <= 1.")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise bad_argument("ratio", self.ratio, "pass (low, high) with 0 < low <= high.")
        if not 0 <= self.flip <= 1:
            raise bad_argument("flip", self.flip, "pass a probability in [0, 1].")

    def _box(self, height: int, width: int, generator: torch.Generator) -> tuple[int, ...]:
        """(top, left, h, w) of a crop: up to 10 tries at a random area and aspect that
        fits, else the whole image (as torchvision's RandomResizedCrop does)."""
        area = height * width
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            draws = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
            target = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * draws[0])
            aspect = math.exp(log_low + (log_high - log_low) * draws[1])
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = min(int(draws[2] * (height - h + 1)), height - h)
                left = min(int(draws[3] * (width - w + 1)), width - w)
                return top, left, h, w
        return 0, 0, height, width

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each image of ``images`` (B, C, H, W) cropped, resized back, maybe flipped."""
        if images.ndim != 4:
            raise bad_argument("images", tuple(images.shape), "pass a (B, C, H, W) batch.")
        height, width = images.shape[-2:]
        out = torch.empty_like(images)
        for i, image in enumerate(images):
            top, left, h, w = self._box(height, width, generator)
            crop = image[None, :, top : top + h, left : left + w]
            if (h, w) != (height, width):
                crop = F.interpolate(
                    crop.float(), size=(height, width), mode="bilinear", antialias=True,
                    align_corners=False,
                ).to(images.dtype)  # fmt: skip
            if float(torch.rand((), generator=generator, dtype=torch.float64)) < self.flip:
                crop = crop.flip(-1)
            out[i] = crop[0]
        return out

    def as_dict(self) -> dict:
        return {"scale": list(self.scale), "ratio": list(self.ratio), "flip": self.flip}


def augment_episode(episode, augment: Augment, generator: torch.Generator):
    """``episode`` with its support and then its query images augmented (a new Episode)."""
    return replace(
        episode,
        support_images=augment(episode.support_images, generator),
        query_images=augment(episode.query_images, generator),
    )


#: The constant that keeps augmentation streams, (seed, AUGMENT_STREAM, k), apart from the
#: samplers' and LITE's.
AUGMENT_STREAM = 0x41554731  # "AUG1"


class AugmentedEpisodes(EpisodeDataset):
    """Episode ``k`` of ``episodes`` (an `EpisodeDataset`), augmented with a generator seeded
    by (``seed``, k): the same task gets the same crops in any worker, process or resume."""

    def __init__(self, episodes: EpisodeDataset, augment: Augment, seed: int) -> None:
        super().__init__(episodes.dataset, episodes.sampler)
        self.augment = augment
        self.seed = check_int("seed", seed, minimum=0)

    def __getitem__(self, index: int) -> Episode:
        generator = seeded_generator(self.seed, AUGMENT_STREAM, int(index))
        return augment_episode(super().__getitem__(index), self.augment, generator)


def augmented(loader: DataLoader, augment: Augment, seed: int) -> DataLoader:
    """``loader`` (from `litekit.episode_loader`) with every episode augmented
    (`AugmentedEpisodes`): pass it to `litekit.fit` as its training episodes."""
    if not isinstance(loader, DataLoader) or not isinstance(loader.dataset, EpisodeDataset):
        raise bad_argument("loader", type(loader).__name__, "pass an episode_loader(...).")
    return DataLoader(
        AugmentedEpisodes(loader.dataset, augment, seed),
        batch_size=None,
        sampler=loader.sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        prefetch_factor=loader.prefetch_factor if loader.num_workers > 0 else None,
        persistent_workers=False,
    )
