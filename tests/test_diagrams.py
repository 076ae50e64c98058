"""The diagrams (`litekit.plots.diagrams`): SVG that scales, reads on a phone, says what it shows.

Each diagram is well-formed SVG with a ``viewBox`` (so it scales to any width), a non-empty
``<title>`` and ``<desc>`` named by ``aria-labelledby``, no text smaller than 24 units in its
720-unit width (about 12 px on a 390 px screen) and every text inside the picture; the
copies the site shows (docs/_static/) are exactly what the generator writes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from litekit.plots import diagrams

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"


def parsed(name: str) -> ET.Element:
    return ET.fromstring(diagrams.DIAGRAMS[name]())


@pytest.mark.parametrize("name", sorted(diagrams.DIAGRAMS))
def test_diagram_scales_and_describes_itself(name):
    root = parsed(name)
    x, y, width, height = map(float, root.get("viewBox").split())
    assert (x, y, width) == (0, 0, diagrams.WIDTH) and height > 0
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.text and len(desc.text) > 200  # a description a screen reader can read out
    assert root.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]


@pytest.mark.parametrize("name", sorted(diagrams.DIAGRAMS))
def test_every_text_is_large_enough_and_inside_the_picture(name):
    root = parsed(name)
    _, _, width, height = map(float, root.get("viewBox").split())
    texts = list(root.iter(f"{SVG}text"))
    assert len(texts) > 10
    for text in texts:
        assert float(text.get("font-size")) >= diagrams.SMALLEST_TEXT
        for span in text.iter(f"{SVG}tspan"):
            if span.get("font-size"):
                assert float(span.get("font-size")) >= diagrams.SMALLEST_TEXT
        x, y = float(text.get("x")), float(text.get("y"))
        assert 0 <= x <= width and 0 < y <= height, (x, y, "".join(text.itertext()))
        if text.get("text-anchor") == "middle":  # roughly: 0.6 em per character
            half = (
                0.3
                * float(text.get("font-size"))
                * max(len("".join(s.itertext())) for s in text if s.tag == f"{SVG}tspan")
            )
            assert half <= min(x, width - x) + 10, "".join(text.itertext())


def test_subscripts_drop_and_the_text_after_them_comes_back_up():
    spans = diagrams._subscripts("g_{Q} + x_{n} end", 30)
    shifts = [int(v) for v in re.findall(r'dy="(-?\d+)"', spans)]
    assert shifts == [8, -8, 8, -8]  # down for Q, up for " + x", down for n, up for " end"
    assert "g" in spans and "Q</tspan>" in spans and " end</tspan>" in spans
    assert diagrams._subscripts("a < b", 30) == "a &lt; b"


def test_the_lite_diagram_names_each_part_of_the_step():
    text = " ".join(parsed("lite_step.svg").itertext())
    for phrase in ("N support", "no gradient", "random h", "with gradient", "× N/h",
                   "M query", "query loss L", "unbiased"):  # fmt: skip
        assert phrase in text, phrase


@pytest.mark.parametrize("name", sorted(diagrams.DIAGRAMS))
def test_the_site_copies_are_up_to_date(name):
    """Run `python -m litekit.plots.diagrams docs/_static` after changing a diagram."""
    assert (ROOT / "docs" / "_static" / name).read_text(encoding="utf-8") == diagrams.DIAGRAMS[
        name
    ]()


def test_write_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="^folder="):
        diagrams.write(tmp_path / "missing")
    assert [p.name for p in diagrams.write(tmp_path)] == list(diagrams.DIAGRAMS)
    assert diagrams.main([]) == 2
