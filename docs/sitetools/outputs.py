"""From an executed notebook to the notebook a page is made of.

A static page has no kernel and loads nothing from the network, so two kinds of output
change on the way:

- plotly figures (plotly's mimetype, JSON) become a ``<div>`` and a call to ``Plotly.newPlot``;
  the page loads plotly.js from the site itself (see `assets`), and the figure stays
  interactive: zoom, hover, legend toggles;
- widgets become the state the run left them in: the values of their controls, their HTML
  and the outputs their ``Output`` areas hold (the panel's figure at its default values, the
  same figure the notebook's headless branch draws), with a note that the panel is live in
  JupyterLab. Progress bars, which hold no output, are dropped.

Everything else (matplotlib PNGs, text, tables) stays as the run left it.
"""

from __future__ import annotations

import copy
import html
from typing import Any

import nbformat

PLOTLY = "application/vnd.plotly.v1+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS_MODELS = ("FloatProgressModel", "IntProgressModel")
TEXT_MODELS = ("HTMLModel", "HTMLMathModel", "LabelModel")
LIVE_TITLE = "Interactive panel (live in JupyterLab)"
LIVE_NOTE = (
    "Shown here as it first drew, at its default values. In JupyterLab (<code>make lab</code>) "
    "the panel is live: run the notebook and its controls redraw the figure."
)


def plotly_html(figure: dict, div_id: str) -> str:
    """A plotly figure as an HTML fragment that draws with the page's own plotly.js."""
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
    return f'<div class="litekit-plotly">{fragment}</div>'


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


def convert_outputs(outputs: list[dict], state: dict, prefix: str) -> list[dict]:
    """One cell's outputs with widgets made static and plotly figures made HTML."""
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
        if PLOTLY in data:
            fragment = plotly_html(data[PLOTLY], f"{prefix}-{number}")
            output = nbformat.v4.new_output("display_data", data={"text/html": fragment})
        converted.append(output)
    return converted


def page_notebook(executed: dict, note: str | None = None) -> dict:
    """The notebook a page shows: outputs converted, widget state dropped, ``note`` added.

    ``note`` (MyST markdown) goes in a cell after the first one, which holds the title.
    """
    notebook = nbformat.from_dict(copy.deepcopy(executed))
    widgets = notebook.metadata.pop("widgets", {})
    state = widgets.get(WIDGET_STATE, {}).get("state", {})
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            cell.outputs = convert_outputs(cell.outputs, state, f"plotly-cell{index}")
    if note:
        notebook.cells.insert(1, nbformat.v4.new_markdown_cell(note))
    return notebook
