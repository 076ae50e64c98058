"""Data augmentation of a task's images: a random resized crop and a horizontal flip.

With few images per class, a learner soon knows each one; showing it a random crop of each,
at a random scale and aspect, sometimes mirrored, makes every task new. `Augment` does that
to each image of a batch on its own, on tensors (any dataset, the embedded one included),
and draws everything from the generator it is given. `litekit.train.fit` (``augment=``)
augments the task at global position p with `Augment.generator` (seed, p), so the same task
gets the same crops in any process, at any resume, with deterministic kernels too. Labels
are unchanged (a crop keeps the class).

Support and query images are both augmented. Held-out tasks (validation, test) are not: a
score is measured on the images as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch.nn import functional as F

from litekit._checks import bad_argument, check_int
from litekit.seeding import seeded_generator

#: Keeps augmentation streams apart from the samplers' and LITE's.
AUGMENT_STREAM = 0x41554731  # "AUG1"


@dataclass(frozen=True)
class Augment:
    """A random resized crop (area ``scale`` of the image, aspect ``ratio``, resized back to
    the image's size) and a horizontal flip with probability ``flip``, per image; `fit`
    draws task p's from `generator` (``seed``, p)."""

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        low, high = self.scale
        if not 0 < low <= high <= 1:
            raise bad_argument("scale", self.scale, "pass (low, high) with 0 < low <= high <= 1.")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise bad_argument("ratio", self.ratio, "pass (low, high) with 0 < low <= high.")
        if not 0 <= self.flip <= 1:
            raise bad_argument("flip", self.flip, "pass a probability in [0, 1].")
        check_int("seed", self.seed, minimum=0)

    def generator(self, position: int) -> torch.Generator:
        """The stream of the task at global position ``position``: (seed, a constant that
        keeps it apart from the samplers' and LITE's streams, position)."""
        return seeded_generator(self.seed, AUGMENT_STREAM, int(position))

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
        return {
            "scale": list(self.scale),
            "ratio": list(self.ratio),
            "flip": self.flip,
            "seed": self.seed,
        }


def augment_episode(episode, augment: Augment, generator: torch.Generator):
    """``episode`` with its support and then its query images augmented (a new Episode)."""
    return replace(
        episode,
        support_images=augment(episode.support_images, generator),
        query_images=augment(episode.query_images, generator),
    )
