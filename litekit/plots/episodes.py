"""A few-shot task as pictures: its support set and its query set, one row per class."""

from __future__ import annotations

from typing import Any

import numpy as np

from litekit._checks import bad_argument
from litekit.plots.backends import check_backend, draw
from litekit.plots.chart import Chart, Panel
from litekit.plots.images import _picture

GAP = 2  # white pixels between two pictures of a mosaic


def mosaic(images: Any, labels: Any, way: int, *, name: str = "images") -> np.ndarray:
    """The images as one (H, W, 3) picture: row k holds the images of label k, in order.

    Rows with fewer images than the longest are padded with white; pictures are separated
    by `GAP` white pixels.
    """
    labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(int)
    pictures = [_picture(f"{name}[{i}]", image) for i, image in enumerate(images)]
    rows = [
        [p for p, label in zip(pictures, labels, strict=True) if label == k] for k in range(way)
    ]
    side = pictures[0].shape[0]
    columns = max(len(row) for row in rows)
    cell = side + GAP
    canvas = np.ones((way * cell - GAP, columns * cell - GAP, 3))
    for k, row in enumerate(rows):
        for j, picture in enumerate(row):
            canvas[k * cell : k * cell + side, j * cell : j * cell + side] = picture
    return canvas


def episode_images_chart(episode: Any, *, title: str = "") -> Chart:
    """Support and query mosaics of one task; see `episode_images`."""
    needed = ("support_images", "support_labels", "query_images", "query_labels", "way")
    if not all(hasattr(episode, name) for name in needed):
        raise bad_argument("episode", type(episode).__name__, "pass a litekit.Episode.")
    way = int(episode.way)
    support = mosaic(episode.support_images, episode.support_labels, way, name="support_images")
    query = mosaic(episode.query_images, episode.query_labels, way, name="query_images")
    shots = np.bincount(np.asarray(episode.support_labels.cpu()), minlength=way)
    n, m = int(shots.sum()), len(episode.query_labels)
    shot = (
        f"{shots[0]}-shot" if (shots == shots[0]).all() else f"{shots.min()} to {shots.max()}-shot"
    )
    # Short panel titles, which fit side by side on a phone; the numbers go in the title.
    panels = (Panel(image=support, title="support set"), Panel(image=query, title="query set"))
    title = title or f"a {way}-way {shot} task: N = {n} support images, M = {m} query images"
    widest = max(support.shape[1], query.shape[1]) / support.shape[0]  # width over height
    height = 0.45 * way + 0.7
    return Chart(panels, title=title, legend="none", panel_size=(height * min(widest, 3), height))


def episode_images(episode: Any, *, title: str = "", backend: str = "matplotlib") -> Any:
    """A task's support set (left) and query set (right), one row per class.

    Row k of both pictures holds the images of episode label k, so a query image belongs to
    the class of the support images in its row. ``title`` is the figure's title; by default
    it gives the way, the shot, N and the number of query images M. Images must have pixel
    values in [0, 1] (pass a dataset without ``normalization``).
    """
    backend = check_backend(backend)
    return draw(episode_images_chart(episode, title=title), backend)
