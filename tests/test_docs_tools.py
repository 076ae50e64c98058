"""The documentation site's tools (docs/sitetools): when an executed notebook is reused, how
its outputs become static, and how the API pages are made from the one module list."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
from sitetools import cells, executed, outputs, site, tutorials  # noqa: E402


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


REAL_PNG = base64.b64encode(
    b"\x89PNG\r\n\x1a\n" + bytes(8) + (1200).to_bytes(4, "big") + (800).to_bytes(4, "big")
).decode()


def figure(plotly: bool) -> dict:
    """What litekit.notebook.show displays: a 2x PNG with its alt text, and plotly's JSON."""
    data = {"image/png": REAL_PNG, "text/plain": "Memory of one step."}
    if plotly:
        data[outputs.PLOTLY] = {"data": [{"type": "bar", "y": [1]}], "layout": {}}
    metadata = {"image/png": {"width": 600, "height": 400},
                "litekit": {"alt": 'Memory of one step: "MiB" against h.'}}  # fmt: skip
    return nbformat.v4.new_output("display_data", data=data, metadata=metadata)


def test_a_figure_is_one_live_figure_with_its_picture_for_readers_without_javascript(
    tmp_path: Path,
):
    files = outputs.FigureFiles(tmp_path / "figures", "../figures/")
    (live,) = outputs.convert_outputs([figure(plotly=True)], {}, "cell3", files)
    fragment = live["data"]["text/html"]
    assert list(live["data"]) == ["text/html"], "one output: the picture is not shown twice"
    assert fragment.count("Plotly.newPlot") == 1 and fragment.count("<img") == 1
    noscript = fragment[fragment.index("<noscript>") :]
    assert "<img" in noscript and noscript.endswith("</noscript></div>")
    assert 'aria-label="Memory of one step: &quot;MiB&quot; against h."' in fragment
    (written,) = files.written
    assert f'src="../figures/{written.name}"' in fragment and written.read_bytes()[:4] == b"\x89PNG"
    assert 'width="600" height="400"' in fragment, "shown at half its pixels: sharp"
    (still,) = outputs.convert_outputs([figure(plotly=False)], {}, "cell4", files)
    picture = still["data"]["text/html"]
    assert "<noscript>" not in picture and 'alt="Memory of one step' in picture
    assert len(files.written) == 1, "the same picture is one file"
    bare = nbformat.v4.new_output("display_data", data={"image/png": REAL_PNG})
    (plain,) = outputs.convert_outputs([bare], {}, "cell5", files)
    assert f'alt="{outputs.FALLBACK_ALT}"' in plain["data"]["text/html"]


def test_a_diagram_is_an_svg_file_with_its_title_and_description_as_alt_text(tmp_path: Path):
    from litekit.plots import diagrams, export

    files = outputs.FigureFiles(tmp_path / "figures", "../figures/")
    data, metadata = export.svg_bundle(diagrams.lite_step())
    shown = nbformat.v4.new_output("display_data", data=data, metadata=metadata)
    (page,) = outputs.convert_outputs([shown], {}, "cell2", files)
    fragment = page["data"]["text/html"]
    (written,) = files.written
    assert written.suffix == ".svg" and written.read_text() == diagrams.lite_step()
    assert (
        f'src="../figures/{written.name}"' in fragment
        and 'class="litekit-figure-image"' in fragment
    )
    assert 'alt="One LITE meta-training step. All N support images' in fragment
    assert f'width="{diagrams.WIDTH}"' in fragment, "its own width; narrower on a phone"
    (again,) = outputs.convert_outputs([shown], {}, "cell9", files)
    assert len(files.written) == 1 and again == page


def test_the_page_notebook_drops_widget_state_and_adds_the_header_after_the_title():
    executed_notebook = nbformat.v4.new_notebook()
    executed_notebook.metadata["widgets"] = {outputs.WIDGET_STATE: {"state": PANEL_STATE}}
    cell = nbformat.v4.new_code_cell("panel", outputs=[widget_output("panel")])
    executed_notebook.cells = [nbformat.v4.new_markdown_cell("# Title\nWhat you will learn"), cell]
    page = outputs.page_notebook(executed_notebook, header="the header")
    assert "widgets" not in page.metadata and "widgets" in executed_notebook.metadata
    assert [c.source for c in page.cells] == [
        "# Title",
        "the header",
        "What you will learn",
        "panel",
    ]
    assert [list(o["data"]) for o in page.cells[3].outputs] == [["text/html"], ["image/png"]]


PARAMETERS = """SEED = 0  # picks the tasks
STEPS = 120  # optimiser steps
SIZES = [32, 64,
         96]  # image sizes
INTERACTIVE = None  # None: detect"""


def test_the_parameters_box_shows_this_runs_values_and_the_injected_cell_goes():
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell(
        "# Parameters\nSTEPS = 4\nSIZES = [32, 48]\nINTERACTIVE = True\n",
        metadata={"tags": ["injected-parameters"]},
    )
    checked = nbformat.v4.new_code_cell(
        "# NBVAL_CHECK_OUTPUT\nrows = [1,\n        2]  # fmt: skip\nprint(rows)"
    )
    notebook.cells = [nbformat.v4.new_markdown_cell("# T"), parameters, injected, checked]
    cells.prepare(notebook)
    assert notebook.cells[1].source.splitlines() == [
        "SEED = 0  # picks the tasks",
        "STEPS = 4  # default 120; optimiser steps",
        "SIZES = [32, 48]  # default [32, 64, 96]; image sizes",
        "INTERACTIVE = True  # default None; None: detect",
    ]
    long = cells.run_parameters("X = 1  # " + "word " * 30, {"X": 22})
    assert max(len(line) for line in long.splitlines()) <= cells.COLUMNS
    assert long.splitlines()[1].startswith("        # word"), "the comment goes on, aligned"
    assert "hide-input" in notebook.cells[1].metadata["tags"]
    assert notebook.cells[1].metadata["mystnb"]["code_prompt_show"] == "Parameters of this run"
    assert "remove-cell" in notebook.cells[2].metadata["tags"]
    assert notebook.cells[3].source == "rows = [1,\n        2]\nprint(rows)"


