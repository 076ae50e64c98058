"""The embedded dataset: procedurally generated images at any resolution, no download.

Each image is a textured blob on a background. A class is the pair (coarse code, fine code):
- the coarse code (one of ``coarse_codes``, 8 by default) fixes the colours and the blob's
  shape: visible at any resolution, shared by many classes;
- the fine code is a grating inside the blob, with a class-specific spatial frequency
  (``min_cycles`` to ``max_cycles`` cycles per image width, log-uniform) and orientation.
  Images are rendered band-limited, as a camera with an anti-aliasing filter would see
  them: a grating above about 0.35 cycles per pixel fades out, and above Nyquist it is gone.
So at 32 px only the coarse code is visible and classes that share it are confusable; each
doubling of the resolution reveals more of the fine codes, and accuracy rises with image
size. Everything is a function of (seed, class, index): the same item is the same image,
in any process, at every call.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

from litekit._checks import bad_argument, check_int

MIN_SIZE, MAX_SIZE = 32, 512


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [-1, 1] (x to the right, y down), each (size, size)."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return x, y


def band_limit(cycles_per_image: float, size: int) -> float:
    """Amplitude a grating keeps at ``size`` px: 1 up to 0.35 cycles/pixel, 0 from 0.5."""
    per_pixel = cycles_per_image / size
    return float(np.clip((0.5 - per_pixel) / 0.15, 0.0, 1.0))


class ProceduralImages(Dataset):
    """Large-image classification data rendered on the fly; ``dataset[i] -> (image, label)``.

    Args:
        num_classes: number of classes (at least ``coarse_codes``).
        images_per_class: items per class; item i has class ``i // images_per_class``.
        image_size: side in pixels, 32 to 512.
        seed: picks the classes' codes and every image's jitter.
        coarse_codes: how many classes share each colour-and-shape code is
            ``num_classes / coarse_codes``; fewer codes make detail matter more.
        min_cycles, max_cycles: range of the fine gratings' frequencies (cycles per image).
        noise: standard deviation of per-pixel Gaussian noise.

    Images are float32 tensors (3, S, S) in [0, 1]. ``targets`` gives every label without
    rendering, so samplers never touch an image.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        images_per_class: int = 64,
        image_size: int = 84,
        seed: int = 0,
        *,
        coarse_codes: int = 8,
        min_cycles: float = 10.0,
        max_cycles: float = 100.0,
        noise: float = 0.08,
    ) -> None:
        self.coarse_codes = check_int("coarse_codes", coarse_codes, minimum=1)
        self.num_classes = check_int(
            "num_classes", num_classes, minimum=self.coarse_codes,
            fix=f"pass num_classes >= coarse_codes={coarse_codes}.",
        )
        self.images_per_class = check_int("images_per_class", images_per_class, minimum=1)
        self.image_size = check_int(
            "image_size", image_size, minimum=MIN_SIZE,
            fix=f"pass an image size from {MIN_SIZE} to {MAX_SIZE} pixels.",
        )
        if image_size > MAX_SIZE:
            raise bad_argument(
                "image_size", image_size, f"pass an image size from {MIN_SIZE} to {MAX_SIZE}."
            )
        self.seed = check_int("seed", seed, minimum=0)
        if not 0 < min_cycles <= max_cycles:
            raise bad_argument(
                "min_cycles", min_cycles, f"pass 0 < min_cycles <= max_cycles={max_cycles}."
            )
        if noise < 0:
            raise bad_argument("noise", noise, "pass a non-negative noise level.")
        self.min_cycles, self.max_cycles, self.noise = float(min_cycles), float(max_cycles), noise
        self._coarse = [self._coarse_params(code) for code in range(self.coarse_codes)]
        self._fine = self._fine_params()

    # --- labels, without rendering -----------------------------------------------------------

    def __len__(self) -> int:
        return self.num_classes * self.images_per_class

    @property
    def targets(self) -> list[int]:
        """Label of every item (``i // images_per_class``), as torchvision datasets have."""
        return np.repeat(np.arange(self.num_classes), self.images_per_class).tolist()

    def label(self, index: int) -> int:
        """Class of item ``index``."""
        return int(index) // self.images_per_class

    def fine_cycles(self, label: int) -> float:
        """Grating frequency of class ``label`` in cycles per image width."""
        return float(self._fine[0][label])

    # --- class and image parameters ----------------------------------------------------------

    def _coarse_params(self, code: int) -> dict:
        rng = _rng(self.seed, 1, code)
        background = rng.uniform(0.1, 0.9, size=3)
        foreground = (background + rng.uniform(0.25, 0.5, size=3) * rng.choice([-1, 1], 3)) % 1.0
        return {
            "background": torch.tensor(background, dtype=torch.float32),
            "foreground": torch.tensor(foreground, dtype=torch.float32),
            "exponent": float(rng.choice([1.0, 2.0, 4.0])),  # diamond, disc, rounded square
            "aspect": float(rng.uniform(0.6, 1.0)),
        }

    def _fine_params(self) -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(self.seed, 2)
        log_cycles = rng.uniform(math.log(self.min_cycles), math.log(self.max_cycles),
                                 size=self.num_classes)
        return np.exp(log_cycles), rng.uniform(0.0, math.pi, size=self.num_classes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= int(index) < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        label = self.label(index)
        return self.render(label, int(index) % self.images_per_class), label

    def render(self, label: int, instance: int) -> torch.Tensor:
        """Image ``instance`` of class ``label`` at this dataset's size."""
        size = self.image_size
        coarse = self._coarse[label % self.coarse_codes]
        cycles, angle = self._fine[0][label], self._fine[1][label]
        rng = _rng(self.seed, 3, label, instance)
        centre = rng.uniform(-0.2, 0.2, size=2)
        radius = rng.uniform(0.5, 0.7)
        rotation = rng.uniform(-0.3, 0.3)
        cycles = cycles * rng.uniform(0.97, 1.03)
        angle = angle + rng.uniform(-0.05, 0.05)
        phase = rng.uniform(0, 2 * math.pi)
        colour_jitter = torch.tensor(rng.normal(0.0, 0.04, size=(2, 3)), dtype=torch.float32)

        x, y = _grid(size)
        u, v = x - float(centre[0]), y - float(centre[1])
        cos_r, sin_r = math.cos(rotation), math.sin(rotation)
        ur, vr = cos_r * u + sin_r * v, (-sin_r * u + cos_r * v) / coarse["aspect"]
        p = coarse["exponent"]
        distance = (ur.abs().pow(p) + vr.abs().pow(p)).pow(1.0 / p) / radius
        edge = 1.5 * 2.0 / size  # a soft edge about 1.5 pixels wide: no aliasing
        mask = torch.sigmoid((1.0 - distance) / edge)

        # cycles per image width: the grid spans 2 units, so k cycles is a wave number k·π.
        wave = math.pi * cycles * (math.cos(angle) * x + math.sin(angle) * y) + phase
        grating = 0.35 * band_limit(cycles, size) * torch.sin(wave)

        background = (coarse["background"] + colour_jitter[0]).view(3, 1, 1)
        foreground = (coarse["foreground"] + colour_jitter[1]).view(3, 1, 1)
        image = background + mask * (foreground - background + grating)
        if self.noise > 0:
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            image = image + self.noise * torch.randn(3, size, size, generator=g)
        return image.clamp_(0.0, 1.0)
