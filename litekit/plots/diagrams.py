"""Two diagrams as SVG text, drawn by hand: one LITE training step, and FiLM.

`lite_step` shows one meta-training step with LITE: all N support images through the
encoder without gradient, a random h of them again with gradient, their gradient scaled by
N/h, the query images' own path, and the estimate the backward pass computes. `film` shows
how CNAPs and Simple CNAPs adapt one shared backbone to each task.

Each is a complete SVG document (a ``viewBox``, so it scales to any width; text of at least
24 units in a 640-unit-wide picture, about 13 px on a 390 px phone screen; a ``<title>`` and
a ``<desc>`` for screen readers), the same text at every call. Show one in a notebook with
``IPython.display.SVG(lite_step())``; ``python -m litekit.plots.diagrams FOLDER`` writes both
into FOLDER (the documentation's copies in docs/_static/ are written that way, and a test
checks they are up to date).
"""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path

WIDTH = 640
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
GRADIENT = "#1b7837"  # paths that carry a gradient (litekit's LITE colour)
NO_GRADIENT = "#636363"  # values only
QUERY = "#2166ac"
SET = "#d6604d"
TILE_COLOURS = ("#9e9ac8", "#a1d99b", "#fdae6b", "#9ecae1", "#fc9272", "#bcbddc")
SMALLEST_TEXT = 24  # units; tests check no text is smaller


def _text(x: float, y: float, lines: list[str], *, size: int = 26, anchor: str = "middle",
          weight: str = "normal", fill: str = "#222") -> str:  # fmt: skip
    """Lines of text, the first baseline at y. ``_{...}`` in a line is set as a subscript."""
    spans = []
    for i, line in enumerate(lines):
        dy = "0" if i == 0 else f"{1.2 * size:g}"
        spans.append(f'<tspan x="{x:g}" dy="{dy}">{_subscripts(line, size)}</tspan>')
    return (
        f'<text x="{x:g}" y="{y:g}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="{fill}">{"".join(spans)}</text>'
    )


def _subscripts(line: str, size: int) -> str:
    """Escape ``line``; each ``_{...}`` becomes a lowered, smaller span, and the text after
    it is raised back to the baseline."""
    out, rest, raise_next = [], line, False
    shift = round(0.25 * size)
    small = max(SMALLEST_TEXT, round(0.8 * size))
    while True:
        head, found, tail = rest.partition("_{")
        back = f' dy="-{shift}"' if raise_next else ""
        if head or back:
            out.append(f"<tspan{back}>{escape(head)}</tspan>" if back else escape(head))
        if not found:
            return "".join(out)
        sub, _, rest = tail.partition("}")
        out.append(f'<tspan dy="{shift}" font-size="{small}">{escape(sub)}</tspan>')
        raise_next = True


def _box(x: float, y: float, w: float, h: float, colour: str, *, dashed: bool = False,
         fill: str = "#ffffff") -> str:  # fmt: skip
    dash = ' stroke-dasharray="10 6"' if dashed else ""
    return (
        f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="10" fill="{fill}" '
        f'stroke="{colour}" stroke-width="3"{dash}/>'
    )


def _arrow(points: list[tuple[float, float]], colour: str, *, dashed: bool = False) -> str:
    """A line through ``points`` with an arrowhead at the last one."""
    dash = ' stroke-dasharray="10 6"' if dashed else ""
    path = " ".join(f"{x:g},{y:g}" for x, y in points)
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    back, half = 16, 8
    bx, by = x1 - back * ux, y1 - back * uy
    head = (
        f"{x1:g},{y1:g} {bx - half * uy:g},{by + half * ux:g} {bx + half * uy:g},{by - half * ux:g}"
    )
    return (
        f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="3"{dash}/>'
        f'<polygon points="{head}" fill="{colour}"/>'
    )


