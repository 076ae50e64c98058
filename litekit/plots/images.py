"""Pictures side by side: the same image at several sizes, say, each with a caption."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litekit._checks import bad_argument
from litekit.plots.backends import check_backend, draw
from litekit.plots.chart import Chart, Panel


def _picture(name: str, image: Any) -> np.ndarray:
    """An (H, W, 3) float array in [0, 1] from a (C, H, W) tensor or array, C = 1 or 3."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    array = np.asarray(image, dtype=float)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise bad_argument(
            name, getattr(array, "shape", None), "pass (C, H, W) images with C = 1 or 3."
        )
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise bad_argument(name, (array.min(), array.max()), "scale the pixels to [0, 1].")
    return np.repeat(array, 3 // array.shape[0], axis=0).transpose(1, 2, 0)


def image_strip_chart(
    images: Sequence[Any], captions: Sequence[str] | None = None, *, title: str = ""
) -> Chart:
    """One panel per image, left to right; see `image_strip`."""
    if isinstance(images, str) or not hasattr(images, "__len__") or not len(images):
        raise bad_argument("images", images, "pass a non-empty list of (C, H, W) images.")
    captions = [""] * len(images) if captions is None else list(captions)
    if len(captions) != len(images):
        raise bad_argument("captions", captions, f"pass one caption per image ({len(images)}).")
    panels = tuple(
        Panel(image=_picture(f"images[{i}]", image), title=str(caption))
        for i, (image, caption) in enumerate(zip(images, captions, strict=True))
    )
    return Chart(panels, title=title, legend="none", panel_size=(2.3, 2.6))


def image_strip(
    images: Sequence[Any],
    captions: Sequence[str] | None = None,
    *,
    title: str = "",
    backend: str = "matplotlib",
) -> Any:
    """Images side by side, each with its caption, under one title.

    ``images`` are (C, H, W) tensors or arrays with values in [0, 1] and C = 1 or 3 (as
    `litekit.data.ProceduralImages.render` returns them); each keeps its own pixel grid, so
    the same scene rendered at 32 and at 224 px shows what the small image loses.
    """
    backend = check_backend(backend)
    return draw(image_strip_chart(images, captions, title=title), backend)
