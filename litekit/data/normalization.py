"""Per-channel input normalisation, for backbones that start from pretrained weights.

A network trained on ImageNet saw images with each channel shifted and scaled by the
dataset's mean and standard deviation; fine-tuned or meta-trained from those weights, it
expects the same. The datasets take ``normalization=(mean, std)`` and apply it after turning
pixels into [0, 1] tensors; without it, pixels stay in [0, 1] (right for random weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from litekit._checks import bad_argument

Normalization = tuple[Sequence[float], Sequence[float]]

#: What every torchvision ImageNet classification weight expects (mean, std per channel).
IMAGENET_NORMALIZATION: Normalization = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def check_normalization(normalization: Normalization) -> tuple[tuple[float, ...], ...]:
    """(mean, std) as tuples of floats, one value per channel each, every std > 0."""
    try:
        mean, std = (tuple(float(v) for v in part) for part in normalization)
    except (TypeError, ValueError):
        mean, std = (), ()
    if not mean or len(mean) != len(std) or min(std) <= 0:
        raise bad_argument(
            "normalization",
            normalization,
            "pass (mean, std), one value per channel each and every std > 0, e.g. "
            "litekit.data.IMAGENET_NORMALIZATION.",
        )
    return mean, std


def normalize(image: torch.Tensor, normalization: Normalization | None) -> torch.Tensor:
    """(image - mean) / std per channel of a (C, H, W) image; the image itself for None."""
    if normalization is None:
        return image
    mean, std = check_normalization(normalization)
    shape = (-1, 1, 1)
    return (image - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)
