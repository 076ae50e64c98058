"""A drawn figure as a notebook shows it: a sharp PNG, its alt text, and the plotly version.

Every figure function of `litekit.plots` draws through `litekit.plots.draw`, which records
on the figure what its chart shows (`litekit.plots.chart.describe`); `alt_text` reads it
back. `figure_bundle` turns a figure, or the pair of a static and an interactive figure of
the same chart, into one notebook output:

- ``image/png``: the static figure at twice its pixel density, with the size it is shown at
  in the output's metadata (as IPython's "retina" figures do), so it stays sharp on a
  high-density screen or a projector;
- ``application/vnd.plotly.v1+json``: the interactive figure, when there is one. JupyterLab
  draws it and the documentation site makes it a live figure, keeping the PNG for readers
  without JavaScript: one figure per plot, not two;
- ``text/plain`` and ``metadata["litekit"]["alt"]``: the alt text.

A diagram (`litekit.plots.diagrams`, SVG text) is one output too (`svg_bundle`):
``image/svg+xml``, with its ``<title>`` and ``<desc>`` as the alt text.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from typing import Any

ALT = "_litekit_alt"  # where `draw` records a figure's description
PLOTLY = "application/vnd.plotly.v1+json"
SCALE = 2  # pixels per displayed pixel of the static images


def remember_alt(figure: Any, text: str) -> Any:
    """Record ``text`` as ``figure``'s alt text (matplotlib and plotly figures alike)."""
    setattr(figure, ALT, text)
    return figure


def alt_text(figure: Any) -> str:
    """What ``figure`` shows, in words: the description of the chart it was drawn from.

    A figure that `litekit.plots` did not draw gets its title (matplotlib's suptitle or the
    first axes' title, plotly's layout title), or "A figure" when it has none.
    """
    text = getattr(figure, ALT, None)
    if text:
        return str(text)
    title = ""
    if hasattr(figure, "get_suptitle"):
        title = figure.get_suptitle() or next((ax.get_title() for ax in figure.axes), "")
    elif hasattr(figure, "layout"):
        title = figure.layout.title.text or ""
    return title or "A figure"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels of PNG ``data``, read from its header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", data[16:24])


def png(figure: Any, scale: int = SCALE) -> tuple[bytes, int, int]:
    """A matplotlib figure as PNG bytes at ``scale`` times its dpi, and the width and height
    to show it at (its pixel size divided by ``scale``)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=scale * figure.dpi, bbox_inches="tight")
    data = buffer.getvalue()
    width, height = png_size(data)
    return data, round(width / scale), round(height / scale)


def figure_bundle(static: Any, interactive: Any = None) -> tuple[dict, dict]:
    """``(data, metadata)`` of one display output: see the module docstring.

    ``static`` is a matplotlib figure; ``interactive``, if given, a plotly figure of the
    same chart.
    """
    alt = alt_text(static)
    data, width, height = png(static)
    bundle: dict[str, Any] = {
        "image/png": base64.b64encode(data).decode("ascii"),
        "text/plain": alt,
    }
    metadata: dict[str, Any] = {
        "image/png": {"width": width, "height": height},
        "litekit": {"alt": alt},
    }
    if interactive is not None:
        import plotly.io as pio

        bundle[PLOTLY] = json.loads(pio.to_json(interactive, validate=False))
    return bundle, metadata


def svg_alt(svg: str) -> str:
    """An SVG document's alt text: its ``<title>``, then its ``<desc>``."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg)
    texts = [
        (element.text or "").strip()
        for name in ("title", "desc")
        for element in root.iter("{http://www.w3.org/2000/svg}" + name)
    ]
    return ". ".join(text.rstrip(".") for text in texts if text) + "." if any(texts) else ""


def svg_bundle(svg: str) -> tuple[dict, dict]:
    """``(data, metadata)`` of one display output showing an SVG diagram, with its alt text."""
    alt = svg_alt(svg) or "A diagram"
    return {"image/svg+xml": svg, "text/plain": alt}, {"litekit": {"alt": alt}}
