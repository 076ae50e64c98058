"""From an executed notebook to the notebook a page is made of.

A static page has no kernel and loads nothing from the network, so three kinds of output
change on the way:

- figures: `litekit.notebook.show` displays each figure as one output holding a PNG (at
  twice its displayed size, with its alt text in the output's metadata) and, in an
  interactive run, the plotly figure of the same chart. On the page it becomes one figure:
  the live plotly figure (a ``<div>`` drawn by the site's own plotly.js, see `assets`: zoom,
  hover, legend toggles), with the PNG inside ``<noscript>`` for readers without JavaScript;
  a figure without a plotly version is the PNG. Either way the image is a file of the site
  (`FigureFiles`) with its alt text, not a hash;
- widgets become the state the run left them in: the values of their controls, their HTML
  and the outputs their ``Output`` areas hold (the panel's figure as it first drew, the same
  figure the notebook's headless branch draws), with a note that the panel is live in
  JupyterLab. Progress bars, which hold no output, are dropped;
- a plotly figure displayed on its own (plotly's mimetype, JSON) becomes the live figure;
- a diagram (`litekit.plots.diagrams`, shown as ``image/svg+xml``) becomes an SVG file of
  the site, shown as an ``<img>`` with the diagram's title and description as its alt text,
  at its own width and narrower on a narrow screen.

Everything else (text, tables, Markdown) stays as the run left it. What changes in the
cells themselves (the header, the parameters box, test markers) is in `cells`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html
from pathlib import Path
from typing import Any

import nbformat

PLOTLY = "application/vnd.plotly.v1+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS_MODELS = ("FloatProgressModel", "IntProgressModel")
TEXT_MODELS = ("HTMLModel", "HTMLMathModel", "LabelModel")
LIVE_TITLE = "Interactive panel (live in JupyterLab)"
LIVE_NOTE = (
    "Shown here as it first drew, with the values this run started it with (listed below). "
    "In JupyterLab (<code>make lab</code>) the panel is live: run the notebook and its "
    "controls redraw the figure."
)
FALLBACK_ALT = "A figure drawn by the code above"


class FigureFiles:
    """Where a page's images go: PNG files named by their content's SHA-256, in ``folder``,
    reached from the pages as ``url`` + name (``../figures/``)."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder, self.url = folder, url
        self.written: set[Path] = set()

    def add(self, png_base64: str) -> str:
        """Write the image (unless the same one is there) and return its URL."""
        return self._write(base64.b64decode(png_base64), ".png")

    def add_svg(self, svg: str) -> str:
        """Write an SVG document (unless the same one is there) and return its URL."""
        return self._write(svg.encode("utf-8"), ".svg")

    def _write(self, data: bytes, suffix: str) -> str:
        path = self.folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        self.written.add(path)
        return self.url + path.name


def image_tag(output: dict, files: FigureFiles) -> str:
    """The ``<img>`` of a figure output: its file, its displayed size, its alt text."""
    data, metadata = output.get("data", {}), output.get("metadata", {})
    alt = metadata.get("litekit", {}).get("alt") or FALLBACK_ALT
    size = metadata.get("image/png", {})
    dimensions = "".join(f' {key}="{int(size[key])}"' for key in ("width", "height") if key in size)
    return (
        f'<img src="{files.add(data["image/png"])}" alt="{html.escape(alt, quote=True)}"'
        f'{dimensions} class="litekit-figure-image">'
    )


def diagram_output(output: dict, files: FigureFiles) -> dict:
    """A diagram (SVG) output as HTML: an ``<img>`` of its file, at the size its document
    gives, with its alt text (`litekit.plots.export.svg_alt`)."""
    import xml.etree.ElementTree as ET

    svg = output["data"]["image/svg+xml"]
    svg = "".join(svg) if isinstance(svg, list) else svg
    root = ET.fromstring(svg)
    alt = output.get("metadata", {}).get("litekit", {}).get("alt") or FALLBACK_ALT
    size = "".join(f' {key}="{root.get(key)}"' for key in ("width", "height") if root.get(key))
    image = (
        f'<img src="{files.add_svg(svg)}" alt="{html.escape(alt, quote=True)}"{size} '
        'class="litekit-figure-image">'
    )
    fragment = f'<figure class="litekit-figure">{image}</figure>'
    return nbformat.v4.new_output("display_data", data={"text/html": fragment})


def figure_output(output: dict, files: FigureFiles, div_id: str) -> dict:
    """One figure output as HTML: the live plotly figure with its PNG in ``<noscript>``, or
    the PNG alone; see the module docstring."""
    data = output.get("data", {})
    alt = output.get("metadata", {}).get("litekit", {}).get("alt") or FALLBACK_ALT
    image = image_tag(output, files)
    if PLOTLY in data:
        fragment = plotly_html(data[PLOTLY], div_id, alt, fallback=image)
    else:
        fragment = f'<figure class="litekit-figure">{image}</figure>'
    return nbformat.v4.new_output("display_data", data={"text/html": fragment})


