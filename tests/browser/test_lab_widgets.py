"""A student's path, for real: JupyterLab in Chromium, run notebook 03, drag the h slider.

The test copies notebook 03 into a temporary JupyterLab root, opens it in headless
Chromium, runs all cells, checks that the variance panel rendered as live widgets (not the
"Loading widget..." fallback), moves the h slider one step with the keyboard, and checks
that the figure is redrawn and the panel's note then reads exactly what
`litekit.widgets.explore` returns for the new h when called here, without a kernel. A
screenshot goes to build/browser/.
"""

from __future__ import annotations

import ast
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from litekit.widgets import explore

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03_subset_size_vs_variance.ipynb"
SECONDS = 1000  # Playwright timeouts are in milliseconds


def notebook_parameters(path: Path) -> dict:
    """The literal values assigned in the notebook's ``parameters`` cell."""
    notebook = nbformat.read(path, as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    values = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                values[node.targets[0].id] = eval(  # dict(...) calls of literals only
                    compile(ast.Expression(node.value), str(path), "eval"), {"dict": dict}
                )
    return values


@pytest.mark.timeout(180)
def test_h_slider_in_jupyterlab_redraws_with_the_plain_function(
    lab_server, lab_root, page, artifacts
):
    started = time.monotonic()
    shutil.copy(NOTEBOOK, lab_root / NOTEBOOK.name)
    parameters = notebook_parameters(NOTEBOOK)
    panel, draws = parameters["PANEL"], parameters["PANEL_DRAWS"]
    try:
        page.goto(f"{lab_server}lab/tree/{NOTEBOOK.name}")
        kernel = "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
        page.wait_for_function(f"{kernel}?.status === 'idle'", timeout=90 * SECONDS)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

        note = page.locator(".widget-html", has_text=re.compile(r"h = \d+ of N = "))
        note.wait_for(timeout=120 * SECONDS)
        assert page.get_by_text("Loading widget...").count() == 0
        slider = page.locator(".widget-hslider").filter(
            has=page.locator(".widget-label", has_text=re.compile(r"^h$"))
        )
        assert slider.count() == 1, "one h slider in the panel"
        start = panel["h"]
        assert note.inner_text().startswith(f"h = {start} of N = {panel['n']}")

        figure = page.locator(".widget-output img")
        assert figure.count() == 1, "the panel shows its figure"
        before = figure.get_attribute("src")

        handle = slider.locator(".noUi-handle")
        handle.focus()
        handle.press("ArrowRight")
        moved = start + 1
        page.wait_for_function(
            "text => [...document.querySelectorAll('.widget-html')]"
            ".some(e => e.innerText.startsWith(text))",
            arg=f"h = {moved} of N = {panel['n']}",
            timeout=60 * SECONDS,
        )
        page.wait_for_function(  # the note comes first, then the redrawn figure
            "before => { const i = document.querySelector('.widget-output img');"
            " return i !== null && i.getAttribute('src') !== before; }",
            arg=before,
            timeout=60 * SECONDS,
        )
        page.screenshot(path=str(artifacts / "notebook03_h_slider.png"), full_page=True)
        expected = explore(**{**panel, "h": moved}, draws=draws).note
        assert note.inner_text().strip() == expected
        assert slider.locator(".widget-readout").inner_text().strip() == str(moved)
    except Exception:
        page.screenshot(path=str(artifacts / "notebook03_failure.png"), full_page=True)
        raise
    assert time.monotonic() - started < 120, "the browser test should stay under 2 minutes"