def _tiles(x: float, y: float, count: int, columns: int, *, side: int = 40,
           border: str | None = None, first: int = 0) -> str:  # fmt: skip
    """``count`` small image squares in rows of ``columns``."""
    parts = []
    for i in range(count):
        tx, ty = x + (i % columns) * (side + 8), y + (i // columns) * (side + 8)
        colour = TILE_COLOURS[(first + i) % len(TILE_COLOURS)]
        stroke = border or "#555"
        width = 4 if border else 1.5
        parts.append(
            f'<rect x="{tx:g}" y="{ty:g}" width="{side}" height="{side}" rx="4" '
            f'fill="{colour}" stroke="{stroke}" stroke-width="{width}"/>'
        )
    return "".join(parts)


def _rows(x: float, y: float, count: int, *, width: float = 150, height: int = 12,
          colour: str = NO_GRADIENT, marked: tuple[int, ...] = ()) -> str:  # fmt: skip
    """An embedding matrix: ``count`` thin rows; the ``marked`` ones in the gradient colour."""
    parts = []
    for i in range(count):
        fill = GRADIENT if i in marked else "#d9d9d9"
        stroke = GRADIENT if i in marked else colour
        parts.append(
            f'<rect x="{x:g}" y="{y + i * (height + 4):g}" width="{width:g}" height="{height}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
        )
    return "".join(parts)


def _document(height: int, title: str, description: str, body: list[str], name: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{name}-title {name}-desc" font-family="{FONT}">\n'
        f'<title id="{name}-title">{escape(title)}</title>\n'
        f'<desc id="{name}-desc">{escape(description)}</desc>\n'
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>\n'
        + "\n".join(body)
        + "\n</svg>\n"
    )


LITE_TITLE = "One LITE meta-training step"
LITE_DESCRIPTION = (
    "All N support images go through the encoder without gradient, in chunks, giving the "
    "values of all N embeddings. A random subset of h of them goes through the encoder "
    "again, with gradient; the gradient through those h rows is multiplied by N/h. The head "
    "builds the task's classifier from all N embeddings, the M query images go through the "
    "encoder with gradient, and the query loss L is back-propagated. Its gradient is the "
    "estimate g_Q + (N/h) times the sum of g_n over the h sampled images: the query term is "
    "exact, the support term is an unbiased estimate of the sum over all N images, and only "
    "h support images need their activations kept in memory."
)


def lite_step() -> str:
    """One LITE training step as an SVG document (see the module docstring)."""
    left, mid, right = 14, 196, 440  # the columns: images, encoders, embeddings
    body = [_text(WIDTH / 2, 44, [LITE_TITLE], size=30, weight="bold")]
    # 1. the no-grad pass over all N support images
    body += [
        _tiles(left, 84, 6, 3),
        _text(left + 68, 210, ["N support", "images"]),
        _arrow([(156, 130), (mid - 4, 130)], NO_GRADIENT, dashed=True),
        _box(mid, 76, 200, 116, NO_GRADIENT, dashed=True),
        _text(mid + 100, 118, ["encoder f_{θ}", "no gradient,", "in chunks"], size=24),
        _arrow([(mid + 200, 130), (right - 4, 130)], NO_GRADIENT, dashed=True),
        _rows(right, 84, 6, width=140),
        _text(right + 70, 210, ["N embeddings:", "values"], size=24),
    ]
    # 2. the h sampled images again, with gradient
    body += [
        _tiles(left, 300, 2, 3, border=GRADIENT, first=1),
        _text(left + 68, 380, ["random h", "of the N"], fill=GRADIENT),
        _arrow([(110, 320), (mid - 4, 320)], GRADIENT),
        _box(mid, 280, 200, 84, GRADIENT),
        _text(mid + 100, 314, ["encoder f_{θ}", "with gradient"], size=24),
        _arrow([(mid + 200, 320), (right - 4, 320)], GRADIENT),
        _rows(right, 296, 2, width=140, marked=(0, 1)),
        _text(right + 70, 366, ["h rows:", "gradient × N/h"], size=24, fill=GRADIENT),
    ]
    # 3. the head: the task's classifier from all N embeddings (values), h of them with gradient
    body += [
        _arrow(
            [(right + 144, 130), (622, 130), (622, 496), (594, 496)], NO_GRADIENT, dashed=True
        ),  # fmt: skip
        _arrow([(right + 70, 416), (right + 70, 452)], GRADIENT),
        _box(186, 456, 404, 96, "#222"),
        _text(388, 494, ["head: the task's classifier", "from all N embeddings"], size=24),
    ]
    # 4. the query path
    body += [
        _tiles(left, 610, 3, 3, border=QUERY, first=3),
        _text(left + 68, 690, ["M query", "images"], fill=QUERY),
        _arrow([(156, 630), (mid - 4, 630)], QUERY),
        _box(mid, 592, 200, 84, QUERY),
        _text(mid + 100, 626, ["encoder f_{θ}", "with gradient"], size=24),
        _arrow([(mid + 100, 592), (mid + 100, 556)], QUERY),
    ]
    # 5. the loss and what its backward pass computes
    body += [
        _arrow([(520, 552), (520, 696)], "#222"),
        _box(186, 700, 404, 80, "#222", fill="#f7f7f7"),
        _text(388, 736, ["query loss L,", "then backward"], size=24),
        _text(
            WIDTH / 2,
            830,
            ["gradient: g_{Q} + (N/h) × Σ g_{n} over", "the h sampled images; unbiased"],
            size=26,
        ),  # fmt: skip
    ]
    # 6. the key
    body += [
        _arrow([(30, 916), (100, 916)], NO_GRADIENT, dashed=True),
        _text(114, 924, ["values only, no gradient"], size=24, anchor="start"),
        _arrow([(30, 960), (100, 960)], GRADIENT),
        _text(114, 968, ["gradient flows (support)"], size=24, anchor="start"),
        _arrow([(30, 1004), (100, 1004)], QUERY),
        _text(114, 1012, ["gradient flows (query)"], size=24, anchor="start"),
    ]
    return _document(1040, LITE_TITLE, LITE_DESCRIPTION, body, "lite-step")


FILM_TITLE = "FiLM: a backbone adapted to the task"
FILM_DESCRIPTION = (
    "A set encoder codes each support image; the codes are averaged into one task code z. "
    "A FiLM generator turns z into a scale gamma and a shift beta for every channel of each "
    "normalisation layer of the backbone. Inside the backbone, after each such layer, "
    "channel c's output y becomes gamma_c times y plus beta_c. The backbone's own weights "
    "are shared by all tasks; only gamma and beta change from task to task, and every "
    "image, support or query, is embedded by the adapted backbone."
)


def film() -> str:
    """FiLM in CNAPs and Simple CNAPs as an SVG document (see the module docstring)."""
    body = [_text(WIDTH / 2, 44, [FILM_TITLE], size=28, weight="bold")]
    # the task code
    body += [
        _tiles(14, 84, 6, 3),
        _text(82, 210, ["N support", "images"]),
        _arrow([(156, 130), (186, 130)], SET),
        _box(190, 76, 176, 116, SET),
        _text(278, 118, ["set encoder", "s_{φ}, each", "image"], size=24),
        _arrow([(366, 130), (396, 130)], SET),
        _box(400, 86, 200, 96, SET, fill="#fddbc7"),
        _text(500, 124, ["task code z:", "mean of N"], size=24),
        _arrow([(500, 182), (500, 236)], SET),
        _box(390, 240, 220, 96, SET),
        _text(500, 278, ["FiLM", "generator"], size=24),
        _arrow([(500, 336), (500, 390)], SET),
        _text(500, 418, ["γ, β for each", "channel, per layer"], size=24, fill=SET),
    ]
    # the adapted backbone
    body += [
        _box(14, 490, 612, 220, "#222", fill="#f7f7f7"),
        _box(30, 520, 110, 80, NO_GRADIENT),
        _text(85, 568, ["conv"], size=24),
        _arrow([(140, 560), (160, 560)], "#222"),
        _box(164, 520, 110, 80, NO_GRADIENT),
        _text(219, 568, ["norm"], size=24),
        _arrow([(274, 560), (294, 560)], "#222"),
        _box(298, 520, 180, 80, SET, fill="#fddbc7"),
        _text(388, 556, ["FiLM:", "γ_{c}·y + β_{c}"], size=24),
        _arrow([(478, 560), (498, 560)], "#222"),
        _box(502, 520, 104, 80, NO_GRADIENT),
        _text(554, 568, ["ReLU"], size=24),
        _arrow([(500, 456), (500, 476), (388, 476), (388, 516)], SET),
        _text(
            320,
            648,
            ["… in every block (Conv-4: 4 blocks);", "its weights θ: the same for every task"],
            size=24,
        ),  # fmt: skip
    ]
    # images in, embeddings out
    body += [
        _text(
            WIDTH / 2,
            770,
            ["support and query images go through", "the adapted backbone:"],
            size=26,
        ),  # fmt: skip
        _text(WIDTH / 2, 838, ["e = f_{θ}(x; γ, β)"], size=28, weight="bold"),
    ]
    return _document(870, FILM_TITLE, FILM_DESCRIPTION, body, "film")


DIAGRAMS = {"lite_step.svg": lite_step, "film.svg": film}


def write(folder: str | Path) -> list[Path]:
    """Write every diagram into ``folder`` (which must exist); return the paths."""
    folder = Path(folder)
    if not folder.is_dir():
        from litekit._checks import bad_argument

        raise bad_argument("folder", str(folder), "pass an existing folder.")
    paths = []
    for name, draw in DIAGRAMS.items():
        path = folder / name
        path.write_text(draw(), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m litekit.plots.diagrams FOLDER", file=sys.stderr)
        return 2
    for path in write(argv[0]):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