def test_the_tutorials_data_lists_every_notebook_with_its_time(tmp_path: Path):
    entries = tutorials.load()
    assert [e["notebook"] for e in entries] == sorted(
        p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
    )
    assert tutorials.duration(45) == "under a minute" and tutorials.duration(60) == "about 1 minute"
    assert tutorials.duration(550) == "about 9 minutes"
    (tmp_path / "notebooks").mkdir()
    write_notebook(tmp_path / "notebooks" / "01_a.ipynb")
    data = tmp_path / "tutorials.toml"
    data.write_text('[[tutorial]]\nnotebook = "01_a"\nseconds = 0\nsummary = "x"\n')
    with pytest.raises(ValueError, match=r"^01_a.seconds=0"):
        tutorials.load(data, tmp_path / "notebooks")
    data.write_text('[[tutorial]]\nnotebook = "02_b"\nseconds = 5\nsummary = "x"\n')
    with pytest.raises(ValueError, match=r"^tutorials=.*list every notebook"):
        tutorials.load(data, tmp_path / "notebooks")


def test_the_index_table_and_the_header_come_from_the_data():
    entries = tutorials.load()
    table = tutorials.index_table(entries)
    assert table.count("\n") == len(entries) + 2, "a heading, a rule, a row per tutorial"
    first = entries[0]
    assert f"({first['notebook']}.ipynb)" in table and tutorials.duration(first["seconds"]) in table
    small = tutorials.header(first, {"parameters": {"INTERACTIVE": True, "STEPS": 4}})
    assert "other values of `STEPS`" in small and "default parameters;" not in small
    assert tutorials.duration(first["seconds"]).capitalize() in small
    full = tutorials.header(first, {"parameters": {"INTERACTIVE": True}})
    assert "as it ran at its default parameters" in full and full.startswith(":::{admonition}")


def test_the_header_says_what_to_know_first_and_links_both_downloads():
    entries = tutorials.load()
    for entry in entries:
        text = tutorials.header(entry, {"parameters": {"INTERACTIVE": True}})
        assert f"**Before you start.** {entry['prerequisites']}" in text
        for edition in ("full", "student"):
            assert f"</{tutorials.download_path(entry['notebook'], edition)}>`" in text
    broken = [{**entries[0], "prerequisites": " "}, {**entries[0], "session": 0}]
    for entry, key in zip(broken, ("prerequisites", "session"), strict=True):
        with pytest.raises(ValueError, match=rf"^{entry['notebook']}.{key}="):
            tutorials_with(entry)


def tutorials_with(entry: dict) -> None:
    """`tutorials.load` of a data file holding ``entry`` alone, for its own notebook."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_notebook(root / "notebooks" / f"{entry['notebook']}.ipynb")
        lines = [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
        (root / "t.toml").write_text("[[tutorial]]\n" + "\n".join(lines) + "\n")
        tutorials.load(root / "t.toml", root / "notebooks")


def test_the_sessions_table_lists_each_session_with_its_times():
    entries = tutorials.load()
    table = tutorials.sessions_table(entries)
    sessions = sorted({entry["session"] for entry in entries})
    assert table.count("\n") == len(sessions) + 2
    for entry in entries:
        assert f"(tutorials/{entry['notebook']}.ipynb)" in table
        assert f"{entry['notebook'][:2]}: {tutorials.duration(entry['seconds'])}" in table
    instructor = (ROOT / "docs" / "instructor.md").read_text()
    assert instructor.count(tutorials.SESSIONS_MARKER) == 1


def test_each_tutorial_is_staged_for_download_as_it_is_and_without_its_solutions(tmp_path):
    from sitetools import student

    names = [entry["notebook"] for entry in tutorials.load()][:2]
    files = site.downloads(ROOT / "notebooks", names, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in files) == sorted(
        tutorials.download_path(name, edition) for name in names for edition in ("full", "student")
    )
    for name in names:
        full = files[tmp_path / tutorials.download_path(name, "full")]
        assert full == (ROOT / "notebooks" / f"{name}.ipynb").read_text()
        edition = nbformat.reads(files[tmp_path / tutorials.download_path(name, "student")], 4)
        assert edition.metadata["litekit"]["edition"] == "student"
        assert student.NOTE in "".join(c.source for c in edition.cells)
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert f'"{tutorials.DOWNLOADS}"' in conf, "Sphinx must not read them as pages"


def test_readme_gives_each_tutorial_its_measured_time():
    """README's tutorials table and the notebooks say what tutorials.toml says (the
    notebooks' own sentence is checked in tests/test_notebooks.py)."""
    readme = (ROOT / "README.md").read_text()
    for entry in tutorials.load():
        (row,) = [line for line in readme.splitlines() if f"`{entry['notebook']}`" in line]
        assert row.rstrip(" |").endswith(tutorials.duration(entry["seconds"])), row


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