def plotly_html(figure: dict, div_id: str, alt: str = "", fallback: str = "") -> str:
    """A plotly figure as an HTML fragment that draws with the page's own plotly.js.

    ``alt`` labels it for screen readers (``role="figure"``); ``fallback``, an ``<img>``, is
    shown instead where JavaScript is off.
    """
    import plotly.io as pio

    config = {**figure.get("config", {}), "responsive": True, "displaylogo": False}
    fragment = pio.to_html(
        {"data": figure.get("data", []), "layout": figure.get("layout", {})},
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        validate=False,
        config=config,
    )
    label = f' role="figure" aria-label="{html.escape(alt, quote=True)}"' if alt else ""
    spare = f"<noscript>{fallback}</noscript>" if fallback else ""
    return f'<div class="litekit-plotly"{label}>{fragment}{spare}</div>'


class WidgetTree:
    """What a widget and its children hold, read from the notebook's saved widget state."""

    def __init__(self, state: dict) -> None:
        self.state = state
        self.controls: list[tuple[str, Any]] = []
        self.texts: list[str] = []
        self.outputs: list[dict] = []
        self.progress = False
        self.found = False

    def visit(self, model_id: str, seen: set[str] | None = None) -> WidgetTree:
        """Collect controls, texts, outputs and progress bars below ``model_id``."""
        seen = set() if seen is None else seen
        model = self.state.get(model_id)
        if model is None or model_id in seen:
            return self
        seen.add(model_id)
        self.found = True
        name, values = model.get("model_name", ""), model.get("state", {})
        if name == "OutputModel":
            self.outputs.extend(copy.deepcopy(values.get("outputs", [])))
        elif name in PROGRESS_MODELS:
            self.progress = True
        elif name in TEXT_MODELS:
            text = str(values.get("value", ""))
            self.texts.append(text if name != "LabelModel" else html.escape(text))
        elif "children" not in values:
            value = control_value(values)
            if value is not None:
                self.controls.append((str(values.get("description", "")), value))
        for child in values.get("children", []):
            self.visit(str(child).removeprefix("IPY_MODEL_"), seen)
        return self


def control_value(values: dict) -> Any:
    """A control's value from its saved state (selection widgets keep an index and labels)."""
    if "value" in values:
        return values["value"]
    labels, index = values.get("_options_labels"), values.get("index")
    if labels is not None and isinstance(index, int) and 0 <= index < len(labels):
        return labels[index]
    return None


def static_widget(tree: WidgetTree) -> list[dict]:
    """The outputs that stand for one widget on a static page.

    None for a progress bar (it holds no output) or a widget whose state the run did not
    save (nothing to show).
    """
    if not tree.found or (tree.progress and not tree.outputs):
        return []
    parts = [
        f'<p class="admonition-title">{LIVE_TITLE}</p>',
        f'<p class="litekit-widget-live">{LIVE_NOTE}</p>',
    ]
    if tree.controls:
        values = ", ".join(
            f"{html.escape(label or 'value')} = <code>{html.escape(str(value))}</code>"
            for label, value in tree.controls
        )
        parts.append(f'<p class="litekit-widget-controls">Controls: {values}.</p>')
    parts += [f'<div class="litekit-widget-text">{text}</div>' for text in tree.texts if text]
    box = '<div class="admonition note litekit-widget">' + "".join(parts) + "</div>"
    note = nbformat.v4.new_output("display_data", data={"text/html": box})
    return [note] + [nbformat.from_dict(output) for output in tree.outputs]


def convert_outputs(
    outputs: list[dict], state: dict, prefix: str, files: FigureFiles | None = None
) -> list[dict]:
    """One cell's outputs with widgets made static, figures made HTML (``files`` receives
    their images; without it, PNGs stay as they are) and plotly figures made live."""
    widened: list[dict] = []
    for output in outputs:
        data = output.get("data", {})
        if WIDGET_VIEW in data:
            widened += static_widget(WidgetTree(state).visit(data[WIDGET_VIEW]["model_id"]))
        else:
            widened.append(output)
    converted = []
    for number, output in enumerate(widened):
        data = output.get("data", {})
        if "image/png" in data and files is not None:
            output = figure_output(output, files, f"{prefix}-{number}")
        elif "image/svg+xml" in data and files is not None:
            output = diagram_output(output, files)
        elif PLOTLY in data:
            fragment = plotly_html(data[PLOTLY], f"{prefix}-{number}", FALLBACK_ALT)
            output = nbformat.v4.new_output("display_data", data={"text/html": fragment})
        converted.append(output)
    return converted


def page_notebook(
    executed: dict, header: str | None = None, files: FigureFiles | None = None
) -> dict:
    """The notebook a page shows: outputs converted, widget state dropped, cells prepared
    for reading (`cells.prepare`: ``header`` under the title, the parameters in a box).

    ``files`` receives the figures' images (see `FigureFiles`).
    """
    from sitetools import cells

    notebook = nbformat.from_dict(copy.deepcopy(executed))
    widgets = notebook.metadata.pop("widgets", {})
    state = widgets.get(WIDGET_STATE, {}).get("state", {})
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            cell.outputs = convert_outputs(cell.outputs, state, f"figure-cell{index}", files)
    return cells.prepare(notebook, header)
