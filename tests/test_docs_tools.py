"""The documentation site's tools (docs/sitetools): when an executed notebook is reused, how
its outputs become static, and how the API pages are made from the one module list."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
from sitetools import executed, outputs, site  # noqa: E402


def write_notebook(path: Path, metadata: dict | None = None, source: str = "x = 1") -> Path:
    notebook = nbformat.v4.new_notebook(metadata=metadata or {})
    notebook.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell(source)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project: a package, the reference measurements and one notebook."""
    (tmp_path / "litekit").mkdir()
    (tmp_path / "litekit" / "core.py").write_text("A = 1\n")
    (tmp_path / "benchmarks" / "reference").mkdir(parents=True)
    (tmp_path / "benchmarks" / "reference" / "step.jsonl").write_text("{}\n")
    ci = {"litekit": {"ci_parameters": {"STEPS": 2}}}
    write_notebook(tmp_path / "notebooks" / "01_demo.ipynb", ci)
    return tmp_path


def stamped_copy(copy: Path, source: Path, parameters: dict, root: Path) -> Path:
    """A finished run of ``source``: the notebook itself, stamped as the executor does."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(source.read_bytes())
    expected = executed.fingerprint(source, parameters, root)
    return executed.stamp(copy, expected, parameters, source, root)


def test_parameters_are_interactive_and_small_only_when_fast(project: Path):
    source = project / "notebooks" / "01_demo.ipynb"
    assert executed.parameters_for(source, fast=False) == {"INTERACTIVE": True}
    assert executed.parameters_for(source, fast=True) == {"STEPS": 2, "INTERACTIVE": True}


def test_fingerprint_follows_the_notebook_the_package_the_references_and_parameters(
    project: Path,
):
    source = project / "notebooks" / "01_demo.ipynb"
    parameters = {"INTERACTIVE": True}
    before = executed.fingerprint(source, parameters, project)
    assert executed.fingerprint(source, dict(parameters), project) == before
    (project / "litekit" / "__pycache__").mkdir()
    (project / "litekit" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"cache")
    assert executed.fingerprint(source, parameters, project) == before, "caches do not count"
    assert executed.fingerprint(source, {"INTERACTIVE": False}, project) != before
    changes = [
        project / "litekit" / "core.py",
        project / "benchmarks" / "reference" / "step.jsonl",
        source,
    ]
    for path in changes:
        original = path.read_bytes()
        path.write_bytes(original + b" ")
        assert executed.fingerprint(source, parameters, project) != before, path
        path.write_bytes(original)
    (project / "litekit" / "new.py").write_text("")
    assert executed.fingerprint(source, parameters, project) != before, "a new module counts"


def test_only_a_finished_stamped_run_of_todays_inputs_is_up_to_date(project: Path):
    source = project / "notebooks" / "01_demo.ipynb"
    parameters = executed.parameters_for(source, fast=False)
    copy = project / "build" / source.name
    assert not executed.is_up_to_date(copy, source, parameters, project), "missing"
    write_notebook(copy)
    assert not executed.is_up_to_date(copy, source, parameters, project), "no stamp"
    copy.write_text("{not json")
    assert not executed.is_up_to_date(copy, source, parameters, project), "unreadable"

    stamped_copy(copy, source, parameters, project)
    assert executed.is_up_to_date(copy, source, parameters, project)
    assert not executed.is_up_to_date(copy, source, {"INTERACTIVE": False}, project)

    (project / "litekit" / "core.py").write_text("A = 2\n")
    assert not executed.is_up_to_date(copy, source, parameters, project), "package changed"

    stamped_copy(copy, source, parameters, project)
    notebook = json.loads(copy.read_text())
    notebook["metadata"]["papermill"] = {"exception": True}
    copy.write_text(json.dumps(notebook))
    assert not executed.is_up_to_date(copy, source, parameters, project), "a failed run"


def test_builds_prefer_make_demos_copy_and_only_fast_builds_take_small_runs(project: Path):
    source = project / "notebooks" / "01_demo.ipynb"
    full, small = (executed.parameters_for(source, fast) for fast in (False, True))
    fast_copy = executed.own_copy(source, fast=True, root=project)
    stamped_copy(fast_copy, source, small, project)
    assert executed.reusable(source, fast=False, root=project) is None
    assert executed.reusable(source, fast=True, root=project) == fast_copy

    demo_copy = project / "build" / source.name
    stamped_copy(demo_copy, source, full, project)
    assert executed.reusable(source, fast=False, root=project) == demo_copy
    assert executed.reusable(source, fast=True, root=project) == demo_copy
    assert executed.own_copy(source, fast=False, root=project) != demo_copy, "never over demo's"


def test_bad_jobs_and_missing_notebooks_are_refused_before_anything_runs(project: Path):
    source = project / "notebooks" / "01_demo.ipynb"
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"^jobs=.*: run at least one notebook"):
            executed.ensure_executed([source], fast=True, jobs=jobs, root=project)
    assert not (project / "build").exists()
    with pytest.raises(ValueError, match=r"^notebook=.*: pass existing .ipynb files"):
        executed.main(
            ["run", "--into", str(project / "out"), str(source.with_name("missing.ipynb"))]
        )
    assert not (project / "out").exists()


def test_ensure_executed_runs_nothing_when_every_copy_is_up_to_date(project: Path):
    source = project / "notebooks" / "01_demo.ipynb"
    copy = stamped_copy(
        project / "build" / source.name, source, executed.parameters_for(source, False), project
    )
    said = []
    assert executed.ensure_executed([source], fast=False, root=project, log=said.append) == [copy]
    assert said == [f"reusing build/{source.name}"]


PNG = "iVBORw0KGgo="  # any base64 text stands for the picture here


def model(name: str, **state) -> dict:
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}


def widget_output(model_id: str) -> dict:
    data = {outputs.WIDGET_VIEW: {"model_id": model_id, "version_major": 2}, "text/plain": "VBox"}
    return nbformat.v4.new_output("display_data", data=data)


PANEL_STATE = {
    "panel": model(
        "VBoxModel", children=["IPY_MODEL_h", "IPY_MODEL_kind", "IPY_MODEL_note", "IPY_MODEL_out"]
    ),  # fmt: skip
    "h": model("IntSliderModel", description="h", value=8),
    "kind": model(
        "DropdownModel", description="learner", index=1, _options_labels=["protonets", "cnaps"]
    ),  # fmt: skip
    "note": model("HTMLModel", value="<span>h = 8 of N = 20</span>"),
    "out": model(
        "OutputModel",
        outputs=[{"output_type": "display_data", "data": {"image/png": PNG}, "metadata": {}}],
    ),  # fmt: skip
    "bar": model("HBoxModel", children=["IPY_MODEL_label", "IPY_MODEL_progress"]),
    "label": model("HTMLModel", value="estimator_stats: 100%"),
    "progress": model("FloatProgressModel", value=1.0),
}


def test_a_panel_becomes_its_first_drawing_with_its_controls_and_a_note():
    converted = outputs.convert_outputs([widget_output("panel")], PANEL_STATE, "p")
    assert [list(o["data"]) for o in converted] == [["text/html"], ["image/png"]]
    box = converted[0]["data"]["text/html"]
    assert outputs.LIVE_TITLE in box and "JupyterLab" in box
    assert "h = <code>8</code>" in box and "learner = <code>cnaps</code>" in box
    assert "<span>h = 8 of N = 20</span>" in box
    assert converted[1]["data"]["image/png"] == PNG


def test_progress_bars_and_widgets_without_saved_state_are_dropped():
    kept = nbformat.v4.new_output("stream", name="stdout", text="done\n")
    cell_outputs = [widget_output("bar"), widget_output("missing"), kept]
    assert outputs.convert_outputs(cell_outputs, PANEL_STATE, "p") == [kept]


def test_a_plotly_figure_becomes_html_that_draws_with_the_pages_plotly():
    figure = {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {"title": "t"}}
    output = nbformat.v4.new_output("display_data", data={outputs.PLOTLY: figure})
    (converted,) = outputs.convert_outputs([output], {}, "plotly-cell7")
    fragment = converted["data"]["text/html"]
    assert list(converted["data"]) == ["text/html"]
    assert 'id="plotly-cell7-0"' in fragment and "Plotly.newPlot" in fragment
    assert "<script src" not in fragment and "cdn" not in fragment.lower()


def test_the_page_notebook_drops_widget_state_and_adds_the_note_after_the_title():
    executed_notebook = nbformat.v4.new_notebook()
    executed_notebook.metadata["widgets"] = {outputs.WIDGET_STATE: {"state": PANEL_STATE}}
    cell = nbformat.v4.new_code_cell("panel", outputs=[widget_output("panel")])
    executed_notebook.cells = [nbformat.v4.new_markdown_cell("# Title"), cell]
    page = outputs.page_notebook(executed_notebook, note="ran at defaults")
    assert "widgets" not in page.metadata and "widgets" in executed_notebook.metadata
    assert [c.source for c in page.cells] == ["# Title", "ran at defaults", "panel"]
    assert [list(o["data"]) for o in page.cells[2].outputs] == [["text/html"], ["image/png"]]


def test_the_run_note_names_the_small_parameters():
    assert "default parameters" in site.run_note({"parameters": {"INTERACTIVE": True}})
    note = site.run_note({"parameters": {"INTERACTIVE": True, "STEPS": 4}})
    assert "`STEPS = 4`" in note and "default parameters" not in note


def test_the_module_list_skips_comments_and_must_not_be_empty(tmp_path: Path):
    listing = tmp_path / "api_modules.txt"
    listing.write_text("# modules\nlitekit  # the top level\n\nlitekit.data\n")
    assert site.api_modules(listing) == ["litekit", "litekit.data"]
    listing.write_text("# nothing\n")
    with pytest.raises(ValueError, match="list at least one module"):
        site.api_modules(listing)


def test_an_object_exported_twice_is_documented_once_on_the_first_page():
    pages = site.api_pages(["litekit", "litekit.learners"])
    assert ".. automodule:: litekit\n```" in pages["api/litekit.md"]
    learners = pages["api/litekit.learners.md"]
    assert ":exclude-members: CNAPs, FineTuner, ProtoNets, SimpleCNAPs" in learners
    assert "{py:obj}`ProtoNets <litekit.ProtoNets>`" in learners
    assert "Learner" not in learners.split("automodule")[1], "first documented here"
    assert "litekit.learners" in pages["api/index.md"]


def test_a_package_without_all_documents_what_it_imports_from_its_submodules(
    tmp_path: Path, monkeypatch
):
    package = tmp_path / "splitpkg"
    package.mkdir()
    (package / "figures.py").write_text(
        'def draw():\n    "A figure."\n\n\nclass Canvas:\n    "Where figures go."\n'
    )
    (package / "__init__.py").write_text(
        '"""Figures, split into submodules."""\n\nfrom pathlib import Path\n\n'
        "from splitpkg.figures import Canvas, draw\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    page = site.api_pages(["splitpkg"])["api/splitpkg.md"]
    assert ".. autofunction:: splitpkg.draw" in page
    assert ".. autoclass:: splitpkg.Canvas" in page
    assert "Path" not in page, "only what the package's own submodules define"
    again = site.api_pages(["splitpkg", "splitpkg.figures"])["api/splitpkg.figures.md"]
    assert ":exclude-members: " in again and "autofunction" not in again


def test_the_documented_modules_exist():
    for name in site.api_modules():
        assert site.summary(name), f"{name}: add a module docstring (its first line is listed)"
