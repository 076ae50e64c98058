"""The embedded dataset: procedurally generated images at any resolution, no download.

Each image is a textured blob on a background. A class is a *code*: one coarse symbol and
one symbol per detail level.

- The **coarse symbol** (one of ``coarse_codes``) fixes the blob's colours and shape. It is
  visible at any resolution, and many classes share it.
- **Detail level** l is a sinusoidal grating inside the blob at a fixed frequency
  ``cycles[l]`` (cycles per image width, doubling from level to level by default:
  9.5, 19, 38, 76, 152), whose orientation is one of ``orientations[l]`` symbols spaced
  evenly over 180° (by default 2, 2, 2, 4 and 32: the finer the level, the more it
  says). All levels are drawn on top of each other.

Images are rendered band-limited, as a camera with an anti-aliasing filter sees them: a
grating keeps its full contrast up to 0.35 cycles per pixel, fades out above, and is gone at
the Nyquist frequency of 0.5 cycles per pixel. With the defaults, 32 px images show the
coarse symbol and level 0 only (4 distinguishable codes), 64 px add level 1 (8), 128 px
level 2 (16), 224 px level 3 (64), and 512 px every level (all 2048 codes). Classes that
agree on every visible symbol look alike, so a 5-way task is harder at 32 px than at 224 px:
an ideal observer scores about 61%, 78%, 88% and 97% at 32, 64, 128 and 224 px
(`ideal_accuracy`), and trained learners follow that curve from below.

Per-image nuisances keep every image different: position, size, aspect and rotation of the
blob, grating phases, small orientation (±1°) and frequency (±3%) jitter, colour jitter, and
Gaussian pixel noise (a random window of a seeded noise field, much cheaper than fresh noise
per image).

Everything is a function of (seed, class, index): the same item is the same image, in any
process, at every call, and labels are known without rendering anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

from litekit._checks import bad_argument, check_int
from litekit.data.normalization import check_normalization, normalize
from litekit.seeding import numpy_generator

MIN_SIZE, MAX_SIZE = 32, 512
FULL_CONTRAST, NYQUIST = 0.35, 0.5  # cycles per pixel
NOISE_FIELD = MAX_SIZE + 256  # side of the noise field that images take windows of


@lru_cache(maxsize=8)
def _coordinates(size: int) -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1], shape (size,)."""
    return (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1


def band_limit(cycles_per_image: float, size: int) -> float:
    """Contrast a grating keeps at ``size`` px: 1 up to 0.35 cycles/pixel, 0 from 0.5."""
    per_pixel = cycles_per_image / size
    return float(np.clip((NYQUIST - per_pixel) / (NYQUIST - FULL_CONTRAST), 0.0, 1.0))


def _check_size(name: str, size: int) -> int:
    fix = f"pass an image size from {MIN_SIZE} to {MAX_SIZE} pixels."
    size = check_int(name, size, minimum=MIN_SIZE, fix=fix)
    if size > MAX_SIZE:
        raise bad_argument(name, size, fix)
    return size


class ProceduralImages(Dataset):
    """Large-image classification data rendered on the fly; ``dataset[i] -> (image, label)``.

    Args:
        num_classes: number of classes; item i has class ``i // images_per_class``.
        images_per_class: items per class.
        image_size: side in pixels, 32 to 512.
        seed: picks which codes the classes get, the colours, and every image's nuisances.
        coarse_codes: colour-and-shape symbols, visible at any size.
        min_cycles, max_cycles: frequencies of the first and last detail level in cycles per
            image width; the levels in between are spaced geometrically.
        orientations: one entry per detail level: how many grating orientations (symbols,
            spaced 180°/orientations[l]) that level uses.
        first_class: classes are codes ``first_class .. first_class + num_classes - 1`` of a
            seeded shuffle of all ``coarse_codes · prod(orientations)`` codes, so datasets
            with the same seed and disjoint ranges have disjoint classes (meta-train on
            ``first_class=0``, test on ``first_class=num_train_classes``).
        noise: standard deviation of per-pixel Gaussian noise.
        normalization: (mean, std) per channel applied to every item (not to `render`), as
            pretrained weights expect (`litekit.data.normalization`); None keeps [0, 1].

    Images are float32 tensors (3, S, S) in [0, 1] (before any normalisation). ``targets``
    gives every label without rendering, so samplers never touch an image.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        images_per_class: int = 64,
        image_size: int = 84,
        seed: int = 0,
        *,
        coarse_codes: int = 2,
        min_cycles: float = 9.5,
        max_cycles: float = 152.0,
        orientations: Sequence[int] = (2, 2, 2, 4, 32),
        first_class: int = 0,
        noise: float = 0.08,
        normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        self.normalization = None if normalization is None else check_normalization(normalization)
        self.coarse_codes = check_int("coarse_codes", coarse_codes, minimum=1)
        if isinstance(orientations, int | str) or len(orientations) == 0:
            raise bad_argument(
                "orientations", orientations, "pass one symbol count per level, e.g. (2, 2, 4)."
            )
        self.orientations = tuple(
            check_int(f"orientations[{i}]", o, minimum=1) for i, o in enumerate(orientations)
        )
        self.levels = len(self.orientations)
        self.code_space = self.coarse_codes * math.prod(self.orientations)
        self.first_class = check_int("first_class", first_class, minimum=0)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        if self.first_class + self.num_classes > self.code_space:
            raise bad_argument(
                "num_classes",
                num_classes,
                f"only {self.code_space} codes exist (coarse_codes · prod(orientations)) and "
                f"first_class={first_class}; lower num_classes or first_class, or raise "
                "coarse_codes or orientations (or add levels).",
            )
        self.images_per_class = check_int("images_per_class", images_per_class, minimum=1)
        self.image_size = _check_size("image_size", image_size)
        self.seed = check_int("seed", seed, minimum=0)
        if not 0 < min_cycles <= max_cycles:
            raise bad_argument(
                "min_cycles", min_cycles, f"pass 0 < min_cycles <= max_cycles={max_cycles}."
            )
        if not noise >= 0:
            raise bad_argument("noise", noise, "pass a non-negative noise level.")
        self.noise = float(noise)
        ratio = (max_cycles / min_cycles) ** (1 / max(self.levels - 1, 1))
        self.cycles = np.array([min_cycles * ratio**level for level in range(self.levels)])
        self._coarse = [self._coarse_params(code) for code in range(self.coarse_codes)]
        self._noise: torch.Tensor | None = None
        order = numpy_generator(self.seed, 2).permutation(self.code_space)
        self._codes = order[self.first_class : self.first_class + self.num_classes]

    # --- labels and codes, without rendering -----------------------------------------------

    def __len__(self) -> int:
        return self.num_classes * self.images_per_class

    @property
    def targets(self) -> list[int]:
        """Label of every item (``i // images_per_class``), as torchvision datasets have."""
        return np.repeat(np.arange(self.num_classes), self.images_per_class).tolist()

    def label(self, index: int) -> int:
        """Class of item ``index``."""
        return int(index) // self.images_per_class

    def code(self, label: int) -> tuple[int, ...]:
        """Class ``label``'s symbols: (coarse, orientation at level 0, ..., level L-1)."""
        value = int(self._codes[label])
        coarse, value = value % self.coarse_codes, value // self.coarse_codes
        symbols = []
        for radix in self.orientations:
            symbols.append(value % radix)
            value //= radix
        return (coarse, *symbols)

    def visible_levels(self, image_size: int | None = None) -> list[int]:
        """Detail levels with at least half their contrast at ``image_size`` (default: ours)."""
        size = self.image_size if image_size is None else _check_size("image_size", image_size)
        return [level for level, c in enumerate(self.cycles) if band_limit(c, size) >= 0.5]

    def visible_codes(self, image_size: int | None = None) -> int:
        """How many codes an ideal observer can tell apart at ``image_size``."""
        levels = self.visible_levels(image_size)
        return self.coarse_codes * math.prod(self.orientations[level] for level in levels)

    def ideal_accuracy(self, way: int, image_size: int | None = None) -> float:
        """Expected accuracy of an ideal observer on ``way``-way tasks at ``image_size``.

        Classes are uniformly random codes; a class shares its visible symbols with each of
        the other ``way - 1`` with probability p = 1 / visible_codes (an approximation that
        ignores sampling without replacement), and a query is then right with probability
        1/(1 + B), B ~ Binomial(way - 1, p): E[1/(1+B)] = (1 - (1-p)^way) / (way · p).
        """
        way = check_int("way", way, minimum=1)
        p = 1.0 / self.visible_codes(image_size)
        return (1 - (1 - p) ** way) / (way * p)

    # --- rendering ---------------------------------------------------------------------------

    def _coarse_params(self, code: int) -> dict:
        rng = numpy_generator(self.seed, 1, code)
        hue = (code / self.coarse_codes + rng.uniform(0, 0.5 / self.coarse_codes)) % 1.0
        background = 0.5 + 0.2 * np.cos(2 * np.pi * (hue + np.array([0, 1 / 3, 2 / 3])))
        foreground = 0.5 + 0.2 * np.cos(2 * np.pi * (hue + 0.5 + np.array([0, 1 / 3, 2 / 3])))
        return {
            "background": torch.tensor(background, dtype=torch.float32),
            "foreground": torch.tensor(foreground, dtype=torch.float32),
            "exponent": (2, 1, 4)[code % 3],  # disc, diamond, rounded square
        }

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= int(index) < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        label = self.label(index)
        image = self.render(label, int(index) % self.images_per_class)
        return normalize(image, self.normalization), label

    def render(self, label: int, instance: int, image_size: int | None = None) -> torch.Tensor:
        """Image ``instance`` of class ``label`` at ``image_size`` (default: the dataset's).

        The same (label, instance) at another size is the same scene, sampled more finely.
        """
        size = self.image_size if image_size is None else _check_size("image_size", image_size)
        coarse_symbol, *detail = self.code(label)
        coarse = self._coarse[coarse_symbol]
        rng = numpy_generator(self.seed, 3, label, instance)
        centre = rng.uniform(-0.15, 0.15, size=2)
        radius = rng.uniform(0.6, 0.8)
        aspect = rng.uniform(0.8, 1.0)
        rotation = rng.uniform(0, math.pi)
        angles = np.array(detail) * math.pi / np.array(self.orientations)
        angles = angles + rng.normal(0, 0.02, self.levels)
        cycles = self.cycles * rng.uniform(0.97, 1.03, size=self.levels)
        phases = rng.uniform(0, 2 * math.pi, size=self.levels)
        colour_jitter = torch.tensor(rng.normal(0.0, 0.04, size=(2, 3)), dtype=torch.float32)
        offset = rng.integers(0, NOISE_FIELD - size + 1, size=2)
        flip = bool(rng.integers(2))

        coords = _coordinates(size)
        # The blob: a superellipse |u|^p + |v|^p <= 1 in rotated, scaled coordinates, with a
        # soft edge about 1.5 pixels wide (no aliasing at any size).
        cos_r, sin_r = math.cos(rotation), math.sin(rotation)
        x, y = coords.view(1, -1) - float(centre[0]), coords.view(-1, 1) - float(centre[1])
        u = (cos_r * x + sin_r * y) / radius
        v = (-sin_r * x + cos_r * y) / (radius * aspect)
        p = coarse["exponent"]
        level = u.abs() + v.abs() if p == 1 else (u * u + v * v if p == 2 else u**4 + v**4)
        edge = 1.5 * 2.0 / size
        mask = torch.sigmoid((1.0 - level) / (p * edge))

        # The gratings, sum_l a_l sin(w_l (cos θ_l x + sin θ_l y) + φ_l), as one matrix product:
        # sin(A + B) = sin A cos B + cos A sin B with A along x and B along y.
        contrast = 0.12 * np.array([band_limit(c, size) for c in cycles])
        wave = math.pi * cycles  # the image spans 2 units, so k cycles is a wave number k·π
        along_x = torch.from_numpy(np.outer(np.asarray(coords), wave * np.cos(angles)))
        along_y = torch.from_numpy(np.outer(np.asarray(coords), wave * np.sin(angles)) + phases)
        weights = torch.from_numpy(contrast)
        columns = torch.cat([along_x.sin() * weights, along_x.cos() * weights], 1).float()
        rows = torch.cat([along_y.cos(), along_y.sin()], 1).float()
        grating = rows @ columns.T  # (size, size): row index is y, column index is x

        background = (coarse["background"] + colour_jitter[0]).view(3, 1, 1)
        foreground = (coarse["foreground"] + colour_jitter[1]).view(3, 1, 1)
        image = background + mask * (foreground - background + grating)
        if self.noise > 0:
            window = self._noise_field()[
                :, offset[0] : offset[0] + size, offset[1] : offset[1] + size
            ]
            image = image + self.noise * (window.transpose(1, 2) if flip else window)
        return image.clamp_(0.0, 1.0)

    def _noise_field(self) -> torch.Tensor:
        """A seeded field of standard Gaussian noise, made once per process.

        Each image adds a random window of it (and, at random, its transpose): Gaussian pixel
        noise at a fraction of the cost of drawing fresh noise for every image.
        """
        if self._noise is None:
            g = torch.Generator().manual_seed(int(numpy_generator(self.seed, 4).integers(2**62)))
            self._noise = torch.randn(3, NOISE_FIELD, NOISE_FIELD, generator=g)
        return self._noise

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_noise"] = None  # rebuilt on demand: workers do not receive 7 MB each
        return state
